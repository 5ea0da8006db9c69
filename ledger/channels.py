"""Upstream channels and their issuances.

``channels``: hash, channel id -> Channel JSON; ``keys``: hash, channel id ->
the PEM of Carnival's private key for that channel (it signs what Carnival
sends the upstream, so it is kept like partners' HMAC secrets: in the ledger,
never shown). Issuances live on a durable delay queue (ledger/outbox.py, named
``ch``, one record per coupon, listed per channel). ``void``: sorted set of
``<tenant>/<template>/<coupon>`` whose issuance failed, until their coupon is
voided (api/expiry_sweep.py asks for it on the road).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from domain.channels import FINAL, Channel, Issuance
from ledger import writes
from ledger.keys import PREFIX
from ledger.outbox import Entry, Outbox

_TAG = f"{PREFIX}:{{ch}}"
CHANNELS = f"{_TAG}:channels"
KEYS = f"{_TAG}:keys"
TO_VOID = f"{_TAG}:void"
AUDIT_VERSION = 1


def void_member(issuance: Issuance) -> str:
    return f"{issuance.tenant_id}/{issuance.template_id}/{issuance.coupon_id}"


class ChannelStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self.outbox = Outbox(client, "ch")

    # -- channels ------------------------------------------------------------------
    async def add(self, channel: Channel, private_pem: bytes, who: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(CHANNELS, channel.id, channel.model_dump_json())
            pipe.hset(KEYS, channel.id, private_pem)
            writes.audit(pipe, channel.tenant_id, who, "channel.created", channel.id, AUDIT_VERSION)
            await pipe.execute()

    async def channel(self, channel_id: str) -> Channel | None:
        raw = await self.redis.hget(CHANNELS, channel_id)
        return Channel.model_validate_json(raw) if raw else None

    async def private_key(self, channel_id: str) -> bytes | None:
        return await self.redis.hget(KEYS, channel_id)

    async def of_tenant(self, tenant_id: str) -> list[Channel]:
        found = [Channel.model_validate_json(raw) for raw in await self.redis.hvals(CHANNELS)]
        return sorted((c for c in found if c.tenant_id == tenant_id), key=lambda c: c.created_at)

    # -- issuances -----------------------------------------------------------------
    async def enqueue(self, issuances: Sequence[Issuance]) -> int:
        """Record each issuance, pending and due now, unless recorded before."""
        return await self.outbox.enqueue(
            [Entry(i.coupon_id, i.model_dump_json(), i.created_at, i.channel_id) for i in issuances]
        )

    async def take_due(self, now_ms: int, lease_ms: int, limit: int) -> list[tuple[str, Issuance]]:
        taken = await self.outbox.take_due(now_ms, lease_ms, limit)
        return [(raw, Issuance.model_validate_json(raw)) for _, raw in taken]

    async def replace(self, read: str, issuance: Issuance, query_wait_ms: int, now_ms: int) -> bool:
        """Store ``issuance`` if still as ``read``: a final one leaves the queue (a
        failed one joins the coupons to void, in the same step), an undecided one is
        due again when it is next asked about."""
        if issuance.state in FINAL:
            place, at = "done", now_ms
        else:
            place, at = "due", issuance.due_at(query_wait_ms, now_ms)
        also = (TO_VOID, void_member(issuance)) if issuance.state == "failed" else None
        return await self.outbox.replace(
            issuance.coupon_id, read, issuance.model_dump_json(), place, at, also
        )

    async def issuance(self, coupon_id: str) -> Issuance | None:
        raw = await self.outbox.get(coupon_id)
        return Issuance.model_validate_json(raw) if raw else None

    async def issuances(self, channel_id: str, offset: int, count: int) -> list[Issuance]:
        raws = await self.outbox.page(channel_id, offset, count)
        return [Issuance.model_validate_json(raw) for raw in raws]

    async def to_void(self, limit: int) -> list[str]:
        return [m.decode() for m in await self.redis.zrange(TO_VOID, 0, limit - 1)]

    async def voided(self, members: Sequence[str]) -> None:
        if members:
            await self.redis.zrem(TO_VOID, *members)
