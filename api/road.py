"""The api's end of the road: requests out in batches, replies back to their waiters.

``ask`` queues a request and waits for its outcome. Requests are packed, per
owner, into one REQUESTS record per flush, and one flush is in flight at a
time: when quiet a request leaves at once, under load the requests that arrive
while Kafka acknowledges a flush share the next one (a produce request costs the
broker ~0.4 ms of CPU here, so one per request would make it the bottleneck).
The dispatcher answers with one REPLIES record per api instance per batch,
keyed by the instance id; this instance reads every partition of REPLIES from
the end, skips other instances' records by key, and resolves its waiters by the
number it gave each request.

Contract of ``ask``: it returns the outcome event, or ``None`` when none came
within the timeout although Kafka acknowledged the request (it is queued and
will be decided: the caller answers 202); it raises ``KafkaError`` when the
request could not be queued (the caller answers 503; a retry with the same
request id is safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError

from domain.road import Kind, RequestRecord, Row, owner_key
from domain.topics import COUNT_HEADER, REPLIES, REQUESTS

log = logging.getLogger("carnival.api.road")

# Requests per REQUESTS record: bounds one record's size (~250 bytes each).
REQUESTS_PER_RECORD = 500
REPLY_POLL_TIMEOUT_MS = 200
REPLY_RETRY_S = 0.5


@dataclass(slots=True)
class _Waiter:
    outcome: asyncio.Future[dict[str, Any]]
    # Resolved when Kafka answered for the request's record: None if it was
    # acknowledged, else the error (a result, not an exception: nobody may look).
    delivered: asyncio.Future[KafkaError | None]


class Road:
    def __init__(self, producer: AIOKafkaProducer, bootstrap: str) -> None:
        self.instance_id = f"api-{uuid.uuid4().hex[:12]}"
        self._producer = producer
        self._bootstrap = bootstrap
        self._ids = itertools.count(1)
        self._waiters: dict[int, _Waiter] = {}
        # (kind, owner key) -> (kind, tenant, owner) and the rows queued for it. The
        # kind is part of it: kinds that share an owner (a template's claims and
        # write-offs) share its Kafka key, but each record carries one kind.
        self._outbox: dict[
            tuple[str, str], tuple[tuple[str, str, str], list[tuple[Row, _Waiter]]]
        ] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()  # sends of the flush in flight

    async def start(self, partitions: set[int]) -> None:
        """``partitions`` of REPLIES, as the producer's metadata knows them."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            tps = [TopicPartition(REPLIES.name, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:  # resolve positions now: replies from here on are ours to see
                await consumer.position(tp)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._reader = asyncio.create_task(self._read(consumer))

    async def stop(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._consumer is not None:
            await self._consumer.stop()

    async def ask(
        self,
        kind: Kind,
        tenant_id: str,
        owner_id: str,
        user_id: str,
        request_id: str,
        timeout_s: float,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        reply_id = next(self._ids)
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), loop.create_future())
        self._waiters[reply_id] = waiter
        key = (kind.name, owner_key(kind, tenant_id, owner_id))
        queued = self._outbox.get(key)
        if queued is None:
            if not self._outbox and not self._flushes:
                loop.call_soon(self._flush)
            queued = self._outbox[key] = ((kind.name, tenant_id, owner_id), [])
        queued[1].append(((user_id, request_id, reply_id, body), waiter))
        try:
            async with asyncio.timeout(timeout_s):
                return await waiter.outcome
        except TimeoutError:
            if waiter.delivered.done() and waiter.delivered.result() is None:
                return None
            raise KafkaTimeoutError("Kafka did not acknowledge the request in time") from None
        finally:
            self._waiters.pop(reply_id, None)

    async def submit(self, kind: Kind, tenant_id: str, owner_id: str, rows: list[Row]) -> None:
        """Queue requests nobody waits for (a job's: it reads the outcomes from the
        ledger); returns when Kafka has acknowledged every one, raises KafkaError."""
        key = owner_key(kind, tenant_id, owner_id).encode()
        deliveries = []
        for i in range(0, len(rows), REQUESTS_PER_RECORD):
            chunk = rows[i : i + REQUESTS_PER_RECORD]
            record = RequestRecord(kind.name, tenant_id, owner_id, "", chunk)
            deliveries.append(
                await self._producer.send(
                    REQUESTS.name,
                    record.dumps(),
                    key=key,
                    headers=[(COUNT_HEADER, str(len(chunk)).encode())],
                )
            )
        await asyncio.gather(*deliveries)

    def _flush(self) -> None:
        if self._flushes or not self._outbox:
            return
        outbox, self._outbox = self._outbox, {}
        for (_, key), (envelope, queued) in outbox.items():
            for i in range(0, len(queued), REQUESTS_PER_RECORD):
                chunk = queued[i : i + REQUESTS_PER_RECORD]
                task = asyncio.ensure_future(self._send(key, envelope, chunk))
                self._flushes.add(task)
                task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        if not self._flushes and self._outbox:
            self._flush()

    async def _send(
        self, key: str, envelope: tuple[str, str, str], queued: list[tuple[Row, _Waiter]]
    ) -> None:
        kind, tenant_id, owner_id = envelope
        record = RequestRecord(kind, tenant_id, owner_id, self.instance_id, [r for r, _ in queued])
        waiters = [waiter for _, waiter in queued]
        try:
            delivery = await self._producer.send(
                REQUESTS.name,
                record.dumps(),
                key=key.encode(),
                headers=[(COUNT_HEADER, str(len(queued)).encode())],
            )
            await delivery
        except KafkaError as exc:
            for waiter in waiters:
                waiter.delivered.set_result(exc)
                if not waiter.outcome.done():
                    waiter.outcome.set_exception(exc)
            return
        for waiter in waiters:
            waiter.delivered.set_result(None)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        mine = self.instance_id.encode()
        while True:
            try:
                polled = await consumer.getmany(timeout_ms=REPLY_POLL_TIMEOUT_MS)
            except Exception as exc:
                log.warning("reply consumer error: %s", exc)
                await asyncio.sleep(REPLY_RETRY_S)
                continue
            for records in polled.values():
                for record in records:
                    if record.key == mine:
                        self._resolve(record.value)

    def _resolve(self, raw: bytes) -> None:
        try:
            entries = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.error("undecodable reply record dropped")
            return
        for reply_id, outcome in entries:
            waiter = self._waiters.get(reply_id)
            if waiter is not None and not waiter.outcome.done():
                waiter.outcome.set_result(outcome)
