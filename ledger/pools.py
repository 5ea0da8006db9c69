"""The actor's side of the ledger: load a pool, look up a batch, commit its decisions.

Asynchronous, so that the actor decides the next batch while this one's commit
is in flight; decisions themselves never await (see actors/draws.py). Reads go
on a connection pool; commits go through the ``Committer``, in decision order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import redis.asyncio as aioredis

from domain.activity import Activity
from domain.coupons import CouponTemplate
from domain.draw import PoolState
from ledger.committer import Committer, Script
from ledger.keys import ActivityKeys, TemplateKeys, TenantKeys

DAY_COUNTER_TTL_S = 2 * 86_400
COMMIT_DRAWS = Script((Path(__file__).parent / "commit_draws.lua").read_text())


class Entry(NamedTuple):
    """One decision as the commit script needs it (a tuple: one is made per draw)."""

    request_key: str
    outcome: bytes
    effect: str  # 'r' rejected; 'd' a draw, 'w' a win, then the points delta: 'd-10'


def effect(counts_as_draw: bool, won: bool, points_delta: int) -> str:
    if not counts_as_draw:
        return "r"
    return f"{'w' if won else 'd'}{points_delta}"


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
    balances: dict[str, int]


def _int_map(raw: dict[bytes, bytes]) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in raw.items()}


class PoolLedger:
    def __init__(self, reads: aioredis.Redis, commits: Committer) -> None:
        self._redis = reads
        self._commits = commits

    async def load(self, tenant_id: str, activity_id: str, day: int) -> Loaded | None:
        """Config, counters and chain head in one transaction; None for no such activity."""
        keys = ActivityKeys(tenant_id, activity_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(keys.config)
        pipe.hgetall(keys.stock)
        pipe.hgetall(keys.users)
        pipe.hgetall(keys.day(day))
        pipe.get(keys.draws)
        pipe.get(keys.head)
        config, stock, users, today, draws, head = await pipe.execute()
        if config is None:
            return None
        activity = Activity.model_validate_json(config)
        state = PoolState(
            activity=activity,
            stock=_int_map(stock),
            user_draws=_int_map(users),
            day=day,
            user_day_draws=_int_map(today),
            total_draws=int(draws or 0),
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
        self, tenant_id: str, activity_id: str, request_keys: list[str], users: list[str]
    ) -> Lookup:
        """Config, outcomes already decided and the users' points, in one round trip."""
        keys = ActivityKeys(tenant_id, activity_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(keys.config)
        pipe.hmget(keys.outcomes, request_keys)
        if users:
            pipe.hmget(TenantKeys(tenant_id).points, users)
        config, outcomes, *points = await pipe.execute()
        balances = {u: int(b or 0) for u, b in zip(users, points[0], strict=True)} if users else {}
        return Lookup(config, outcomes, balances)

    def commit(
        self,
        activity: Activity,
        day: int,
        entries: list[Entry],
        stock: dict[str, int],
        balances: dict[str, int],
        coupons: list[WonCoupon],
        decided_on: str,
        head: str,
    ) -> asyncio.Future[list[bytes]]:
        """Queue the batch's commit; synchronous so decision order is commit order.

        ``stock``: the amount taken per stock field; ``decided_on``: the head the
        batch was decided on; ``head``: its own token. ``balances``: the points each
        user had when the actor decided (checked, so a concurrent points change makes
        the batch stale instead of wrong). The future's result is ``[b"ok", draws]``
        or ``[b"stale", why]``.
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
            len(balances),
            len(coupons),
        ]
        for entry in entries:
            args.extend(entry)
        for field, amount in stock.items():
            args += [field, amount]
        for user, balance in balances.items():
            args += [user, balance]
        for coupon in coupons:
            args.extend(coupon)
        return self._commits.submit(
            COMMIT_DRAWS,
            [
                keys.stock,
                keys.users,
                keys.day(day),
                keys.draws,
                keys.outcomes,
                keys.head,
                TenantKeys(activity.tenant_id).points,
                keys.wins,
                keys.version,
                TenantKeys(activity.tenant_id).coupons,
                TenantKeys(activity.tenant_id).wallets,
                TenantKeys(activity.tenant_id).expiries,
            ],
            args,
        )
