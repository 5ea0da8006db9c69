"""Minute rollups (sql/009) on an embedded chdb
engine (no Kafka): every event delivered two or three times, in separate
inserts, and the rollup series must equal what the raw tables give deduplicated.

The shared session client serves the series; the down-and-up of the two
migrations runs in a process of its own on its own chdb directory (one chdb
directory per process), as tests/streams/test_migrations.py does.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from domain.claims import ClaimOutcome, ClaimStatus
from domain.events import DrawOutcome, OutcomeStatus
from domain.points import PointsOutcome
from domain.visibility import Visibility
from domain.writeoffs import Writeoff, WriteoffOp, WriteoffStatus
from streams import clickhouse, report, stats
from streams.migrations import load

MINUTE_MS = 60_000
DAY_MS = 86_400_000
# Yesterday, 00:00 UTC: well inside the rollups' two years whenever the test runs.
T0 = (int(time.time() * 1000) // DAY_MS - 1) * DAY_MS
SINCE, UNTIL = T0, T0 + 10 * MINUTE_MS
BATCH = "carnival.test:0:0"


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def draw(
    tenant: str,
    n: int,
    user: str,
    status: OutcomeStatus,
    at: int,
    *,
    amount: int = 0,
    points_spent: int = 0,
    activity_id: str = "act-1",
) -> DrawOutcome:
    won = status == "won"
    return DrawOutcome(
        event_id=f"{user}:d{n}",
        tenant_id=tenant,
        activity_id=activity_id,
        user_id=user,
        request_id=f"d{n}",
        status=status,
        prize_id="p1" if won else "",
        prize_name="Prize p1" if won else "",
        prize_kind="red_envelope" if won else "",
        reason="user_limit_reached" if status == "rejected" else "",
        batch_id=BATCH,
        occurred_at=at,
        amount=amount,
        points_spent=points_spent,
    )


def claim(tenant: str, n: int, user: str, status: ClaimStatus, at: int) -> ClaimOutcome:
    issued = status == "issued"
    return ClaimOutcome(
        event_id=f"{user}:c{n}",
        tenant_id=tenant,
        template_id="tpl-1",
        user_id=user,
        request_id=f"c{n}",
        status=status,
        reason="" if issued else "sold_out",
        coupon_id=f"cp{n}" if issued else "",
        valid_from=None,
        valid_until=None,
        batch_id=BATCH,
        occurred_at=at,
        source="claim" if issued else "",
    )


def writeoff(
    tenant: str,
    partner: str,
    request: str,
    op: WriteoffOp,
    status: WriteoffStatus,
    order_cents: int,
    discount_cents: int,
    at: int,
) -> Writeoff:
    return Writeoff(
        event_id=f"{partner}:{request}",
        tenant_id=tenant,
        template_id="tpl-1",
        coupon_id=f"cp-{request}",
        user_id="u1",
        partner_id=partner,
        request_id=request,
        digest="d",
        op=op,
        status=status,
        reason="coupon_already_redeemed" if status == "rejected" else "",
        detail="",
        order_id=f"o-{request}",
        order_cents=order_cents,
        discount_cents=discount_cents,
        batch_id=BATCH,
        occurred_at=at,
    )


def signin(tenant: str, user: str, points: int, at: int) -> PointsOutcome:
    entry = {
        "key": f"signin:{at}",
        "kind": "earn",
        "amount": points,
        "balance": points,
        "at": at,
        "reason": "signin day 1",
        "source_id": "",
        "moves": [{"lot_id": f"signin:{at}", "delta": points}],
    }
    return PointsOutcome(
        event_id=f"{user}:s{at}",
        tenant_id=tenant,
        user_id=user,
        request_id=f"s{at}",
        op="signin",
        status="applied",
        reason="",
        amount=points,
        balance=points,
        movements=[entry],
        batch_id=BATCH,
        occurred_at=at,
    )


def redelivered(events: Sequence[Any]) -> list[list[Any]]:
    """The batches an at-least-once stream may deliver: everything, everything
    again in another order, and every other event a third time."""
    return [list(events), list(reversed(events)), list(events[::2])]


def deliver(client: Client, tenant: str, shift_ms: int = 0) -> None:
    """Three minutes of one tenant's traffic (T0, T0 + 1 min, T0 + 3 min, moved
    by ``shift_ms``), each event inserted two or three times."""
    m0 = T0 + shift_ms
    m1, m3 = m0 + MINUTE_MS, m0 + 3 * MINUTE_MS
    draws = [
        draw(tenant, 1, "u1", "won", m0 + 1_000, amount=500, points_spent=10),
        draw(tenant, 2, "u1", "lost", m0 + 2_000, points_spent=10),
        draw(tenant, 3, "u2", "won", m0 + 59_999, amount=300),
        draw(tenant, 4, "u3", "rejected", m0 + 3_000),
        draw(tenant, 5, "u2", "won", m1, amount=700),
        draw(tenant, 6, "u4", "lost", m1 + 5_000, points_spent=20),
        draw(tenant, 7, "u5", "won", m3 + 1, amount=100),
        draw(tenant, 8, "u9", "won", m0 + 4_000, amount=900, activity_id="act-2"),
    ]
    claims = [
        claim(tenant, 1, "u1", "issued", m0 + 1_000),
        claim(tenant, 2, "u2", "issued", m0 + 2_000),
        claim(tenant, 3, "u3", "rejected", m0 + 3_000),
        claim(tenant, 4, "u1", "issued", m1 + 1_000),
        claim(tenant, 5, "u4", "issued", m3),
    ]
    writeoffs = [
        writeoff(tenant, "pa", "r1", "redeem", "redeemed", 10_000, 1_000, m0 + 1_000),
        writeoff(tenant, "pa", "r2", "redeem", "redeemed", 5_000, 500, m0 + 2_000),
        writeoff(tenant, "pa", "r3", "reverse", "reversed", -5_000, -500, m1),
        writeoff(tenant, "pa", "r4", "redeem", "rejected", 0, 0, m1 + 1),
        writeoff(tenant, "pa", "r5", "lock", "locked", 7_000, 700, m3),
        writeoff(tenant, "pb", "r6", "redeem", "redeemed", 8_000, 800, m0 + 5_000),
    ]
    signins = [signin(tenant, "u1", 5, m0 + 500), signin(tenant, "u2", 7, m3 + 10)]
    for batch in redelivered(draws):
        clickhouse.insert_outcomes(client, batch)
    for batch in redelivered(claims):
        clickhouse.insert_claims(client, batch)
    for batch in redelivered(writeoffs):
        clickhouse.insert_writeoffs(client, batch)
    for batch in redelivered(signins):
        clickhouse.insert_points(client, batch)


# The same figures straight from the raw tables, deduplicated (FINAL collapses a
# duplicate row: both copies share the sorting key and the partition).
_MINUTE = "toUnixTimestamp(toStartOfMinute(occurred_at)) * 1000 AS m"
_RANGE = "AND m >= {since:Int64} AND m < {until:Int64} GROUP BY m ORDER BY m"
RAW_ACTIVITY = f"""
SELECT {_MINUTE},
    uniqExactIf(event_id, status != 'rejected'), uniqExactIf(event_id, status = 'won'),
    uniqExactIf(event_id, status = 'rejected'), uniqExactIf(user_id, status != 'rejected'),
    sumIf(amount, status = 'won')
