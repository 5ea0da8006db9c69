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

from datetime import UTC, datetime, timedelta
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator

from domain.activity import _Frozen

MAX_AMOUNT = 10**9  # one movement
MAX_BALANCE = 10**12  # one account: far below 2**53, so JSON and Lua numbers stay exact
_NEVER = 2**62

EntryKind = Literal["earn", "spend", "expire", "adjust", "reverse"]
ExpiryKind = Literal["never", "days_after_earning", "end_of_month"]

INSUFFICIENT = "insufficient_points"
OVERFLOW = "points_overflow"
PointsErrorCode = Literal["insufficient_points", "points_overflow"]


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
    return Account(balance=entry.balance, lots=tuple(kept)), entry


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
