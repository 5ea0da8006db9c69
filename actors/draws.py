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

Pools that move or read points (a points cost, points prizes, tiers by points)
read the batch's points accounts first and run one batch of the tenant at a
time: accounts are shared by all of a tenant's activities, and one read while
another batch's commit is in flight could not be trusted. A draw's cost is
spent from the account's lots and a points prize is a new lot, in the draw's
commit (ledger/accounts.lua): no chance without its points, no points without
the chance.
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
from domain import points
from domain.activity import Activity
from domain.claims import Coupon
from domain.coupons import CouponTemplate
from domain.draw import (
    REJECT_UNKNOWN_ACTIVITY,
    Decision,
    PoolState,
    period,
    top_up_rejection,
)
from domain.events import DrawOutcome, now_ms
from domain.points import PointsOutcome, PointsRules
from domain.road import Request
from ledger.accounts import HeldAccount
from ledger.pools import Entry, PoolLedger, TopUp, WonCoupon, effect

_ENCODE_OUTCOME = DrawOutcome.encoder()
_ENCODE_POINTS = PointsOutcome.encoder()
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
        held: dict[str, HeldAccount] = {}
        rules = PointsRules()
        if attempt or wallet or pool.fresh:
            users = sorted({r.user_id for r in unique}) if wallet else []
            look = await self._ledger.lookup(*key, request_keys, users)
            if look.config != pool.config:  # changed since loaded: reload, decide again
                self._pools.forget(key, pool)
                return None
            found = {k: v for k, v in zip(request_keys, look.outcomes, strict=True) if v}
            held, rules = look.held, look.rules

        # -- decide and queue the commit: no await from here to the submit --
        at = now_ms()
        state, rng, recent = pool.state, self._rng, self._recent
        now = period(at, state.activity.timezone)
        purse = {user: h.account.spendable(at) for user, h in held.items()}
        cost = state.activity.limits.points_cost
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
                cost if wallet and decision.counts_as_draw else 0,
            )
            results[request_key] = outcome
            entries.append(Entry(request_key, outcome, effect(decision.counts_as_draw, won)))
            if wallet and decision.counts_as_draw:
                _move_points(held[user_id], decision, cost, activity_id, req.request_id, at, rules)
            for stock_field, amount in decision.stock:
                taken[stock_field] = taken.get(stock_field, 0) + amount
        pool.fresh = False
        commit: Commit | None = None
        if entries:
            head = secrets.token_hex(8)
            changes = [h.change(user) for user, h in held.items() if h.moved]
            commit = self._ledger.commit(
                state.activity, now, entries, taken, changes, coupons, pool.head, head
            )
            pool.head = head
            recent.add(owner, [(e.request_key, e.outcome) for e in entries], commit)
        # -- end of the decision --

        refused = functools.partial(self._refused, key, owner, pool, entries)
        if not await settle(commit, waits, refused, f"{batch_id} for {key}"):
            return None
        return results

    async def top_up(
        self, batch_id: str, tenant_id: str, activity_id: str, requests: list[Request]
    ) -> dict[str, bytes]:
        """Chances bought with points or granted, into the users' quota accounts of
        the activity: one outcome per distinct request key, as ``decide``."""
        key = (tenant_id, activity_id)
        unique = list({r.key: r for r in requests}.values())
        for _ in range(MAX_ATTEMPTS):
            pool = await self._pools.get(key)
            if pool is None:
                at = now_ms()
                return {
                    r.key: _top_up_outcome(
                        r, tenant_id, REJECT_UNKNOWN_ACTIVITY, [], 0, batch_id, at
                    )
                    for r in unique
                }
            async with self._tenant_locks[tenant_id]:  # it moves points, as a wallet pool
                decided = await self._top_up_once(batch_id, key, pool, unique)
            if decided is not None:
                return decided
        raise RuntimeError(f"top-ups {batch_id} for {key} refused {MAX_ATTEMPTS} times")

    async def _top_up_once(
        self, batch_id: str, key: PoolKey, pool: Pool, unique: list[Request]
    ) -> dict[str, bytes] | None:
        tenant_id, activity_id = key
        users = sorted({r.user_id for r in unique})
        look = await self._ledger.lookup_top_ups(*key, [r.key for r in unique], users)
        if look.config != pool.config:
            self._pools.forget(key, pool)
            return None
        at = now_ms()
        activity = pool.state.activity
        results: dict[str, bytes] = {}
        top_ups: list[TopUp] = []
        for req, done in zip(unique, look.outcomes, strict=True):
            if done is not None:
                results[req.key] = done
                continue
            held = look.held[req.user_id]
            body = req.body if type(req.body) is dict else {}
            chances = body.get("chances")
            bought = body.get("op") == "buy"
            entries: list[points.Entry] = []
            reason = top_up_rejection(activity, at, chances, bought)
            if not reason and bought:
                cost = activity.limits.chance_points * chances
                source = f"chances:{activity_id}:{req.request_id}"
                try:  # a purchase of chances counts as an exchange, as a coupon's does
                    account = points.count_exchange(held.account, look.rules, at)
                    account, entry = points.spend(account, source, cost, at, "chances", activity_id)
                except points.PointsError as exc:
                    reason = exc.code
                else:
                    held.account, held.moved = account, True
                    held.entries.append(entry)
                    entries.append(entry)
            if not reason:
                pool.state.top_up(req.user_id, chances, at)
            outcome = _top_up_outcome(
                req, tenant_id, reason, entries, held.account.balance, batch_id, at, bought
            )
            results[req.key] = outcome
            top_ups.append(TopUp(req.key, outcome, req.user_id, 0 if reason else chances))
        if not top_ups:
            return results
        changes = [h.change(user) for user, h in look.held.items() if h.moved]
        head = secrets.token_hex(8)
        now = period(at, activity.timezone)
        commit = self._ledger.commit_top_ups(activity, now, top_ups, changes, pool.head, head)
        pool.head = head
        refused = functools.partial(self._pools.forget, key, pool)
        if not await settle(commit, [], refused, f"top-ups {batch_id} for {key}"):
            return None
        return results

    def _refused(self, key: PoolKey, owner: str, pool: Pool, entries: list[Entry]) -> None:
        self._recent.drop(owner, [e.request_key for e in entries])
        self._pools.forget(key, pool)

    async def _load(self, key: PoolKey) -> Pool | None:
        loaded = await self._ledger.load(*key, now_ms())
        if loaded is None:
            return None
        return Pool(loaded.state, loaded.config, loaded.head, loaded.templates)