FROM draw_outcomes FINAL
WHERE tenant_id = {{tenant:String}} AND activity_id = {{entity:String}} {_RANGE}
"""
RAW_TEMPLATE = f"""
SELECT {_MINUTE},
    uniqExact(event_id), uniqExactIf(event_id, status = 'issued'),
    uniqExactIf(event_id, status = 'rejected'), uniqExactIf(user_id, status = 'issued')
FROM claim_outcomes FINAL
WHERE tenant_id = {{tenant:String}} AND template_id = {{entity:String}} {_RANGE}
"""
_SETTLED = "status IN ('redeemed', 'reversed', 'partially_reversed')"
RAW_PARTNER = f"""
SELECT {_MINUTE},
    uniqExactIf(event_id, status = 'redeemed'),
    uniqExactIf(event_id, status IN ('reversed', 'partially_reversed')),
    uniqExactIf(event_id, status = 'rejected'),
    sumIf(discount_cents, {_SETTLED}), sumIf(order_cents, {_SETTLED})
FROM writeoffs FINAL
WHERE tenant_id = {{tenant:String}} AND partner_id = {{entity:String}} {_RANGE}
"""
RAW_POINTS = f"""
SELECT {_MINUTE},
    sumIf(amount, kind = 'earn'), -sumIf(amount, kind = 'spend'),
    -sumIf(amount, kind = 'expire'), -sumIf(amount, kind = 'reverse'),
    sumIf(amount, kind = 'adjust'), sum(amount), count(), uniqExact(user_id)
