"""The whole pipeline on the session's real servers: streams, dispatcher and api
as separate processes, plus helpers to make tenants, activities and shoppers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis as redis_lib
from aiokafka import AIOKafkaConsumer, TopicPartition

from carnival.embedded import free_port
from carnival.services import ApiService, DispatcherService, RelayService, StreamsService
from domain.activity import Activity, Prize
from domain.events import request_key
from domain.tokens import sign_shopper_token
from domain.topics import DRAW_OUTCOMES, Topic
from ledger.admin import SyncLedger
from runtime.settings import Settings

# Load tests run at CI size; CARNIVAL_FULL_SIZE=1 runs each at its issue's size.
FULL_SIZE = os.environ.get("CARNIVAL_FULL_SIZE") == "1"


@dataclass
class Pipeline:
    settings: Settings
    api: ApiService
    dispatcher: DispatcherService
    streams: StreamsService
    relay: RelayService
    redis: redis_lib.Redis

    @property
    def url(self) -> str:
        return self.api.url

    @property
    def ledger(self) -> SyncLedger:
        return SyncLedger(self.redis)

    def tenant(self, role: str = "admin") -> Tenant:
        tenant_id = f"t{uuid.uuid4().hex[:10]}"
        self.ledger.create_tenant(tenant_id, f"Tenant {tenant_id}")
        key = self.ledger.create_api_key(tenant_id, role, "test")
        secret = self.ledger.shopper_secret(tenant_id)
        assert secret is not None
        return Tenant(self, tenant_id, key, secret)


@dataclass
class Tenant:
    pipeline: Pipeline
    tenant_id: str
    api_key: str
    secret: bytes

    def install(self, **fields: Any) -> Activity:
        """A running activity written straight to the ledger (the admin API has its own tests)."""
        activity = Activity(
            **{
                "id": f"a{uuid.uuid4().hex[:10]}",
                "tenant_id": self.tenant_id,
                "name": "Test activity",
                "status": "running",
                **fields,
            }
        )
        self.pipeline.ledger.install_activity(activity)
        return activity

    def wheel(self, prizes: list[Prize], **overrides: Any) -> Activity:
        thanks = Prize(id="thanks", name="Thanks", kind="thanks", weight=1)
        return self.install(prizes=(*prizes, thanks), fallback_prize_id="thanks", **overrides)

    def shopper_headers(self, user_id: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {sign_shopper_token(self.secret, self.tenant_id, user_id)}"
        }

    @property
    def staff_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}


async def send_again_on_reset(
    send: Callable[[], Awaitable[httpx.Response]], attempts: int = 3
) -> httpx.Response:
    """A request sent again, with the same request id, when the connection was
    reset before an answer came: what a client of an idempotent API does. (One
    CI run saw a single reset among thousands of requests; its cause is not known
    yet. The retry keeps every invariant asserted: one answer per request id.)"""
    for attempt in range(attempts):
        try:
            return await send()
        except httpx.TransportError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def storm(
    pipeline: Pipeline,
    tenant: Tenant,
    activity_id: str,
    jobs: list[tuple[str, str]],
    concurrency: int = 128,
) -> dict[str, httpx.Response]:
    """POST one draw per (user, request id), ``concurrency`` at a time; the
    replies by request key."""

    async def run() -> dict[str, httpx.Response]:
        limit = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=pipeline.url, timeout=60) as client:

            async def one(user: str, rid: str) -> tuple[str, httpx.Response]:
                async with limit:
                    reply = await send_again_on_reset(
                        lambda: client.post(
                            f"/v1/activities/{activity_id}/draws",
                            json={"request_id": rid},
                            headers=tenant.shopper_headers(user),
                        )
                    )
                    return request_key(user, rid), reply

            return dict(await asyncio.gather(*(one(u, r) for u, r in jobs)))

    return asyncio.run(run())


def ledger_outcomes(pipeline: Pipeline, tenant: Tenant, activity_id: str) -> dict[str, dict]:
    return pipeline.ledger.outcomes(tenant.tenant_id, activity_id)


def reconcile(pipeline: Pipeline, tenant: Tenant, activity_id: str, total: int) -> dict[str, dict]:
    """Wait until ``total`` requests are decided, then check ledger == outcome
    events on Kafka == ClickHouse; returns the ledger's outcomes by request key."""
    wait_for(
        lambda: pipeline.ledger.totals(tenant.tenant_id, activity_id)["outcomes"] == total,
        timeout=120,
        what=f"{total} outcomes in the ledger",
    )
    ledger = ledger_outcomes(pipeline, tenant, activity_id)
    events = outcome_events(pipeline.settings.kafka_bootstrap, activity_id, expected=total)
    for event in events:  # a re-produced event is the same event, never a new decision
        assert event == ledger[event["event_id"]]
    assert {e["event_id"] for e in events} == set(ledger)
    by_status = {
        s: sum(o["status"] == s for o in ledger.values()) for s in ("won", "lost", "rejected")
    }
    with httpx.Client(base_url=pipeline.url, timeout=30) as http:
        stats = wait_for(
            lambda: (
                (
                    s := http.get(
                        f"/v1/stats/activities/{activity_id}", headers=tenant.staff_headers
                    ).json()
                )["outcomes"]
                == total
                and s
            ),
            timeout=30,
            what="ClickHouse to hold every outcome",
        )
    assert (stats["won"], stats["lost"], stats["rejected"]) == (
        by_status["won"],
        by_status["lost"],
        by_status["rejected"],
    )
    assert stats["amount_won"] == sum(o["amount"] for o in ledger.values() if o["status"] == "won")
    assert_reconciled(pipeline, tenant.tenant_id)
    return ledger


