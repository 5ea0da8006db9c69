"""The discount engine: what a shopper's coupons take off a cart. Pure and
deterministic: no I/O, no clock (the caller passes ``at_ms``), no randomness,
and integer cents everywhere: no float ever touches an amount.

Contract

- ``evaluate`` is one coupon alone on the whole cart: its discount in cents
  (> 0) or a reason code saying why it does not apply.
- ``apply`` applies a given set of coupons together, in the canonical order
  below, each on what the earlier ones left. It keeps the remaining cents of
  every cart line and of shipping, and allocates every cent of every coupon to
  a line (or to shipping), so the allocations add up exactly to the total and
  a partial refund can give back exactly what one line received. It does
  *not* check stacking rules: call ``legal`` first (``best_combination`` only
  ever picks legal combinations). A coupon that yields nothing in the
  combination is reported with its reason and 0.
- ``best_combination`` picks, among the coupons a shopper holds, the legal
  combination with the largest total discount, and says for every coupon it
  did not pick why. It is never worse than the best single coupon.
- Invariants of every result: no discount is negative; a coupon never takes
  more than its eligible amount (what is left of its scope's lines, plus
  shipping for a free_order coupon with ``include_shipping``); the total
  never exceeds the cart total; ``sum(lines) + shipping_cents == total``.
- Validity windows are half-open: ``valid_from <= at_ms < valid_until``.
  The template's ``status`` governs claiming, not redeeming: a coupon already
  held stays usable for its window (the caller may filter before).

Canonical order

1. ``flash_price``: lowers item prices, so every other coupon sees the price
   the shopper actually pays for the item;
2. ``percent``: a percentage of the (flash-lowered) item prices;
3. ``fixed`` and ``threshold``: amounts off the order;
4. ``free_order`` last: it takes what is left, up to its cap.

Ties within a step by ``coupon_id``. Minimum spends (``threshold_cents``, and
a threshold coupon's steps) are measured on what is left of the scope's items
(never shipping) when the coupon is applied, after every coupon before it:
the item-level discounts, and fixed or threshold coupons with a smaller id.
That is the merchant-safe reading: "10 off every 100" counts only money the
shopper will actually pay, never money another coupon already took off.

A flash price takes ``(unit - price)`` off each unit of its sku priced above
it, for at most ``max_qty`` units over the whole order (first lines first); a
unit already sold at another flash price is not priced again.

Rounding: floor, everywhere. A percent discount is ``floor(eligible * percent
/ 100)`` and then the cap. Floor means a discount never exceeds the stated
percentage and rounding can never push spending over a budget; round-half-even
would give away a cent in half of the ties, and round-half-up in all of them.
Order-level discounts (fixed, threshold, percent, free_order) are spread back
over the scope's lines in proportion to what each line has left, by the
largest-remainder method: every line gets the floor of its share, and the
cents still missing go one each to the largest remainders (ties to the lower
line index). Shipping, when covered, counts as one more line after the items.

Search

``best_combination`` tries every single coupon, then per stacking group every
legal subset when there are at most ``MAX_EXHAUSTIVE_SUBSETS`` of them (depth
first in canonical order, so a subset costs one coupon application on top of
its prefix), else a greedy build. Its cost grows with subsets x lines in
scope: a 500-line cart with 14 coupons stackable 10 at a time (about 16,000
subsets) takes seconds; 20 lines, or 8 coupons, well under one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import Field

from domain.activity import _Frozen
from domain.coupons import CouponKind, CouponTemplate, FlashPrice

DiscountReason = Literal[
    "not_yet_valid",
    "expired",
    "below_threshold",
    "no_eligible_items",
    "sku_not_in_cart",
    "price_not_lower",
    "nothing_to_discount",
    "not_combinable",
]
NOT_YET_VALID: Final = "not_yet_valid"
EXPIRED: Final = "expired"
BELOW_THRESHOLD: Final = "below_threshold"
NO_ELIGIBLE_ITEMS: Final = "no_eligible_items"
SKU_NOT_IN_CART: Final = "sku_not_in_cart"
PRICE_NOT_LOWER: Final = "price_not_lower"
NOTHING_TO_DISCOUNT: Final = "nothing_to_discount"
NOT_COMBINABLE: Final = "not_combinable"

REASON_MESSAGES: Final[dict[DiscountReason, str]] = {
    NOT_YET_VALID: "this coupon cannot be used yet",
    EXPIRED: "this coupon has expired",
    BELOW_THRESHOLD: "the items this coupon covers do not reach its minimum amount",
    NO_ELIGIBLE_ITEMS: "no item in the cart is covered by this coupon",
    SKU_NOT_IN_CART: "the item this coupon prices is not in the cart",
    PRICE_NOT_LOWER: "the item's price is already at or below this coupon's price",
    NOTHING_TO_DISCOUNT: (
        "the items this coupon covers have nothing left to discount (free, already "
        "discounted by other coupons, or a percentage that rounds down to 0 cents)"
    ),
    NOT_COMBINABLE: (
        "this coupon applies on its own, but cannot be combined with the better choice "
        "of coupons for this order"
    ),
}

# Above this many subsets of one stacking group, best_combination builds the
# combination greedily instead of trying them all.
MAX_EXHAUSTIVE_SUBSETS = 20_000

# Canonical application order by kind (see the module docstring).
_KIND_RANK: Final[dict[CouponKind, int]] = {
    "flash_price": 0,
    "percent": 1,
    "fixed": 2,
    "threshold": 2,
    "free_order": 3,
}


class CartItem(_Frozen):
    sku: str = Field(min_length=1, max_length=64)
    category: str = Field(default="", max_length=64)
    unit_cents: int = Field(ge=0, le=10**10)
    qty: int = Field(ge=1, le=10_000)

    @property
    def line_cents(self) -> int:
        return self.unit_cents * self.qty


class Cart(_Frozen):
    items: tuple[CartItem, ...] = Field(min_length=1, max_length=500)
    shipping_cents: int = Field(default=0, ge=0, le=10**10)

    @property
    def items_cents(self) -> int:
        return sum(item.line_cents for item in self.items)

    @property
    def total_cents(self) -> int:
        return self.items_cents + self.shipping_cents


@dataclass(frozen=True, slots=True)
class Candidate:
    """A coupon a shopper holds: the template it was claimed from and its
    window (from ``template.validity.window(claimed_at)``)."""

    coupon_id: str
    template: CouponTemplate
    valid_from: int | None
    valid_until: int | None

    @classmethod
    def claimed(cls, coupon_id: str, template: CouponTemplate, claimed_at_ms: int) -> Candidate:
        return cls(coupon_id, template, *template.validity.window(claimed_at_ms))


@dataclass(frozen=True, slots=True)
class CouponResult:
    coupon_id: str
    kind: CouponKind
    discount_cents: int
    reason: str  # a reason code when discount_cents is 0, else ""
    # What the coupon could act on when applied: what was left of its scope's
    # lines (plus shipping for a free_order coupon with include_shipping); 0
    # when it cannot apply whatever the others do (not valid now, no line in
    # scope, sku missing or price not lower).
    eligible_cents: int
    lines: tuple[int, ...]  # this coupon's discount per cart line
    shipping_cents: int  # this coupon's discount on shipping


@dataclass(frozen=True, slots=True)
class Application:
    coupons: tuple[CouponResult, ...]  # in canonical application order
    lines: tuple[int, ...]  # total discount per cart line
    shipping_cents: int  # total discount on shipping
    total_discount_cents: int
    payable_cents: int

    @property
    def applied(self) -> tuple[str, ...]:
        """Ids of the coupons that took something off, in application order."""
        return tuple(c.coupon_id for c in self.coupons if c.discount_cents > 0)

    def result(self, coupon_id: str) -> CouponResult | None:
        return next((c for c in self.coupons if c.coupon_id == coupon_id), None)


@dataclass(frozen=True, slots=True)
class Best:
    application: Application  # of the chosen combination (possibly empty)
    chosen: tuple[str, ...]  # coupon ids, sorted
    # Every candidate not chosen, sorted by coupon id: its own reason when it
    # does not apply alone, else NOT_COMBINABLE.
    rejected: tuple[tuple[str, str], ...]

    def reason(self, coupon_id: str) -> str | None:
        return next((why for cid, why in self.rejected if cid == coupon_id), None)


def allocate_cents(amount: int, weights: Sequence[int]) -> tuple[int, ...]:
    """Split ``amount`` over ``weights`` in proportion, by largest remainder:
    the shares add up to ``amount`` exactly, and with ``0 <= amount <=
    sum(weights)`` no share exceeds its weight (a zero weight gets nothing).
    Ties go to the lower index."""
    total = sum(weights)
    if amount < 0 or min(weights, default=0) < 0 or amount > total:
        raise ValueError(f"cannot allocate {amount} over weights summing to {total}")
    if amount == 0:
        return (0,) * len(weights)
    shares, remainders = zip(*(divmod(amount * w, total) for w in weights), strict=True)
    missing = amount - sum(shares)
    if not missing:
        return shares
    out = list(shares)
    # sorted() is stable, also in reverse: equal remainders keep index order.
    for i in sorted(range(len(out)), key=remainders.__getitem__, reverse=True)[:missing]:
        out[i] += 1
    return tuple(out)


def evaluate(candidate: Candidate, cart: Cart, at_ms: int) -> int | str:
    """This coupon alone on the whole cart: its discount in cents (> 0), or the
    reason code why it does not apply."""
    result = apply((candidate,), cart, at_ms).coupons[0]
    return result.discount_cents or result.reason


def apply(candidates: Iterable[Candidate], cart: Cart, at_ms: int) -> Application:
    """These coupons together, in the canonical order (stacking rules are not
    checked here: see ``legal``). Coupon ids must be unique."""
    return _run(_prepare(candidates, cart, at_ms), cart)


def legal(candidates: Sequence[Candidate]) -> bool:
    """One coupon (or none) is always legal; several are when all are
    non-exclusive, share one group, are distinct coupons, and are no more than
    the smallest ``max_per_order`` among them."""
    if len(candidates) <= 1:
        return True
    if len({c.coupon_id for c in candidates}) != len(candidates):
        return False
    stackings = [c.template.stacking for c in candidates]
    if any(s.exclusive for s in stackings) or len({s.group for s in stackings}) != 1:
        return False
    return len(candidates) <= min(s.max_per_order for s in stackings)


def best_combination(candidates: Iterable[Candidate], cart: Cart, at_ms: int) -> Best:
    """The legal combination with the largest total discount; ties go to fewer
    coupons, then to the lexicographically smallest sorted coupon ids.

    Every single coupon is tried; then, per stacking group, every legal subset
    when there are at most ``MAX_EXHAUSTIVE_SUBSETS`` of them, else a greedy
    build (add the coupon that raises the total most while it does). Only
    coupons that apply alone take part: discounts only ever lower what later
    coupons see, so a coupon that yields nothing alone yields nothing in any
    combination."""
    prepared = _prepare(candidates, cart, at_ms)
    alone = {p.candidate.coupon_id: _run((p,), cart) for p in prepared}
    usable = [p for p in prepared if alone[p.candidate.coupon_id].total_discount_cents > 0]

    best_key: tuple[int, int, tuple[str, ...]] = (0, 0, ())  # no coupon at all
    best_members: Sequence[_Prepared] = ()

    def consider(members: Sequence[_Prepared], total: int) -> None:
        nonlocal best_key, best_members
        ids = tuple(sorted(p.candidate.coupon_id for p in members))
        key = (-total, len(ids), ids)
        if key < best_key:
            best_key, best_members = key, tuple(members)

    for p in usable:
        consider((p,), alone[p.candidate.coupon_id].total_discount_cents)
    for members in _stacking_groups(usable):
        _search_group(members, cart, consider)

    application = _run(best_members, cart)
    chosen_ids = best_key[2]
    rejected = tuple(
        (cid, NOT_COMBINABLE if result.total_discount_cents > 0 else result.coupons[0].reason)
        for cid, result in sorted(alone.items())
        if cid not in chosen_ids
    )
    return Best(application=application, chosen=chosen_ids, rejected=rejected)


# --- the engine --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A candidate checked against the cart once: the lines it acts on and the
    reason it cannot apply whatever else is applied ("" if none)."""

    candidate: Candidate
    lines: tuple[int, ...]
    reason: str

    @property
    def order(self) -> tuple[int, str]:
        return _KIND_RANK[self.candidate.template.kind], self.candidate.coupon_id