FROM points_movements FINAL
WHERE tenant_id = {{tenant:String}} AND {{entity:String}} = '' {_RANGE}
"""


def raw(client: Client, sql: str, tenant: str, entity: str = "") -> list[list[int]]:
    params = {"tenant": tenant, "entity": entity, "since": SINCE, "until": UNTIL}
    return [[int(v) for v in row] for row in client.query(sql, parameters=params).result_rows]


def busy_raw(client: Client, sql: str, tenant: str, entity: str = "") -> list[list[int]]:
    """The raw minutes with any figure (a zero-filled series cannot show the others)."""
    return [row for row in raw(client, sql, tenant, entity) if any(row[1:])]


def rows(series: list[dict[str, int]]) -> list[list[int]]:
    return [list(minute.values()) for minute in series]


def _busy(series: list[dict[str, int]], names: Sequence[str]) -> list[dict[str, int]]:
    """The minutes of a zero-filled series with any of ``names``, as rows of the
    raw tables' shape: ``minute`` first, then ``names`` in order."""
    return [
        {"minute": p["at"], **{n: p[n] for n in names}} for p in series if any(p[n] for n in names)
    ]


def activity_minutes(
    client: Client, tenant: str, activity_id: str, since: int, until: int
) -> list[dict[str, int]]:
    series = report.activity_series(client, Visibility(tenant), activity_id, "minute", since, until)
    return _busy(series, ("draws", "wins", "rejected", "participants", "amount_won"))


def template_minutes(
    client: Client, tenant: str, template_id: str, since: int, until: int
) -> list[dict[str, int]]:
    series = report.template_series(client, Visibility(tenant), template_id, "minute", since, until)
    return _busy(series, ("claims", "issued", "rejected", "holders"))


def partner_minutes(
    client: Client, tenant: str, partner_id: str, since: int, until: int
) -> list[dict[str, int]]:
    series = report.partner_series(client, Visibility(tenant), partner_id, "minute", since, until)
    names = ("redeemed", "reversed", "writeoffs_rejected", "discount_cents", "order_cents")
    return _busy(series, names)


def test_activity_minutes_count_each_draw_once(ch_client: Client, tenant: str) -> None:
    deliver(ch_client, tenant)
    series = activity_minutes(ch_client, tenant, "act-1", SINCE, UNTIL)
    assert series == [
        {"minute": T0, "draws": 3, "wins": 2, "rejected": 1, "participants": 2, "amount_won": 800},
        {"minute": T0 + MINUTE_MS, "draws": 2, "wins": 1, "rejected": 0, "participants": 2,
         "amount_won": 700},
        {"minute": T0 + 3 * MINUTE_MS, "draws": 1, "wins": 1, "rejected": 0, "participants": 1,
         "amount_won": 100},
    ]  # fmt: skip
    assert rows(series) == raw(ch_client, RAW_ACTIVITY, tenant, "act-1")
    assert rows(activity_minutes(ch_client, tenant, "act-2", SINCE, UNTIL)) == raw(
        ch_client, RAW_ACTIVITY, tenant, "act-2"
    )
    totals = stats.activity_stats(ch_client, tenant, "act-1")
    assert sum(m["draws"] for m in series) == totals["draws"]
    assert sum(m["amount_won"] for m in series) == totals["amount_won"]


def test_template_minutes_count_each_claim_once(ch_client: Client, tenant: str) -> None:
    deliver(ch_client, tenant)
    series = template_minutes(ch_client, tenant, "tpl-1", SINCE, UNTIL)
    assert series == [
        {"minute": T0, "claims": 3, "issued": 2, "rejected": 1, "holders": 2},
        {"minute": T0 + MINUTE_MS, "claims": 1, "issued": 1, "rejected": 0, "holders": 1},
        {"minute": T0 + 3 * MINUTE_MS, "claims": 1, "issued": 1, "rejected": 0, "holders": 1},
    ]
    assert rows(series) == raw(ch_client, RAW_TEMPLATE, tenant, "tpl-1")
    assert (
        sum(m["issued"] for m in series)
        == stats.template_stats(ch_client, tenant, "tpl-1")["issued"]
    )


