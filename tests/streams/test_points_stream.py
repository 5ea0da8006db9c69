"""The points stream: points, draw and claim outcomes -> points_movements -> the
points figures. Decoding and flattening are pure; the figures run on an embedded
chdb engine (no Kafka), with duplicated deliveries that must count once; and once
end to end, through Kafka and the worker's agents to /internal/stats/points.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import test_streams_e2e as e2e
from aiokafka import AIOKafkaProducer
from clickhouse_connect.driver.client import Client

from domain import points
from domain.claims import ClaimOutcome
from domain.events import DrawOutcome, SchemaError
from domain.points import PointsOutcome
from domain.topics import CLAIM_OUTCOMES, DRAW_OUTCOMES, POINTS_OUTCOMES, pack
from streams import clickhouse, movements, stats
from streams.decode import Rejected, decode_batch, decode_claim, decode_outcome, decode_points

DAY1 = 1_760_000_000_000  # 2025-10-09 08:53:20 UTC
DAY2 = DAY1 + 86_400_000


def entry(
    key: str, kind: str, amount: int, balance: int, at: int, reason: str, source_id: str = ""
) -> dict[str, Any]:
    """A ledger entry as a points outcome carries it (Entry.model_dump())."""
    return {
        "key": key,
        "kind": kind,
        "amount": amount,
        "balance": balance,
        "at": at,
        "reason": reason,
        "source_id": source_id,
        "moves": [{"lot_id": key, "delta": amount}],
    }


def points_outcome(
    tenant_id: str, user_id: str, request_id: str, op: str, *entries: dict[str, Any]
) -> PointsOutcome:
    return PointsOutcome(
        event_id=f"{user_id}:{request_id}",
        tenant_id=tenant_id,
        user_id=user_id,
        request_id=request_id,
        op=op,
        status="applied" if entries else "rejected",
        reason="" if entries else points.ALREADY_SIGNED_IN,
        amount=sum(e["amount"] for e in entries),
        balance=entries[-1]["balance"] if entries else 0,
        movements=list(entries),
        batch_id="carnival.requests:0:1",
        occurred_at=entries[-1]["at"] if entries else DAY1,
    )


def draw(
    tenant_id: str, user_id: str, request_id: str, at: int, spent: int = 0, earned: int = 0
) -> DrawOutcome:
    return DrawOutcome(
        event_id=f"{user_id}:{request_id}",
        tenant_id=tenant_id,
        activity_id="act-1",
        user_id=user_id,
        request_id=request_id,
        status="won" if earned else "lost",
        prize_id="pts" if earned else "luck",
        prize_name="Points" if earned else "",
        prize_kind="points" if earned else "",
        reason="",
        batch_id="carnival.requests:0:2",
        occurred_at=at,
        amount=earned,
        points_spent=spent,
        points_earned=earned,
    )


def claim(tenant_id: str, user_id: str, request_id: str, at: int, spent: int = 0) -> ClaimOutcome:
    return ClaimOutcome(
        event_id=f"{user_id}:{request_id}",
        tenant_id=tenant_id,
        template_id="tpl-1",
        user_id=user_id,
        request_id=request_id,
        status="issued",
        reason="",
        coupon_id=f"c-{request_id}",
        valid_from=None,
        valid_until=None,
        batch_id="carnival.requests:0:3",
        occurred_at=at,
        source="exchange" if spent else "claim",
        points_spent=spent,
    )


# -- decoding and flattening (pure) -------------------------------------------


def test_real_ledger_entries_decode_and_flatten() -> None:
    # The entries as domain.points writes them, serialised as the actor does.
    policy = points.ExpiryPolicy(kind="days_after_earning", days=1)
    account, earned = points.earn(points.Account(), "order:o1", 100, DAY1, policy, "order", "o1")
    account, spent = points.spend(account, "spend-1", 30, DAY1 + 1, "draw", "act-1")
    account, expired = points.expire_due(account, DAY2 * 2)
    entries = [earned, spent, *expired]
    raw = PointsOutcome.encoder()(
        "u1:r1", "t1", "u1", "r1", "order", "applied", "", -0, account.balance,
        [e.model_dump() for e in entries], "b", DAY1,
    )  # fmt: skip
    [outcome] = decode_batch([pack([raw])], decode_points)
    rows = movements.flatten([outcome])
    assert [(r.key, r.kind, r.amount, r.balance) for r in rows] == [
        ("order:o1", "earn", 100, 100),
        ("spend-1", "spend", -30, 70),
        ("expire:order:o1", "expire", -70, 0),
    ]
    assert [r.event_id for r in rows] == [
        "t1:u1:order:o1",
        "t1:u1:spend-1",
        "t1:u1:expire:order:o1",
    ]
    assert {(r.origin, r.outcome_id, r.tenant_id, r.user_id) for r in rows} == {
        ("points", "u1:r1", "t1", "u1")
    }
    assert rows[2].occurred_at == DAY2 * 2, "a movement is dated by its entry"


def test_draw_and_claim_points_become_their_ledger_entries() -> None:
    rows = movements.flatten([draw("t1", "u1", "r1", DAY1, spent=20, earned=50)])
    assert [(r.event_id, r.kind, r.amount, r.reason, r.source_id, r.origin) for r in rows] == [
        ("t1:u1:draw:act-1:r1", "spend", -20, "draw", "act-1", "draw"),
        ("t1:u1:prize:act-1:r1", "earn", 50, "prize", "act-1", "draw"),
    ]
    assert {(r.balance, r.occurred_at, r.outcome_id) for r in rows} == {(0, DAY1, "u1:r1")}
    [row] = movements.flatten([claim("t1", "u2", "r9", DAY2, spent=30)])
    assert (row.event_id, row.kind, row.amount, row.reason, row.source_id, row.origin) == (
        "t1:u2:exchange:tpl-1:r9",
        "spend",
        -30,
        "exchange",
        "tpl-1",
        "claim",
    )
    # No points moved, no movement.
    assert movements.flatten([draw("t1", "u1", "r2", DAY1), claim("t1", "u1", "r3", DAY1)]) == []
    assert movements.flatten([points_outcome("t1", "u1", "r4", "signin")]) == []


def _variant(outcome: PointsOutcome, **changes: Any) -> dict[str, Any]:
    body = orjson.loads(outcome.dumps())
    body.update(changes)
    return body


GOOD = points_outcome("t1", "u1", "s1", "signin", entry("s1", "earn", 5, 5, DAY1, "signin day 1"))
GOOD_ENTRY = GOOD.movements[0]


@pytest.mark.parametrize(
    "body",
    [
        [GOOD.to_dict()],
        _variant(GOOD, type="draw.outcome"),
        _variant(GOOD, user_id=""),
        _variant(GOOD, tenant_id=None),
        _variant(GOOD, status="maybe"),
        _variant(GOOD, status="rejected"),  # a rejected outcome that moved points
        _variant(GOOD, movements={"s1": GOOD_ENTRY}),
        _variant(GOOD, balance="5"),
        _variant(GOOD, movements=["s1"]),
        _variant(GOOD, movements=[{**GOOD_ENTRY, "kind": "gift"}]),
        _variant(GOOD, movements=[{**GOOD_ENTRY, "key": ""}]),
        _variant(GOOD, movements=[{**GOOD_ENTRY, "amount": "5"}]),
        _variant(GOOD, movements=[{**GOOD_ENTRY, "amount": 2**63}]),
        _variant(GOOD, movements=[{**GOOD_ENTRY, "balance": True}]),
        _variant(GOOD, movements=[{**GOOD_ENTRY, "at": 1.5}]),
        _variant(GOOD, movements=[{k: v for k, v in GOOD_ENTRY.items() if k != "reason"}]),
    ],
)
def test_bad_points_outcomes_are_rejected(body: Any) -> None:
    with pytest.raises(SchemaError):
        decode_points(body)


@pytest.mark.parametrize("field", ["points_spent", "points_earned"])
@pytest.mark.parametrize("value", [-1, "10", True, points.MAX_AMOUNT + 1])
def test_bad_draw_points_are_rejected(field: str, value: Any) -> None:
    body = draw("t1", "u1", "r1", DAY1).to_dict() | {field: value}
    with pytest.raises(SchemaError, match=field):
        decode_outcome(body)


@pytest.mark.parametrize("value", [-1, None, 1.5])
def test_bad_claim_points_are_rejected(value: Any) -> None:
    with pytest.raises(SchemaError, match="points_spent"):
        decode_claim(claim("t1", "u1", "r1", DAY1).to_dict() | {"points_spent": value})


def test_events_of_before_the_points_fields_still_decode() -> None:
    old_draw = {
        k: v for k, v in draw("t1", "u1", "r1", DAY1).to_dict().items() if "points" not in k
    }
    old_claim = {
        k: v for k, v in claim("t1", "u1", "r1", DAY1).to_dict().items() if "points" not in k
    }
    assert movements.flatten([decode_outcome(old_draw), decode_claim(old_claim)]) == []


def test_a_batch_keeps_the_good_and_dead_letters_the_bad() -> None:
    rejected_signin = points_outcome("t1", "u2", "s2", "signin")
    bad_entry = orjson.dumps(_variant(GOOD, movements=[{**GOOD_ENTRY, "kind": "gift"}]))
    rejected: list[Rejected] = []
    out = decode_batch(
        [pack([GOOD.dumps(), bad_entry, rejected_signin.dumps()]), b"[junk"],
        decode_points,
        rejected,
    )
    assert out == [GOOD, rejected_signin]
    assert [r.raw for r in rejected] == [bad_entry, b"[junk"]
    assert rejected[0].reason == "bad event: unknown movement kind 'gift'"
    assert rejected[1].reason.startswith("bad record: not JSON")
    assert len(movements.flatten(out)) == 1


# -- into ClickHouse and out through the named queries (embedded chdb) --------


@pytest.fixture(scope="module", autouse=True)
def no_merges(ch_client: Client) -> Iterator[None]:
    # No background merges: the figures must be exact with every duplicate row
    # still there, as right after a redelivery (test_duplicates_collapse_on_merge
    # merges explicitly).
    ch_client.command("SYSTEM STOP MERGES points_movements")
    yield
    ch_client.command("SYSTEM START MERGES points_movements")


def deliver(client: Client, tenant: str) -> None:
    """Two days of one tenant's points, every kind and origin, with redeliveries."""
    s1 = points_outcome(
        tenant, "u1", "s1", "signin", entry("s1", "earn", 10, 10, DAY1, "signin day 1")
    )
    order = points_outcome(
        tenant, "u1", "order:o1", "order",
        entry("order:o1", "earn", 100, 110, DAY1 + 5, "order", "o1"),
    )  # fmt: skip
    refund = points_outcome(
        tenant, "u1", "refund:o1", "refund",
        entry("refund:o1", "reverse", -60, 50, DAY2, "refund", "o1"),
    )  # fmt: skip
    expiry = points_outcome(
        tenant, "u1", "exp", "expire",
        entry("expire:s1", "expire", -10, 40, DAY2 + 9, "expired", "s1"),
    )  # fmt: skip
    adjust = points_outcome(
        tenant, "u2", "adj", "adjust",
        entry("adj1", "adjust", 40, 40, DAY1 + 7, "goodwill", "operator"),
        entry("adj2", "adjust", -5, 35, DAY2 + 1, "correction", "operator"),
    )  # fmt: skip
    refused = points_outcome(tenant, "u2", "s9", "signin")
    assert clickhouse.insert_points(client, [s1, order, order, refused, adjust]) == 5
    assert clickhouse.insert_points(client, [order, refund, expiry, s1]) == 4

    drawn = draw(tenant, "u1", "r1", DAY1 + 3, spent=20, earned=50)
    lost = draw(tenant, "u2", "r2", DAY2 + 3, spent=20)
    free = draw(tenant, "u2", "r3", DAY2 + 4)
    assert clickhouse.insert_outcomes(client, [drawn, lost, free, drawn]) == 4
    assert clickhouse.insert_outcomes(client, [drawn]) == 1

    exchanged = claim(tenant, "u2", "r9", DAY2 + 5, spent=30)
    plain = claim(tenant, "u1", "r8", DAY2 + 6)
    assert clickhouse.insert_claims(client, [exchanged, plain]) == 2
    assert clickhouse.insert_claims(client, [exchanged]) == 1


