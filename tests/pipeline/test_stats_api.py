"""The stats API on the real pipeline: a small load through the api (draws with
coupon prizes, claims, partner redemptions and a refund, an upstream channel's
issuances and write-off callback), then every endpoint's figures must be what
the load did; an analyst key scoped to one institution sees only its own
figures, 404 for another institution's or tenant's entities, 403 for
tenant-wide ones; bad parameters are 4xx with codes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.events import now_ms
from tests.pipeline.conftest import Pipeline, Tenant, assert_error, draw, wait_for
from tests.pipeline.test_channels import UpstreamSim, _channel, _issuances_when_final
from tests.pipeline.test_claims import claim
from tests.pipeline.test_writeoffs import ORDER_ITEMS, Partners, _ok, _redemption, _template

STATS = "/v1/stats"
DISCOUNT, ORDER = 500, 5_300  # a "5 off from 20" coupon on ORDER_ITEMS + 300 shipping
CHANNEL_ORDER = 5_000  # the upstream's order has no shipping
WAIT_S = 60
REDEEMED_MONEY = 5 * DISCOUNT - DISCOUNT, 4 * ORDER - ORDER + CHANNEL_ORDER
# The overview once every event of the load is in ClickHouse.
OVERVIEW = {
    "participants": 5 + 3 + 4 + 2 + 2, "draws": 8, "wins": 5, "coupons_won": 5,
    "coupons_claimed": 8, "coupons_issued": 13, "redemptions": 5, "coupons_redeemed": 5,
    "reversals": 1, "discount_cents": REDEEMED_MONEY[0], "order_cents": REDEEMED_MONEY[1],
    "points_liability": 0,
}  # fmt: skip


@dataclass
class Load:
    tenant: Tenant
    wheel_a: str
    wheel_b: str
    tpl_a: str
    tpl_b: str
    tpl_ch: str
    channel_id: str
    partner: str  # the till that redeems tpl_a and tpl_b
    channel_partner: str
    other_activity: str  # another tenant's
    scoped: dict[str, str]  # an analyst of branch-a
    analyst: dict[str, str]  # a tenant-wide analyst
    wins: dict[str, int] = field(default_factory=dict)


def _wheel(http: httpx.Client, tenant: Tenant, institution: str, template: str, stock: int) -> str:
    body = {
        "kind": "wheel",
        "name": f"Wheel of {institution}",
        "prizes": [
            {"id": "coupon", "name": "5 off", "kind": "coupon", "weight": 1, "stock": stock,
             "coupon_template": template},
            {"id": "thanks", "name": "Thanks", "kind": "thanks", "weight": 0},
        ],
        "fallback_prize_id": "thanks",
        "institution_id": institution,
    }  # fmt: skip
    created = _ok(http.post("/v1/admin/activities", json=body, headers=tenant.staff_headers), 201)
    activity_id = created["activity"]["id"]
    for to in ("scheduled", "running"):
        path = f"/v1/admin/activities/{activity_id}/transitions"
        _ok(http.post(path, json={"to": to}, headers=tenant.staff_headers))
    return activity_id


def _coupon_of_claim(http: httpx.Client, tenant: Tenant, template_id: str, user: str) -> str:
    return _ok(claim(http, tenant, template_id, user))["coupon"]["coupon_id"]


@pytest.fixture(scope="module")
def load(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Load]:
    sim = UpstreamSim(Path(tmp_path_factory.mktemp("stats-sim")))
    sim.start(timeout=60)
    try:
        with httpx.Client(base_url=pipeline.url, timeout=30) as http:
            yield _run_load(pipeline, http, sim)
    finally:
        sim.stop()


def _run_load(pipeline: Pipeline, http: httpx.Client, sim: UpstreamSim) -> Load:
    tenant = pipeline.tenant()
    admin = tenant.staff_headers
    tpl_a = _template(http, tenant, institution_id="branch-a", limits={"budget_cents": 10_000}).id
    tpl_b = _template(http, tenant, institution_id="branch-b").id
    wheel_a = _wheel(http, tenant, "branch-a", tpl_a, 3)
    wheel_b = _wheel(http, tenant, "branch-b", tpl_b, 2)
    registered = Partners(http, tenant)
    channel_partner = _ok(
        http.post(
            "/v1/admin/partners",
            json={"name": "WeChat", "algorithm": "HMAC-SHA256"},
            headers=admin,
        ),
        201,
    )["partner"]["id"]
    channel = _channel(http, tenant, channel_partner, sim)
    tpl_ch = _template(
        http,
        tenant,
        institution_id="branch-a",
        channel={"channel_id": channel["id"], "stock_id": "stock-7"},
    ).id
    other = pipeline.tenant()
    other_activity = _wheel(http, other, "branch-a", _template(http, other).id, 1)

    # Draws: the coupon prize's weight alone counts until its stock is gone.
    load = Load(
        tenant, wheel_a, wheel_b, tpl_a, tpl_b, tpl_ch, channel["id"], registered.hmac,
        channel_partner, other_activity,
        scoped={"X-Api-Key": pipeline.ledger.create_api_key(
            tenant.tenant_id, "analyst", "branch a", institution_id="branch-a")},
        analyst={"X-Api-Key": pipeline.ledger.create_api_key(tenant.tenant_id, "analyst", "all")},
    )  # fmt: skip
    won: dict[str, list[str]] = {wheel_a: [], wheel_b: []}
    for wheel, users in ((wheel_a, 5), (wheel_b, 3)):
        for i in range(users):
            answer = _ok(draw(http, tenant, wheel, f"d-{wheel}-{i}"))
            if answer["status"] == "won":
                won[wheel].append(answer["coupon_id"])
    load.wins = {wheel: len(coupons) for wheel, coupons in won.items()}
    assert load.wins == {wheel_a: 3, wheel_b: 2}

    claimed_a = [_coupon_of_claim(http, tenant, tpl_a, f"ca{i}") for i in range(4)]
    claimed_b = [_coupon_of_claim(http, tenant, tpl_b, f"cb{i}") for i in range(2)]
    channel_coupons = [_coupon_of_claim(http, tenant, tpl_ch, f"ch{i}") for i in range(2)]

    # The till redeems two coupons won on wheel A, one claimed of tpl_a (refunded
    # after) and one of tpl_b; the upstream reports one channel coupon spent.
    with httpx.Client(base_url=pipeline.url, auth=registered.auth("hmac"), timeout=30) as till:
        spent = [*won[wheel_a][:2], claimed_a[0], claimed_b[0]]
        for n, coupon in enumerate(spent):
            body = _redemption(coupon, f"pay-{n}", f"order-{n}")
            assert _ok(till.post("/v1/partner/redemptions", json=body))["discount_cents"] == 500
        refund = {"request_id": "refund-2", "order_id": "order-2"}
        assert _ok(till.post("/v1/partner/reversals", json=refund))["discount_cents"] == 500
    issuances = _issuances_when_final(http, tenant, channel["id"], 2)
    assert {i["state"] for i in issuances} == {"issued"}
    order = {"order_id": "wx-1", "items": ORDER_ITEMS, "shipping_cents": 0}
    callback = {"out_request_no": channel_coupons[0], "order": order, "writeoff_id": "wx-wo-1"}
    answer = httpx.post(f"{sim.url}/sim/writeoffs", json=callback, timeout=30)
    assert answer.status_code == 200 and answer.json()["status"] == "redeemed", answer.text
    return load


def _get(http: httpx.Client, path: str, headers: dict[str, str], **params: Any) -> Any:
    return _ok(http.get(path, params=params, headers=headers))


def _when(http: httpx.Client, path: str, headers: dict[str, str], **expected: Any) -> Any:
    """The answer once ClickHouse shows each ``expected`` figure."""

    last: dict[str, Any] = {}

    def seen() -> Any:
        last.update(_get(http, path, headers))
        return dict(last) if all(last.get(k) == v for k, v in expected.items()) else None

    try:
        return wait_for(seen, WAIT_S, f"{expected} at {path}")
    except AssertionError:
        assert {k: last.get(k) for k in expected} == expected  # shows which figures differ
        raise


def _settled(http: httpx.Client, load: Load) -> Any:
    """The overview once all of the load is visible: each topic reaches
    ClickHouse at its own pace."""
    return _when(http, f"{STATS}/overview", load.tenant.staff_headers, **OVERVIEW)


def _sums(points: list[dict[str, int]], *names: str) -> dict[str, int]:
    return {n: sum(p[n] for p in points) for n in names}


def test_overview_and_funnels_are_what_the_load_did(http: httpx.Client, load: Load) -> None:
    admin = load.tenant.staff_headers
    body = _settled(http, load)
    assert body["redemption_rate"] == round(5 / 13, 6)
    assert body["roi"] == round(REDEEMED_MONEY[1] / REDEEMED_MONEY[0], 6)
    assert [(s["step"], s["count"]) for s in body["funnel"]] == [
        ("participants", 16),
        ("draws", 8),
        ("wins", 5),
        ("claims", 13),
        ("redemptions", 5),
    ]
    # A tenant-wide analyst sees the same; a window before the load sees nothing.
    # (An open since is the start of the raw events' retention, when asked.)
    same = _get(http, f"{STATS}/overview", load.analyst)
    assert {**same, "since": body["since"]} == body
    yesterday = now_ms() - 86_400_000
    before = _get(http, f"{STATS}/overview", admin, since=yesterday, until=yesterday + 1_000)
    assert before["draws"] == before["coupons_issued"] == before["redemptions"] == 0

    funnel = _when(http, f"{STATS}/activities/{load.wheel_a}/funnel", admin, coupons_redeemed=2)
    assert [(s["step"], s["count"]) for s in funnel["funnel"]] == [
        ("participants", 5),
        ("draws", 5),
        ("wins", 3),
        ("coupons_won", 3),
        ("coupons_redeemed", 2),
    ]
    assert (funnel["discount_cents"], funnel["order_cents"]) == (2 * DISCOUNT, 2 * ORDER)

    stats = _get(http, f"{STATS}/activities/{load.wheel_a}", admin)
    assert stats["prize_stock"] == [
        {"prize_id": "coupon", "prize_name": "5 off", "kind": "coupon", "wins": 3, "stock": 3,
         "left": 0, "awarded": 3},
        {"prize_id": "thanks", "prize_name": "Thanks", "kind": "thanks", "wins": 0,
         "stock": None, "left": None, "awarded": None},
    ]  # fmt: skip


def test_series_and_burn_are_what_the_load_did(http: httpx.Client, load: Load) -> None:
    admin = load.tenant.staff_headers
    _settled(http, load)
    for step in ("minute", "hour", "day"):
        points = _get(http, f"{STATS}/activities/{load.wheel_a}/series", admin, step=step)
        assert _sums(points, "draws", "wins", "won_in_draws") == {
            "draws": 5, "wins": 3, "won_in_draws": 3,
        }  # fmt: skip
        busy = [p for p in points if p["draws"]]
        if len(busy) == 1:  # distinct shoppers of the step, whatever its minutes
            assert busy[0]["participants"] == 5
        template = _get(http, f"{STATS}/templates/{load.tpl_a}/series", admin, step=step)
        assert _sums(template, "issued", "won_in_draws", "redeemed", "reversed",
                     "discount_cents", "order_cents") == {
            "issued": 4, "won_in_draws": 3, "redeemed": 3, "reversed": 1,
            "discount_cents": 2 * DISCOUNT, "order_cents": 2 * ORDER,
        }  # fmt: skip
    minutes = _get(http, f"{STATS}/activities/{load.wheel_a}/series", admin)
    assert len(minutes) in (60, 61)  # the last hour, up to the minute under way
    partner = _get(http, f"{STATS}/partners/{load.partner}/series", admin, step="hour")
    assert _sums(partner, "redeemed", "reversed", "discount_cents", "order_cents") == {
        "redeemed": 4, "reversed": 1, "discount_cents": 3 * DISCOUNT, "order_cents": 3 * ORDER,
    }  # fmt: skip
    channel = _get(http, f"{STATS}/channels/{load.channel_id}/series", admin, step="day")
    assert (channel["partner_id"], channel["templates"]) == (load.channel_partner, [load.tpl_ch])
    assert _sums(channel["series"], "issued", "redeemed", "discount_cents", "order_cents") == {
        "issued": 2, "redeemed": 1, "discount_cents": DISCOUNT, "order_cents": CHANNEL_ORDER,
    }  # fmt: skip

    burn = _get(http, f"{STATS}/templates/{load.tpl_a}/burn", admin)
    today = burn["days"][-1]
    assert burn["budget_cents"] == 10_000 and len(burn["days"]) == 30
    assert (today["spent_total"], today["cents_left"], today["cents_burnt"]) == (1_000, 9_000, 0.1)
    live = _get(http, f"/v1/budgets/templates/{load.tpl_a}", admin)["budgets"][0]
    assert live["spent"] == today["spent_total"], "no locks held: history == live burn"
    partner_burn = _get(http, f"{STATS}/partners/{load.partner}/burn", admin)["days"][-1]
    assert (partner_burn["spent_total"], partner_burn["redemptions_total"]) == (1_500, 3)


def test_an_institution_key_sees_its_own_figures_only(http: httpx.Client, load: Load) -> None:
    _settled(http, load)
    mine = _get(http, f"{STATS}/overview", load.scoped)
    assert {k: mine[k] for k in (
        "institution_id", "participants", "draws", "wins", "coupons_issued", "coupons_redeemed",
        "reversals", "discount_cents", "order_cents", "points_liability",
    )} == {
        "institution_id": "branch-a", "participants": 5 + 4 + 2, "draws": 5, "wins": 3,
        "coupons_issued": 3 + 4 + 2, "coupons_redeemed": 4, "reversals": 1,
        "discount_cents": 3 * DISCOUNT, "order_cents": 2 * ORDER + CHANNEL_ORDER,
        "points_liability": None,
    }  # fmt: skip
    assert _get(http, f"{STATS}/activities/{load.wheel_a}", load.scoped)["draws"] == 5
    assert _get(http, f"{STATS}/templates/{load.tpl_a}", load.scoped)["issued"] == 4
    # the till's write-offs of branch-a's templates only
    partner = _get(http, f"{STATS}/partners/{load.partner}/series", load.scoped, step="day")
    assert _sums(partner, "redeemed", "discount_cents") == {
        "redeemed": 3,
        "discount_cents": 2 * DISCOUNT,
    }

    for path in ("", "/funnel", "/series"):
        for activity in (load.wheel_b, load.other_activity):
            reply = http.get(f"{STATS}/activities/{activity}{path}", headers=load.scoped)
            assert_error(reply, 404, "activity_not_found")
    for path in ("", "/series", "/burn"):
        reply = http.get(f"{STATS}/templates/{load.tpl_b}{path}", headers=load.scoped)
        assert_error(reply, 404, "template_not_found")
    assert_error(http.get(f"{STATS}/points", headers=load.scoped), 403, "scope_is_institution")
    reply = http.get(f"{STATS}/partners/{load.partner}/burn", headers=load.scoped)
    assert_error(reply, 403, "scope_is_institution")
    # another tenant's activity is a 404 to the tenant-wide analyst too
    for headers in (load.analyst, load.tenant.staff_headers):
        reply = http.get(f"{STATS}/activities/{load.other_activity}/funnel", headers=headers)
        assert_error(reply, 404, "activity_not_found")
    assert _ok(http.get(f"{STATS}/points", headers=load.analyst))["liability"] == 0


def test_bad_parameters_are_4xx_with_codes(http: httpx.Client, load: Load) -> None:
    admin = load.tenant.staff_headers
    series = f"{STATS}/activities/{load.wheel_a}/series"
    day_ms = 86_400_000
    cases = [
        (series, {"step": "week"}, 422, "invalid_request"),
        (series, {"since": -1}, 422, "invalid_request"),
        (series, {"since": "yesterday"}, 422, "invalid_request"),
        (series, {"since": 2_000_000, "until": 1_000_000}, 400, "invalid_range"),
        (series, {"step": "minute", "since": now_ms() - 2 * day_ms}, 400, "range_too_large"),
        (series, {"step": "hour", "since": 0}, 400, "range_too_large"),
        (f"{STATS}/overview", {"since": now_ms(), "until": now_ms() - 5}, 400, "invalid_range"),
        (f"{STATS}/overview", {"since": 5}, 400, "before_retention"),
        (f"{STATS}/templates/{load.tpl_a}/burn", {"since": 0}, 400, "range_too_large"),
        (f"{STATS}/partners/nobody/series", {}, 404, "partner_not_found"),
        (f"{STATS}/channels/ch_0000000000000000/series", {}, 404, "channel_not_found"),
        (f"{STATS}/activities/{uuid.uuid4().hex}/funnel", {}, 404, "activity_not_found"),
        (f"{STATS}/activities/bad%20id/series", {}, 422, "invalid_request"),
    ]
    for path, params, status, code in cases:
        assert_error(http.get(path, params=params, headers=admin), status, code)
    body = assert_error(
        http.get(series, params={"step": "minute", "since": 0}, headers=admin),
        400,
        "range_too_large",
    )
    assert body["details"]["max_points"] == 1440
    assert_error(http.get(f"{STATS}/overview"), 401, "missing_api_key")
