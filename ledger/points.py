"""Points on the ledger: the points kind's reads and commit (actor side) and what
the api reads and writes (rules, accounts, statements)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from domain.points import Account, Entry, PointsRules
from ledger import accounts, writes
from ledger.committer import Committer
from ledger.keys import TenantKeys

COMMIT_POINTS = accounts.script("commit_points.lua")


@dataclass(frozen=True, slots=True)
class Lookup:
    rules: PointsRules
    outcomes: list[bytes | None]
    held: dict[str, accounts.HeldAccount]
    orders: dict[str, int]  # request key of an order rebate -> the points it earned


class PointsLedger:
    def __init__(self, reads: aioredis.Redis, commits: Committer) -> None:
        self._redis = reads
        self._commits = commits

    async def lookup(
        self,
        tenant_id: str,
        request_keys: list[str],
        users: list[str],
        order_keys: list[str],
    ) -> Lookup:
        """Outcomes already decided, the users' accounts, the tenant's rules and
        the outcomes of the orders a refund names, in one round trip."""
        tenant = TenantKeys(tenant_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(tenant.points_outcomes, request_keys)
        accounts.read(pipe, tenant_id, users)
        if order_keys:
            pipe.hmget(tenant.points_outcomes, order_keys)
        outcomes, raws, legacy, rules, *orders = await pipe.execute()
        earned = {}
        for key, raw in zip(order_keys, orders[0] if order_keys else [], strict=True):
            if raw is not None:
                outcome = orjson.loads(raw)
                if outcome["status"] == "applied":
                    earned[key] = outcome["amount"]
        held = accounts.hold(users, raws, legacy)
        return Lookup(accounts.rules_of(rules), outcomes, held, earned)

    def commit(
        self,
        tenant_id: str,
        decided: list[tuple[str, bytes]],
        changes: list[accounts.AccountChange],
    ) -> asyncio.Future[list[bytes]]:
        """The future's result is ``[b"ok", n]`` or ``[b"stale", why]``."""
        args: list[str | bytes | int] = [len(decided), len(changes)]
        for request_key, outcome in decided:
            args += [request_key, outcome]
        args += accounts.args(changes)
        keys = [TenantKeys(tenant_id).points_outcomes, *accounts.keys(tenant_id, changes)]
        return self._commits.submit(COMMIT_POINTS, keys, args)


@dataclass(frozen=True, slots=True)
class Statement:
    entries: list[Entry]  # newest first
    next_before: int | None  # the cursor of the next (older) page; None at the end


class PointsStore:
    """The api's reads and the operator's writes of points."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def rules(self, tenant_id: str) -> PointsRules:
        return accounts.rules_of(await self.redis.get(TenantKeys(tenant_id).points_rules))

    async def put_rules(self, tenant_id: str, rules: PointsRules, who: str) -> PointsRules:
        """Stored with the next version; the actors read the rules on every batch."""
        current = await self.rules(tenant_id)
        rules = rules.model_copy(update={"version": current.version + 1})
        pipe = self.redis.pipeline(transaction=True)
        writes.put_points_rules(pipe, tenant_id, rules)
        writes.audit(pipe, tenant_id, who, "points.rules", "points", rules.version)
        await pipe.execute()
        return rules

    async def audit(self, tenant_id: str, who: str, action: str, subject: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        writes.audit(pipe, tenant_id, who, action, subject, 0)
        await pipe.execute()

    async def account(self, tenant_id: str, user_id: str) -> Account:
        pipe = self.redis.pipeline(transaction=False)
        accounts.read(pipe, tenant_id, [user_id])
        raws, legacy, _ = await pipe.execute()
        return accounts.hold([user_id], raws, legacy)[user_id].account

    async def statement(
        self, tenant_id: str, user_id: str, before: int | None, limit: int
    ) -> Statement:
        """Entries newest first; ``before`` is the position (from the oldest,
        0-based) the page ends before, None for the newest."""
        key = TenantKeys(tenant_id).points_log(user_id)
        count = await self.redis.llen(key)
        end = count if before is None else min(before, count)
        start = max(end - limit, 0)
        raws = await self.redis.lrange(key, start, end - 1) if end > 0 else []
        entries = [Entry.model_validate_json(raw) for raw in reversed(raws)]
        return Statement(entries, start if start > 0 else None)

    async def outcome(self, tenant_id: str, request_key: str) -> dict | None:
        raw = await self.redis.hget(TenantKeys(tenant_id).points_outcomes, request_key)
        return orjson.loads(raw) if raw else None

    async def mark_pending(self, tenant_id: str, request_key: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        writes.mark_points_pending(pipe, tenant_id, request_key)
        await pipe.execute()

    async def is_pending(self, tenant_id: str, request_key: str) -> bool:
        return bool(await self.redis.exists(TenantKeys(tenant_id).points_pending(request_key)))

    async def remember_order(self, tenant_id: str, order_ref: str, user_id: str, cents: int) -> str:
        """Record whose an order is, unless recorded before; what it is recorded as."""
        index, entry = TenantKeys(tenant_id).points_orders, f"{user_id}|{cents}"
        if await self.redis.hsetnx(index, order_ref, entry):
            return entry
        return (await self.redis.hget(index, order_ref) or b"").decode()

    async def order(self, tenant_id: str, order_ref: str) -> tuple[str, int] | None:
        raw = await self.redis.hget(TenantKeys(tenant_id).points_orders, order_ref)
        if raw is None:
            return None
        user, cents = raw.decode().split("|")
        return user, int(cents)

    async def known(self, tenant_id: str, user_id: str) -> bool:
        """Whether the shopper ever had a points account or entry."""
        tenant = TenantKeys(tenant_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hexists(tenant.points_accounts, user_id)
        pipe.hexists(tenant.points, user_id)
        return any(await pipe.execute())

    async def due(self, tenant_id: str, at_ms: int, limit: int) -> list[tuple[str, int]]:
        """Users with a lot expired by ``at_ms`` and that lot's expiry, soonest first."""
        found = await self.redis.zrangebyscore(
            TenantKeys(tenant_id).points_expiries,
            "-inf",
            at_ms,
            start=0,
            num=limit,
            withscores=True,
        )
        return [(user.decode(), int(score)) for user, score in found]