def test_partner_minutes_sum_each_writeoff_once(ch_client: Client, tenant: str) -> None:
    deliver(ch_client, tenant)
    pa = partner_minutes(ch_client, tenant, "pa", SINCE, UNTIL)
    assert pa == [
        {"minute": T0, "redeemed": 2, "reversed": 0, "writeoffs_rejected": 0,
         "discount_cents": 1_500, "order_cents": 15_000},
        {"minute": T0 + MINUTE_MS, "redeemed": 0, "reversed": 1, "writeoffs_rejected": 1,
         "discount_cents": -500, "order_cents": -5_000},
    ]  # fmt: skip
    # (minute 3 held only a lock: it moves no money and is no redemption)
    pb = partner_minutes(ch_client, tenant, "pb", SINCE, UNTIL)
    assert rows(pa) == busy_raw(ch_client, RAW_PARTNER, tenant, "pa")
    assert rows(pb) == busy_raw(ch_client, RAW_PARTNER, tenant, "pb")
    template = stats.template_stats(ch_client, tenant, "tpl-1")
    assert sum(m["discount_cents"] for m in pa + pb) == template["discount_cents"] == 1_800
    assert sum(m["order_cents"] for m in pa + pb) == template["order_cents"]


def test_points_minutes_sum_each_movement_once(ch_client: Client, tenant: str) -> None:
    deliver(ch_client, tenant)
    series = stats.points_minutes(ch_client, tenant, SINCE, UNTIL)
    assert [(m["minute"], m["earned"], m["spent"], m["net"], m["accounts"]) for m in series] == [
        (T0, 5, 20, -15, 1),
        (T0 + MINUTE_MS, 0, 20, -20, 1),
        (T0 + 3 * MINUTE_MS, 7, 0, 7, 1),
    ]
    assert rows(series) == raw(ch_client, RAW_POINTS, tenant)
    assert sum(m["net"] for m in series) == stats.points_totals(ch_client, tenant)["liability"]


def test_series_are_scoped_by_tenant_and_range(ch_client: Client, tenant: str) -> None:
    deliver(ch_client, tenant)
    other = f"{tenant}-other"
    assert activity_minutes(ch_client, other, "act-1", SINCE, UNTIL) == []
    assert stats.points_minutes(ch_client, other, SINCE, UNTIL) == []
    # [since, until): the minute starting at until is out
    inner = template_minutes(ch_client, tenant, "tpl-1", T0 + MINUTE_MS, T0 + 3 * MINUTE_MS)
    assert [m["minute"] for m in inner] == [T0 + MINUTE_MS]
    with pytest.raises(ValueError, match="aligned"):
        template_minutes(ch_client, tenant, "tpl-1", T0 + 1, T0 + 3 * MINUTE_MS)
    assert partner_minutes(ch_client, tenant, "pa", UNTIL, UNTIL + DAY_MS) == []


def _engine(client: Client) -> dict[str, str]:
    return dict(
        client.query(
            "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
        ).result_rows
    )


def test_rollups_are_aggregating_and_raw_events_expire(ch_client: Client) -> None:
    engines = _engine(ch_client)
    for table in ("draw_outcomes", "claim_outcomes", "writeoffs", "points_movements"):
        assert "TTL toDateTime(occurred_at) + toIntervalDay(90)" in engines[table], table
        assert "ttl_only_drop_parts = 1" in engines[table], table
    for table in ("draw_minutes", "claim_minutes", "writeoff_minutes", "points_minutes"):
        assert engines[table].startswith("AggregatingMergeTree"), table
        assert "TTL minute + toIntervalYear(2)" in engines[table], table
    for table in ("draw_totals", "claim_totals", "writeoff_totals", "points_totals"):
        assert engines[table].startswith("AggregatingMergeTree"), table
        assert "TTL" not in engines[table], f"{table} keeps every entity's totals"


