"""The relay process: reads committed outcome events and carries them out of
Carnival: through the webhook queue to partners, through the issuance queue to
upstream channels.

Its consumer commits a batch's offsets only after everything the batch must
send is on the durable queues in Redis; a SIGKILL before that replays the
batch, and the queues keep one delivery per (subscription, event) and one
issuance per coupon however often it is replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from redis.exceptions import RedisError

from domain.topics import CLAIM_OUTCOMES, COUPON_CHANGES, DRAW_OUTCOMES, WRITEOFFS
from ledger import writes
from ledger.channels import ChannelStore
from ledger.templates import TemplateStore
from ledger.webhooks import WebhookStore
from relay.channels import ChannelLinks, Issuer, issuances
from relay.webhooks import Deliverer, Subscriptions, deliveries
from runtime import logs
from runtime.settings import Settings

log = logging.getLogger("carnival.relay")

TOPICS = (DRAW_OUTCOMES, CLAIM_OUTCOMES, COUPON_CHANGES, WRITEOFFS)
POLL_TIMEOUT_MS = 200
RECORDS_PER_POLL = 500
# Fetches wait for this much data or this long, whichever first (as the streams
# worker's do): a fetch per outcome record would cost the broker and this process
# CPU the draw path needs, and webhooks need not leave within milliseconds.
FETCH_MIN_BYTES = 256 * 1024
FETCH_MAX_WAIT_MS = 200
# Outcome records with no coupon in them are skipped unparsed: of a draw storm's
# records only those with a won coupon prize matter here.
_COUPON_MARK = b'"coupon_id":"c_'
HEARTBEAT_EVERY_S = 2.0
HEARTBEAT_TTL_S = 10
# A Redis outage holds the batch (its offsets stay uncommitted) and retries.
RETRY_S = 0.5


def _events(records: list[ConsumerRecord]) -> list[dict[str, Any]]:
    """Every record carries a JSON array of events (domain.topics.pack); those of
    a record that names no coupon make neither a notification nor an issuance."""
    events: list[dict[str, Any]] = []
    for record in records:
        if _COUPON_MARK not in record.value:
            continue
        try:
            batch = orjson.loads(record.value)
        except orjson.JSONDecodeError as exc:
            log.error("%s@%d is not JSON (%s); skipped", record.topic, record.offset, exc)
            continue
        events.extend(e for e in batch if isinstance(e, dict))
    return events


class Relay:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        s = self.settings
        redis = aioredis.Redis.from_url(s.redis_url)
        store = WebhookStore(redis)
        subs = Subscriptions(store)
        deliverer = Deliverer(store, subs, s)
        channels = ChannelStore(redis)
        links = ChannelLinks(TemplateStore(redis))
        issuer = Issuer(channels)
        consumer = AIOKafkaConsumer(
            *(t.name for t in TOPICS),
            bootstrap_servers=s.kafka_bootstrap,
            group_id=s.relay_group_id,
            enable_auto_commit=False,
            # A new group reads from the start: subscriptions only match events that
            # happened after they were made, so nothing old is sent and nothing is missed.
            auto_offset_reset="earliest",
            max_poll_records=RECORDS_PER_POLL,
            fetch_min_bytes=FETCH_MIN_BYTES,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        await consumer.start()
        tasks = [
            asyncio.create_task(self._heartbeat(redis)),
            asyncio.create_task(deliverer.run()),
            asyncio.create_task(deliverer.trim()),
            asyncio.create_task(issuer.run()),
            asyncio.create_task(self._consume(consumer, store, subs, channels, links)),
        ]
        log.info("relay running: group %s", s.relay_group_id)
        stop = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop:
                    task.result()  # a crashed loop ends the process (the supervisor restarts it)
        finally:
            for task in [stop, *tasks]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await consumer.stop()
            await deliverer.close()
            await issuer.close()
            await redis.aclose()

    async def _consume(
        self,
        consumer: AIOKafkaConsumer,
        store: WebhookStore,
        subs: Subscriptions,
        channels: ChannelStore,
        links: ChannelLinks,
    ) -> None:
        while True:
            polled = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            if not polled:
                continue
            events = [e for records in polled.values() for e in _events(records)]
            while True:
                try:
                    await store.enqueue(deliveries(events, (await subs.current()).values()))
                    await channels.enqueue(await issuances(events, links))
                    break
                except RedisError as exc:
                    log.warning("could not queue what a batch must send (%s); retrying", exc)
                    await asyncio.sleep(RETRY_S)
            await consumer.commit()

    async def _heartbeat(self, redis: aioredis.Redis) -> None:
        while True:
            try:
                async with redis.pipeline(transaction=False) as pipe:
                    writes.relay_heartbeat(pipe, orjson.dumps({"at": time.time()}), HEARTBEAT_TTL_S)
                    await pipe.execute()
            except RedisError as exc:
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(HEARTBEAT_EVERY_S)


def main(settings: Settings) -> None:
    import uvloop

    logs.configure(settings.log_level)
    relay = Relay(settings)

    async def _run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, relay.stop)
        await relay.run()

    uvloop.run(_run())
