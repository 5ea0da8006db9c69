"""The whole pipeline on the session's real servers: streams, dispatcher and api
as separate processes, plus helpers to make tenants, activities and shoppers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis as redis_lib
from aiokafka import AIOKafkaConsumer, TopicPartition

from actors.ledger import Ledger
from carnival.config import Settings
from carnival.demo import create_api_key, create_tenant
from carnival.embedded import free_port
from carnival.services import ApiService, DispatcherService, StreamsService
from domain.activity import Activity, Prize
from domain.ledger_keys import TenantKeys
from domain.tokens import sign_shopper_token
from domain.topics import DRAW_OUTCOMES


@dataclass
class Pipeline:
    settings: Settings
    api: ApiService
    dispatcher: DispatcherService
    streams: StreamsService
    redis: redis_lib.Redis

    @property
    def url(self) -> str:
        return self.api.url

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.redis)

    def tenant(self, role: str = "admin") -> Tenant:
        tenant_id = f"t{uuid.uuid4().hex[:10]}"
        create_tenant(self.redis, tenant_id, f"Tenant {tenant_id}")
        key = create_api_key(self.redis, tenant_id, role, "test")
        secret = self.redis.hget(TenantKeys(tenant_id).record, "shopper_secret")
        assert secret is not None
        return Tenant(self, tenant_id, key, secret)


@dataclass
class Tenant:
    pipeline: Pipeline
    tenant_id: str
    api_key: str
    secret: bytes

    def wheel(self, prizes: list[Prize], **overrides: Any) -> Activity:
        fields: dict[str, Any] = {
            "id": f"a{uuid.uuid4().hex[:10]}",
            "tenant_id": self.tenant_id,
            "name": "Test wheel",
            "status": "running",
            "prizes": (*prizes, Prize(id="thanks", name="Thanks", kind="thanks", weight=1)),
            "fallback_prize_id": "thanks",
            **overrides,
        }
        activity = Activity(**fields)
        self.pipeline.ledger.install_activity(activity)
        return activity

    def shopper_headers(self, user_id: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {sign_shopper_token(self.secret, self.tenant_id, user_id)}"
        }

    @property
    def staff_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}


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
    bootstrap: str, activity_id: str, expected: int, timeout: float = 30
) -> list[dict]:
    """Every outcome event of one activity on Kafka (duplicates included), read
    from the beginning until ``expected`` distinct events were seen."""

    async def read() -> list[dict]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        await consumer.start()
        try:
            tps = [TopicPartition(DRAW_OUTCOMES.name, p) for p in range(DRAW_OUTCOMES.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            events: list[dict] = []
            distinct: set[str] = set()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                polled = await consumer.getmany(timeout_ms=200)
                for records in polled.values():
                    for record in records:
                        event = orjson.loads(record.value)
                        if event["activity_id"] == activity_id:
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
    )
    logs = data_dir / "logs"
    streams = StreamsService(settings, logs)
    dispatcher = DispatcherService(settings, logs)
    api = ApiService(settings, logs)
    started = []
    try:
        for service in (streams, dispatcher, api):
            service.start(timeout=120)
            started.append(service)
        client = redis_lib.Redis.from_url(redis_url)
        yield Pipeline(settings, api, dispatcher, streams, client)
        client.close()
    finally:
        for service in reversed(started):
            service.stop()


@pytest.fixture
def http(pipeline: Pipeline) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pipeline.url, timeout=30) as client:
        yield client
