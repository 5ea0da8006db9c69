"""Webhooks: committed events become deliveries on the durable queue
(ledger/webhooks.py), and the deliverer POSTs what is due, signed.

At least once, never lost: a delivery is on the queue before the Kafka offset
of its event is committed, and leaves it only when a 2xx (or the last allowed
failure) is recorded. Everything in between can die: an event consumed again
makes the same delivery (its id is derived), and a delivery taken by a relay
that died is taken again when its lease runs out. The receiver dedupes on the
notification id, which every attempt carries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

import httpx
from redis.exceptions import RedisError

from domain.coupons import DAY_MS
from domain.events import now_ms
from domain.signing import WEBHOOK_SIGNATURE_HEADER, sign_webhook
from domain.webhooks import (
    Attempt,
    Delivery,
    Notification,
    Subscription,
    delivery_id,
    matches,
    notification,
)
from ledger.webhooks import WebhookStore
from relay.queue import work_forever
from runtime.settings import Settings

log = logging.getLogger("carnival.relay.webhooks")

# Deliveries taken per step, and POSTs in flight at once.
TAKE = 200
CONCURRENCY = 32
# How long an attempt's answer body is kept in its record, for the delivery log.
ERROR_CHARS = 300
# How often delivered and dead deliveries older than the retention are forgotten.
TRIM_EVERY_S = 300.0


class Subscriptions:
    """The subscriptions, reloaded only when their version moved."""

    def __init__(self, store: WebhookStore) -> None:
        self._store = store
        self._version = -1
        self.by_id: dict[str, Subscription] = {}

    async def current(self) -> dict[str, Subscription]:
        version = await self._store.version()
        if version != self._version:
            self.by_id = {s.id: s for s in await self._store.subscriptions()}
            self._version = version
        return self.by_id


def deliveries(events: Iterable[dict[str, Any]], subs: Iterable[Subscription]) -> list[Delivery]:
    """What a batch of committed events must deliver."""
    notes: list[Notification] = []
    for event in events:
        try:
            note = notification(event)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("event %r is not one webhooks understand (%s); skipped", event, exc)
            continue
        if note is not None:
            notes.append(note)
    if not notes:
        return []
    subs = list(subs)
    out = []
    for note in notes:
        body = note.body().decode()
        for sub in subs:
            if matches(sub, note):
                out.append(
                    Delivery(
                        id=delivery_id(sub.id, note.id),
                        subscription_id=sub.id,
                        tenant_id=note.tenant_id,
                        partner_id=sub.partner_id,
                        notification_id=note.id,
                        event_type=note.type,
                        url=sub.url,
                        body=body,
                        created_at=note.occurred_at,
                        next_at=note.occurred_at,
                    )
                )
    return out


class Deliverer:
    def __init__(self, store: WebhookStore, subs: Subscriptions, settings: Settings) -> None:
        self._store = store
        self._subs = subs
        self._retention_ms = settings.webhook_retention_days * DAY_MS
        self._max_attempts = settings.webhook_max_attempts
        self._base_ms = settings.webhook_backoff_ms
        self._cap_ms = settings.webhook_backoff_cap_ms
        timeout_s = settings.webhook_timeout_ms / 1000
        # Taken deliveries stay ours this long: longer than an attempt can last.
        self._lease_ms = settings.webhook_timeout_ms * 2 + 5000
        self._client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._slots = asyncio.Semaphore(CONCURRENCY)

    async def close(self) -> None:
        await self._client.aclose()

    async def trim(self) -> None:
        """Forget finished deliveries past the retention (the delivery log's horizon)."""
        while True:
            try:
                gone = await self._store.outbox.trim(now_ms() - self._retention_ms)
                if gone:
                    log.info("forgot %d finished deliveries past the retention", gone)
            except RedisError as exc:
                log.warning("could not trim old deliveries (%s)", exc)
            await asyncio.sleep(TRIM_EVERY_S)

    async def run(self) -> None:
        await work_forever(
            lambda: self._store.take_due(now_ms(), self._lease_ms, TAKE), self._send, "webhook"
        )

    async def _send(self, taken: list[tuple[str, Delivery]]) -> None:
        subs = await self._subs.current()
        await asyncio.gather(*(self._attempt(read, d, subs) for read, d in taken))

    async def _attempt(self, read: str, delivery: Delivery, subs: dict[str, Subscription]) -> None:
        async with self._slots:
            sub = subs.get(delivery.subscription_id)
            if sub is None:
                attempt = Attempt(at=now_ms(), status_code=None, error="subscription deleted", ms=0)
                done = delivery.after(attempt, 1, self._base_ms, self._cap_ms)
            else:
                attempt = await self._post(sub, delivery)
                done = delivery.after(attempt, self._max_attempts, self._base_ms, self._cap_ms)
            try:
                recorded = await self._store.replace(read, done, now_ms())
            except RedisError as exc:  # still leased: sent again once the lease runs out
                log.warning("could not record delivery %s (%s)", delivery.id, exc)
                return
            if not recorded:
                log.info(
                    "delivery %s changed while being sent; its attempt is not recorded", delivery.id
                )
            elif done.state == "dead":
                log.warning(
                    "delivery %s dead-lettered after %d attempts: %s",
                    delivery.id,
                    done.attempt_count,
                    attempt.error,
                )

    async def _post(self, sub: Subscription, delivery: Delivery) -> Attempt:
        body = delivery.body.encode()
        started, at = time.monotonic(), now_ms()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Carnival-Webhooks/1",
            WEBHOOK_SIGNATURE_HEADER: sign_webhook(sub.secret.encode(), body, at // 1000),
            "X-Carnival-Webhook-Id": delivery.notification_id,
            "X-Carnival-Webhook-Type": delivery.event_type,
            "X-Carnival-Delivery": delivery.id,
        }
        code: int | None = None
        try:
            reply = await self._client.post(delivery.url, content=body, headers=headers)
            code = reply.status_code
            error = "" if 200 <= code < 300 else f"HTTP {code}: {reply.text[:ERROR_CHARS]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
        ms = int((time.monotonic() - started) * 1000)
        return Attempt(at=at, status_code=code, error=error, ms=ms)
