"""Request-reply over Kafka: wait for the outcome of a request we produced.

Every api instance reads all partitions of the replies topic from the end
and keeps the futures of its own requests; replies for other instances are
skipped. Futures are registered before the request is produced, so a fast
reply cannot be missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from domain.topics import DRAW_REPLIES

log = logging.getLogger("carnival.api.replies")


class ReplyWaiter:
    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self, partitions: set[int]) -> None:
        """``partitions`` of the replies topic, as the producer's metadata knows them."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            tps = [TopicPartition(DRAW_REPLIES.name, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:  # resolve positions now: replies from here on are ours to see
                await consumer.position(tp)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def expect(self, request_key: str) -> asyncio.Future[dict[str, Any]]:
        fut = self._pending.get(request_key)
        if fut is None or fut.done():
            fut = asyncio.get_running_loop().create_future()
            self._pending[request_key] = fut
        return fut

    def forget(self, request_key: str) -> None:
        self._pending.pop(request_key, None)

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                polled = await consumer.getmany(timeout_ms=200)
            except Exception as exc:
                log.warning("reply consumer error: %s", exc)
                await asyncio.sleep(0.5)
                continue
            for records in polled.values():
                for record in records:
                    self._resolve(record.value)

    def _resolve(self, raw: bytes) -> None:
        try:
            outcome = orjson.loads(raw)
            fut = self._pending.pop(outcome["event_id"], None)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if fut is not None and not fut.done():
            fut.set_result(outcome)
