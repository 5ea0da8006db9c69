"""Kafka -> Ray dispatcher: batches in, one actor call per batch, outcomes out.

Order per poll: decide (actor commits to the ledger) -> produce outcome events
and replies -> commit offsets. A crash anywhere re-delivers the batch, and the
ledger answers a re-delivered request with the outcome already decided, so
nothing acknowledged is lost and nothing is decided twice.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import orjson
import ray
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from prometheus_client import Counter, Gauge, Histogram, start_http_server
from ray.actor import ActorHandle

from actors.pool_actor import owner_index, pool_actor
from domain.events import DrawRequested, SchemaError
from domain.topics import DRAW_OUTCOMES, DRAW_REPLIES, DRAW_REQUESTS, message_key
from ledger.keys import DISPATCHER_HEARTBEAT
from runtime import logs
from runtime.settings import Settings

log = logging.getLogger("carnival.dispatcher")

GROUP_ID = "carnival-dispatcher"
BATCH_SIZE = Histogram(
    "carnival_dispatch_batch_size",
    "Requests per actor call",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
ACTOR_CALL = Histogram("carnival_actor_call_seconds", "Actor decide_batch call time")
DECISIONS = Counter("carnival_decisions_total", "Outcomes produced")
BAD_MESSAGES = Counter("carnival_bad_messages_total", "Unparseable request messages skipped")
RETRIES = Counter("carnival_dispatch_retries_total", "Batches re-sent after a failure")
LAG = Gauge("carnival_consumer_lag", "Request messages not yet consumed", ["partition"])


class Dispatcher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = asyncio.Event()
        self._actors: list[ActorHandle] = []

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        s = self.settings
        if not ray.is_initialized():
            ray.init(
                address=s.ray_address or None,
                namespace=s.ray_namespace,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        self._actors = [pool_actor(i, s.redis_url, s.ray_namespace) for i in range(s.actor_count)]
        consumer = AIOKafkaConsumer(
            DRAW_REQUESTS.name,
            bootstrap_servers=s.kafka_bootstrap,
            group_id=GROUP_ID,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.batch_max,
            fetch_max_wait_ms=20,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap, acks="all", enable_idempotence=True, linger_ms=1
        )
        redis = aioredis.Redis.from_url(s.redis_url)
        await producer.start()
        await consumer.start()
        heartbeat = asyncio.create_task(self._heartbeat(redis, consumer))
        log.info("dispatcher running: %d actor(s), batch max %d", len(self._actors), s.batch_max)
        try:
            while not self._stop.is_set():
                polled = await consumer.getmany(timeout_ms=100, max_records=s.batch_max)
                if polled:
                    await self._dispatch(polled, producer)
                    await consumer.commit({tp: recs[-1].offset + 1 for tp, recs in polled.items()})
        finally:
            heartbeat.cancel()
            await consumer.stop()
            await producer.stop()
            await redis.aclose()

    async def _dispatch(
        self, polled: dict[TopicPartition, list[ConsumerRecord]], producer: AIOKafkaProducer
    ) -> None:
        calls = []
        for tp, records in polled.items():
            batch_id = f"{tp.topic}:{tp.partition}:{records[0].offset}"
            groups: dict[int, list[tuple[DrawRequested, bytes]]] = {}
            for record in records:
                request = _parse(record)
                if request is not None:
                    idx = owner_index(request.activity_id, len(self._actors))
                    groups.setdefault(idx, []).append((request, record.value))
            calls += [self._decide(idx, batch_id, group) for idx, group in groups.items()]
        sends = []
        for requests, outcomes in await asyncio.gather(*calls):
            for request, body in zip(requests, outcomes, strict=True):
                key = message_key(request.activity_id)
                sends.append(await producer.send(DRAW_OUTCOMES.name, body, key=key))
                if request.reply_to:
                    reply_key = message_key(request.reply_to)
                    sends.append(await producer.send(DRAW_REPLIES.name, body, key=reply_key))
            DECISIONS.inc(len(outcomes))
        await asyncio.gather(*sends)

    async def _decide(
        self, idx: int, batch_id: str, group: list[tuple[DrawRequested, bytes]]
    ) -> tuple[list[DrawRequested], list[bytes]]:
        requests = [request for request, _ in group]
        messages = [raw for _, raw in group]
        BATCH_SIZE.observe(len(requests))
        delay = 0.05
        while True:
            started = time.perf_counter()
            try:
                outcomes = await self._actors[idx].decide_batch.remote(batch_id, messages)
                ACTOR_CALL.observe(time.perf_counter() - started)
                return requests, outcomes
            except (ray.exceptions.RayError, ConnectionError) as exc:
                # The actor restarts (state rebuilt from Redis) or Redis comes back:
                # the same batch is re-sent and the ledger makes that idempotent.
                RETRIES.inc()
                log.warning("batch %s failed (%s); retrying in %.2fs", batch_id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _heartbeat(self, redis: aioredis.Redis, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                await asyncio.gather(*(a.ping.remote() for a in self._actors))
                body = orjson.dumps({"at": time.time(), "actors": len(self._actors)})
                await redis.set(DISPATCHER_HEARTBEAT, body, ex=10)
                for tp in consumer.assignment():
                    high = consumer.highwater(tp)
                    if high is not None:
                        LAG.labels(str(tp.partition)).set(high - await consumer.position(tp))
            except Exception as exc:  # a beat is skipped, readiness notices the silence
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(2)


def _parse(record: ConsumerRecord) -> DrawRequested | None:
    try:
        return DrawRequested.loads(record.value)
    except SchemaError as exc:
        BAD_MESSAGES.inc()
        log.error("skipping bad request at %s:%s: %s", record.partition, record.offset, exc)
        return None


def main(settings: Settings) -> None:
    import uvloop

    logs.configure(settings.log_level)
    if settings.dispatcher_metrics_port:
        start_http_server(settings.dispatcher_metrics_port, addr="127.0.0.1")
    dispatcher = Dispatcher(settings)

    async def _run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, dispatcher.stop)
        await dispatcher.run()

    uvloop.run(_run())