def _prepare(candidates: Iterable[Candidate], cart: Cart, at_ms: int) -> list[_Prepared]:
    out: list[_Prepared] = []
    seen: set[str] = set()
    for candidate in candidates:
        if candidate.coupon_id in seen:
            raise ValueError(f"coupon '{candidate.coupon_id}' given twice")
        seen.add(candidate.coupon_id)
        lines, reason = _lines_for(candidate.template, cart)
        if candidate.valid_from is not None and at_ms < candidate.valid_from:
            reason = NOT_YET_VALID
        elif candidate.valid_until is not None and at_ms >= candidate.valid_until:
            reason = EXPIRED
        out.append(_Prepared(candidate, lines, reason))
    return out


def _lines_for(template: CouponTemplate, cart: Cart) -> tuple[tuple[int, ...], str]:
    items = cart.items
    if template.flash is not None:
        flash = template.flash
        same_sku = [i for i, item in enumerate(items) if item.sku == flash.sku]
        if not same_sku:
            return (), SKU_NOT_IN_CART
        lower = tuple(i for i in same_sku if items[i].unit_cents > flash.price_cents)
        return lower, "" if lower else PRICE_NOT_LOWER
    covers = template.scope.matcher()
    lines = tuple(i for i, item in enumerate(items) if covers(item.sku, item.category))
    return lines, "" if lines else NO_ELIGIBLE_ITEMS


