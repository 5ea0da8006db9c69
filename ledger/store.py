"""The api's side of the ledger (asynchronous): tenants, keys, activities, outcomes, points.

Key names come from ``ledger.keys`` and writes from ``ledger.writes``; every
read is addressed through the caller's tenant, so another tenant's data is not
even looked up.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from domain.activity import Activity
from domain.tokens import hash_api_key
from ledger import writes
from ledger.keys import (
    DISPATCHER_HEARTBEAT,
    ActivityKeys,
    TemplateKeys,
    TenantKeys,
    api_key_key,
)

MAX_CACHED_SECRETS = 100_000


class VersionConflict(RuntimeError):
    """The activity changed between read and write; the caller should retry."""


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    role: str  # admin | operator | analyst
    key_name: str
    # An analyst key may be scoped to one institution (domain.visibility).
    institution_id: str | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """What draw eligibility needs to know about a user and the pool."""

    draws: int
    draws_today: int
    points: int
    total_draws: int  # the whole activity's, for ``max_draws``
    stock: dict[str, int]
    draws_month: int = 0
    bonus: tuple[int, int, int] = (0, 0, 0)  # chances in all, of today, of this month


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
            institution_id=row[b"institution_id"].decode() if b"institution_id" in row else None,
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
        writes.install_activity(pipe, activity)
        writes.audit(
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
        stock_reset: bool = False,
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
                writes.put_config(pipe, after)
                if stock_added is not None:
                    writes.add_stock(pipe, after, *stock_added)
                if stock_reset:
                    writes.reset_stock(pipe, after)
                writes.audit(pipe, after.tenant_id, who, action, after.id, after.version)
                await pipe.execute()
            except WatchError as exc:
                raise VersionConflict(after.id) from exc

    async def stock_left(self, tenant_id: str, activity_id: str) -> dict[str, int]:
        raw = await self.redis.hgetall(ActivityKeys(tenant_id, activity_id).stock)
        return {k.decode(): int(v) for k, v in raw.items()}

    async def audit_log(self, tenant_id: str, count: int) -> list[dict[str, str]]:
        rows = await self.redis.xrevrange(TenantKeys(tenant_id).audit, count=count)
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in rows]

    # -- shoppers ---------------------------------------------------------------
    async def outcome(self, tenant_id: str, activity_id: str, request_key: str) -> dict | None:
        raw = await self.redis.hget(ActivityKeys(tenant_id, activity_id).outcomes, request_key)
        return orjson.loads(raw) if raw else None

    async def mark_pending(self, tenant_id: str, activity_id: str, request_key: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        writes.mark_pending(pipe, tenant_id, activity_id, request_key)
        await pipe.execute()

    async def is_pending(self, tenant_id: str, activity_id: str, request_key: str) -> bool:
        key = ActivityKeys(tenant_id, activity_id).pending(request_key)
        return bool(await self.redis.exists(key))

    async def progress(
        self, tenant_id: str, activity_id: str, user_id: str, day: int, month: int
    ) -> Progress:
        """``day`` and ``month``: the activity's local ones now (domain.draw.period)."""
        keys = ActivityKeys(tenant_id, activity_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(keys.users, user_id)
        pipe.hget(keys.day(day), user_id)
        pipe.hget(TenantKeys(tenant_id).points, user_id)
        pipe.get(keys.draws)
        pipe.hgetall(keys.stock)
        pipe.hget(keys.month(month), user_id)
        for span in (None, day, month):
            pipe.hget(keys.bonus(span), user_id)
        draws, today, points, total, stock, this_month, *bonus = await pipe.execute()
        return Progress(
            int(draws or 0),
            int(today or 0),
            int(points or 0),
            int(total or 0),
            {k.decode(): int(v) for k, v in stock.items()},
            int(this_month or 0),
            (int(bonus[0] or 0), int(bonus[1] or 0), int(bonus[2] or 0)),
        )

    async def top_up_outcome(
        self, tenant_id: str, activity_id: str, request_key: str
    ) -> dict | None:
        raw = await self.redis.hget(
            ActivityKeys(tenant_id, activity_id).quota_outcomes, request_key
        )
        return orjson.loads(raw) if raw else None

    async def wins(self, tenant_id: str, activity_id: str, user_id: str) -> list[dict]:
        keys = ActivityKeys(tenant_id, activity_id)
        joined = await self.redis.hget(keys.wins, user_id)
        if not joined:
            return []
        raws = await self.redis.hmget(keys.outcomes, joined.decode().split("\n"))
        return [orjson.loads(r) for r in raws if r]

    # -- claims ------------------------------------------------------------------
    async def claim_outcome(
        self, tenant_id: str, template_id: str, request_key: str
    ) -> dict | None:
        raw = await self.redis.hget(TemplateKeys(tenant_id, template_id).outcomes, request_key)
        return orjson.loads(raw) if raw else None

    async def mark_claim_pending(self, tenant_id: str, template_id: str, request_key: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        writes.mark_claim_pending(pipe, tenant_id, template_id, request_key)
        await pipe.execute()

    async def is_claim_pending(self, tenant_id: str, template_id: str, request_key: str) -> bool:
        return bool(
            await self.redis.exists(TemplateKeys(tenant_id, template_id).pending(request_key))
        )

    async def change_outcome(
        self, tenant_id: str, template_id: str, request_key: str
    ) -> dict | None:
        raw = await self.redis.hget(TemplateKeys(tenant_id, template_id).changes, request_key)
        return orjson.loads(raw) if raw else None

    async def mark_change_pending(self, tenant_id: str, template_id: str, request_key: str) -> None:
        key = TemplateKeys(tenant_id, template_id).change_pending(request_key)
        await self.redis.set(key, 1, ex=writes.PENDING_TTL_S)

    async def is_change_pending(self, tenant_id: str, template_id: str, request_key: str) -> bool:
        key = TemplateKeys(tenant_id, template_id).change_pending(request_key)
        return bool(await self.redis.exists(key))

    async def claim_counters(
        self, tenant_id: str, template_id: str, user_id: str
    ) -> tuple[bytes | None, int | None, int]:
        """The template's config, coupons left (None: unlimited) and the user's claims."""
        keys = TemplateKeys(tenant_id, template_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.config)
        pipe.get(keys.left)
        pipe.hget(keys.users, user_id)
        config, left, mine = await pipe.execute()
        return config, int(left) if left is not None else None, int(mine or 0)

    # -- operations --------------------------------------------------------------
    async def dispatcher_heartbeat(self) -> dict | None:
        raw = await self.redis.get(DISPATCHER_HEARTBEAT)
        return orjson.loads(raw) if raw else None
