"""SIGKILL of the streams worker (Faust + chdb) mid-stream loses nothing and
counts nothing twice.

A draw storm and a claim rush run over HTTP; once ClickHouse holds some but not
all of the draw outcomes, the worker is SIGKILLed and started again on the same
ClickHouse data directory (chdb's one-process rule: the new process opens it
after the old one died, with the old one's status file still there). After the
drain, ledger == outcome events == ClickHouse, exactly: the batches the dead
worker had inserted but not committed are delivered again, and the queries'
dedup by event id must hide the second copy.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from domain.activity import Limits, Prize
from domain.coupons import CouponLimits
from domain.topics import CLAIM_OUTCOMES, DRAW_OUTCOMES
from tests.pipeline.conftest import Pipeline, Tenant, outcome_events, reconcile, storm, wait_for
from tests.pipeline.test_claims import install, rush

DRAW_USERS, DRAWS_PER_USER, DRAW_STOCK = 1000, 3, 300
CLAIMS, CLAIM_USERS, CLAIM_STOCK = 1500, 1000, 200
# Both loads together stay under the api's 100 Redis connections (redis-py's default
# pool): past it a request fails with 503 redis_unavailable, which is not what this
# test is about.
DRAW_CONCURRENCY, CLAIM_CONCURRENCY = 64, 32
LOAD_TIMEOUT_S = 300.0
RESTART_TIMEOUT_S = 120.0


def clickhouse_outcomes(pipeline: Pipeline, tenant: Tenant, activity_id: str) -> int | None:
    """Distinct outcomes of one activity in ClickHouse, straight from the worker's
    stats view; None while the worker does not answer."""
    url = f"{pipeline.settings.streams_base_url}/internal/stats/activities/{activity_id}"
    try:
        reply = httpx.get(url, params={"tenant_id": tenant.tenant_id}, timeout=2.0)
    except httpx.TransportError:
        return None
    return int(reply.json()["outcomes"]) if reply.status_code == 200 else None


def status_file_pid(pipeline: Pipeline) -> int:
    """The pid in ClickHouse's status file: the process that opened the data directory last."""
    path = Path(pipeline.settings.clickhouse_dsn.removeprefix("chdb://")) / "status"
    return int(path.read_text().split("\n", 1)[0].removeprefix("PID:").strip())


def committed_outcomes(pipeline: Pipeline, activity_id: str) -> int:
    """Distinct outcomes of one activity below the streams group's committed offsets:
    what a restarted worker will not read again."""

    async def read() -> int:
        bootstrap = pipeline.settings.kafka_bootstrap
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(pipeline.settings.streams_app_id)
        finally:
            await admin.close()
        ends = {
            tp: meta.offset
            for tp, meta in offsets.items()
            if tp.topic == DRAW_OUTCOMES.name and meta.offset > 0
        }
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        await consumer.start()
        seen: set[str] = set()
        try:
            for tp, end in ends.items():
                consumer.assign([TopicPartition(tp.topic, tp.partition)])
                await consumer.seek_to_beginning()
                while await consumer.position(tp) < end:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        for record in records:
                            if record.offset < end:
                                seen |= {
                                    e["event_id"]
                                    for e in orjson.loads(record.value)
                                    if e["activity_id"] == activity_id
                                }
        finally:
            await consumer.stop()
        return len(seen)

    return asyncio.run(read())


