"""Partners as the ledger holds them: the record per tenant, the HMAC secret
beside it, the global index from partner id to tenant that a signed request is
resolved by, and the global index of RSA keys that keeps one key to one partner.

Every change goes to the tenant's audit log in the transaction that makes it.
Records are changed optimistically (WATCH, then MULTI): a change read on a
record another operator changed meanwhile is read and applied again, so two
changes to one partner (a disable and a key replacement) never undo each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from domain.partners import Partner
from domain.signing import PartnerKey
from ledger import writes
from ledger.keys import PARTNER_KEYS, PARTNER_TENANTS, TenantKeys

# Reads and re-applies a change when another write to the tenant's partners (or to
# the key index) landed between its read and its write; operators' changes are rare,
# so losing this many races in a row means something is wrong.
WRITE_ATTEMPTS = 5
# Partners have no version yet; the audit entry's version field says so.
AUDIT_VERSION = 1


class PublicKeyInUse(RuntimeError):
    """The RSA key is registered for another partner (of any tenant)."""


class PartnerChanged(RuntimeError):
    """Concurrent changes kept winning the race for `WRITE_ATTEMPTS` attempts."""


@dataclass(frozen=True, slots=True)
class PartnerWithKey:
    partner: Partner
    key: PartnerKey


class PartnerStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    # -- writes ------------------------------------------------------------------
    async def create(self, partner: Partner, secret: str | None, who: str) -> None:
        """Raises `PublicKeyInUse`, `PartnerChanged`."""
        keys = TenantKeys(partner.tenant_id)
        fingerprint = partner.fingerprint
        for _ in range(WRITE_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    if fingerprint is not None:
                        await _claimable(pipe, fingerprint, partner.id)
                    pipe.multi()
                    pipe.hset(keys.partners, partner.id, partner.model_dump_json())
                    if secret is not None:
                        pipe.hset(keys.partner_secrets, partner.id, secret)
                    if fingerprint is not None:
                        pipe.hset(PARTNER_KEYS, fingerprint, partner.id)
                    pipe.hset(PARTNER_TENANTS, partner.id, partner.tenant_id)
                    writes.audit(
                        pipe, partner.tenant_id, who, "partner.created", partner.id, AUDIT_VERSION
                    )
                    await pipe.execute()
                    return
                except WatchError:
                    continue
        raise PartnerChanged(partner.id)

    async def update(
        self,
        tenant_id: str,
        partner_id: str,
        change: Callable[[Partner], Partner],
        who: str,
        action: str,
    ) -> Partner | None:
        """Apply ``change`` to the stored partner and write the result; None if the
        tenant has no such partner. ``change`` may raise (a rule of domain.partners):
        nothing is written then. Raises `PublicKeyInUse`, `PartnerChanged`."""
        keys = TenantKeys(tenant_id)
        for _ in range(WRITE_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(keys.partners)
                    raw = await pipe.hget(keys.partners, partner_id)
                    if raw is None:
                        return None
                    before = Partner.model_validate_json(raw)
                    after = change(before)
                    old, new = before.fingerprint, after.fingerprint
                    release = False
                    if new != old:
                        if new is not None:
                            await _claimable(pipe, new, partner_id)
                        if old is not None:
                            release = await _held_by(pipe, old, partner_id)
                    pipe.multi()
                    pipe.hset(keys.partners, partner_id, after.model_dump_json())
                    if release:
                        pipe.hdel(PARTNER_KEYS, old)
                    if new is not None and new != old:
                        pipe.hset(PARTNER_KEYS, new, partner_id)
                    writes.audit(pipe, tenant_id, who, action, partner_id, AUDIT_VERSION)
                    await pipe.execute()
                    return after
                except WatchError:
                    continue
        raise PartnerChanged(partner_id)

    async def set_secret(self, partner: Partner, secret: str, who: str) -> None:
        """The HMAC partner's new secret; the old one stops verifying at once."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(TenantKeys(partner.tenant_id).partner_secrets, partner.id, secret)
        writes.audit(
            pipe, partner.tenant_id, who, "partner.secret_rotated", partner.id, AUDIT_VERSION
        )
        await pipe.execute()

    # -- reads -------------------------------------------------------------------
    async def partner(self, tenant_id: str, partner_id: str) -> Partner | None:
        raw = await self.redis.hget(TenantKeys(tenant_id).partners, partner_id)
        return Partner.model_validate_json(raw) if raw else None

    async def partners(self, tenant_id: str) -> list[Partner]:
        raws = await self.redis.hvals(TenantKeys(tenant_id).partners)
        return sorted((Partner.model_validate_json(r) for r in raws), key=lambda p: p.created_at)

    async def with_key(self, partner_id: str) -> PartnerWithKey | None:
        """The partner a signed request names, with what verifies it; None if unknown."""
        tenant = await self.redis.hget(PARTNER_TENANTS, partner_id)
        if tenant is None:
            return None
        keys = TenantKeys(tenant.decode())
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(keys.partners, partner_id)
        pipe.hget(keys.partner_secrets, partner_id)
        raw, secret = await pipe.execute()
        if raw is None:
            return None
        partner = Partner.model_validate_json(raw)
        material = secret if partner.uses_secret else (partner.public_key_pem or "").encode()
        if not material:
            return None
        return PartnerWithKey(partner, PartnerKey(partner.algorithm, material))

    async def remember_request(
        self, tenant_id: str, partner_id: str, request_id: str, entry: bytes
    ) -> bytes:
        """Record what a partner's request id stands for, unless it already stands
        for something; returns what it stands for now."""
        index, field = TenantKeys(tenant_id).partner_requests, f"{partner_id}:{request_id}"
        if await self.redis.hsetnx(index, field, entry):
            return entry
        return await self.redis.hget(index, field)

    async def recalled_request(
        self, tenant_id: str, partner_id: str, request_id: str
    ) -> bytes | None:
        index = TenantKeys(tenant_id).partner_requests
        return await self.redis.hget(index, f"{partner_id}:{request_id}")

    async def remember_nonce(self, tenant_id: str, suffix: str, ttl_s: int) -> bool:
        """False when the nonce was seen within its window: a replay."""
        key = TenantKeys(tenant_id).nonce(suffix)
        return bool(await self.redis.set(key, 1, nx=True, ex=ttl_s))


async def _held_by(pipe: Pipeline, fingerprint: str, partner_id: str) -> bool:
    """Whether the key is ``partner_id``'s; watched, so the answer holds until EXEC."""
    await pipe.watch(PARTNER_KEYS)
    holder = await pipe.hget(PARTNER_KEYS, fingerprint)
    return holder is not None and holder.decode() == partner_id


async def _claimable(pipe: Pipeline, fingerprint: str, partner_id: str) -> None:
    """Raise `PublicKeyInUse` unless the key is free or already ``partner_id``'s."""
    await pipe.watch(PARTNER_KEYS)
    holder = await pipe.hget(PARTNER_KEYS, fingerprint)
    if holder is not None and holder.decode() != partner_id:
        raise PublicKeyInUse(fingerprint)
