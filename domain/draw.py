"""Draw decisions for one activity, in memory and without I/O.

The owning actor calls ``PoolState.decide`` for every request of a batch; the
effects are then committed to the ledger in one script.

Rules are data on the activity, evaluated in this fixed order (the first that
applies decides):

1. the activity is open (running, inside its window)   else ``activity_not_running``
2. the user is not blacklisted                          else ``user_blacklisted``
3. per-user total limit (+ chances bought or granted)   else ``user_limit_reached``
4. per-user daily limit (+ today's chances)             else ``daily_limit_reached``
   per-user monthly limit (+ this month's chances)      else ``monthly_limit_reached``
   (days and months on the activity's time zone)
5. activity-wide maximum draws                          else ``activity_draws_exhausted``
6. points balance covers the cost per draw              else ``insufficient_points``
7. red envelopes: one is left                           else ``sold_out``
   wheel / grid: weight tier = the last tier whose ``min_draws`` and
   ``min_points`` the user meets (none: the configured weights)
8. draw from the tier's table: cumulative weights + bisect, exact for integer
   weights; a prize out of stock hands its weight to the fallback prize (the
   same distribution as "drawn but out of stock → fallback", without a rounded
   lookup table)
9. a drawn prize still locked for this user (``unlock_after_draws`` greater
   than the user's earlier draws) becomes the fallback prize, reason ``prize_locked``
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import NamedTuple
from zoneinfo import ZoneInfo

from domain.activity import CLAIM_KINDS, Activity, Prize
from domain.envelopes import next_amount

REJECT_NOT_RUNNING = "activity_not_running"
REJECT_BLACKLISTED = "user_blacklisted"
REJECT_USER_LIMIT = "user_limit_reached"
REJECT_DAILY_LIMIT = "daily_limit_reached"
REJECT_MONTHLY_LIMIT = "monthly_limit_reached"
REJECT_CHANCES_NOT_SOLD = "chances_not_sold"  # a chance bought where none are sold
REJECT_INVALID_CHANCES = "invalid_chances"  # the api checks the count; a guard
REJECT_ACTIVITY_EXHAUSTED = "activity_draws_exhausted"
REJECT_NO_POINTS = "insufficient_points"
REJECT_SOLD_OUT = "sold_out"
REJECT_UNKNOWN_ACTIVITY = "activity_not_found"  # no such activity in the request's tenant
REJECT_NOT_DRAWABLE = "activity_not_drawable"  # a coupon page (claim, flash_sale)
FALLBACK_LOCKED = "prize_locked"

# Ledger stock fields of a red-envelope activity.
ENVELOPES_LEFT = "envelopes"
BUDGET_LEFT = "budget_cents"


def utc_day(at_ms: int) -> int:
    return int(time.strftime("%Y%m%d", time.gmtime(at_ms // 1000)))


class Period(NamedTuple):
    """The local day and month of an instant on a time zone, and the day's bounds."""

    day: int  # yyyymmdd
    month: int  # yyyymm
    starts_at: int  # epoch ms of the local midnight that began the day
    ends_at: int  # and of the one that ends it (a DST day is 23 or 25 hours)


