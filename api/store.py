"""What the api reads and writes in Redis: tenants, API keys, activities, outcomes."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from domain.activity import Activity
from domain.ledger_keys import (
    DISPATCHER_HEARTBEAT,
    ActivityKeys,
    api_key_key,
    tenant_key,
)
from domain.tokens import hash_api_key

PENDING_TTL_S = 86_400


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    role: str  # admin | operator | analyst
    key_name: str


class Store:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def principal(self, api_key: str) -> Principal | None:
        row = await self.redis.hgetall(api_key_key(hash_api_key(api_key)))
        if not row:
            return None
        return Principal(
            tenant_id=row[b"tenant_id"].decode(),
            role=row[b"role"].decode(),
            key_name=row.get(b"name", b"").decode(),
        )

    async def shopper_secret(self, tenant_id: str) -> bytes | None:
        return await self.redis.hget(tenant_key(tenant_id), "shopper_secret")

    async def activity(self, activity_id: str) -> Activity | None:
        raw = await self.redis.get(ActivityKeys(activity_id).config)
        return Activity.model_validate_json(raw) if raw else None

    async def outcome(self, activity_id: str, request_key: str) -> dict | None:
        raw = await self.redis.hget(ActivityKeys(activity_id).outcomes, request_key)
        return orjson.loads(raw) if raw else None

    async def mark_pending(self, activity_id: str, request_key: str) -> None:
        await self.redis.set(ActivityKeys(activity_id).pending(request_key), 1, ex=PENDING_TTL_S)

    async def is_pending(self, activity_id: str, request_key: str) -> bool:
        return bool(await self.redis.exists(ActivityKeys(activity_id).pending(request_key)))

    async def dispatcher_heartbeat(self) -> dict | None:
        raw = await self.redis.get(DISPATCHER_HEARTBEAT)
        return orjson.loads(raw) if raw else None
