"""What the api reads and writes in Redis: tenants, keys, activities, outcomes, points.

Key names come from ``ledger.keys``; every read is addressed through
the caller's tenant, so another tenant's data is not even looked up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from domain.activity import Activity
from domain.draw import initial_stock
from domain.tokens import hash_api_key
from ledger.keys import (
    DISPATCHER_HEARTBEAT,
    ActivityKeys,
    TenantKeys,
    api_key_key,
)

PENDING_TTL_S = 86_400
MAX_CACHED_SECRETS = 100_000
AUDIT_MAX_LEN = 100_000


class VersionConflict(RuntimeError):
    """The activity changed between read and write; the caller should retry."""


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    role: str  # admin | operator | analyst
    key_name: str


@dataclass(frozen=True, slots=True)
class Progress:
    draws: int
    draws_today: int
    points: int


class Store:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        # Shopper secrets are set once per tenant and never rotated (yet), so they
        # are kept after the first read: one Redis round trip less per draw.
        self._secrets: dict[str, bytes] = {}

    # -- identity -------------------------------------------------------------
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
        secret = self._secrets.get(tenant_id)
        if secret is None:
            secret = await self.redis.hget(TenantKeys(tenant_id).record, "shopper_secret")
            if secret is not None and len(self._secrets) < MAX_CACHED_SECRETS:
                self._secrets[tenant_id] = secret
        return secret

    # -- activities -------------------------------------------------------------
    async def activity(self, tenant_id: str, activity_id: str) -> Activity | None:
        raw = await self.redis.get(ActivityKeys(tenant_id, activity_id).config)
        return Activity.model_validate_json(raw) if raw else None

    async def activities(self, tenant_id: str) -> list[Activity]:
        ids = sorted(
            m.decode() for m in await self.redis.smembers(TenantKeys(tenant_id).activities)
        )
        if not ids:
            return []
        raws = await self.redis.mget([ActivityKeys(tenant_id, i).config for i in ids])
        return [Activity.model_validate_json(r) for r in raws if r]

    async def create_activity(self, activity: Activity, who: str) -> bool:
        """False when the id is taken in this tenant."""
        keys = ActivityKeys(activity.tenant_id, activity.id)
        if not await self.redis.set(keys.config, activity.model_dump_json(), nx=True):
            return False
        pipe = self.redis.pipeline(transaction=True)
        for field, amount in initial_stock(activity).items():
            pipe.hsetnx(keys.stock, field, amount)
        pipe.sadd(TenantKeys(activity.tenant_id).activities, activity.id)
        self._audit(
            pipe, activity.tenant_id, who, "activity.created", activity.id, activity.version
        )
        await pipe.execute()
        return True

    async def replace_activity(
        self,
        before: Activity,
        after: Activity,
        who: str,
        action: str,
        stock_added: tuple[str, int] | None = None,
        stock_reset: dict[str, int] | None = None,
    ) -> None:
        """Write ``after`` only if the stored config is still ``before`` (same
        version); stock added (live) or the whole stock of a pool that has not
        started goes to the ledger in the same transaction."""
        keys = ActivityKeys(after.tenant_id, after.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(keys.config)
                raw = await pipe.get(keys.config)
                if raw is None or Activity.model_validate_json(raw).version != before.version:
                    raise VersionConflict(after.id)
                pipe.multi()
                pipe.set(keys.config, after.model_dump_json())
                if stock_added is not None:
                    pipe.hincrby(keys.stock, *stock_added)
                if stock_reset is not None:
                    pipe.delete(keys.stock)
                    if stock_reset:
                        pipe.hset(keys.stock, mapping=stock_reset)
                self._audit(pipe, after.tenant_id, who, action, after.id, after.version)
                await pipe.execute()
            except WatchError as exc:
                raise VersionConflict(after.id) from exc

    async def stock_left(self, tenant_id: str, activity_id: str) -> dict[str, int]:
        raw = await self.redis.hgetall(ActivityKeys(tenant_id, activity_id).stock)
        return {k.decode(): int(v) for k, v in raw.items()}

    def _audit(
        self, pipe: Any, tenant_id: str, who: str, action: str, subject: str, version: int
    ) -> None:
        entry = {"at": int(time.time() * 1000), "who": who, "action": action, "subject": subject}
        entry["version"] = version
        pipe.xadd(
            TenantKeys(tenant_id).audit,
            {k: str(v) for k, v in entry.items()},
            maxlen=AUDIT_MAX_LEN,
            approximate=True,
        )

    async def audit_log(self, tenant_id: str, count: int) -> list[dict[str, str]]:
        rows = await self.redis.xrevrange(TenantKeys(tenant_id).audit, count=count)
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in rows]

    # -- shoppers ---------------------------------------------------------------
    async def activity_and_outcome(
        self, tenant_id: str, activity_id: str, request_key: str
    ) -> tuple[Activity | None, dict | None]:
        """The activity and the request's outcome if already decided, in one round trip."""
        keys = ActivityKeys(tenant_id, activity_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.config)
        pipe.hget(keys.outcomes, request_key)
        config, outcome = await pipe.execute()
        activity = Activity.model_validate_json(config) if config else None
        return activity, orjson.loads(outcome) if outcome else None

    async def outcome(self, tenant_id: str, activity_id: str, request_key: str) -> dict | None:
        raw = await self.redis.hget(ActivityKeys(tenant_id, activity_id).outcomes, request_key)
        return orjson.loads(raw) if raw else None

    async def mark_pending(self, tenant_id: str, activity_id: str, request_key: str) -> None:
        key = ActivityKeys(tenant_id, activity_id).pending(request_key)
        await self.redis.set(key, 1, ex=PENDING_TTL_S)

    async def is_pending(self, tenant_id: str, activity_id: str, request_key: str) -> bool:
        key = ActivityKeys(tenant_id, activity_id).pending(request_key)
        return bool(await self.redis.exists(key))

    async def progress(self, tenant_id: str, activity_id: str, user_id: str, day: int) -> Progress:
        keys = ActivityKeys(tenant_id, activity_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(keys.users, user_id)
        pipe.hget(keys.day(day), user_id)
        pipe.hget(TenantKeys(tenant_id).points, user_id)
        draws, today, points = await pipe.execute()
        return Progress(int(draws or 0), int(today or 0), int(points or 0))

    async def wins(self, tenant_id: str, activity_id: str, user_id: str) -> list[dict]:
        keys = ActivityKeys(tenant_id, activity_id)
        joined = await self.redis.hget(keys.wins, user_id)
        if not joined:
            return []
        raws = await self.redis.hmget(keys.outcomes, joined.decode().split("\n"))
        return [orjson.loads(r) for r in raws if r]

    # -- points (minimal: a balance per user; the points issue adds the ledger) -----
    async def points(self, tenant_id: str, user_id: str) -> int:
        return int(await self.redis.hget(TenantKeys(tenant_id).points, user_id) or 0)

    async def grant_points(self, tenant_id: str, user_id: str, amount: int, who: str) -> int:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(TenantKeys(tenant_id).points, user_id, amount)
        self._audit(pipe, tenant_id, who, "points.granted", f"{user_id}:{amount}", 0)
        balance, _ = await pipe.execute()
        return int(balance)

    # -- operations --------------------------------------------------------------
    async def dispatcher_heartbeat(self) -> dict | None:
        raw = await self.redis.get(DISPATCHER_HEARTBEAT)
        return orjson.loads(raw) if raw else None
