"""Kafka -> Ray dispatcher: polls in, one actor call per (partition, actor), results out.

Two steps joined by a bounded queue (arroyo-style, STYLE.md):

1. **poll & call** — ``getmany`` on REQUESTS, ``route`` the records to calls
   (one per partition and actor, at most ``batch_max`` requests each) and start
   the actor calls; the work goes on the queue. With ``pipeline_depth`` polls
   in the queue, an actor decides poll N+1 while poll N's ledger commit is in
   flight.
2. **produce & commit** — in poll order: await the calls, ``fan_out`` their
   outcomes and replies, wait for Kafka's acks, and only then hand the poll's
   offsets to the offset committer, which commits the latest it was given
   while the next poll is produced (a commit is a broker round trip that no
   reply should wait for).

A crash anywhere re-delivers every poll whose offsets were not committed; the
actor answers a re-delivered request with the outcome already decided, so
nothing acknowledged is lost and nothing is decided twice. A call that keeps
failing past ``CALL_RETRY_DEADLINE_S`` stops the dispatcher (the supervisor
restarts it, and it resumes from the committed offsets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from prometheus_client import Counter, Gauge, Histogram, start_http_server
from ray.actor import ActorHandle

from actors.fanout import fan_out
from actors.owner_actor import owner_actor
from actors.routing import Call, next_offsets, route
from domain.road import BatchResult
from domain.topics import REQUESTS
from ledger import writes
from runtime import heap, logs
from runtime.ray_env import connect
from runtime.settings import Settings

log = logging.getLogger("carnival.dispatcher")

GROUP_ID = "carnival-dispatcher"
POLL_TIMEOUT_MS = 100
# A fetch returns as soon as there is a record, so a quiet system answers at once;
# under load requests pile up while the polls in flight are decided, and the next
# poll takes them all (batches grow with load, no timer adds latency). An empty
# fetch waits this long at the broker: when idle, a few fetches a second, not hundreds.
FETCH_MIN_BYTES = 1
FETCH_WAIT_MS = 100
# Records per poll; each record carries up to the api's REQUESTS_PER_RECORD requests.
RECORDS_PER_POLL = 500
# A call failing for longer than this stops the dispatcher with an error.
CALL_RETRY_DEADLINE_S = 120.0
CALL_RETRY_FIRST_S = 0.05
CALL_RETRY_MAX_S = 2.0
OFFSET_COMMIT_EVERY_S = 0.1
# How long a rebalance waits for the polls in flight to be produced and committed.
DRAIN_TIMEOUT_S = 30.0
HEARTBEAT_EVERY_S = 2.0
HEARTBEAT_TTL_S = 10

BATCH_SIZE = Histogram(
    "carnival_dispatch_batch_size",
    "Requests per actor call",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
ACTOR_CALL = Histogram("carnival_actor_call_seconds", "Actor decide_batch call time")
DECISIONS = Counter("carnival_decisions_total", "Requests answered")
RETRIES = Counter("carnival_dispatch_retries_total", "Actor calls re-sent after a failure")
LAG = Gauge("carnival_consumer_lag", "Request records not yet consumed", ["partition"])
IN_FLIGHT = Gauge("carnival_dispatch_polls_in_flight", "Polls decided or deciding, not committed")


class CallFailed(RuntimeError):
    """An actor call kept failing past CALL_RETRY_DEADLINE_S."""


@dataclass
class Work:
    """One poll on its way: its calls running, its offsets to commit when produced."""

    offsets: dict
    results: asyncio.Future[list[BatchResult]]


class _OffsetCommitter:
    """Commits a poll's offsets once every record produced for it is acked, in poll
    order, at most every OFFSET_COMMIT_EVERY_S: a commit is a broker request, and
    committing later only means a crash re-delivers a little more, which the ledger
    answers."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self._pending: list[tuple[dict, list[asyncio.Future[Any]]]] = []
        self._task: asyncio.Task[None] | None = None

    def commit(self, offsets: dict, acks: list[asyncio.Future[Any]]) -> None:
        self._pending.append((offsets, acks))
        if self._task is None or self._task.done():
            if self._task is not None:
                self._task.result()  # a failed produce or commit stops the dispatcher
            self._task = asyncio.ensure_future(self._run())

    async def flush(self) -> None:
        while self._task is not None and not self._task.done():
            await self._task
        if self._task is not None:
            self._task.result()

    async def _run(self) -> None:
        while self._pending:
            pending, self._pending = self._pending, []
            latest: dict = {}
            for offsets, acks in pending:
                await asyncio.gather(*acks)
                latest.update(offsets)
            await self._consumer.commit(latest)
            await asyncio.sleep(OFFSET_COMMIT_EVERY_S)


class _DrainOnRevoke(ConsumerRebalanceListener):
    def __init__(self, queue: asyncio.Queue[Work]) -> None:
        self._queue = queue
        self.offsets: _OffsetCommitter | None = None

    async def on_partitions_revoked(self, revoked: object) -> None:
        # Produce and commit what was polled before the partitions move on.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), DRAIN_TIMEOUT_S)
            if self.offsets is not None:
                await self.offsets.flush()

    async def on_partitions_assigned(self, assigned: object) -> None:
        return None