def period(at_ms: int, timezone: str) -> Period:
    zone = ZoneInfo(timezone)
    local = datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(zone)
    start = datetime(local.year, local.month, local.day, tzinfo=zone)
    following = start.date() + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=zone)
    day = local.year * 10_000 + local.month * 100 + local.day
    return Period(day, day // 100, int(start.timestamp() * 1000), int(end.timestamp() * 1000))


def initial_stock(activity: Activity) -> dict[str, int]:
    if activity.envelopes is not None:
        return {
            ENVELOPES_LEFT: activity.envelopes.count,
            BUDGET_LEFT: activity.envelopes.budget_cents,
        }
    return {p.id: p.stock for p in activity.prizes if p.stock is not None}


def rejection(
    activity: Activity,
    open_now: bool,
    blacklist: Container[str],
    user_id: str,
    draws: int,
    draws_today: int,
    total_draws: int,
    points: int,
    envelopes_left: int | None,
    draws_month: int = 0,
    bonus: tuple[int, int, int] = (0, 0, 0),
) -> str:
    """Rules 0-7 in order: the reason the user may not draw now, or "" when they may.
    ``bonus``: the chances the user bought or was granted, in all, today and this
    month (the quota account's top-ups): each raises its limit.

    The one definition of draw eligibility: the actor decides with it and the
    shopper's activity view shows ``can_draw`` from it. Plain arguments, not a
    record, because the actor calls it for every request of every batch; ``open_now``
    is ``activity.is_open(now)``, which the actor works out once per batch.
    """
    if activity.kind in CLAIM_KINDS:
        return REJECT_NOT_DRAWABLE
    if not open_now:
        return REJECT_NOT_RUNNING
    if user_id in blacklist:
        return REJECT_BLACKLISTED
    limits = activity.limits
    if limits.per_user_total and draws >= limits.per_user_total + bonus[0]:
        return REJECT_USER_LIMIT
    if limits.per_user_daily and draws_today >= limits.per_user_daily + bonus[1]:
        return REJECT_DAILY_LIMIT
    if limits.per_user_monthly and draws_month >= limits.per_user_monthly + bonus[2]:
        return REJECT_MONTHLY_LIMIT
    if limits.max_draws and total_draws >= limits.max_draws:
        return REJECT_ACTIVITY_EXHAUSTED
    if points < limits.points_cost:
        return REJECT_NO_POINTS
    if envelopes_left is not None and envelopes_left <= 0:
        return REJECT_SOLD_OUT
    return ""


MAX_CHANCES = 10_000  # one top-up


def top_up_rejection(activity: Activity, at_ms: int, chances: object, bought: bool) -> str:
    """Why chances may not be added to a quota account now, or "" when they may:
    bought ones only where the activity sells them, none to a page of coupons or
    an ended activity."""
    if activity.kind in CLAIM_KINDS:
        return REJECT_NOT_DRAWABLE
    if activity.effective_status(at_ms) == "ended":
        return REJECT_NOT_RUNNING
    if type(chances) is not int or not 1 <= chances <= MAX_CHANCES:
        return REJECT_INVALID_CHANCES
    if bought and not activity.limits.chance_points:
        return REJECT_CHANCES_NOT_SOLD
    return ""


class Decision(NamedTuple):
    """A draw's result (a tuple: the actor makes one per draw, and a frozen
    dataclass's __init__ cost a third of ``decide``)."""

    status: str  # "won" | "lost" | "rejected"
    prize: Prize | None = None
    reason: str = ""
    amount: int = 0  # cents of a red envelope, points of a points prize
    points_delta: int = 0  # net change of the user's points balance
    stock: tuple[tuple[str, int], ...] = ()  # (ledger stock field, amount taken)

    @property
    def counts_as_draw(self) -> bool:
        return self.status != "rejected"


class WeightTable:
    """Cumulative weights + bisect."""

    def __init__(self, prizes: list[Prize], weights: list[int]) -> None:
        self._prizes = prizes
        self._cumulative = list(accumulate(weights))
        self.total = self._cumulative[-1]

    def pick(self, rng: random.Random) -> Prize:
        return self._prizes[bisect.bisect_right(self._cumulative, rng.randrange(self.total))]

    def probabilities(self) -> dict[str, float]:
        previous, out = 0, {}
        for prize, upto in zip(self._prizes, self._cumulative, strict=True):
            out[prize.id] = (upto - previous) / self.total
            previous = upto
        return out


@dataclass
class PoolState:
    activity: Activity
    stock: dict[str, int]  # remaining, per ledger stock field
    user_draws: dict[str, int] = field(default_factory=dict)
    day: int = 0  # yyyymmdd on the activity's time zone
    user_day_draws: dict[str, int] = field(default_factory=dict)  # for ``day`` only
    total_draws: int = 0
    month: int = 0  # yyyymm on the activity's time zone
    user_month_draws: dict[str, int] = field(default_factory=dict)  # for ``month`` only
    # Chances bought or granted (the quota account's top-ups): in all, on ``day``,
    # in ``month``; each raises the matching limit.
    bonus: dict[str, int] = field(default_factory=dict)
    bonus_day: dict[str, int] = field(default_factory=dict)
    bonus_month: dict[str, int] = field(default_factory=dict)
    _day_starts_at: int = field(default=0, repr=False)  # epoch ms: ``day`` runs from
    _day_ends_at: int = field(default=0, repr=False)  # to
    _tables: dict[int, WeightTable] = field(default_factory=dict, repr=False)
    _blacklist: frozenset[str] = field(default=frozenset(), repr=False)
    _open_at: int = field(default=-1, repr=False)  # the clock reading ``_open`` is for
    _open: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self._blacklist = frozenset(self.activity.rules.blacklist)

    def table(self, tier: int) -> WeightTable:
        """Tier -1 is the configured weights; exhausted prizes' weight moves to the fallback."""
        cached = self._tables.get(tier)
        if cached is not None:
            return cached
        activity = self.activity
        weights_of = activity.rules.tiers[tier].weights if tier >= 0 else None
        live: list[Prize] = []
        weights: list[int] = []
        moved = 0
        fallback_at = 0
        for prize in activity.prizes:
            weight = prize.weight if weights_of is None else weights_of.get(prize.id, 0)
            if prize.stock is not None and self.stock.get(prize.id, 0) <= 0:
                moved += weight
                continue
            if prize.id == activity.fallback_prize_id:
                fallback_at = len(live)
            live.append(prize)
            weights.append(weight)
        weights[fallback_at] += moved
        table = self._tables[tier] = WeightTable(live, weights)
        return table

    def tier_for(self, draws: int, points: int) -> int:
        chosen = -1
        for index, tier in enumerate(self.activity.rules.tiers):
            if draws >= tier.min_draws and points >= tier.min_points:
                chosen = index
        return chosen

    def decide(
        self, user_id: str, at_ms: int, rng: random.Random, wallet: dict[str, int] | None = None
    ) -> Decision:
        """``wallet`` holds the points balances of the batch's users; it is
        updated so later requests of the same batch see the new balance."""
        used = self.user_draws.get(user_id, 0)
        if not self._day_starts_at <= at_ms < self._day_ends_at:
            self._roll_day(at_ms)
        today = self.user_day_draws.get(user_id, 0)
        month = self.user_month_draws.get(user_id, 0)
        wallet = wallet if wallet is not None else {}
        balance = wallet.get(user_id, 0)
        activity = self.activity
        envelopes = self.stock[ENVELOPES_LEFT] if activity.envelopes is not None else None
        if at_ms != self._open_at:  # a batch's requests share one clock reading
            self._open_at, self._open = at_ms, activity.is_open(at_ms)
        reason = rejection(
            activity,
            self._open,
            self._blacklist,
            user_id,
            used,
            today,
            self.total_draws,
            balance,
            envelopes,
            month,
            self._bonus(user_id) if self.bonus else (0, 0, 0),
        )
        if reason:
            return Decision("rejected", reason=reason)
        cost = activity.limits.points_cost
        if envelopes is not None:
            decision = self._open_envelope(rng, cost)
        else:
            decision = self._draw_prize(used, balance, rng, cost)
        wallet[user_id] = balance + decision.points_delta
        self.user_draws[user_id] = used + 1
        self.user_day_draws[user_id] = today + 1
        self.user_month_draws[user_id] = month + 1
        self.total_draws += 1
        return decision

    def _bonus(self, user_id: str) -> tuple[int, int, int]:
        return (
            self.bonus.get(user_id, 0),
            self.bonus_day.get(user_id, 0),
            self.bonus_month.get(user_id, 0),
        )

    def top_up(self, user_id: str, chances: int, at_ms: int) -> None:
        """Chances bought or granted: the user's total, today's and this month's
        limits each rise by ``chances``."""
        if not self._day_starts_at <= at_ms < self._day_ends_at:
            self._roll_day(at_ms)
        for counts in (self.bonus, self.bonus_day, self.bonus_month):
            counts[user_id] = counts.get(user_id, 0) + chances

    def _roll_day(self, at_ms: int) -> None:
        now = period(at_ms, self.activity.timezone)
        # Counters of a new local day or month start at zero, like their ledger keys.
        if now.day != self.day:
            self.day, self.user_day_draws, self.bonus_day = now.day, {}, {}
        if now.month != self.month:
            self.month, self.user_month_draws, self.bonus_month = now.month, {}, {}
        self._day_starts_at, self._day_ends_at = now.starts_at, now.ends_at

    def _open_envelope(self, rng: random.Random, cost: int) -> Decision:
        left = self.stock[ENVELOPES_LEFT]
        envelopes = self.activity.envelopes
        assert envelopes is not None and left > 0
        amount = next_amount(self.stock[BUDGET_LEFT], left, envelopes.min_cents, rng)
        self.stock[ENVELOPES_LEFT] = left - 1
        self.stock[BUDGET_LEFT] -= amount
        taken = ((ENVELOPES_LEFT, 1), (BUDGET_LEFT, amount))
        return Decision("won", amount=amount, points_delta=-cost, stock=taken)

    def _draw_prize(self, used: int, balance: int, rng: random.Random, cost: int) -> Decision:
        activity = self.activity
        prize = self.table(self.tier_for(used, balance)).pick(rng)
        reason = ""
        if prize.unlock_after_draws > used:
            prize = activity.prize(activity.fallback_prize_id or "")  # type: ignore[assignment]
            reason = FALLBACK_LOCKED
        assert prize is not None
        taken: tuple[tuple[str, int], ...] = ()
        if prize.stock is not None:
            left = self.stock[prize.id] - 1
            self.stock[prize.id] = left
            taken = ((prize.id, 1),)
            if left <= 0:
                self._tables.clear()
        status = "lost" if prize.kind == "thanks" else "won"
        return Decision(status, prize, reason, prize.points, prize.points - cost, taken)