class _Ledger:
    """What is left of a cart while coupons are applied one at a time: the
    remaining cents of every line and of shipping, and the units of each line
    already sold at a flash price. ``copy`` lets the search share the work
    of a common prefix of coupons."""

    __slots__ = ("flashed", "items", "left", "shipping_left", "total")

    def __init__(self, cart: Cart) -> None:
        self.items = cart.items
        self.left = [item.line_cents for item in cart.items]
        self.shipping_left = cart.shipping_cents
        self.flashed = [0] * len(cart.items)
        self.total = 0  # discount granted so far

    def copy(self) -> _Ledger:
        other = _Ledger.__new__(_Ledger)
        other.items, other.shipping_left, other.total = self.items, self.shipping_left, self.total
        other.left, other.flashed = self.left.copy(), self.flashed.copy()
        return other

    def take(self, p: _Prepared) -> tuple[dict[int, int], int, int, str]:
        """Apply one coupon to what is left: (cents per line, cents of
        shipping, eligible cents, reason when it takes nothing)."""
        if p.reason:
            return {}, 0, 0, p.reason  # it cannot apply: it acts on nothing
        template, left = p.candidate.template, self.left
        eligible = sum(map(left.__getitem__, p.lines))
        shares: dict[int, int] = {}
        shipping = 0
        reason = ""
        if template.flash is not None:
            shares = _flash_shares(template.flash, self.items, p.lines, left, self.flashed)
        else:
            base = self.shipping_left if template.scope.include_shipping else 0
            if eligible < template.threshold_cents:
                reason = BELOW_THRESHOLD
            else:
                amount = min(_order_amount(template, eligible), eligible + base)
                weights = [*map(left.__getitem__, p.lines), base]
                *line_shares, shipping = allocate_cents(amount, weights)
                shares = {i: cut for i, cut in zip(p.lines, line_shares, strict=True) if cut}
            eligible += base
        for i, cut in shares.items():
            left[i] -= cut
        self.shipping_left -= shipping
        discount = sum(shares.values()) + shipping
        self.total += discount
        return shares, shipping, eligible, reason or ("" if discount else NOTHING_TO_DISCOUNT)