@pytest.fixture(scope="module")
def tenant(ch_client: Client) -> str:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    deliver(ch_client, tenant)
    # The same ids under another tenant: none of it may show up in the first's figures.
    deliver(ch_client, f"{tenant}-other")
    return tenant


def test_totals_count_each_movement_once(ch_client: Client, tenant: str) -> None:
    raw = ch_client.command(
        "SELECT count() FROM points_movements WHERE tenant_id = {t:String}",
        parameters={"t": tenant},
    )
    # 10 movements, 5 of them delivered again in a later batch (a duplicate within
    # one INSERT collapses as it is written: optimize_on_insert).
    assert raw == 15, "the redeliveries are rows until a merge"
    assert stats.points_totals(ch_client, tenant) == {
        "tenant_id": tenant,
        "earned": 10 + 100 + 50,
        "spent": 20 + 20 + 30,
        "expired": 10,
        "reversed": 60,
        "adjusted": 40 - 5,
        "liability": 160 - 70 - 10 - 60 + 35,
        "movements": 10,
        "accounts": 2,
        "last_event_at": DAY2 + 9,
    }


def test_figures_per_day(ch_client: Client, tenant: str) -> None:
    assert stats.points_by_day(ch_client, tenant) == [
        {
            "day": "2025-10-09",
            "earned": 160,
            "spent": 20,
            "expired": 0,
            "reversed": 0,
            "adjusted": 40,
            "net": 180,
            "movements": 5,
        },
        {
            "day": "2025-10-10",
            "earned": 0,
            "spent": 50,
            "expired": 10,
            "reversed": 60,
            "adjusted": -5,
            "net": -125,
            "movements": 5,
        },
    ]


