"""Staff API keys of a tenant: created, listed and revoked by its admins.

A key is looked up by its hash on every request (``ledger.keys.api_key_key``,
outside the tenant's hash slot), and indexed in the tenant's ``api_keys`` hash
so an admin can list and revoke it. The two live in different slots, so they
are written in an order that never leaves a usable key unlisted: index first on
creation, lookup first on revocation.
"""

from __future__ import annotations

import time

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel

from domain.tokens import hash_api_key, new_api_key
from ledger import writes
from ledger.keys import TenantKeys, api_key_key

KEY_ID_CHARS = 12


class KeyRecord(BaseModel):
    key_id: str
    name: str
    role: str
    institution_id: str | None = None
    created_at: int
    created_by: str


def key_id(key_hash: str) -> str:
    return key_hash[:KEY_ID_CHARS]


class ApiKeyStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def create(
        self, tenant_id: str, role: str, name: str, institution_id: str | None, who: str
    ) -> tuple[str, KeyRecord]:
        """The new key's plaintext (shown once; Redis keeps its hash) and record."""
        key = new_api_key()
        key_hash = hash_api_key(key)
        record = KeyRecord(
            key_id=key_id(key_hash),
            name=name,
            role=role,
            institution_id=institution_id,
            created_at=int(time.time() * 1000),
            created_by=who,
        )
        keys = TenantKeys(tenant_id)
        await self.redis.hset(
            keys.api_keys, record.key_id, orjson.dumps({**record.model_dump(), "hash": key_hash})
        )
        pipe = self.redis.pipeline(transaction=True)
        writes.create_api_key(pipe, key_hash, tenant_id, role, name, institution_id)
        await pipe.execute()
        await self._audit(tenant_id, who, "api_key.created", record.key_id)
        return key, record

    async def records(self, tenant_id: str) -> list[KeyRecord]:
        raws = await self.redis.hvals(TenantKeys(tenant_id).api_keys)
        found = [KeyRecord.model_validate_json(r) for r in raws]
        return sorted(found, key=lambda r: (r.created_at, r.key_id))

    async def revoke(self, tenant_id: str, key_id_: str, who: str) -> bool:
        """False when the tenant has no key with that id."""
        keys = TenantKeys(tenant_id)
        raw = await self.redis.hget(keys.api_keys, key_id_)
        if raw is None:
            return False
        await self.redis.delete(api_key_key(orjson.loads(raw)["hash"]))
        await self.redis.hdel(keys.api_keys, key_id_)
        await self._audit(tenant_id, who, "api_key.revoked", key_id_)
        return True

    async def _audit(self, tenant_id: str, who: str, action: str, subject: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        writes.audit(pipe, tenant_id, who, action, subject, 0)
        await pipe.execute()