def _canonical(prepared: Iterable[_Prepared]) -> list[_Prepared]:
    return sorted(prepared, key=lambda p: p.order)


def _run(prepared: Iterable[_Prepared], cart: Cart) -> Application:
    ledger = _Ledger(cart)
    results: list[CouponResult] = []
    for p in _canonical(prepared):
        shares, shipping, eligible, reason = ledger.take(p)
        per_line = [0] * len(cart.items)
        for i, cut in shares.items():
            per_line[i] = cut
        results.append(
            CouponResult(
                coupon_id=p.candidate.coupon_id,
                kind=p.candidate.template.kind,
                discount_cents=sum(per_line) + shipping,
                reason=reason,
                eligible_cents=eligible,
                lines=tuple(per_line),
                shipping_cents=shipping,
            )
        )
    lines = tuple(
        item.line_cents - rest for item, rest in zip(cart.items, ledger.left, strict=True)
    )
    shipping_discount = cart.shipping_cents - ledger.shipping_left
    total = sum(lines) + shipping_discount
    return Application(
        coupons=tuple(results),
        lines=lines,
        shipping_cents=shipping_discount,
        total_discount_cents=total,
        payable_cents=cart.total_cents - total,
    )


def _order_amount(template: CouponTemplate, eligible: int) -> int:
    """The discount an order-level coupon grants on ``eligible`` cents of its
    scope that reach its threshold, before capping at what is left."""
    kind = template.kind
    if kind == "fixed":
        return template.amount_cents
    if kind == "threshold":
        steps = eligible // template.threshold_cents if template.repeat else 1
        if template.max_repeats:
            steps = min(steps, template.max_repeats)
        return template.amount_cents * steps
    if kind == "percent":
        off = eligible * template.percent // 100  # floor: see the module docstring
        return off if template.cap_cents is None else min(off, template.cap_cents)
    if kind == "free_order":
        assert template.cap_cents is not None  # the template requires it
        return template.cap_cents
    raise AssertionError(f"not an order-level kind: {kind}")


