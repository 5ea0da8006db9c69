"""Webhook subscriptions, and their deliveries on a durable delay queue
(ledger/outbox.py, named ``wh``: one record per delivery, listed per
subscription, dead-lettered deliveries in its dead set).

``subs`` is a hash, subscription id -> Subscription JSON; ``version`` counts
its changes, so the relay reloads subscriptions only when they changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from domain.webhooks import Delivery, Subscription
from ledger import writes
from ledger.keys import PREFIX
from ledger.outbox import Entry, Outbox

_TAG = f"{PREFIX}:{{wh}}"
SUBS = f"{_TAG}:subs"
VERSION = f"{_TAG}:version"
# Subscriptions are not versioned; the audit entry's version field says so.
AUDIT_VERSION = 1


class WebhookStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self.outbox = Outbox(client, "wh")

    # -- subscriptions -------------------------------------------------------------
    async def add(self, sub: Subscription, who: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(SUBS, sub.id, sub.model_dump_json())
            pipe.incr(VERSION)
            writes.audit(pipe, sub.tenant_id, who, "webhook.created", sub.id, AUDIT_VERSION)
            await pipe.execute()

    async def remove(self, sub: Subscription, who: str) -> None:
        """Its pending deliveries are dead-lettered at their next attempt."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(SUBS, sub.id)
            pipe.incr(VERSION)
            writes.audit(pipe, sub.tenant_id, who, "webhook.deleted", sub.id, AUDIT_VERSION)
            await pipe.execute()

    async def subscription(self, subscription_id: str) -> Subscription | None:
        raw = await self.redis.hget(SUBS, subscription_id)
        return Subscription.model_validate_json(raw) if raw else None

    async def version(self) -> int:
        return int(await self.redis.get(VERSION) or 0)

    async def subscriptions(self) -> list[Subscription]:
        return [Subscription.model_validate_json(raw) for raw in (await self.redis.hvals(SUBS))]

    async def of_partner(self, tenant_id: str, partner_id: str) -> list[Subscription]:
        found = [
            s
            for s in await self.subscriptions()
            if s.tenant_id == tenant_id and s.partner_id == partner_id
        ]
        return sorted(found, key=lambda s: (s.created_at, s.id))

    # -- deliveries -----------------------------------------------------------------
    async def enqueue(self, deliveries: Sequence[Delivery]) -> int:
        """Queue each delivery unless queued before; returns how many were new."""
        return await self.outbox.enqueue(
            [Entry(d.id, d.model_dump_json(), d.created_at, d.subscription_id) for d in deliveries]
        )

    async def take_due(self, now_ms: int, lease_ms: int, limit: int) -> list[tuple[str, Delivery]]:
        """Deliveries due now, leased, each with the JSON read (what `replace` checks)."""
        taken = await self.outbox.take_due(now_ms, lease_ms, limit)
        return [(raw, Delivery.model_validate_json(raw)) for _, raw in taken]

    async def replace(self, read: str, delivery: Delivery, now_ms: int) -> bool:
        """Store ``delivery`` if its record is still ``read``; False if it changed."""
        if delivery.state == "pending":
            place, at = "due", delivery.next_at or now_ms
        else:
            place, at = ("dead" if delivery.state == "dead" else "done"), now_ms
        return await self.outbox.replace(delivery.id, read, delivery.model_dump_json(), place, at)

    async def delivery(self, delivery_id: str) -> tuple[str, Delivery] | None:
        raw = await self.outbox.get(delivery_id)
        return (raw, Delivery.model_validate_json(raw)) if raw else None

    async def deliveries(self, subscription_id: str, offset: int, count: int) -> list[Delivery]:
        """Newest first, from the ``offset``-th."""
        raws = await self.outbox.page(subscription_id, offset, count)
        return [Delivery.model_validate_json(raw) for raw in raws]
