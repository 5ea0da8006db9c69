"""Points accounts (pure): an append-only ledger per shopper, in lots.

Every movement is an `Entry` (earn, spend, expire, adjust, reverse) with a
reason, a source id and an idempotency key; the account's balance is the sum
of its entries and is kept with them. Points are held in lots, one per
earning: a lot may be pending (not spendable before ``available_at``: a
rebate held until its order can no longer be refunded) and expires by the
tenant's `ExpiryPolicy`. Spending takes from the usable lots in `Lot.order`
(soonest expiry first, then oldest), so points that would expire first are
used first.

What callers rely on (tests/domain/test_points.py checks it on random
sequences): ``account.balance == sum(entry.amount) == sum(lot.left)``, no lot
and no balance ever below zero, each entry's lot moves add up to its amount.
Whether an idempotency key was seen before is the ledger's to know, not the
account's: a caller applies an operation only for a key it has not recorded.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator

from domain.activity import _Frozen
from domain.events import Event, now_ms

MAX_AMOUNT = 10**9  # one movement
MAX_BALANCE = 10**12  # one account: far below 2**53, so JSON and Lua numbers stay exact
_NEVER = 2**62

EntryKind = Literal["earn", "spend", "expire", "adjust", "reverse"]
ExpiryKind = Literal["never", "days_after_earning", "end_of_month"]

INSUFFICIENT = "insufficient_points"
OVERFLOW = "points_overflow"
ALREADY_SIGNED_IN = "already_signed_in"
NO_RULE = "no_earning_rule"
ORDER_NOT_FOUND = "order_not_found"
EXCHANGE_LIMIT = "exchange_limit_reached"
UNKNOWN_OP = "unknown_points_op"
PointsErrorCode = Literal[
    "insufficient_points",
    "points_overflow",
    "already_signed_in",
    "no_earning_rule",
    "order_not_found",
    "exchange_limit_reached",
    "unknown_points_op",
]


class PointsError(ValueError):
    def __init__(self, code: PointsErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: PointsErrorCode = code
        self.message = message


class ExpiryPolicy(_Frozen):
    """When a tenant's points expire, on the tenant's local calendar:
    ``days_after_earning``: at the end of the ``days``-th day after the earning
    day; ``end_of_month``: at the end of the month ``months`` after the earning
    month (0: the earning month's own end); ``never``."""

    kind: ExpiryKind = "never"
    days: int = Field(default=0, ge=0, le=3650)
    months: int = Field(default=0, ge=0, le=120)
    timezone: str = Field(default="UTC", min_length=1, max_length=64)

    @model_validator(mode="after")
    def _check(self) -> Self:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone: '{self.timezone}' is not an IANA time zone") from exc
        if self.kind == "days_after_earning" and self.days < 1:
            raise ValueError("days: days_after_earning needs days >= 1")
        return self

    def expires_at(self, earned_at_ms: int) -> int | None:
        """The instant (epoch ms) points earned at ``earned_at_ms`` stop being usable."""
        if self.kind == "never":
            return None
        zone = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(earned_at_ms / 1000, UTC).astimezone(zone)
        if self.kind == "days_after_earning":
            day = local.date() + timedelta(days=self.days + 1)
            end = datetime(day.year, day.month, day.day, tzinfo=zone)
        else:
            month = local.month - 1 + self.months + 1  # the month after the one that ends
            year, month = local.year + month // 12, month % 12 + 1
            end = datetime(year, month, 1, tzinfo=zone)
        return int(end.timestamp() * 1000)


class Lot(_Frozen):
    """The points of one earning (or positive adjustment)."""

    lot_id: str  # the key of the entry that created it
    earned_at: int
    available_at: int  # pending before this
    expires_at: int | None
    amount: int = Field(ge=1)
    left: int = Field(ge=0)

    def usable(self, at_ms: int) -> bool:
        return (
            self.left > 0
            and self.available_at <= at_ms
            and (self.expires_at is None or at_ms < self.expires_at)
        )

    @property
    def order(self) -> tuple[int, int, str]:
        """Spending order: soonest expiry first (never last), then oldest."""
        return (
            _NEVER if self.expires_at is None else self.expires_at,
            self.earned_at,
            self.lot_id,
        )


class Move(_Frozen):
    lot_id: str
    delta: int  # what the entry added to (or took from) the lot


class Entry(_Frozen):
    key: str  # the idempotency key
    kind: EntryKind
    amount: int  # signed: what the balance gained
    balance: int  # after this entry
    at: int
    reason: str
    source_id: str
    moves: tuple[Move, ...]


class Account(_Frozen):
    balance: int = 0
    lots: tuple[Lot, ...] = ()  # with points left, in spending order
    # The sign-in streak: the last local day signed in (yyyymmdd) and its length.
    signin_day: int = 0
    streak: int = 0
    # Exchanges of points for coupons on the local day ``exchange_day``.
    exchange_day: int = 0
    exchanges: int = 0

    @classmethod
    def of(cls, raw: bytes | None, legacy_balance: int) -> Account:
        """The account as stored; one written before accounts had lots (only a
        balance) is one lot that never expires."""
        if raw:
            return cls.model_validate_json(raw)
        if legacy_balance <= 0:
            return cls()
        lot = Lot(
            lot_id="legacy",
            earned_at=0,
            available_at=0,
            expires_at=None,
            amount=legacy_balance,
            left=legacy_balance,
        )
        return cls(balance=legacy_balance, lots=(lot,))

    def next_expiry(self) -> int | None:
        """When the expiry job next has work on this account."""
        due = [lot.expires_at for lot in self.lots if lot.left and lot.expires_at is not None]
        return min(due) if due else None

    def spendable(self, at_ms: int) -> int:
        return sum(lot.left for lot in self.lots if lot.usable(at_ms))

    def pending(self, at_ms: int) -> int:
        return sum(lot.left for lot in self.lots if lot.available_at > at_ms)

    def expiring(self, at_ms: int, within_ms: int) -> int:
        """Usable points that expire before ``at_ms + within_ms``."""
        return sum(
            lot.left
            for lot in self.lots
            if lot.usable(at_ms)
            and lot.expires_at is not None
            and lot.expires_at < at_ms + within_ms
        )

    def due(self, at_ms: int) -> list[Lot]:
        """Lots past their expiry with points left: the expiry job's work."""
        return [
            lot
            for lot in self.lots
            if lot.left > 0 and lot.expires_at is not None and lot.expires_at <= at_ms
        ]


def _check_amount(amount: int) -> None:
    if not 1 <= amount <= MAX_AMOUNT:
        raise ValueError(f"amount must be 1..{MAX_AMOUNT}")


def _with(account: Account, lots: list[Lot], entry: Entry) -> tuple[Account, Entry]:
    kept = sorted((lot for lot in lots if lot.left > 0), key=lambda lot: lot.order)
    # model_copy: the streak and exchange counts ride along unchanged.
    return account.model_copy(update={"balance": entry.balance, "lots": tuple(kept)}), entry


def earn(
    account: Account,
    key: str,
    amount: int,
    at_ms: int,
    policy: ExpiryPolicy,
    reason: str,
    source_id: str,
    pending_ms: int = 0,
    kind: Literal["earn", "adjust"] = "earn",
) -> tuple[Account, Entry]:
    """A new lot of ``amount`` points, usable from ``at_ms + pending_ms``; its
    expiry counts from when it becomes usable."""
    _check_amount(amount)
    if account.balance + amount > MAX_BALANCE:
        raise PointsError(OVERFLOW, f"an account holds at most {MAX_BALANCE} points")
    available = at_ms + max(pending_ms, 0)
    lot = Lot(
        lot_id=key,
        earned_at=at_ms,
        available_at=available,
        expires_at=policy.expires_at(available),
        amount=amount,
        left=amount,
    )
    entry = Entry(
        key=key,
        kind=kind,
        amount=amount,
        balance=account.balance + amount,
        at=at_ms,
        reason=reason,
        source_id=source_id,
        moves=(Move(lot_id=key, delta=amount),),
    )
    return _with(account, [*account.lots, lot], entry)


def _take(lots: list[Lot], amount: int, at_ms: int) -> tuple[list[Lot], list[Move]]:
    """Take ``amount`` from the usable lots in spending order (the caller checked
    there is enough)."""
    out, moves, need = [], [], amount
    for lot in sorted(lots, key=lambda lot: lot.order):
        take = min(lot.left, need) if need and lot.usable(at_ms) else 0
        if take:
            need -= take
            moves.append(Move(lot_id=lot.lot_id, delta=-take))
            lot = lot.model_copy(update={"left": lot.left - take})
        out.append(lot)
    return out, moves


def spend(
    account: Account,
    key: str,
    amount: int,
    at_ms: int,
    reason: str,
    source_id: str,
    kind: Literal["spend", "adjust"] = "spend",
) -> tuple[Account, Entry]:
    """Take ``amount`` usable points, soonest-expiring first; refused whole when
    there are not that many."""
    _check_amount(amount)
    usable = account.spendable(at_ms)
    if usable < amount:
        raise PointsError(INSUFFICIENT, f"{amount} points asked, {usable} usable")
    lots, moves = _take(list(account.lots), amount, at_ms)
    entry = Entry(
        key=key,
        kind=kind,
        amount=-amount,
        balance=account.balance - amount,
        at=at_ms,
        reason=reason,
        source_id=source_id,
        moves=tuple(moves),
    )
    return _with(account, lots, entry)


def expire(account: Account, lot: Lot, at_ms: int) -> tuple[Account, Entry]:
    """The expiry of what is left of one due lot. Its key is made of the lot, so
    a job that runs twice (or dies and runs again) writes it once."""
    entry = Entry(
        key=f"expire:{lot.lot_id}",
        kind="expire",
        amount=-lot.left,
        balance=account.balance - lot.left,
        at=at_ms,
        reason="expired",
        source_id=lot.lot_id,
        moves=(Move(lot_id=lot.lot_id, delta=-lot.left),),
    )
    lots = [x.model_copy(update={"left": 0}) if x.lot_id == lot.lot_id else x for x in account.lots]
    return _with(account, lots, entry)


def reverse(
    account: Account,
    key: str,
    lot_id: str,
    earned: int,
    at_ms: int,
    reason: str,
    source_id: str,
) -> tuple[Account, Entry]:
    """Take back an earning of ``earned`` points (its order was refunded): what is
    left of its lot (all of it while pending), then, for what was already spent
    of it, usable points of other lots as far as there are any. Never below
    zero: what cannot be taken back is not (the entry says what was)."""
    _check_amount(earned)
    lot = next((x for x in account.lots if x.lot_id == lot_id), None)
    left = lot.left if lot is not None else 0
    others = [x for x in account.lots if x.lot_id != lot_id]
    take = min(max(earned - left, 0), sum(x.left for x in others if x.usable(at_ms)))
    lots, moves = _take(others, take, at_ms)
    own = (Move(lot_id=lot_id, delta=-left),) if left else ()
    total = left + take
    entry = Entry(
        key=key,
        kind="reverse",
        amount=-total,
        balance=account.balance - total,
        at=at_ms,
        reason=reason,
        source_id=source_id,
        moves=(*own, *moves),
    )
    return _with(account, lots, entry)


class PointsRules(_Frozen):
    """A tenant's earning rules and expiry policy, as data. Day boundaries (sign-in
    streaks, exchange limits, expiry) follow ``expiry.timezone``."""

    version: int = 0
    expiry: ExpiryPolicy = ExpiryPolicy()
    # Points for day N of a sign-in streak: ``signin[N-1]``, the last one past the
    # end (e.g. (5, 5, 10, 10, 20): a week's streak ends at 20 a day). Empty: none.
    signin: tuple[int, ...] = Field(default=(), max_length=31)
    # Points per currency unit (100 cents) of a completed order; 0: no order rebate.
    order_points_per_unit: int = Field(default=0, ge=0, le=10_000)
    # An order's points stay pending this long (refunds cancel them meanwhile).
    order_pending_days: int = Field(default=0, ge=0, le=365)
    # Exchanges of points (for coupons or chances) per shopper and local day; 0: none.
    exchange_daily_limit: int = Field(default=0, ge=0, le=10_000)

    @model_validator(mode="after")
    def _check_signin(self) -> Self:
        if any(not 1 <= p <= MAX_AMOUNT for p in self.signin):
            raise ValueError(f"signin: each day's points must be 1..{MAX_AMOUNT}")
        return self

    def day(self, at_ms: int) -> int:
        """The tenant's local day of an instant, as yyyymmdd."""
        return local_day(at_ms, self.expiry.timezone)

    def order_points(self, amount_cents: int) -> int:
        return amount_cents * self.order_points_per_unit // 100


def local_day(at_ms: int, timezone: str) -> int:
    local = datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(ZoneInfo(timezone))
    return local.year * 10_000 + local.month * 100 + local.day


def _day_before(day: int) -> int:
    d = date(day // 10_000, day // 100 % 100, day % 100) - timedelta(days=1)
    return d.year * 10_000 + d.month * 100 + d.day


def signin(account: Account, rules: PointsRules, key: str, at_ms: int) -> tuple[Account, Entry]:
    """The day's sign-in rebate: one per local day; a streak that skipped a day
    starts again at day 1."""
    if not rules.signin:
        raise PointsError(NO_RULE, "this tenant has no sign-in rebate")
    today = rules.day(at_ms)
    if account.signin_day == today:
        raise PointsError(ALREADY_SIGNED_IN, "already signed in today")
    streak = account.streak + 1 if account.signin_day == _day_before(today) else 1
    points = rules.signin[min(streak, len(rules.signin)) - 1]
    after, entry = earn(
        account, key, points, at_ms, rules.expiry, f"signin day {streak}", str(today)
    )
    return after.model_copy(update={"signin_day": today, "streak": streak}), entry


def count_exchange(account: Account, rules: PointsRules, at_ms: int) -> Account:
    """One more exchange today, refused past the tenant's daily limit."""
    today = rules.day(at_ms)
    done = account.exchanges if account.exchange_day == today else 0
    if rules.exchange_daily_limit and done >= rules.exchange_daily_limit:
        raise PointsError(EXCHANGE_LIMIT, f"at most {rules.exchange_daily_limit} exchanges a day")
    return account.model_copy(update={"exchange_day": today, "exchanges": done + 1})


def expire_due(account: Account, at_ms: int) -> tuple[Account, list[Entry]]:
    """Every due lot expired, one entry each (none when nothing is due)."""
    entries: list[Entry] = []
    for lot in account.due(at_ms):
        account, entry = expire(account, lot, at_ms)
        entries.append(entry)
    return account, entries


# -- the points kind's requests (keyed by account shard) ---------------------

POINTS_OPS = ("signin", "order", "refund", "adjust", "expire")
ACCOUNT_SHARDS = 32  # owners of the points kind per tenant: users spread over them


def account_shard(user_id: str) -> str:
    """The owner of a user's account on the road: a shard, so that one batch and
    one commit carry many users' movements."""
    return f"{zlib.crc32(user_id.encode()) % ACCOUNT_SHARDS:02d}"


def order_request_id(order_id: str) -> str:
    return f"order:{order_id}"


def refund_request_id(order_id: str) -> str:
    return f"refund:{order_id}"


def apply(
    account: Account,
    rules: PointsRules,
    key: str,
    body: dict[str, Any],
    at_ms: int,
    order_earned: int | None,
) -> tuple[Account, list[Entry]]:
    """One points request decided on ``account`` (raises PointsError when refused).
    ``key`` is the request's idempotency key; ``order_earned``: for a refund, what
    the order's rebate earned (None: no rebate recorded for it)."""
    op = body.get("op")
    if op == "signin":
        account, entry = signin(account, rules, key, at_ms)
        return account, [entry]
    if op == "order":
        points = rules.order_points(int(body.get("amount_cents", 0)))
        if points <= 0:
            raise PointsError(NO_RULE, "this order earns no points under the tenant's rules")
        pending = rules.order_pending_days * 86_400_000
        order_id = str(body.get("order_id", ""))
        account, entry = earn(
            account, key, points, at_ms, rules.expiry, "order", order_id, pending_ms=pending
        )
        return account, [entry]
    if op == "refund":
        order_id = str(body.get("order_id", ""))
        if order_earned is None:
            raise PointsError(ORDER_NOT_FOUND, f"no points were earned for order '{order_id}'")
        lot = order_request_id(order_id)
        account, entry = reverse(account, key, lot, order_earned, at_ms, "refund", order_id)
        return account, [entry]
    if op == "adjust":
        amount = int(body.get("amount", 0))
        reason = str(body.get("reason", "adjust"))
        if amount > 0:
            account, entry = earn(
                account, key, amount, at_ms, rules.expiry, reason, "operator", kind="adjust"
            )
        else:
            account, entry = spend(account, key, -amount, at_ms, reason, "operator", "adjust")
        return account, [entry]
    if op == "expire":
        return expire_due(account, at_ms)
    raise PointsError(UNKNOWN_OP, f"unknown points operation {op!r}")


@dataclass(frozen=True, slots=True)
class PointsOutcome(Event):
    """The decision for one points request (sign-in, order, refund, adjust,
    expire); exactly one per request key. ``movements`` are the ledger entries
    it wrote (as ``Entry`` dicts): the points stream ClickHouse sums."""

    TYPE: ClassVar[str] = "points.outcome"

    event_id: str  # the request key
    tenant_id: str
    user_id: str
    request_id: str
    op: str
    status: str  # applied | rejected
    reason: str  # "" when applied, else a PointsErrorCode
    amount: int  # what the balance gained (negative: lost)
    balance: int  # after the request
    movements: list[dict[str, Any]]
    batch_id: str
    occurred_at: int = field(default_factory=now_ms)
