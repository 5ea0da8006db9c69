"""migrate / insert / stats against an embedded chdb engine (no Kafka).

chdb allows one data directory per process, so the whole module shares one
client on one tmp dir and every test uses its own tenant id.
"""

from __future__ import annotations

import uuid

import pytest
from clickhouse_connect.driver.client import Client

from domain.events import DrawOutcome, OutcomeStatus
from streams import clickhouse, migrations, stats


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def outcome(
    tenant_id: str,
    n: int,
    *,
    activity_id: str = "act-1",
    user_id: str | None = None,
    status: OutcomeStatus = "won",
    prize_id: str = "p1",
    occurred_at: int = 1_760_000_000_123,
) -> DrawOutcome:
    user = user_id or f"u{n}"
    won = status == "won"
    return DrawOutcome(
        event_id=f"{user}:r{n}",
        tenant_id=tenant_id,
        activity_id=activity_id,
        user_id=user,
        request_id=f"r{n}",
        status=status,
        prize_id=prize_id if status != "rejected" else "",
        prize_name=f"Prize {prize_id}" if won else "",
        prize_kind="coupon" if won else "",
        reason="" if status != "rejected" else "user_limit_reached",
        batch_id="carnival.draw.requests:0:0",
        occurred_at=occurred_at + n,
    )


def test_migrate_is_idempotent(ch_client: Client) -> None:
    assert migrations.migrate(ch_client) == [], "the fixture applied everything"
    assert all(applied for _, applied in migrations.status(ch_client))
    engine = ch_client.command(
        "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = {n:String}",
        parameters={"n": "draw_outcomes"},
    )
    assert engine == "ReplacingMergeTree"


def test_insert_and_stats(ch_client: Client, tenant: str) -> None:
    rows = [
        outcome(tenant, 1, prize_id="p1"),
        outcome(tenant, 2, prize_id="p1"),
        outcome(tenant, 3, prize_id="p2"),
        outcome(tenant, 4, status="lost", prize_id="luck"),
        outcome(tenant, 5, status="rejected"),
        # same user twice: one more draw, not one more participant
        outcome(tenant, 6, user_id="u1", status="lost", prize_id="luck"),
    ]
    assert clickhouse.insert_outcomes(ch_client, rows) == 6
    assert clickhouse.insert_outcomes(ch_client, []) == 0

    s = stats.activity_stats(ch_client, tenant, "act-1")
    assert s["outcomes"] == 6
    assert s["draws"] == 5  # rejected requests are not draws
    assert s["participants"] == 4  # the user who was only rejected did not take part
    assert (s["won"], s["lost"], s["rejected"]) == (3, 2, 1)
    assert s["prizes"] == [
        {"prize_id": "p1", "prize_name": "Prize p1", "wins": 2},
        {"prize_id": "p2", "prize_name": "Prize p2", "wins": 1},
    ]
    # occurred_at round-trips exactly, in epoch ms (DateTime64(3, 'UTC')).
    assert s["last_event_at"] == max(o.occurred_at for o in rows)
    assert stats.tenant_event_count(ch_client, tenant) == 6


def test_duplicate_event_counted_once(ch_client: Client, tenant: str) -> None:
    # At-least-once delivery: the same event inserted in two batches and twice
    # within a batch must count once, before any background merge.
    dup = outcome(tenant, 1)
    # Merges stopped: a background merge may otherwise collapse the copies first.
    ch_client.command("SYSTEM STOP MERGES draw_outcomes")
    try:
        clickhouse.insert_outcomes(ch_client, [dup, dup, outcome(tenant, 2, status="lost")])
        clickhouse.insert_outcomes(ch_client, [dup])
        raw_rows = ch_client.command(
            "SELECT count() FROM draw_outcomes WHERE tenant_id = {t:String}",
            parameters={"t": tenant},
        )
    finally:
        ch_client.command("SYSTEM START MERGES draw_outcomes")
    assert raw_rows >= 3  # duplicates are physically there until a merge ...
    s = stats.activity_stats(ch_client, tenant, "act-1")
    assert (s["outcomes"], s["won"], s["lost"], s["participants"]) == (2, 1, 1, 2)
    assert s["prizes"] == [{"prize_id": "p1", "prize_name": "Prize p1", "wins": 1}]
    assert stats.tenant_event_count(ch_client, tenant) == 2

    # ... and collapse on merge (ReplacingMergeTree by the sorting key).
    ch_client.command("OPTIMIZE TABLE draw_outcomes FINAL")
    raw_rows = ch_client.command(
        "SELECT count() FROM draw_outcomes WHERE tenant_id = {t:String}", parameters={"t": tenant}
    )
    assert raw_rows == 2
    assert stats.activity_stats(ch_client, tenant, "act-1")["outcomes"] == 2


def test_tenant_isolation(ch_client: Client, tenant: str) -> None:
    other = f"{tenant}-other"
    clickhouse.insert_outcomes(ch_client, [outcome(tenant, 1), outcome(tenant, 2)])
    # Same activity id and even the same event ids under another tenant.
    clickhouse.insert_outcomes(ch_client, [outcome(other, n) for n in range(1, 6)])

    assert stats.activity_stats(ch_client, tenant, "act-1")["outcomes"] == 2
    assert stats.activity_stats(ch_client, other, "act-1")["outcomes"] == 5
    assert stats.tenant_event_count(ch_client, tenant) == 2


def test_empty_and_hostile_filters(ch_client: Client, tenant: str) -> None:
    clickhouse.insert_outcomes(ch_client, [outcome(tenant, 1)])
    empty = stats.activity_stats(ch_client, tenant, "no-such-activity")
    assert empty["outcomes"] == 0
    assert empty["prizes"] == []
    assert empty["last_event_at"] is None
    # Bound parameters: quotes are data, not SQL.
    assert stats.activity_stats(ch_client, f"{tenant}' OR '1'='1", "act-1")["outcomes"] == 0
    assert stats.tenant_event_count(ch_client, "' OR 1=1 --") == 0


def test_ping(ch_client: Client) -> None:
    assert clickhouse.ping(ch_client) is True
