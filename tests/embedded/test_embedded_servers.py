"""The embedded servers really run: Kafka, Redis and a Ray head, with restarts on the same data."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from carnival.embedded.kafka import KafkaServer, create_topics
from carnival.embedded.prereqs import java_major
from carnival.embedded.process import ManagedProcess, ProcessFailed, free_port, session_pids
from carnival.embedded.ray_head import RayHead
from carnival.embedded.redis import RedisServer
from domain.topics import ALL_TOPICS, REQUESTS, Topic

OwnServers = Callable[..., Any]


# -- pure ----------------------------------------------------------------------------------


def test_java_major_parses_old_and_new_version_strings() -> None:
    assert java_major('openjdk version "17.0.15" 2025-04-15') == 17
    assert java_major('java version "1.8.0_402"') == 8
    assert java_major('openjdk version "21" 2023-09-19') == 21
    assert java_major("garbage") is None


class _Exits(ManagedProcess):
    name = "exits"

    def command(self) -> list[str]:
        return [sys.executable, "-c", "import sys; print('boom-marker'); sys.exit(3)"]

    def is_ready(self) -> bool:
        return False


class _Sleeps(ManagedProcess):
    name = "sleeps"

    def command(self) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(60)"]

    def is_ready(self) -> bool:
        return False


def test_process_that_exits_raises_with_log_tail(tmp_path: Path) -> None:
    with pytest.raises(ProcessFailed, match="boom-marker") as info:
        _Exits(tmp_path).start(timeout=10)
    assert "code 3" in str(info.value)


def test_process_not_ready_times_out_and_is_killed(tmp_path: Path) -> None:
    proc = _Sleeps(tmp_path)
    with pytest.raises(ProcessFailed, match="not ready after"):
        proc.start(timeout=0.3)
    assert not proc.alive


# -- Kafka ---------------------------------------------------------------------------------


async def test_kafka_produce_consume_on_created_topic(kafka_bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    payload = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(REQUESTS.name, payload, key=b"activity-1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        from aiokafka import TopicPartition

        tp = TopicPartition(meta.topic, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    assert record.value == payload
    assert record.key == b"activity-1"


async def test_kafka_topics_are_all_created_with_partitions(kafka_bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    assert await create_topics(kafka_bootstrap, ALL_TOPICS) == []  # idempotent
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        names = [t.name for t in ALL_TOPICS]
        described = {t["topic"]: t for t in await admin.describe_topics(names)}
    finally:
        await admin.close()
    for topic in ALL_TOPICS:
        assert len(described[topic.name]["partitions"]) == topic.partitions


async def test_kafka_restart_on_same_data_dir_keeps_topic_and_data(
    tmp_path: Path, own_servers: OwnServers
) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    topic = Topic("carnival.test.restart", 2, "test")
    first = own_servers(KafkaServer(tmp_path / "kafka", free_port(), free_port()), timeout=120)
    assert await create_topics(first.bootstrap, [topic]) == [topic.name]
    producer = AIOKafkaProducer(bootstrap_servers=first.bootstrap, acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic.name, b"survives", partition=1)
    finally:
        await producer.stop()
    first.stop()
    cluster_id = (tmp_path / "kafka" / "cluster.id").read_text()

    # New ports, same data dir: no re-format, the topic and its record are still there.
    second = own_servers(KafkaServer(tmp_path / "kafka", free_port(), free_port()), timeout=120)
    assert (tmp_path / "kafka" / "cluster.id").read_text() == cluster_id
    assert await create_topics(second.bootstrap, [topic]) == []
    consumer = AIOKafkaConsumer(bootstrap_servers=second.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic.name, 1)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    assert record.value == b"survives"


# -- Redis ---------------------------------------------------------------------------------


def test_redis_set_get(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.set("carnival:test:k", "v")
        assert client.get("carnival:test:k") == b"v"
        assert client.config_get("appendfsync")["appendfsync"] == "always"
    finally:
        client.close()


def test_redis_acknowledged_write_survives_sigkill(tmp_path: Path, own_servers: OwnServers) -> None:
    import redis

    server: RedisServer = own_servers(RedisServer(tmp_path / "redis", free_port()))
    client = redis.Redis.from_url(server.url)
    client.set("ledger", "42")
    client.incrby("counter", 7)
    client.close()
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)  # no shutdown: only the AOF on disk remains
    server.kill()
    server.start(timeout=30)
    client = redis.Redis.from_url(server.url)
    try:
        assert client.get("ledger") == b"42"
        assert client.get("counter") == b"7"
    finally:
        client.close()


# -- Ray -----------------------------------------------------------------------------------


def test_ray_actor_round_trip(ray_client: Any) -> None:
    ray = ray_client

    @ray.remote(num_cpus=0)
    class Counter:
        def __init__(self) -> None:
            self.total = 0

        def add(self, n: int) -> int:
            self.total += n
            return self.total

    counter = Counter.remote()
    assert ray.get(counter.add.remote(2)) == 2
    assert ray.get(counter.add.remote(3)) == 5
    ray.kill(counter)


def test_ray_head_stop_leaves_no_process(tmp_path: Path, own_servers: OwnServers) -> None:
    head: RayHead = own_servers(RayHead(tmp_path / "ray", free_port()), timeout=120)
    leader = head.pid
    assert leader is not None
    assert len(session_pids(leader)) >= 3  # gcs, raylet, agents...
    head.stop()
    assert session_pids(leader) == []
    assert head.stray_pids() == []
    head.remove_temp_dir()
