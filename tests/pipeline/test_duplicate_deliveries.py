"""Duplicated deliveries on every stream: ClickHouse still equals the ledger.

A mixed load runs through the real api: draws costing points with coupon and
points prizes, sign-ins, order rebates and their refunds, operator adjustments,
exchanges of points for coupons, claims, redemptions by two signed partners
(RSA and HMAC) with full and partial reversals and refused ones, and voids.
Once `carnival reconcile` is clean, every record of the tenant on every outcome
topic is read from the beginning and produced again (same partition, key and
value): Kafka delivering each event twice. After the streams worker has
committed past the copies (it commits a batch only after its INSERT), the
reconcile must be clean at once, for every activity, template, partner and the
points totals.

That the copies did reach ClickHouse is checked where merges cannot hide it:
the tables are ReplacingMergeTree(ingested_at), so whether or not a merge has
collapsed an event's two rows yet, the row that stays is the copy's. With the
worker stopped, a separate process opens its chdb directory and finds, for
every event of the tenant in every table, a row stored after the copies were
produced; the worker is then started again on the same data and the reconcile
is clean once more.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from domain.activity import Limits, Prize
from domain.topics import (
    CLAIM_OUTCOMES,
    COUPON_CHANGES,
    DEAD_LETTERS,
    DRAW_OUTCOMES,
    POINTS_OUTCOMES,
    WRITEOFFS,
    Topic,
    pack,
)
from streams.clickhouse import (
    CLAIM_OUTCOMES_TABLE,
    COUPON_CHANGES_TABLE,
    DRAW_OUTCOMES_TABLE,
    POINTS_TABLE,
    WRITEOFFS_TABLE,
)
from tests.pipeline.conftest import FULL_SIZE, Pipeline, Tenant, run_reconcile, wait_for
from tests.pipeline.test_claims import rush
from tests.pipeline.test_points_accounts import ADMIN, _mixed_load, _rules
from tests.pipeline.test_points_accounts import _template as _exchangeable
from tests.pipeline.test_writeoffs import ORDER_ITEMS, Partners, _redemption, _settle, _template

SHOPPERS = 3_000 if FULL_SIZE else 300  # each: two draws, a sign-in, an order, an exchange
CLAIMS = 3_000 if FULL_SIZE else 300
# Every topic an outcome event travels on, with the table its events land in.
STREAMS: tuple[tuple[Topic, str], ...] = (
    (DRAW_OUTCOMES, DRAW_OUTCOMES_TABLE),
    (CLAIM_OUTCOMES, CLAIM_OUTCOMES_TABLE),
    (COUPON_CHANGES, COUPON_CHANGES_TABLE),
    (WRITEOFFS, WRITEOFFS_TABLE),
    (POINTS_OUTCOMES, POINTS_TABLE),
)
LOAD_TIMEOUT_S = 300.0
SETTLE_TIMEOUT_S = 120.0  # the first reconcile's --wait: every event into ClickHouse once
COMMIT_TIMEOUT_S = 60.0  # the streams worker to commit past every copy
RESTART_TIMEOUT_S = 120.0


def _count_rows(pipeline: Pipeline, tenant_id: str, since_ms: int) -> dict[str, list[int]]:
    """Per table, the tenant's [rows, distinct event ids, event ids with a row stored
    at or after ``since_ms``], read by a process of its own (chdb: one process per
    data directory; the streams worker must be stopped)."""
    script = """
import sys, orjson
from streams.clickhouse import connect
dsn, tenant, since = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = connect(dsn)
found = {}
for table in sys.argv[4:]:
    found[table] = [int(v) for v in client.query(
        "SELECT count(), uniqExact(event_id),"
        " uniqExactIf(event_id, ingested_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC'))"
        f" FROM {table} WHERE tenant_id = {{tenant:String}}",
        parameters={"tenant": tenant, "since": since},
    ).first_row]