def _in_own_process(script: str, tmp_path: Path) -> dict[str, Any]:
    """Run ``script`` on a chdb directory of its own (one per process), from the
    repo root, and return the JSON it prints."""
    out = subprocess.run(
        [sys.executable, "-c", script, f"chdb://{tmp_path / 'clickhouse'}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr
    return orjson.loads(out.stdout)


# In its own process, where TTL merges run (the session client stops them): the
# same events, delivered twice, once yesterday and once 200 days ago. The raw
# tables keep yesterday's only; the totals and the series keep both.
_EXPIRY = """
import sys, orjson
from streams import clickhouse, migrations, stats
from tests.streams.test_rollups import DAY_MS, SINCE, UNTIL, activity_minutes, deliver
client = clickhouse.connect(sys.argv[1])
migrations.migrate(client)
deliver(client, "t-now")
deliver(client, "t-old", shift_ms=-200 * DAY_MS)
client.command("OPTIMIZE TABLE draw_outcomes FINAL")
raw = dict(client.query(
    "SELECT tenant_id, count() FROM draw_outcomes GROUP BY tenant_id"
).result_rows)
old = (SINCE - 200 * DAY_MS, UNTIL - 200 * DAY_MS)
out = {
    "raw": raw,
    "totals": [stats.activity_stats(client, t, "act-1") for t in ("t-now", "t-old")],
    "series": [
        activity_minutes(client, "t-now", "act-1", SINCE, UNTIL),
        activity_minutes(client, "t-old", "act-1", *old),
    ],
    "points": [stats.points_totals(client, t) for t in ("t-now", "t-old")],
}
print(orjson.dumps(out).decode())
"""


def test_raw_events_expire_and_their_figures_stay(tmp_path: Path) -> None:
    result = _in_own_process(_EXPIRY, tmp_path)
    assert result["raw"].get("t-old", 0) == 0 and result["raw"]["t-now"] > 0
    now, old = result["totals"]
    assert now["draws"] > 0 and now["participants"] > 0
    strip = ("tenant_id", "last_event_at")
    assert {k: v for k, v in old.items() if k not in strip} == {
        k: v for k, v in now.items() if k not in strip
    }
    for series in result["series"]:
        assert [m["draws"] for m in series] == [3, 2, 1]
    points_now, points_old = result["points"]
    assert points_old["liability"] == points_now["liability"] != 0


# In its own process: events arrive at 008 (no rollups), 009 rolls them up from
# the raw tables, and down to 008 and up again drops and rebuilds the same.
_DOWN_AND_UP = """
import sys, orjson
from streams import clickhouse, migrations, stats
from tests.streams.test_rollups import SINCE, UNTIL, activity_minutes, deliver
client = clickhouse.connect(sys.argv[1])
def state():
    engines = dict(client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
    ).result_rows)
    series = None
    if "draw_minutes" in engines:
        series = [
            activity_minutes(client, "t-1", "act-1", SINCE, UNTIL),
            stats.points_minutes(client, "t-1", SINCE, UNTIL),
        ]
    return {"engines": engines, "series": series}
client.command("SYSTEM STOP TTL MERGES")  # keeps what the backfills read
migrations.migrate(client, to=8)
deliver(client, "t-1")
out = {"at8": state(), "up": migrations.migrate(client)}
out["latest"] = state()
out["down"] = migrations.migrate(client, to=8)
out["down_again"] = state()
out["up_again"] = migrations.migrate(client)
out["rebuilt"] = state()
print(orjson.dumps(out).decode())
"""


def test_down_to_008_and_up_again(tmp_path: Path) -> None:
    result = _in_own_process(_DOWN_AND_UP, tmp_path)
    later = [m.file for m in load() if m.version > 8]
    assert later[0] == "009_minute_rollups.sql"
    assert result["up"] == [f"up {name}" for name in later]
    assert result["down"] == [f"down {name}" for name in reversed(later)]
    for at8 in (result["at8"], result["down_again"]):
        assert at8["series"] is None
        assert not any("minutes" in name for name in at8["engines"])
        assert not any("TTL" in engine for engine in at8["engines"].values())
    # the backfill rolled up what arrived before 009, twice, exactly
    assert [m["draws"] for m in result["latest"]["series"][0]] == [3, 2, 1]
    assert result["rebuilt"] == result["latest"]
