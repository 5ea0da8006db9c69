"""The durable delay queue on a real Redis: stored once, leased, changed only as
read, and trimmed of what is finished (never of what is still due)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from ledger.outbox import Entry, Outbox


@pytest.fixture
async def outbox(redis_url: str) -> AsyncIterator[Outbox]:
    client = aioredis.Redis.from_url(redis_url)
    yield Outbox(client, f"test-{uuid.uuid4().hex[:8]}")
    await client.aclose()


async def test_an_entry_is_stored_once_leased_and_replaced_only_as_read(outbox: Outbox) -> None:
    entries = [Entry(f"e{i}", f'{{"n":{i}}}', 1000 * (i + 1), "g") for i in range(3)]
    assert await outbox.enqueue(entries) == 3
    assert await outbox.enqueue(entries) == 0, "enqueued again (an event replayed): no change"
    taken = await outbox.take_due(now_ms=2500, lease_ms=10_000, limit=10)
    assert [i for i, _ in taken] == ["e0", "e1"], "due by their time, oldest first"
    assert await outbox.take_due(now_ms=2500, lease_ms=10_000, limit=10) == [], "leased"
    assert not await outbox.replace("e0", '{"n":9}', '{"n":0,"done":1}', "done", 2600)
    assert await outbox.replace("e0", '{"n":0}', '{"n":0,"done":1}', "done", 2600)
    assert await outbox.replace("e1", '{"n":1}', '{"n":1,"dead":1}', "dead", 2600)
    again = await outbox.take_due(now_ms=13_000, lease_ms=10_000, limit=10)
    assert [i for i, _ in again] == ["e2"], "finished ones are never due again"
    assert await outbox.redis.zrange(outbox.dead, 0, -1) == [b"e1"]


async def test_trim_forgets_finished_entries_and_keeps_what_is_due(outbox: Outbox) -> None:
    entries = [Entry(f"e{i}", "{}", 1000 + i, f"g{i % 2}") for i in range(1200)]
    await outbox.enqueue(entries)
    taken = await outbox.take_due(now_ms=5000, lease_ms=1, limit=1200)
    for id_, raw in taken[:1100]:
        await outbox.replace(id_, raw, '{"done":1}', "dead" if id_.endswith("7") else "done", 1)
    assert await outbox.trim(created_before_ms=10_000, step=100) == 1100
    left = await outbox.page("g0", 0, 1000) + await outbox.page("g1", 0, 1000)
    assert len(left) == 100, "the 100 still due are kept, whatever their age"
    assert await outbox.redis.hlen(outbox.records) == 100
    assert await outbox.redis.zcard(outbox.dead) == 0
    assert await outbox.trim(created_before_ms=10_000) == 0
