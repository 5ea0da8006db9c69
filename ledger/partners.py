"""Partners as the ledger holds them: the record per tenant, the HMAC secret
beside it, and the global index from partner id to tenant that a signed
request is resolved by."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from domain.partners import Partner
from domain.signing import PartnerKey
from ledger import writes
from ledger.keys import PARTNER_TENANTS, TenantKeys


@dataclass(frozen=True, slots=True)
class PartnerWithKey:
    partner: Partner
    key: PartnerKey


class PartnerStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def create(self, partner: Partner, secret: str | None, who: str) -> None:
        keys = TenantKeys(partner.tenant_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.partners, partner.id, partner.model_dump_json())
        if secret is not None:
            pipe.hset(keys.partner_secrets, partner.id, secret)
        pipe.hset(PARTNER_TENANTS, partner.id, partner.tenant_id)
        writes.audit(pipe, partner.tenant_id, who, "partner.created", partner.id, 1)
        await pipe.execute()

    async def replace(self, partner: Partner, who: str, action: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(TenantKeys(partner.tenant_id).partners, partner.id, partner.model_dump_json())
        writes.audit(pipe, partner.tenant_id, who, action, partner.id, 1)
        await pipe.execute()

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

    async def remember_nonce(self, tenant_id: str, suffix: str, ttl_s: int) -> bool:
        """False when the nonce was seen within its window: a replay."""
        key = TenantKeys(tenant_id).nonce(suffix)
        return bool(await self.redis.set(key, 1, nx=True, ex=ttl_s))