def _needs_wallet(activity: Activity) -> bool:
    """Whether draws read or move points accounts (then they are read first and
    checked at commit)."""
    return (
        activity.limits.points_cost > 0
        or any(t.min_points for t in activity.rules.tiers)
        or any(p.kind == "points" and p.points for p in activity.prizes)
    )


def _move_points(
    held: HeldAccount,
    decision: Decision,
    cost: int,
    activity_id: str,
    request_id: str,
    at: int,
    rules: PointsRules,
) -> None:
    """The draw's cost spent and its points prize earned, as ledger entries. The
    decision was made on the account's usable points, so the spend cannot fail."""
    account = held.account
    source = f"{activity_id}:{request_id}"
    if cost:
        account, entry = points.spend(account, f"draw:{source}", cost, at, "draw", activity_id)
        held.entries.append(entry)
    prize = decision.prize
    if prize is not None and prize.kind == "points" and prize.points:
        account, entry = points.earn(
            account, f"prize:{source}", prize.points, at, rules.expiry, "prize", activity_id
        )
        held.entries.append(entry)
    if account is not held.account:
        held.account, held.moved = account, True


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
    points_spent: int = 0,
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
        points_spent,
        prize.points if prize is not None and prize.kind == "points" else 0,
    )


def _top_up_outcome(
    req: Request,
    tenant_id: str,
    reason: str,
    entries: list[points.Entry],
    balance: int,
    batch_id: str,
    at: int,
    bought: bool = True,
) -> bytes:
    return _ENCODE_POINTS(
        req.key,
        tenant_id,
        req.user_id,
        req.request_id,
        "chances" if bought else "grant_chances",
        "rejected" if reason else "applied",
        reason,
        sum(e.amount for e in entries),
        balance,
        [e.model_dump() for e in entries],
        batch_id,
        at,
    )


def _unknown(key: PoolKey, req: Request, batch_id: str) -> bytes:
    decision = Decision("rejected", reason=REJECT_UNKNOWN_ACTIVITY)
    return _outcome(req.key, *key, req.user_id, req.request_id, decision, batch_id, now_ms())


class QuotaTopUps:
    """The quota kind: chances top-ups, decided by the activity's pool (the draw
    kind's owner), so draws and top-ups of one activity form one chain."""

    def __init__(self, pools: DrawPools) -> None:
        self._pools = pools

    async def decide(
        self, batch_id: str, tenant_id: str, activity_id: str, requests: list[Request]
    ) -> dict[str, bytes]:
        return await self._pools.top_up(batch_id, tenant_id, activity_id, requests)