class Dispatcher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = asyncio.Event()
        self._actors: list[ActorHandle] = []

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        s = self.settings
        connect(s.ray_address, s.ray_namespace)
        self._actors = [owner_actor(i, s.redis_url, s.ray_namespace) for i in range(s.actor_count)]
        queue: asyncio.Queue[Work] = asyncio.Queue(maxsize=max(1, s.pipeline_depth))
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=GROUP_ID,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=RECORDS_PER_POLL,
            fetch_max_wait_ms=FETCH_WAIT_MS,
            fetch_min_bytes=FETCH_MIN_BYTES,
        )
        rebalance = _DrainOnRevoke(queue)
        consumer.subscribe([REQUESTS.name], listener=rebalance)
        producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap, acks="all", enable_idempotence=True, linger_ms=0
        )
        redis = aioredis.Redis.from_url(s.redis_url)
        await producer.start()
        await consumer.start()
        heap.settle()
        heartbeat = asyncio.create_task(self._heartbeat(redis, consumer))
        offsets = rebalance.offsets = _OffsetCommitter(consumer)
        finisher = asyncio.create_task(self._finish(queue, offsets, producer))
        log.info(
            "dispatcher running: %d actor(s), %d polls in flight, calls of ≤ %d requests",
            len(self._actors),
            queue.maxsize,
            s.batch_max,
        )
        try:
            while not self._stop.is_set() and not finisher.done():
                polled = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
                if polled:
                    calls = route(polled, len(self._actors), s.batch_max)
                    work = Work(next_offsets(polled), asyncio.ensure_future(self._decide(calls)))
                    queued = asyncio.ensure_future(queue.put(work))
                    # A full queue waits for step 2, unless step 2 has failed.
                    await asyncio.wait({queued, finisher}, return_when=asyncio.FIRST_COMPLETED)
                    if not queued.done():
                        queued.cancel()
                        break
                    IN_FLIGHT.set(queue.qsize())
            if not finisher.done():
                await asyncio.wait_for(queue.join(), DRAIN_TIMEOUT_S)
                await offsets.flush()
        finally:
            finisher.cancel()
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await finisher  # re-raises CallFailed or a Kafka error: the process exits 1
            await consumer.stop()
            await producer.stop()
            await redis.aclose()

    async def _finish(
        self, queue: asyncio.Queue[Work], offsets: _OffsetCommitter, producer: AIOKafkaProducer
    ) -> None:
        """Step 2, in poll order: produce a poll's outcomes and replies, then commit it."""
        while True:
            work = await queue.get()
            results = await work.results
            acks = []
            for result in results:
                for send in fan_out(result):
                    acks.append(await producer.send(send.topic, send.value, key=send.key))
                DECISIONS.inc(result.decided)
            # The next poll's replies need not wait for these acks: the committer does.
            offsets.commit(work.offsets, acks)
            queue.task_done()
            IN_FLIGHT.set(queue.qsize())

    async def _decide(self, calls: list[Call]) -> list[BatchResult]:
        return list(await asyncio.gather(*(self._call(call) for call in calls)))

    async def _call(self, call: Call) -> BatchResult:
        BATCH_SIZE.observe(call.requests)
        deadline = time.monotonic() + CALL_RETRY_DEADLINE_S
        delay = CALL_RETRY_FIRST_S
        while True:
            started = time.perf_counter()
            try:
                actor = self._actors[call.actor]
                result = await actor.decide_batch.remote(call.batch_id, call.records)
                ACTOR_CALL.observe(time.perf_counter() - started)
                return result
            except Exception as exc:
                # The actor restarts (state rebuilt from Redis) or Redis comes back:
                # the same batch is re-sent and the ledger makes that idempotent.
                if time.monotonic() + delay > deadline:
                    raise CallFailed(
                        f"batch {call.batch_id} failed for {CALL_RETRY_DEADLINE_S:.0f}s: {exc}"
                    ) from exc
                RETRIES.inc()
                log.warning("batch %s failed (%s); retrying in %.2fs", call.batch_id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, CALL_RETRY_MAX_S)

    async def _heartbeat(self, redis: aioredis.Redis, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                await asyncio.gather(*(a.ping.remote() for a in self._actors))
                body = orjson.dumps({"at": time.time(), "actors": len(self._actors)})
                pipe = redis.pipeline(transaction=False)
                writes.dispatcher_heartbeat(pipe, body, HEARTBEAT_TTL_S)
                await pipe.execute()
                for tp in consumer.assignment():
                    high = consumer.highwater(tp)
                    if high is not None:
                        LAG.labels(str(tp.partition)).set(high - await consumer.position(tp))
            except Exception as exc:  # a beat is skipped, readiness notices the silence
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(HEARTBEAT_EVERY_S)


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
