"""The draw kind: prize pools in memory, decided in batches, committed as a chain.

Steady state, per batch and pool: decide every new request in memory (no
await), queue the commit, and while it is in flight decide the next batch on
top of it. Nothing is read first: a config change (pause, edit, stock added),
an already-decided request the actor forgot, or another writer makes the
commit script refuse the batch ('stale'), and the slow path reloads the pool
and decides again. A refused batch refuses every batch decided on top of it
(the chain head in ``ledger/commit_draws.lua``), so nothing is undone here.

A won ``coupon`` prize issues a coupon from its template into the winner's
wallet in the same commit as the draw: both happen, or neither.

Pools whose decisions depend on points balances (a points cost, tiers by
points) read the balances first and run one batch of the tenant at a time:
points are shared by all of a tenant's activities, and a balance read while
another batch's commit is in flight could not be trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import secrets
from collections import defaultdict
from dataclasses import dataclass

from actors.holdings import Holdings
from actors.recent import Commit, RecentOutcomes, settle
from domain.activity import Activity
from domain.claims import Coupon
from domain.coupons import CouponTemplate
from domain.draw import REJECT_UNKNOWN_ACTIVITY, Decision, PoolState, utc_day
from domain.events import DrawOutcome, now_ms
from domain.road import Request
from ledger.pools import Entry, PoolLedger, WonCoupon, effect

_ENCODE_OUTCOME = DrawOutcome.encoder()
# Attempts per batch and pool before the batch fails back to the dispatcher,
# which re-sends it (each attempt after the first reloads the pool).
MAX_ATTEMPTS = 5

PoolKey = tuple[str, str]  # (tenant id, activity id)


@dataclass(eq=False)
class Pool:
    """A pool as this actor holds it: the state, the config it came from, the chain head."""

    state: PoolState
    config: bytes
    head: str
    templates: dict[str, CouponTemplate]  # of the coupon prizes, by template id
    fresh: bool = True  # loaded, nothing decided yet: look up the first batch's requests


class DrawPools:
    def __init__(self, ledger: PoolLedger, rng: random.Random, recent: RecentOutcomes) -> None:
        self._ledger = ledger
        self._rng = rng
        self._recent = recent
        self._pools: Holdings[PoolKey, Pool] = Holdings(self._load)
        self._tenant_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def decide(
        self, batch_id: str, tenant_id: str, activity_id: str, requests: list[Request]
    ) -> dict[str, bytes]:
        """One outcome event per distinct request key; a key decided before (in
        memory or in the ledger) gets the outcome already decided, byte for byte."""
        key = (tenant_id, activity_id)
        owner = f"{tenant_id}/{activity_id}"
        unique = list({r.key: r for r in requests}.values())
        for attempt in range(MAX_ATTEMPTS):
            pool = await self._pools.get(key)
            if pool is None:  # nothing recorded: there is no such activity in this tenant
                return {r.key: _unknown(key, r, batch_id) for r in unique}
            wallet = _needs_wallet(pool.state.activity)
            lock = self._tenant_locks[tenant_id] if wallet else contextlib.nullcontext()
            async with lock:
                decided = await self._decide_once(
                    batch_id, key, owner, pool, unique, attempt, wallet
                )
            if decided is not None:
                return decided
        raise RuntimeError(f"batch {batch_id} for {key} refused {MAX_ATTEMPTS} times")

    async def _decide_once(
        self,
        batch_id: str,
        key: PoolKey,
        owner: str,
        pool: Pool,
        unique: list[Request],
        attempt: int,
        wallet: bool,
    ) -> dict[str, bytes] | None:
        """One attempt; None when the ledger refused it and the pool was reloaded."""
        request_keys = [r.key for r in unique]
        found: dict[str, bytes] = {}
        balances: dict[str, int] = {}
        if attempt or wallet or pool.fresh:
            users = sorted({r.user_id for r in unique}) if wallet else []
            look = await self._ledger.lookup(*key, request_keys, users)
            if look.config != pool.config:  # changed since loaded: reload, decide again
                self._pools.forget(key, pool)
                return None
            found = {k: v for k, v in zip(request_keys, look.outcomes, strict=True) if v}
            balances = look.balances

        # -- decide and queue the commit: no await from here to the submit --
        at = now_ms()
        day = utc_day(at)
        state, rng, recent = pool.state, self._rng, self._recent
        purse = dict(balances)
        results: dict[str, bytes] = {}
        waits: list[Commit] = []
        entries: list[Entry] = []
        coupons: list[WonCoupon] = []
        templates = pool.templates
        taken: dict[str, int] = {}
        tenant_id, activity_id = key
        for req, request_key in zip(unique, request_keys, strict=True):
            done = found.get(request_key)
            if done is None and (hit := recent.get(owner, request_key)) is not None:
                done, pending = hit
                if pending is not None:
                    waits.append(pending)
            if done is not None:
                results[request_key] = done
                continue
            user_id = req.user_id
            decision = state.decide(user_id, at, rng, purse)
            won = decision.status == "won"
            coupon = None
            if won and decision.prize is not None and decision.prize.coupon_template in templates:
                template = templates[decision.prize.coupon_template]
                coupon = Coupon.issue(template, user_id, "draw", request_key, at)
                coupons.append(
                    WonCoupon(
                        user_id,
                        coupon.coupon_id,
                        coupon.model_dump_json().encode(),
                        "" if coupon.valid_until is None else coupon.valid_until,
                    )
                )
            outcome = _outcome(
                request_key,
                tenant_id,
                activity_id,
                user_id,
                req.request_id,
                decision,
                batch_id,
                at,
                coupon,
            )
            results[request_key] = outcome
            entries.append(
                Entry(
                    request_key,
                    outcome,
                    effect(decision.counts_as_draw, won, decision.points_delta),
                )
            )
            for stock_field, amount in decision.stock:
                taken[stock_field] = taken.get(stock_field, 0) + amount
        pool.fresh = False
        commit: Commit | None = None
        if entries:
            head = secrets.token_hex(8)
            checked = balances if wallet else {}
            commit = self._ledger.commit(
                state.activity, day, entries, taken, checked, coupons, pool.head, head
            )
            pool.head = head
            recent.add(owner, [(e.request_key, e.outcome) for e in entries], commit)
        # -- end of the decision --

        refused = functools.partial(self._refused, key, owner, pool, entries)
        if not await settle(commit, waits, refused, f"{batch_id} for {key}"):
            return None
        return results

    def _refused(self, key: PoolKey, owner: str, pool: Pool, entries: list[Entry]) -> None:
        self._recent.drop(owner, [e.request_key for e in entries])
        self._pools.forget(key, pool)

    async def _load(self, key: PoolKey) -> Pool | None:
        loaded = await self._ledger.load(*key, utc_day(now_ms()))
        if loaded is None:
            return None
        return Pool(loaded.state, loaded.config, loaded.head, loaded.templates)


def _needs_wallet(activity: Activity) -> bool:
    """Whether decisions depend on points balances (then they are checked at commit)."""
    return activity.limits.points_cost > 0 or any(t.min_points for t in activity.rules.tiers)


def _outcome(
    request_key: str,
    tenant_id: str,
    activity_id: str,
    user_id: str,
    request_id: str,
    decision: Decision,
    batch_id: str,
    at: int,
    coupon: Coupon | None = None,
) -> bytes:
    """The serialised DrawOutcome of a decision."""
    prize = decision.prize
    return _ENCODE_OUTCOME(
        request_key,
        tenant_id,
        activity_id,
        user_id,
        request_id,
        decision.status,
        prize.id if prize else "",
        prize.name if prize else "",
        prize.kind if prize else ("red_envelope" if decision.amount else ""),
        decision.reason,
        batch_id,
        at,
        decision.amount,
        coupon.coupon_id if coupon else "",
        coupon.template_id if coupon else "",
    )


def _unknown(key: PoolKey, req: Request, batch_id: str) -> bytes:
    decision = Decision("rejected", reason=REJECT_UNKNOWN_ACTIVITY)
    return _outcome(req.key, *key, req.user_id, req.request_id, decision, batch_id, now_ms())
