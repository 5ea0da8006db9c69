"""The actor's side of the ledger: load a pool, look up a batch, commit its decisions.

Asynchronous, so that the actor decides the next batch while this one's commit
is in flight; decisions themselves never await (see actors/draws.py). Reads go
on a connection pool; commits go through the ``Committer``, in decision order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import NamedTuple

import redis.asyncio as aioredis

from domain.activity import Activity
from domain.coupons import CouponTemplate
from domain.draw import Period, PoolState, period
from domain.points import PointsRules
from ledger import accounts
from ledger.committer import Committer
from ledger.keys import ActivityKeys, TemplateKeys, TenantKeys

DAY_COUNTER_TTL_S = 2 * 86_400
MONTH_COUNTER_TTL_S = 62 * 86_400
COMMIT_DRAWS = accounts.script("commit_draws.lua")
COMMIT_QUOTA = accounts.script("commit_quota.lua")


class Entry(NamedTuple):
    """One decision as the commit script needs it (a tuple: one is made per draw)."""

    request_key: str
    outcome: bytes
    effect: str  # 'r' rejected; 'd' a draw, 'w' a win


def effect(counts_as_draw: bool, won: bool) -> str:
    if not counts_as_draw:
        return "r"
    return "w" if won else "d"


@dataclass(frozen=True, slots=True)
class Loaded:
    """A pool as the ledger holds it, read in one transaction, and the coupon
    templates its coupon prizes issue from (a template missing: no coupon)."""

    config: bytes
    state: PoolState
    head: str
    templates: dict[str, CouponTemplate]


class WonCoupon(NamedTuple):
    """A coupon a draw won, for the winner's wallet in the draw's commit."""

    user_id: str
    coupon_id: str
    coupon: bytes  # the Coupon's JSON
    valid_until: int | str  # "" when the coupon never expires


@dataclass(frozen=True, slots=True)
class Lookup:
    config: bytes | None
    outcomes: list[bytes | None]
    held: dict[str, accounts.HeldAccount]  # the users' points accounts, when asked for
    rules: PointsRules


def _int_map(raw: dict[bytes, bytes]) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in raw.items()}


class TopUp(NamedTuple):
    """One chances top-up decision as the commit script needs it."""

    request_key: str
    outcome: bytes
    user_id: str
    chances: int  # 0 for a refusal


class PoolLedger:
    def __init__(self, reads: aioredis.Redis, commits: Committer) -> None:
        self._redis = reads
        self._commits = commits

    async def load(self, tenant_id: str, activity_id: str, at_ms: int) -> Loaded | None:
        """Config, counters (of the activity's local day and month at ``at_ms``) and
        chain head in one transaction; None for no such activity."""
        keys = ActivityKeys(tenant_id, activity_id)
        while True:
            # The day's keys depend on the config's time zone: read the config, then
            # everything in one transaction that the config did not change meanwhile.
            first = await self._redis.get(keys.config)
            if first is None:
                return None
            now = period(at_ms, Activity.model_validate_json(first).timezone)
            pipe = self._redis.pipeline(transaction=True)
            pipe.get(keys.config)
            pipe.hgetall(keys.stock)
            pipe.hgetall(keys.users)
            pipe.hgetall(keys.day(now.day))
            pipe.hgetall(keys.month(now.month))
            pipe.hgetall(keys.bonus())
            pipe.hgetall(keys.bonus(now.day))
            pipe.hgetall(keys.bonus(now.month))
            pipe.get(keys.draws)
            pipe.get(keys.head)
            (
                config,
                stock,
                users,
                today,
                month,
                bonus,
                bonus_day,
                bonus_month,
                draws,
                head,
            ) = await pipe.execute()
            if config == first:
                break
        activity = Activity.model_validate_json(config)
        state = PoolState(
            activity=activity,
            stock=_int_map(stock),
            user_draws=_int_map(users),
            day=now.day,
            user_day_draws=_int_map(today),
            total_draws=int(draws or 0),
            month=now.month,
            user_month_draws=_int_map(month),
            bonus=_int_map(bonus),
            bonus_day=_int_map(bonus_day),
            bonus_month=_int_map(bonus_month),
        )
        return Loaded(config, state, (head or b"").decode(), await self._templates(activity))

    async def _templates(self, activity: Activity) -> dict[str, CouponTemplate]:
        # A running template's terms never change (domain.template_lifecycle), so
        # what is read at load stays right for every coupon the pool issues.
        ids = sorted({p.coupon_template for p in activity.prizes if p.coupon_template})
        if not ids:
            return {}
        raws = await self._redis.mget([TemplateKeys(activity.tenant_id, i).config for i in ids])
        return {
            i: CouponTemplate.model_validate_json(raw)
            for i, raw in zip(ids, raws, strict=True)
            if raw is not None
        }

    async def lookup(
        self,
        tenant_id: str,
        activity_id: str,
        request_keys: list[str],
        users: list[str],
    ) -> Lookup:
        """Config, outcomes already decided and the users' points accounts (with
        the tenant's points rules), in one round trip."""
        keys = ActivityKeys(tenant_id, activity_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(keys.config)
        pipe.hmget(keys.outcomes, request_keys)
        if users:
            accounts.read(pipe, tenant_id, users)
        config, outcomes, *points = await pipe.execute()
        if not users:
            return Lookup(config, outcomes, {}, PointsRules())
        raws, legacy, rules = points
        held = accounts.hold(users, raws, legacy)
        return Lookup(config, outcomes, held, accounts.rules_of(rules))

    async def lookup_top_ups(
        self,
        tenant_id: str,
        activity_id: str,
        request_keys: list[str],
        users: list[str],
    ) -> Lookup:
        """Config, top-ups already decided and the users' points accounts."""
        keys = ActivityKeys(tenant_id, activity_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(keys.config)
        pipe.hmget(keys.quota_outcomes, request_keys)
        accounts.read(pipe, tenant_id, users)
        config, outcomes, raws, legacy, rules = await pipe.execute()
        held = accounts.hold(users, raws, legacy)
        return Lookup(config, outcomes, held, accounts.rules_of(rules))

    def commit_top_ups(
        self,
        activity: Activity,
        now: Period,
        top_ups: list[TopUp],
        changes: list[accounts.AccountChange],
        decided_on: str,
        head: str,
    ) -> asyncio.Future[list[bytes]]:
        """Queue the top-ups' commit, a link of the pool's chain like a draw batch."""
        keys = ActivityKeys(activity.tenant_id, activity.id)
        args: list[str | bytes | int] = [
            decided_on,
            head,
            activity.version,
            len(top_ups),
            len(changes),
            DAY_COUNTER_TTL_S,
            MONTH_COUNTER_TTL_S,
        ]
        for top_up in top_ups:
            args.extend(top_up)
        args += accounts.args(changes)
        return self._commits.submit(
            COMMIT_QUOTA,
            [
                keys.version,
                keys.head,
                keys.quota_outcomes,
                keys.bonus(),
                keys.bonus(now.day),
                keys.bonus(now.month),
                *accounts.keys(activity.tenant_id, changes),
            ],
            args,
        )

    def commit(
        self,
        activity: Activity,
        now: Period,
        entries: list[Entry],
        stock: dict[str, int],
        changes: list[accounts.AccountChange],
        coupons: list[WonCoupon],
        decided_on: str,
        head: str,
    ) -> asyncio.Future[list[bytes]]:
        """Queue the batch's commit; synchronous so decision order is commit order.

        ``stock``: the amount taken per stock field; ``decided_on``: the head the
        batch was decided on; ``head``: its own token. ``changes``: the points
        accounts the draws moved, each compared with what the actor read (a
        concurrent points change makes the batch stale instead of wrong). The
        future's result is ``[b"ok", draws]`` or ``[b"stale", why]``.
        """
        keys = ActivityKeys(activity.tenant_id, activity.id)
        limits = activity.limits
        args: list[str | bytes | int] = [
            decided_on,
            head,
            activity.version,
            limits.per_user_total,
            limits.per_user_daily,
            limits.max_draws,
            DAY_COUNTER_TTL_S,
            len(entries),
            len(stock),
            len(changes),
            len(coupons),
            limits.per_user_monthly,
            MONTH_COUNTER_TTL_S,
        ]
        for entry in entries:
            args.extend(entry)
        for field, amount in stock.items():
            args += [field, amount]
        args += accounts.args(changes)
        for coupon in coupons:
            args.extend(coupon)
        return self._commits.submit(
            COMMIT_DRAWS,
            [
                keys.stock,
                keys.users,
                keys.day(now.day),
                keys.draws,
                keys.outcomes,
                keys.head,
                TenantKeys(activity.tenant_id).points,
                keys.wins,
                keys.version,
                TenantKeys(activity.tenant_id).coupons,
                TenantKeys(activity.tenant_id).wallets,
                TenantKeys(activity.tenant_id).expiries,
                TenantKeys(activity.tenant_id).points_accounts,
                TenantKeys(activity.tenant_id).points_expiries,
                keys.month(now.month),
                keys.bonus(),
                keys.bonus(now.day),
                keys.bonus(now.month),
                *(TenantKeys(activity.tenant_id).points_log(c.user_id) for c in changes),
            ],
            args,
        )