def test_figures_per_reason(ch_client: Client, tenant: str) -> None:
    by_reason = {r.pop("reason"): r for r in stats.points_by_reason(ch_client, tenant)}
    nets = {reason: (r["net"], r["movements"]) for reason, r in by_reason.items()}
    assert nets == {
        "correction": (-5, 1),
        "draw": (-40, 2),
        "exchange": (-30, 1),
        "expired": (-10, 1),
        "goodwill": (40, 1),
        "order": (100, 1),
        "prize": (50, 1),
        "refund": (-60, 1),
        "signin day 1": (10, 1),
    }
    assert list(by_reason) == sorted(by_reason)
    assert (by_reason["draw"]["spent"], by_reason["refund"]["reversed"]) == (40, 60)
    assert (by_reason["expired"]["expired"], by_reason["prize"]["earned"]) == (10, 50)


def test_rows_keep_balance_and_origin(ch_client: Client, tenant: str) -> None:
    rows = ch_client.query(
        "SELECT key, origin, balance, source_id FROM points_movements FINAL "
        "WHERE tenant_id = {t:String} AND user_id = 'u1' ORDER BY occurred_at",
        parameters={"t": tenant},
    ).result_rows
    assert rows == [
        ("s1", "points", 10, ""),
        ("draw:act-1:r1", "draw", 0, "act-1"),
        ("prize:act-1:r1", "draw", 0, "act-1"),
        ("order:o1", "points", 110, "o1"),
        ("refund:o1", "points", 50, "o1"),
        ("expire:s1", "points", 40, "s1"),
    ]