def test_streams_sigkill_mid_stream(pipeline: Pipeline) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel(
        [Prize(id="p", name="Coupon", kind="coupon", weight=1, stock=DRAW_STOCK)],
        limits=Limits(per_user_total=DRAWS_PER_USER),
    )
    template = install(tenant, limits=CouponLimits(stock=CLAIM_STOCK, per_user=1))
    draws = DRAW_USERS * DRAWS_PER_USER
    draw_jobs = [(f"u{u}", f"r{k}") for k in range(DRAWS_PER_USER) for u in range(DRAW_USERS)]
    claim_jobs = [(f"c{i % CLAIM_USERS}", f"k{i}") for i in range(CLAIMS)]
    draw_replies: dict[str, httpx.Response] = {}
    claim_replies: dict[str, httpx.Response] = {}
    loads = [
        threading.Thread(
            target=lambda: draw_replies.update(
                storm(pipeline, tenant, wheel.id, draw_jobs, DRAW_CONCURRENCY)
            )
        ),
        threading.Thread(
            target=lambda: claim_replies.update(
                rush(pipeline, tenant, template.id, claim_jobs, CLAIM_CONCURRENCY)
            )
        ),
    ]
    for load in loads:
        load.start()

    first_pid = status_file_pid(pipeline)
    assert first_pid == pipeline.streams.pid
    seen = wait_for(
        lambda: (n := clickhouse_outcomes(pipeline, tenant, wheel.id) or 0) >= draws // 5 and n,
        timeout=60,
        what="ClickHouse to hold a fifth of the draw outcomes",
        every=0.02,
    )
    pipeline.streams.kill()
    assert seen < draws, "the kill should land mid-stream"
    decided_at_kill = pipeline.ledger.totals(tenant.tenant_id, wheel.id)["outcomes"]
    # Inserted but not committed: the restarted worker reads these again and inserts
    # them a second time; the stats must count each once.
    replayed = seen - committed_outcomes(pipeline, wheel.id)
    pipeline.streams.start(timeout=RESTART_TIMEOUT_S)
    assert status_file_pid(pipeline) == pipeline.streams.pid != first_pid
    stored_after_restart = clickhouse_outcomes(pipeline, tenant, wheel.id) or 0
    for load in loads:
        load.join(timeout=LOAD_TIMEOUT_S)
        assert not load.is_alive()
    # What the dead worker had inserted survived it (it is in the restarted one's view).
    assert stored_after_restart >= seen

    # Draws: every request answered, ledger == outcome events == ClickHouse, exactly.
    codes = Counter(r.status_code for r in draw_replies.values())
    assert set(codes) <= {200, 202}, codes
    ledger = reconcile(pipeline, tenant, wheel.id, draws)
    won = [o for o in ledger.values() if o["status"] == "won"]
    assert len(won) == DRAW_STOCK  # 3,000 draws for 300 units: all of them go
    with httpx.Client(base_url=pipeline.url, timeout=30) as http:
        stats = http.get(f"/v1/stats/activities/{wheel.id}", headers=tenant.staff_headers).json()
    assert stats["outcomes"] == stats["draws"] == draws  # none counted twice
    assert stats["won"] == len(won)
    assert stats["participants"] == DRAW_USERS
    wins = Counter(o["prize_id"] for o in won)
    assert {p["prize_id"]: p["wins"] for p in stats["prizes"]} == dict(wins)
    count = httpx.get(
        f"{pipeline.settings.streams_base_url}/internal/count",
        params={"tenant_id": tenant.tenant_id},
        timeout=10,
    ).json()
    assert count["count"] == draws  # the tenant's distinct draw events, all activities

    # Claims: the rush issued exactly the stock, and ClickHouse counts the ledger.
    assert all(r.status_code in (200, 409) for r in claim_replies.values())
    answers = Counter(
        "issued" if r.status_code == 200 else r.json()["error"]["code"]
        for r in claim_replies.values()
    )
    assert answers["issued"] == CLAIM_STOCK
    assert set(answers) <= {"issued", "sold_out", "user_limit_reached"}, answers
    claims = pipeline.ledger.claim_outcomes(tenant.tenant_id, template.id)
    assert len(claims) == CLAIMS
    events = outcome_events(
        pipeline.settings.kafka_bootstrap,
        template.id,
        expected=CLAIMS,
        topic=CLAIM_OUTCOMES,
        owner_field="template_id",
    )
    for event in events:
        assert event == claims[event["event_id"]]
    assert {e["event_id"] for e in events} == set(claims)
    with httpx.Client(base_url=pipeline.url, timeout=30) as http:
        path = f"/v1/stats/templates/{template.id}"
        figures = wait_for(
            lambda: (
                (s := http.get(path, headers=tenant.staff_headers).json())["claims"] == CLAIMS and s
            ),
            timeout=30,
            what="ClickHouse to hold every claim outcome",
        )
    assert figures["issued"] == figures["holders"] == CLAIM_STOCK
    assert figures["rejected"] == CLAIMS - CLAIM_STOCK
    assert figures["rejected_by_reason"] == {k: n for k, n in answers.items() if k != "issued"}

    print(
        f"streams killed with {seen} of {draws} draw outcomes in ClickHouse "
        f"({decided_at_kill} decided); restarted in {pipeline.streams.start_seconds:.1f}s "
        f"with {stored_after_restart} visible, at least {replayed} to insert again; "
        f"HTTP {dict(codes)}; claims {dict(answers)}"
    )
