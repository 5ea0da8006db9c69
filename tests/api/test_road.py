"""The api's end of the road on a real Kafka: requests packed per owner, replies routed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from api.road import Road
from domain.road import CLAIM, COUPON, DRAW, QUOTA, WRITEOFF, Kind, owner_key
from domain.topics import COUNT_HEADER, REPLIES, REQUESTS, pack


@pytest.fixture
async def road(kafka_bootstrap: str) -> AsyncIterator[Road]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=1)
    await producer.start()
    road = Road(producer, kafka_bootstrap)
    await road.start(set(range(REPLIES.partitions)))
    try:
        yield road
    finally:
        await road.stop()
        await producer.stop()


async def _records_for(bootstrap: str, key: bytes, expected: int) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(REQUESTS.name, p) for p in range(REQUESTS.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        found: list = []
        async with asyncio.timeout(30):
            while sum(len(orjson.loads(r.value)["rows"]) for r in found) < expected:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    found += [r for r in records if r.key == key]
        return found
    finally:
        await consumer.stop()


async def test_requests_of_one_turn_share_a_record_and_replies_find_their_waiters(
    road: Road, kafka_bootstrap: str
) -> None:
    owner = f"a{uuid.uuid4().hex[:8]}"
    asks = [
        asyncio.ensure_future(road.ask(DRAW, "t1", owner, f"u{i}", "r1", timeout_s=20))
        for i in range(50)
    ]
    key = owner_key(DRAW, "t1", owner).encode()
    (record,) = await _records_for(kafka_bootstrap, key, expected=50)
    assert dict(record.headers)[COUNT_HEADER] == b"50"
    body = orjson.loads(record.value)
    assert (body["kind"], body["tenant_id"], body["owner_id"]) == ("draw", "t1", owner)
    assert body["reply_to"] == road.instance_id
    assert [row[0] for row in body["rows"]] == [f"u{i}" for i in range(50)]

    # Play the dispatcher: one reply record for this instance, one for another.
    outcomes = [orjson.dumps({"user": row[0], "n": i}) for i, row in enumerate(body["rows"])]
    entries = [b"[%d,%s]" % (row[2], o) for row, o in zip(body["rows"], outcomes, strict=True)]
    async with AIOKafkaProducer(bootstrap_servers=kafka_bootstrap) as producer:
        await producer.send_and_wait(REPLIES.name, pack(entries[:1]), key=b"api-someone-else")
        await producer.send_and_wait(REPLIES.name, pack(entries), key=road.instance_id.encode())
    answers = await asyncio.gather(*asks)
    assert [a["n"] for a in answers] == list(range(50))


async def test_requests_queued_while_a_flush_is_in_flight_share_the_next_record(
    road: Road, kafka_bootstrap: str
) -> None:
    owner = f"a{uuid.uuid4().hex[:8]}"
    first = asyncio.ensure_future(road.ask(DRAW, "t1", owner, "u0", "r0", timeout_s=1.0))
    while not road._flushes:  # the first request left alone, at once
        await asyncio.sleep(0)
    rest = [
        asyncio.ensure_future(road.ask(DRAW, "t1", owner, f"u{i}", f"r{i}", timeout_s=1.0))
        for i in range(1, 21)
    ]
    key = owner_key(DRAW, "t1", owner).encode()
    records = await _records_for(kafka_bootstrap, key, expected=21)
    assert [dict(r.headers)[COUNT_HEADER] for r in records] == [b"1", b"20"]
    assert await asyncio.gather(first, *rest) == [None] * 21  # queued, never answered


async def test_unanswered_but_queued_request_times_out_to_none(road: Road) -> None:
    owner = f"a{uuid.uuid4().hex[:8]}"
    assert await road.ask(DRAW, "t1", owner, "u1", "r1", timeout_s=1.0) is None
    assert road._waiters == {}  # nothing left behind


@pytest.mark.parametrize("kinds", [(CLAIM, WRITEOFF, COUPON), (DRAW, QUOTA)])
async def test_kinds_sharing_an_owner_share_its_key_but_never_a_record(
    road: Road, kafka_bootstrap: str, kinds: tuple[Kind, ...]
) -> None:
    """A template's claims, write-offs and coupon changes (an activity's draws and
    chance grants) go to the same partition, each row in a record of its own kind:
    a write-off queued behind a claim in one turn must not be decided as a claim."""
    owner = f"o{uuid.uuid4().hex[:8]}"
    asks = [
        asyncio.ensure_future(road.ask(kind, "t1", owner, f"u{i}", f"{kind.name}{i}", 1.0))
        for i in range(12)
        for kind in kinds
    ]
    key = owner_key(kinds[0], "t1", owner).encode()
    assert all(owner_key(k, "t1", owner).encode() == key for k in kinds)
    records = await _records_for(kafka_bootstrap, key, expected=12 * len(kinds))
    rows = {
        kind: [row[1] for r in records for row in orjson.loads(r.value)["rows"]
               if orjson.loads(r.value)["kind"] == kind]
        for kind in {orjson.loads(r.value)["kind"] for r in records}
    }  # fmt: skip
    assert rows == {k.name: [f"{k.name}{i}" for i in range(12)] for k in kinds}
    assert await asyncio.gather(*asks) == [None] * len(asks)  # queued, never answered