def _flash_shares(
    flash: FlashPrice,
    items: Sequence[CartItem],
    lines: Sequence[int],
    left: Sequence[int],
    flashed: list[int],
) -> dict[int, int]:
    """(unit - price) off per unit, for at most ``max_qty`` units over the
    whole order, first lines first. A unit already sold at another flash price
    is not priced twice, and no line goes below 0."""
    budget = flash.max_qty or sum(items[i].qty for i in lines)
    shares: dict[int, int] = {}
    for i in lines:
        units = min(items[i].qty - flashed[i], budget)
        if units <= 0:
            continue
        cut = min((items[i].unit_cents - flash.price_cents) * units, left[i])
        if cut <= 0:
            continue
        flashed[i] += units
        budget -= units
        shares[i] = cut
    return shares


def _stacking_groups(usable: Sequence[_Prepared]) -> list[list[_Prepared]]:
    """Non-exclusive coupons by group (groups and members in id order), only
    groups where more than one coupon could combine."""
    groups: dict[str, list[_Prepared]] = {}
    for p in sorted(usable, key=lambda p: p.candidate.coupon_id):
        stacking = p.candidate.template.stacking
        if not stacking.exclusive and stacking.max_per_order > 1:
            groups.setdefault(stacking.group, []).append(p)
    return [members for _, members in sorted(groups.items()) if len(members) > 1]


def _search_group(
    members: list[_Prepared],
    cart: Cart,
    consider: Callable[[Sequence[_Prepared], int], None],
) -> None:
    """Every legal subset of 2+ members of one group, or the greedy build when
    there are too many subsets to try; each is passed to ``consider`` with its
    total discount."""
    size_limit = min(
        len(members), max(p.candidate.template.stacking.max_per_order for p in members)
    )
    subsets = sum(math.comb(len(members), k) for k in range(2, size_limit + 1))
    if subsets <= MAX_EXHAUSTIVE_SUBSETS:
        _every_subset(_canonical(members), _Ledger(cart), [], consider)
    else:
        _greedy(members, cart, consider)


def _every_subset(
    members: list[_Prepared],
    ledger: _Ledger,
    chosen: list[_Prepared],
    consider: Callable[[Sequence[_Prepared], int], None],
) -> None:
    """Depth first, members in canonical order: a subset's ledger is its
    prefix's ledger plus one coupon, so each subset costs one application.
    A subset that breaks ``max_per_order`` is skipped with all its supersets
    (they only get larger, and their smallest limit only smaller). A subset
    with a member that takes nothing is tried, but loses to the same subset
    without it, which is tried too and is smaller."""
    for index, p in enumerate(members):
        grown = [*chosen, p]
        if not legal([q.candidate for q in grown]):
            continue
        after = ledger.copy()
        after.take(p)
        if len(grown) > 1:
            consider(grown, after.total)
        _every_subset(members[index + 1 :], after, grown, consider)


def _greedy(
    members: list[_Prepared],
    cart: Cart,
    consider: Callable[[Sequence[_Prepared], int], None],
) -> None:
    """Add the coupon that raises the total most (ties: smaller id) while one
    does. A coupon added later may leave an earlier one nothing to take: such
    passengers are dropped before ``consider`` (the others' figures do not
    change, since a coupon that takes nothing changes no line)."""
    chosen: list[_Prepared] = []
    total = 0
    while True:
        step: tuple[tuple[int, str], _Prepared, Application] | None = None
        for p in members:
            if any(q is p for q in chosen) or not legal([q.candidate for q in [*chosen, p]]):
                continue
            trial = _run([*chosen, p], cart)
            key = (-trial.total_discount_cents, p.candidate.coupon_id)
            if trial.total_discount_cents > total and (step is None or key < step[0]):
                step = (key, p, trial)
        if step is None:
            return
        _, p, trial = step
        chosen.append(p)
        total = trial.total_discount_cents
        applied = set(trial.applied)
        consider([q for q in chosen if q.candidate.coupon_id in applied], total)