sys.stdout.write(orjson.dumps(found).decode())
"""
    dsn = pipeline.settings.clickhouse_dsn
    tables = [table for _, table in STREAMS]
    done = subprocess.run(
        [sys.executable, "-c", script, dsn, tenant_id, str(since_ms), *tables],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout.strip().splitlines()[-1])


async def _produce_again(bootstrap: str, tenant_id: str) -> dict[str, tuple[int, int]]:
    """Every record of the tenant on every outcome topic, read from the beginning
    up to the end seen at the start, produced again to its partition with its key
    and value. Per topic: (records, events) produced again."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    copied: dict[str, tuple[int, int]] = {}
    try:
        for topic, _ in STREAMS:
            tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            sent, records, events = [], 0, 0
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                    for record in batch:
                        if record.offset >= ends[tp]:
                            continue  # a copy of ours, or a later event
                        messages = orjson.loads(record.value)
                        mine = [m for m in messages if m["tenant_id"] == tenant_id]
                        if not mine:
                            continue
                        # A record carries one owner's events, so one tenant's: sent
                        # as it was. (Were it mixed, only this tenant's would go.)
                        value = (
                            record.value
                            if len(mine) == len(messages)
                            else pack([orjson.dumps(m) for m in mine])
                        )
                        sent.append(
                            await producer.send(
                                topic.name, value, key=record.key, partition=record.partition
                            )
                        )
                        records += 1
                        events += len(mine)
            await asyncio.gather(*sent)
            copied[topic.name] = (records, events)
    finally:
        await producer.stop()
        await consumer.stop()
    return copied


async def _offsets(bootstrap: str, group: str) -> tuple[dict[Any, int], dict[Any, int]]:
    """(end offsets, the group's committed offsets) of every outcome topic's partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        tps = [TopicPartition(t.name, p) for t, _ in STREAMS for p in range(t.partitions)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
        await admin.close()
    return ends, {tp: meta.offset for tp, meta in committed.items()}


def _dead_letters(bootstrap: str) -> int:
    async def read() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        await consumer.start()
        try:
            tps = [TopicPartition(DEAD_LETTERS.name, p) for p in range(DEAD_LETTERS.partitions)]
            return sum((await consumer.end_offsets(tps)).values())
        finally:
            await consumer.stop()

    return asyncio.run(read())


async def _writeoffs(
    pipeline: Pipeline, registered: Partners, coupons: list[str]
) -> Counter[tuple[str, int]]:
    """Redeem every coupon, alternating the RSA and the HMAC partner; then of every
    five orders one is refunded whole, one in part, and one coupon is presented
    again for another order (refused). The answers' (operation, HTTP status)."""
    clients = [
        httpx.AsyncClient(base_url=pipeline.url, auth=registered.auth(which), timeout=60)
        for which in ("rsa", "hmac")
    ]
    limit = asyncio.Semaphore(32)
    answers: Counter[tuple[str, int]] = Counter()

    async def send(op: str, n: int, path: str, body: dict[str, Any]) -> None:
        client = clients[n % 2]
        async with limit:
            reply = await _settle(client, await client.post(path, json=body))
        answers[(op, reply.status_code)] += 1

    try:
        await asyncio.gather(
            *(
                send("redeem", n, "/v1/partner/redemptions", _redemption(c, f"r{n}", f"o{n}"))
                for n, c in enumerate(coupons)
            )
        )
        after = []
        for n, coupon_id in enumerate(coupons):
            if n % 5 == 0:
                body: dict[str, Any] = {"request_id": f"b{n}", "order_id": f"o{n}"}
                after.append(send("reverse", n, "/v1/partner/reversals", body))
            elif n % 5 == 1:
                tee = {"sku": ORDER_ITEMS[0]["sku"], "qty": 1}
                body = {"request_id": f"b{n}", "order_id": f"o{n}", "items": [tee]}
                after.append(send("reverse part", n, "/v1/partner/reversals", body))
            elif n % 5 == 2:
                body = _redemption(coupon_id, f"again{n}", f"other{n}")
                after.append(send("redeem again", n, "/v1/partner/redemptions", body))
        await asyncio.gather(*after)
    finally:
        for client in clients:
            await client.aclose()
    return answers