def run_reconcile(
    pipeline: Pipeline, tenant_id: str, wait: float, *options: str
) -> subprocess.CompletedProcess[str]:
    """`carnival reconcile --tenant <tenant_id> --wait <wait> [options]` against this
    pipeline."""
    s = pipeline.settings
    env = {
        **os.environ,
        "REDIS_URL": s.redis_url,
        "KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "CARNIVAL_STREAMS_HOST": s.streams_host,
        "CARNIVAL_STREAMS_PORT": str(s.streams_port),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [
            *(sys.executable, "-m", "carnival", "reconcile"),
            *("--tenant", tenant_id, "--wait", str(wait), *options),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=180,
    )


def assert_reconciled(pipeline: Pipeline, tenant_id: str, wait: float = 60.0) -> None:
    """Every figure of the tenant in ClickHouse equals its ledger (every load test
    ends with this)."""
    done = run_reconcile(pipeline, tenant_id, wait)
    assert done.returncode == 0 and "agree on" in done.stdout, done.stdout


def assert_error(reply: httpx.Response, status: int, code: str) -> dict:
    """The one error shape, with the expected status and code; returns its body."""
    assert reply.status_code == status, reply.text
    body = reply.json()["error"]
    assert body["code"] == code and body["message"]
    assert isinstance(body["details"], dict)
    return body


def draw(
    http: httpx.Client, tenant: Tenant, activity_id: str, user: str, request_id: str | None = None
) -> httpx.Response:
    """One draw; a 202 ticket is polled until the outcome is decided."""
    request_id = request_id or uuid.uuid4().hex
    headers = tenant.shopper_headers(user)
    reply = http.post(
        f"/v1/activities/{activity_id}/draws", json={"request_id": request_id}, headers=headers
    )
    if reply.status_code != 202:
        return reply
    poll = f"/v1/activities/{activity_id}/draws/{request_id}"
    return wait_for(
        lambda: (r := http.get(poll, headers=headers)).status_code != 202 and r,
        30,
        f"outcome of {request_id}",
    )


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def outcome_events(
    bootstrap: str,
    owner_id: str,
    expected: int,
    timeout: float = 30,
    topic: Topic = DRAW_OUTCOMES,
    owner_field: str = "activity_id",
) -> list[dict]:
    """Every outcome event of one owner (an activity's draws, a template's claims)
    on Kafka, duplicates included, read from the beginning until ``expected``
    distinct events were seen."""

    async def read() -> list[dict]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        await consumer.start()
        try:
            tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            events: list[dict] = []
            distinct: set[str] = set()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                polled = await consumer.getmany(timeout_ms=200)
                for records in polled.values():
                    for record in records:
                        for event in orjson.loads(record.value):  # a record carries many
                            if event[owner_field] == owner_id:
                                events.append(event)
                                distinct.add(event["event_id"])
                ends = await consumer.end_offsets(tps)
                caught_up = all([await consumer.position(tp) >= ends[tp] for tp in tps])
                if len(distinct) >= expected and caught_up:
                    return events
            raise AssertionError(f"saw {len(distinct)} of {expected} outcome events")
        finally:
            await consumer.stop()

    return asyncio.run(read())


@pytest.fixture(scope="session")
def pipeline(
    kafka_bootstrap: str, redis_url: str, ray_address: str, servers_dir: Path
) -> Iterator[Pipeline]:
    data_dir = servers_dir / "pipeline"
    settings = Settings(
        KAFKA_BOOTSTRAP=kafka_bootstrap,
        REDIS_URL=redis_url,
        RAY_ADDRESS=ray_address,
        CARNIVAL_DATA_DIR=data_dir,
        CARNIVAL_API_PORT=free_port(),
        CARNIVAL_STREAMS_PORT=free_port(),
        CARNIVAL_DISPATCHER_METRICS_PORT=free_port(),
        CARNIVAL_RAY_NAMESPACE="carnival-test",
        CARNIVAL_REPLY_TIMEOUT_MS=5000,
        CARNIVAL_EXPIRY_SWEEP_MS=300,
        # Webhook retries after 50, 100, 200 ms ...: a test waits for a fourth attempt
        # in well under a second, and for a dead letter (6 attempts) in ~2 s.
        CARNIVAL_WEBHOOK_BACKOFF_MS=50,
        CARNIVAL_WEBHOOK_MAX_ATTEMPTS=6,
        CARNIVAL_WEBHOOK_TIMEOUT_MS=2000,
    )
    logs = data_dir / "logs"
    streams = StreamsService(settings, logs)
    dispatcher = DispatcherService(settings, logs)
    api = ApiService(settings, logs)
    relay = RelayService(settings, logs)
    started = []
    try:
        for service in (streams, dispatcher, api, relay):
            service.start(timeout=120)
            started.append(service)
        client = redis_lib.Redis.from_url(redis_url)
        yield Pipeline(settings, api, dispatcher, streams, relay, client)
        client.close()
    finally:
        for service in reversed(started):
            service.stop()


@pytest.fixture
def http(pipeline: Pipeline) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pipeline.url, timeout=30) as client:
        yield client


@pytest.fixture
def phones(browser: Any, pipeline: Pipeline) -> Iterator[Any]:
    """``phone(tenant, user)`` opens a shopper's phone; all are closed after, and
    none may have raised an uncaught error."""
    from tests.pipeline.pages import Shopper

    opened: list[Shopper] = []

    def phone(tenant: Tenant, user: str) -> Any:
        shopper = Shopper(browser, pipeline, tenant, user)
        opened.append(shopper)
        return shopper

    yield phone
    errors = {s.user: s.errors for s in opened if s.errors}
    for shopper in opened:
        shopper.close()
    assert errors == {}, f"uncaught page errors: {errors}"
