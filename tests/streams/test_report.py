"""The stats API's reports (streams/report.py) on an embedded chdb engine: every
event delivered two or three times in separate inserts, and every figure must be
the exact one; a key scoped to one institution sees its own rows only."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from domain.claims import ClaimOutcome, ClaimStatus
from domain.events import DrawOutcome, OutcomeStatus
from domain.visibility import Visibility
from domain.writeoffs import Writeoff, WriteoffOp, WriteoffStatus
from streams import clickhouse, report, stats
from tests.streams import test_rollups as rollups
from tests.streams.test_rollups import redelivered, signin

MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
# Yesterday, 00:00 UTC: inside the rollups' two years whenever the test runs.
T0 = (int(time.time() * 1000) // DAY - 1) * DAY


# test_rollups' events, placed on this module's activities, templates and coupons.
def draw(
    tenant: str,
    n: int,
    user: str,
    status: OutcomeStatus,
    at: int,
    activity: str = "act-a",
    coupon: str = "",
    template: str = "",
    amount: int = 0,
) -> DrawOutcome:
    event = rollups.draw(tenant, n, user, status, at, amount=amount, activity_id=activity)
    return replace(event, coupon_id=coupon, coupon_template=template)


def claim(
    tenant: str, n: int, user: str, status: ClaimStatus, at: int, template: str, coupon: str = ""
) -> ClaimOutcome:
    return replace(
        rollups.claim(tenant, n, user, status, at), template_id=template, coupon_id=coupon
    )


def writeoff(
    tenant: str,
    n: int,
    partner: str,
    coupon: str,
    template: str,
    op: WriteoffOp,
    status: WriteoffStatus,
    order_cents: int,
    discount_cents: int,
    at: int,
) -> Writeoff:
    event = rollups.writeoff(tenant, partner, f"w{n}", op, status, order_cents, discount_cents, at)
    return replace(event, template_id=template, coupon_id=coupon)


@pytest.fixture
def tenant(ch_client: Client) -> str:
    """Two hours of one tenant: branch-a's activity act-a and template tpl-a,
    branch-b's act-b and tpl-b; partner pa redeems tpl-a, pb tpl-b. Every event
    is inserted two or three times."""
    t = f"t-{uuid.uuid4().hex[:8]}"
    draws = [
        draw(t, 1, "u1", "won", T0 + 1_000, coupon="cpA1", template="tpl-a"),
        draw(t, 2, "u1", "lost", T0 + 2_000),
        draw(t, 3, "u2", "won", T0 + 30 * MIN, coupon="cpA2", template="tpl-a"),
        draw(t, 4, "u3", "rejected", T0 + 3_000),
        draw(t, 5, "u2", "won", T0 + 61 * MIN, amount=300),
        draw(t, 6, "u9", "won", T0 + 5_000, activity="act-b", coupon="cpB1", template="tpl-b"),
        draw(t, 7, "u1", "lost", T0 + 31 * MIN),
    ]
    claims = [
        claim(t, 1, "u4", "issued", T0 + 10_000, "tpl-a", "cpA3"),
        claim(t, 2, "u5", "issued", T0 + 62 * MIN, "tpl-a", "cpA4"),
        claim(t, 3, "u6", "rejected", T0 + 63 * MIN, "tpl-a"),
        claim(t, 4, "u9", "issued", T0 + 4_000, "tpl-b", "cpB2"),
    ]
    writeoffs = [
        writeoff(t, 1, "pa", "cpA1", "tpl-a", "redeem", "redeemed", 10_000, 1_000, T0 + 20 * MIN),
        writeoff(t, 2, "pa", "cpA3", "tpl-a", "redeem", "redeemed", 5_000, 500, T0 + 65 * MIN),
        writeoff(t, 3, "pa", "cpA3", "tpl-a", "reverse", "reversed", -5_000, -500, T0 + 70 * MIN),
        writeoff(t, 5, "pa", "cpA2", "tpl-a", "redeem", "rejected", 0, 0, T0 + 66 * MIN),
        writeoff(t, 6, "pa", "cpA4", "tpl-a", "lock", "locked", 7_000, 700, T0 + 67 * MIN),
        writeoff(t, 7, "pb", "cpB1", "tpl-b", "redeem", "redeemed", 8_000, 800, T0 + 6_000),
    ]
    for batch in redelivered(draws):
        clickhouse.insert_outcomes(ch_client, batch)
    for batch in redelivered(claims):
        clickhouse.insert_claims(ch_client, batch)
    for batch in redelivered(writeoffs):
        clickhouse.insert_writeoffs(ch_client, batch)
    for batch in redelivered([signin(t, "u1", 5, T0 + 500)]):
        clickhouse.insert_points(ch_client, batch)
    return t


def branch(tenant: str, name: str) -> Visibility:
    letter = name[-1]
    return Visibility(tenant, name, frozenset({f"act-{letter}"}), frozenset({f"tpl-{letter}"}))


def funnel(*counts: tuple[str, int, float | None]) -> list[dict[str, Any]]:
    return [{"step": s, "count": c, "rate": r} for s, c, r in counts]


def test_overview_counts_each_event_once(ch_client: Client, tenant: str) -> None:
    body = report.overview(ch_client, Visibility(tenant))
    assert body == {
        "tenant_id": tenant,
        "institution_id": None,
        "since": None,
        "until": None,
        "participants": 5,  # u1, u2, u9 drew; u4, u5 (and u9) were issued a coupon
        "draws": 6,
        "wins": 4,
        "coupons_won": 3,
        "coupons_claimed": 3,
        "coupons_issued": 6,
        "redemptions": 3,
        "coupons_redeemed": 3,
        "reversals": 1,
        "discount_cents": 1_800,  # a lock moves nothing, a reversal gives back
        "order_cents": 18_000,
        "redemption_rate": 0.5,
        "roi": 10.0,
        "points_liability": 5,
        "funnel": funnel(
            ("participants", 5, None),
            ("draws", 6, 1.2),
            ("wins", 4, round(4 / 6, 6)),
            ("claims", 6, 1.5),
            ("redemptions", 3, 0.5),
        ),
    }
    # the money equals the template stats' (the figures operators already read)
    templates = [stats.template_stats(ch_client, tenant, t) for t in ("tpl-a", "tpl-b")]
    assert body["discount_cents"] == sum(t["discount_cents"] for t in templates)
    assert body["redemptions"] == sum(t["redeemed"] for t in templates)


def test_overview_of_an_institution_and_of_a_window(ch_client: Client, tenant: str) -> None:
    mine = report.overview(ch_client, branch(tenant, "branch-a"))
    figures = {k: mine[k] for k in ("participants", "draws", "wins", "coupons_issued")}
    assert figures == {"participants": 4, "draws": 5, "wins": 3, "coupons_issued": 4}
    assert (mine["redemptions"], mine["coupons_redeemed"], mine["reversals"]) == (2, 2, 1)
    assert (mine["discount_cents"], mine["order_cents"], mine["roi"]) == (1_000, 10_000, 10.0)
    assert mine["points_liability"] is None and mine["institution_id"] == "branch-a"
    nothing = Visibility(tenant, "branch-z")  # an institution with no entities sees nothing
    empty = report.overview(ch_client, nothing)
    assert empty["participants"] == empty["draws"] == empty["coupons_issued"] == 0
    assert empty["redemption_rate"] is None and empty["roi"] is None

    hour1 = report.overview(ch_client, Visibility(tenant), T0 + HOUR, T0 + 2 * HOUR)
    assert (hour1["participants"], hour1["draws"], hour1["coupons_issued"]) == (2, 1, 1)
    assert (hour1["coupons_redeemed"], hour1["reversals"], hour1["discount_cents"]) == (1, 1, 0)
    assert hour1["roi"] is None
    other = report.overview(ch_client, Visibility(f"{tenant}-other"))
    assert other["draws"] == other["redemptions"] == other["points_liability"] == 0


def test_activity_funnel_follows_its_coupons(ch_client: Client, tenant: str) -> None:
    body = report.activity_funnel(ch_client, Visibility(tenant), "act-a")
    assert body["funnel"] == funnel(
        ("participants", 2, None),
        ("draws", 5, 2.5),
        ("wins", 3, 0.6),
        ("coupons_won", 2, round(2 / 3, 6)),
        ("coupons_redeemed", 1, 0.5),  # cpA1 redeemed; cpA2's write-off was refused
    )
    assert (body["discount_cents"], body["order_cents"], body["roi"]) == (1_000, 10_000, 10.0)
    later = report.activity_funnel(ch_client, Visibility(tenant), "act-a", T0 + HOUR, None)
    assert [s["count"] for s in later["funnel"]] == [1, 1, 1, 0, 0]


def test_series_merge_minutes_into_hours_and_days_exactly(ch_client: Client, tenant: str) -> None:
    view = Visibility(tenant)
    minutes = report.activity_series(ch_client, view, "act-a", "minute", T0, T0 + 2 * HOUR)
    assert len(minutes) == 120 and minutes[0]["at"] == T0 and minutes[-1]["at"] == T0 + 119 * MIN
    hours = report.activity_series(ch_client, view, "act-a", "hour", T0, T0 + 2 * HOUR)
    assert hours == [
        {"at": T0, "draws": 4, "wins": 2, "rejected": 1, "participants": 2, "amount_won": 0,
         "won_in_draws": 2},
        {"at": T0 + HOUR, "draws": 1, "wins": 1, "rejected": 0, "participants": 1,
         "amount_won": 300, "won_in_draws": 0},
    ]  # fmt: skip
    # u1 drew in minutes 0 and 31: one participant of the hour, not two
    assert sum(m["participants"] for m in minutes[:60]) == 3
    days = report.activity_series(ch_client, view, "act-a", "day", T0, T0 + DAY)
    assert days == [
        {"at": T0, "draws": 5, "wins": 3, "rejected": 1, "participants": 2, "amount_won": 300,
         "won_in_draws": 2}
    ]  # fmt: skip


def test_template_partner_and_channel_series(ch_client: Client, tenant: str) -> None:
    view = Visibility(tenant)
    hours = report.template_series(ch_client, view, "tpl-a", "hour", T0, T0 + 2 * HOUR)
    assert hours == [
        {"at": T0, "claims": 1, "issued": 1, "rejected": 0, "holders": 1, "won_in_draws": 2,
         "redeemed": 1, "reversed": 0, "writeoffs_rejected": 0, "discount_cents": 1_000,
         "order_cents": 10_000},
        {"at": T0 + HOUR, "claims": 2, "issued": 1, "rejected": 1, "holders": 1,
         "won_in_draws": 0, "redeemed": 1, "reversed": 1, "writeoffs_rejected": 1,
         "discount_cents": 0, "order_cents": 0},
    ]  # fmt: skip
    pa = report.partner_series(ch_client, view, "pa", "hour", T0, T0 + 2 * HOUR)
    assert [(h["redeemed"], h["reversed"], h["discount_cents"]) for h in pa] == [
        (1, 0, 1_000),
        (1, 1, 0),
    ]
    channel = report.channel_series(ch_client, view, "pb", ["tpl-b"], "day", T0, T0 + DAY)
    assert channel == [
        {"at": T0, "claims": 1, "issued": 1, "rejected": 0, "holders": 1, "won_in_draws": 1,
         "redeemed": 1, "reversed": 0, "writeoffs_rejected": 0, "discount_cents": 800,
         "order_cents": 8_000}
    ]  # fmt: skip
    # the channel's write-offs are its partner's: pa did not redeem tpl-b
    by_pa = report.channel_series(ch_client, view, "pa", ["tpl-b"], "day", T0, T0 + DAY)
    assert by_pa[0]["redeemed"] == 0 and by_pa[0]["issued"] == 1


def test_scope_hides_other_institutions_rows(ch_client: Client, tenant: str) -> None:
    a, b = branch(tenant, "branch-a"), branch(tenant, "branch-b")
    # a partner is the tenant's, but a branch sees the write-offs of its own templates
    assert report.partner_series(ch_client, b, "pa", "day", T0, T0 + DAY)[0]["redeemed"] == 0
    assert report.partner_series(ch_client, a, "pb", "day", T0, T0 + DAY)[0]["redeemed"] == 0
    assert report.partner_series(ch_client, a, "pa", "day", T0, T0 + DAY)[0]["redeemed"] == 2
    assert report.overview(ch_client, b)["discount_cents"] == 800
    with pytest.raises(ValueError, match="aligned"):
        report.activity_series(ch_client, a, "act-a", "hour", T0 + 1, T0 + HOUR)


def test_burn_per_day_cumulates_from_the_first_writeoff(ch_client: Client, tenant: str) -> None:
    view = Visibility(tenant)
    burn = report.template_burn(ch_client, view, "tpl-a", T0, T0 + 2 * DAY)
    assert burn == [
        {"at": T0, "spent": 1_000, "redemptions": 1, "spent_total": 1_000, "redemptions_total": 1},
        {"at": T0 + DAY, "spent": 0, "redemptions": 0, "spent_total": 1_000,
         "redemptions_total": 1},
    ]  # fmt: skip
    assert report.template_burn(ch_client, view, "tpl-a", T0 + DAY, T0 + 2 * DAY) == burn[1:]
    assert report.partner_burn(ch_client, view, "pb", T0, T0 + DAY) == [
        {"at": T0, "spent": 800, "redemptions": 1, "spent_total": 800, "redemptions_total": 1}
    ]