def _load(pipeline: Pipeline, http: httpx.Client, tenant: Tenant) -> dict[str, Any]:
    """The mixed load; what was asked and answered, for the test's print."""
    _rules(http, tenant, signin=[5], order_points_per_unit=2)  # an order of 10.00: 20
    registered = Partners(http, tenant)
    coupon = _template(http, tenant)  # 5 off from 20: claimed, won, redeemed, voided
    exchange = _exchangeable(tenant, points_price=5, limits={"stock": SHOPPERS // 3})
    wheel = tenant.wheel(
        [
            Prize(
                id="cp",
                name="Coupon",
                kind="coupon",
                weight=1,
                stock=SHOPPERS // 4,
                coupon_template=coupon.id,
            ),
            Prize(id="pts", name="3 points", kind="points", weight=1, points=3),
        ],
        limits=Limits(points_cost=10),
    )
    users = [f"m{i}" for i in range(SHOPPERS)]
    # Half the shoppers start with points seeded by a tool (not events: the
    # reconcile leaves them out), half with none.
    pipeline.ledger.grant_points(tenant.tenant_id, {u: 12 for u in users[::2]})
    replies: dict[tuple[str, str], httpx.Response] = {}
    claims: dict[str, httpx.Response] = {}
    loads = [
        threading.Thread(
            target=lambda: replies.update(
                asyncio.run(_mixed_load(pipeline, tenant, wheel.id, exchange.id, users))
            )
        ),
        threading.Thread(
            target=lambda: claims.update(
                rush(
                    pipeline,
                    tenant,
                    coupon.id,
                    [(f"s{i}", f"c{i}") for i in range(CLAIMS)],
                    concurrency=32,
                )
            )
        ),
    ]
    for load in loads:
        load.start()
    for load in loads:
        load.join(timeout=LOAD_TIMEOUT_S)
        assert not load.is_alive()
    codes = Counter(r.status_code for r in (*replies.values(), *claims.values()))
    assert set(codes) <= {200, 202, 409}, codes
    claimed = [r.json()["coupon"]["coupon_id"] for r in claims.values() if r.status_code == 200]
    assert len(claimed) == CLAIMS
    redeemed, voided = claimed[: CLAIMS // 2], claimed[CLAIMS // 2 :: 3]
    writeoffs = asyncio.run(_writeoffs(pipeline, registered, redeemed))
    assert {status for _, status in writeoffs} <= {200, 409}, writeoffs
    assert writeoffs[("redeem again", 409)] > 0  # refused: each a rejected event
    staff = tenant.staff_headers
    for coupon_id in voided:
        void = http.post(f"/v1/coupons/{coupon_id}/void", json={}, headers=staff)
        assert void.status_code in (200, 202), void.text
    points: Counter[int] = Counter()
    for user in users[::5]:
        points[http.post(f"{ADMIN}/points/orders/o-{user}/refund", headers=staff).status_code] += 1
    for user in users[1::5]:
        grant = {"user_id": user, "amount": 4, "reason": "goodwill"}
        points[http.post(f"{ADMIN}/points/grants", json=grant, headers=staff).status_code] += 1
    assert set(points) <= {200, 202}, points
    return {"http": dict(codes), "writeoffs": dict(writeoffs), "voids": len(voided)}


def test_duplicates_on_every_stream_leave_the_totals_equal_to_the_ledger(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    started = time.monotonic()
    tenant = pipeline.tenant()
    bootstrap = pipeline.settings.kafka_bootstrap
    asked = _load(pipeline, http, tenant)
    loaded = time.monotonic()

    settled = run_reconcile(pipeline, tenant.tenant_id, wait=SETTLE_TIMEOUT_S)
    assert settled.returncode == 0, settled.stdout
    assert "left out" in settled.stdout  # the seeded points, not events

    dead_before = _dead_letters(bootstrap)
    copies_from = int(time.time() * 1000)
    copied = asyncio.run(_produce_again(bootstrap, tenant.tenant_id))
    assert all(events > 0 for _, events in copied.values()), copied  # every stream

    def committed_past_the_copies() -> bool:
        ends, committed = asyncio.run(_offsets(bootstrap, pipeline.settings.streams_app_id))
        return all(committed.get(tp, 0) >= end for tp, end in ends.items() if end > 0)

    wait_for(
        committed_past_the_copies,
        timeout=COMMIT_TIMEOUT_S,
        what="the streams worker to commit past every copy",
        every=0.2,
    )
    assert _dead_letters(bootstrap) == dead_before  # every copy decoded and inserted
    # No wait: the copies are in, and the totals must not count them.
    doubled = run_reconcile(pipeline, tenant.tenant_id, 0, "--topics")
    assert doubled.returncode == 0, doubled.stdout
    assert "ledger and the outcome topics agree on" in doubled.stdout

    # The copies reached ClickHouse: every event has a row stored after they were sent.
    pipeline.streams.stop()
    try:
        rows = _count_rows(pipeline, tenant.tenant_id, copies_from)
    finally:
        pipeline.streams.start(timeout=RESTART_TIMEOUT_S)
    for _, table in STREAMS:
        stored, distinct, copied_rows = rows[table]
        assert distinct > 0 and stored >= distinct, (table, rows[table])
        assert copied_rows == distinct, f"{table}: {rows[table]}"
    again = run_reconcile(pipeline, tenant.tenant_id, wait=SETTLE_TIMEOUT_S)
    assert again.returncode == 0, again.stdout

    print(
        f"load {loaded - started:.1f}s {asked}; copies produced (records, events) {copied}; "
        f"rows stored, distinct, copied after the restart {rows}; "
        f"total {time.monotonic() - started:.1f}s\n{doubled.stdout}"
    )