def test_the_outcome_tables_still_take_outcomes_with_points(ch_client: Client, tenant: str) -> None:
    assert stats.activity_stats(ch_client, tenant, "act-1")["outcomes"] == 3
    assert stats.template_stats(ch_client, tenant, "tpl-1")["issued"] == 2


def test_stats_section_and_an_unknown_tenant(ch_client: Client, tenant: str) -> None:
    section = stats.points_stats(ch_client, tenant)
    assert section["liability"] == 55
    assert [d["day"] for d in section["by_day"]] == ["2025-10-09", "2025-10-10"]
    assert len(section["by_reason"]) == 9
    empty = stats.points_stats(ch_client, "' OR 1=1 --")
    assert (empty["liability"], empty["movements"], empty["last_event_at"]) == (0, 0, None)
    assert (empty["by_day"], empty["by_reason"]) == ([], [])


def test_duplicates_collapse_on_merge(ch_client: Client, tenant: str) -> None:
    # Last in the module: merging changes what the other tests saw before it.
    ch_client.command("SYSTEM START MERGES points_movements")
    ch_client.command("OPTIMIZE TABLE points_movements FINAL")
    raw = ch_client.command(
        "SELECT count() FROM points_movements WHERE tenant_id = {t:String}",
        parameters={"t": tenant},
    )
    assert raw == 10
    assert stats.points_totals(ch_client, tenant)["liability"] == 55


# -- end to end: Kafka -> the worker's agents -> /internal/stats/points --------

# The real worker on the session Kafka, as tests/streams/test_streams_e2e.py runs it.
worker = e2e.worker


@pytest.mark.servers
async def test_points_reach_the_stats_view(worker: e2e.Worker, kafka_bootstrap: str) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    url = f"{worker.base_url}/internal/stats/points"
    signin = points_outcome(
        tenant, "u1", "s1", "signin", entry("s1", "earn", 10, 10, DAY1, "signin day 1")
    )
    order = points_outcome(
        tenant, "u1", "order:o1", "order", entry("order:o1", "earn", 100, 110, DAY1, "order")
    )
    refused = points_outcome(tenant, "u2", "s9", "signin")
    bad = orjson.dumps(_variant(order, movements=[{**order.movements[0], "kind": "gift"}]))
    async with (
        httpx.AsyncClient(timeout=5.0) as http,
        AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=0) as prod,
    ):

        async def figures() -> dict[str, Any]:
            r = await http.get(url, params={"tenant_id": tenant})
            r.raise_for_status()
            return r.json()

        async def health() -> int:
            return (await http.get(f"{worker.base_url}/internal/health")).status_code

        await e2e.wait_for("health", health, lambda s: s == 200, worker, e2e.STARTUP_TIMEOUT_S)
        assert (await http.get(url)).status_code == 400
        # Each movement once more in a later record, and the draw and the exchange twice.
        await prod.send(POINTS_OUTCOMES.name, pack([signin.dumps(), refused.dumps(), bad]))
        await prod.send(POINTS_OUTCOMES.name, pack([order.dumps(), signin.dumps()]))
        drawn = draw(tenant, "u1", "r1", DAY2, spent=20, earned=50).dumps()
        await prod.send(DRAW_OUTCOMES.name, pack([drawn, drawn]), key=b"act-1")
        exchanged = claim(tenant, "u2", "r9", DAY2, spent=30).dumps()
        await prod.send(CLAIM_OUTCOMES.name, pack([exchanged]), key=b"tpl-1")
        await prod.send(CLAIM_OUTCOMES.name, pack([exchanged]), key=b"tpl-1")
        await prod.flush()
        s = await e2e.wait_for(
            "points", figures, lambda s: s["movements"] == 5, worker, e2e.STARTUP_TIMEOUT_S
        )

    assert (s["earned"], s["spent"], s["expired"], s["liability"]) == (160, 50, 0, 110)
    assert s["accounts"] == 2
    assert [(d["day"], d["net"]) for d in s["by_day"]] == [("2025-10-09", 110), ("2025-10-10", 0)]
    letters = await e2e.dead_letters(kafka_bootstrap, {bad.decode()})
    assert [(x["topic"], x["reason"]) for x in letters] == [
        (POINTS_OUTCOMES.name, "bad event: unknown movement kind 'gift'")
    ]
    assert "Traceback" not in worker.log_tail()
