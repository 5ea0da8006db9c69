"""Write-off: a partner redeems a coupon against an order (at once, or in two
steps: lock at checkout, then confirm on payment or release on cancel; an
unconfirmed lock releases itself when it ends), and reverses that on a full or
partial refund. Pure: the actor passes the clock, the coupon, its template and
the budgets' counters as the ledger holds them.

A write-off is a request on the road (kind ``writeoff``, keyed by the coupon's
template: its redemption count and discount budget are the counters it
touches), decided by the template's actor and committed atomically with the
coupon's new state and the budgets (ledger/commit_writeoffs.lua, which checks
every budget again). Its request key is ``<partner id>:<request id>``: a
partner's request id is its idempotency key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self, get_args

import orjson
from pydantic import ConfigDict, Field, ValidationError, model_validator

from domain.activity import _Frozen
from domain.claims import Coupon, Lock, Redemption
from domain.coupons import CouponTemplate
from domain.discount import Candidate, Cart, CartItem, evaluate
from domain.draw import utc_day
from domain.events import Event, now_ms
from domain.ids import ID_PATTERN, REQUEST_ID_PATTERN

WriteoffOp = Literal["redeem", "lock", "confirm", "release", "reverse"]
WriteoffStatus = Literal[
    "redeemed", "locked", "released", "reversed", "partially_reversed", "rejected"
]
WRITEOFF_OPS: frozenset[str] = frozenset(get_args(WriteoffOp))
# Statuses that move money: GMV and discount cost are sums over these events (a
# lock only reserves; its confirm is the redemption).
SETTLED: frozenset[str] = frozenset({"redeemed", "reversed", "partially_reversed"})

REJECT_COUPON_NOT_FOUND = "coupon_not_found"
REJECT_ALREADY_REDEEMED = "coupon_already_redeemed"
REJECT_LOCKED = "coupon_locked"  # held for another order until its lock ends
REJECT_VOIDED = "coupon_voided"
REJECT_EXPIRED = "coupon_expired"
REJECT_NOT_YET_VALID = "coupon_not_yet_valid"
REJECT_NOT_APPLICABLE = "coupon_not_applicable"  # the order does not qualify: see detail
REJECT_BUDGET = "budget_exhausted"  # detail names the budget
REJECT_NOT_REDEEMED = "coupon_not_redeemed"  # a reversal of a coupon no order of yours used
REJECT_NOT_LOCKED = "coupon_not_locked"  # a confirm or release of no lock of yours
REJECT_LOCK_EXPIRED = "lock_expired"  # a confirm after the lock's end: lock again
REJECT_LOCK_NOT_DUE = "lock_not_due"  # the sweep's release of a lock that was renewed
REJECT_REFUND_EXCEEDS_ORDER = "refund_exceeds_order"
REJECT_ORDER_UNKNOWN = "order_lines_unknown"  # a partial refund of a coupon redeemed without lines

# A lock holds a coupon this long unless the partner asks otherwise.
DEFAULT_LOCK_TTL_S = 15 * 60
MAX_LOCK_TTL_S = 24 * 3600
MIN_LOCK_TTL_S = 1


class Order(Cart):
    """The order a coupon is redeemed against: a cart with the partner's order id."""

    order_id: str = Field(pattern=ID_PATTERN)


class RedemptionRequest(_Frozen):
    """``POST /v1/partner/redemptions`` (and ``/locks``): one coupon (by id, or by
    the code it was claimed with or that stands for it offline) against one order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    coupon_id: str | None = Field(default=None, pattern=ID_PATTERN)
    code: str | None = Field(default=None, min_length=1, max_length=64)
    order: Order

    @model_validator(mode="after")
    def _one_coupon(self) -> Self:
        if (self.coupon_id is None) == (self.code is None):
            raise ValueError("give exactly one of coupon_id and code")
        return self


class LockRequest(RedemptionRequest):
    """``POST /v1/partner/locks``: hold the coupon for the order for ``ttl_s``."""

    ttl_s: int = Field(default=DEFAULT_LOCK_TTL_S, ge=MIN_LOCK_TTL_S, le=MAX_LOCK_TTL_S)


class RefundLine(_Frozen):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(ge=1, le=10_000)


class OrderRequest(_Frozen):
    """``POST /v1/partner/confirmations`` and ``/releases``: every coupon the
    partner locked for the order is confirmed (redeemed) or released."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    order_id: str = Field(pattern=ID_PATTERN)


class ReversalRequest(OrderRequest):
    """``POST /v1/partner/reversals``: the order was refunded. No lines: all of it,
    and its coupons come back. Lines (and refunded shipping): part of it, and
    each coupon is priced again on what is left (see `refund`)."""

    items: tuple[RefundLine, ...] = Field(default=(), max_length=500)
    shipping_cents: int = Field(default=0, ge=0, le=10**10)

    @property
    def partial(self) -> bool:
        return bool(self.items) or self.shipping_cents > 0


def body_digest(body: bytes) -> str:
    """What a request id is bound to: the same id with another body is refused."""
    return hashlib.sha256(body).hexdigest()[:32]


def canonical(model: _Frozen) -> bytes:
    """A request's body as its digest sees it: key order and spacing do not count."""
    return orjson.dumps(model.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


BudgetUnit = Literal["cents", "redemptions"]


@dataclass(frozen=True, slots=True)
class Budget:
    """One budget a write-off spends from, as the ledger holds it now."""

    key: str  # the ledger counter
    limit: int
    spent: int
    unit: BudgetUnit = "cents"
    daily: bool = False  # a UTC day's: only that day's spending counts against it
    name: str = "template"  # what a refusal's detail names

    def cost(self, discount_cents: int, redemptions: int) -> int:
        return discount_cents if self.unit == "cents" else redemptions


def within(budgets: list[Budget], discount_cents: int) -> str | None:
    """The first budget one more redemption of ``discount_cents`` would overspend."""
    for b in budgets:
        if b.spent + b.cost(discount_cents, 1) > b.limit:
            return b.name
    return None


def _usable(coupon: Coupon | None, template: CouponTemplate | None, at_ms: int) -> str:
    """Why the coupon cannot be redeemed or locked now ("" when it can)."""
    if coupon is None or template is None or coupon.template_id != template.id:
        return REJECT_COUPON_NOT_FOUND
    if coupon.state == "used":
        return REJECT_ALREADY_REDEEMED
    if coupon.state == "locked":
        return REJECT_LOCKED
    if coupon.state == "voided":
        return REJECT_VOIDED
    if coupon.shown_state(at_ms) == "expired":
        return REJECT_EXPIRED
    if coupon.valid_from is not None and at_ms < coupon.valid_from:
        return REJECT_NOT_YET_VALID
    return ""


def redemption(
    coupon: Coupon | None,
    template: CouponTemplate | None,
    order: Cart,
    at_ms: int,
    budgets: list[Budget],
) -> tuple[int, str, str]:
    """``(discount cents, reason, detail)``: reason is "" when the coupon may be
    redeemed (or locked) for that discount; detail names the discount engine's
    reason when the order does not qualify, or the budget that is spent."""
    reason = _usable(coupon, template, at_ms)
    if reason or coupon is None or template is None:
        return 0, reason, ""
    candidate = Candidate(coupon.coupon_id, template, coupon.valid_from, coupon.valid_until)
    discount = evaluate(candidate, order, at_ms)
    if isinstance(discount, str):
        return 0, REJECT_NOT_APPLICABLE, discount
    spent = within(budgets, discount)
    if spent is not None:
        return 0, REJECT_BUDGET, spent
    return discount, "", ""


def held_lock(coupon: Coupon | None, partner_id: str, order_id: str) -> Lock | None:
    """The coupon's lock when it is this partner's, for this order."""
    if coupon is None or coupon.state != "locked" or coupon.lock is None:
        return None
    lock = coupon.lock
    return lock if (lock.partner_id, lock.order_id) == (partner_id, order_id) else None


def redeemed_for(coupon: Coupon | None, partner_id: str, order_id: str) -> Redemption | None:
    """The coupon's redemption when this partner redeemed it for this order."""
    if coupon is None or coupon.state != "used" or coupon.redemption is None:
        return None
    done = coupon.redemption
    return done if (done.partner_id, done.order_id) == (partner_id, order_id) else None


def remaining(order: Cart, lines: tuple[RefundLine, ...], shipping_cents: int) -> Cart | str | None:
    """What is left of ``order`` once ``lines`` and ``shipping_cents`` are refunded:
    a cart, None when nothing is left, or REJECT_REFUND_EXCEEDS_ORDER."""
    refund: dict[str, int] = {}
    for line in lines:
        refund[line.sku] = refund.get(line.sku, 0) + line.qty
    left: list[CartItem] = []
    for item in order.items:
        take = min(item.qty, refund.get(item.sku, 0))
        if take:
            refund[item.sku] -= take
        if item.qty > take:
            left.append(item.model_copy(update={"qty": item.qty - take}))
    if any(refund.values()) or shipping_cents > order.shipping_cents:
        return REJECT_REFUND_EXCEEDS_ORDER
    if not left:
        return None
    return Cart(items=tuple(left), shipping_cents=order.shipping_cents - shipping_cents)


def repriced(template: CouponTemplate, coupon: Coupon, done: Redemption, left: Cart) -> int | None:
    """The coupon's discount on what is left of its order, priced as on the day
    it was redeemed and never above what it gave then; None when what is left no
    longer qualifies (then the coupon comes back whole)."""
    candidate = Candidate(coupon.coupon_id, template, coupon.valid_from, coupon.valid_until)
    discount = evaluate(candidate, left, done.redeemed_at)
    return None if isinstance(discount, str) else min(discount, done.discount_cents)


@dataclass(frozen=True, slots=True)
class Decision:
    """One write-off decided: the coupon after it (None when refused), what its
    event says, and what the commit changes besides the coupon."""

    status: WriteoffStatus
    reason: str = ""
    detail: str = ""
    after: Coupon | None = None
    order_id: str = ""
    order_cents: int = 0  # the event's: negative when money goes back
    discount_cents: int = 0  # the event's
    spend_cents: int = 0  # what the cents budgets gain (negative: given back)
    spend_redemptions: int = 0  # what the redemption-count budgets gain
    spent_on: int = 0  # the UTC day a give-back's spending belonged to (0: today)
    redeemed: int = 0  # the template's redeemed count changes by this
    order_index: Literal["+", "-", ""] = ""  # the coupon joins or leaves its order
    expiry: Literal["+", "-", ""] = ""  # back on the expiry schedule, or off it
    lock: Literal["+", "-", ""] = ""  # on the lock schedule (at the lock's end), or off


def _refused(reason: str, detail: str = "", order_id: str = "") -> Decision:
    return Decision("rejected", reason, detail, order_id=order_id)


def decide(
    op: str,
    body: dict[str, Any],
    coupon: Coupon | None,
    template: CouponTemplate | None,
    partner_id: str,
    at_ms: int,
    budgets: list[Budget],
) -> Decision:
    """The decision on one write-off request (its body as the api put it on the
    road) for ``coupon`` as it stands now."""
    if op in ("redeem", "lock"):
        try:
            order = Order.model_validate(body.get("order"))
        except ValidationError:  # the api checked it: a bug, refused as not found
            return _refused(REJECT_COUPON_NOT_FOUND)
        discount, reason, detail = redemption(coupon, template, order, at_ms, budgets)
        if reason or coupon is None:
            return _refused(reason, detail, order.order_id)
        cart = Cart(items=order.items, shipping_cents=order.shipping_cents)
        if op == "redeem":
            done = Redemption(
                partner_id=partner_id,
                order_id=order.order_id,
                order_cents=order.total_cents,
                discount_cents=discount,
                redeemed_at=at_ms,
                order=cart,
            )
            after = coupon.model_copy(update={"state": "used", "redemption": done})
        else:
            ttl_s = body.get("ttl_s", DEFAULT_LOCK_TTL_S)
            lock = Lock(
                partner_id=partner_id,
                order_id=order.order_id,
                order=cart,
                discount_cents=discount,
                locked_at=at_ms,
                until=at_ms + 1000 * (ttl_s if type(ttl_s) is int else DEFAULT_LOCK_TTL_S),
            )
            after = coupon.model_copy(update={"state": "locked", "lock": lock})
        # A lock spends the budgets as a redemption does (a confirm cannot fail on
        # them); it joins its order so a confirm or release by order finds it.
        return Decision(
            "redeemed" if op == "redeem" else "locked",
            after=after,
            order_id=order.order_id,
            order_cents=order.total_cents,
            discount_cents=discount,
            spend_cents=discount,
            spend_redemptions=1,
            redeemed=1 if op == "redeem" else 0,
            order_index="+",
            expiry="-",
            lock="" if op == "redeem" else "+",
        )
    order_id = str(body.get("order_id", ""))
    if coupon is None:
        return _refused(REJECT_COUPON_NOT_FOUND, order_id=order_id)
    if op in ("confirm", "release"):
        return _unlock(op, body, coupon, partner_id, order_id, at_ms)
    if op == "reverse":
        return _reverse(body, coupon, template, partner_id, order_id)
    return _refused(REJECT_COUPON_NOT_FOUND, order_id=order_id)


def _unlock(
    op: str, body: dict[str, Any], coupon: Coupon, partner_id: str, order_id: str, at_ms: int
) -> Decision:
    lock = held_lock(coupon, partner_id, order_id)
    if lock is None:
        return _refused(REJECT_NOT_LOCKED, order_id=order_id)
    if op == "confirm":
        if at_ms >= lock.until:
            return _refused(REJECT_LOCK_EXPIRED, order_id=order_id)
        done = Redemption(
            partner_id=partner_id,
            order_id=order_id,
            order_cents=lock.order.total_cents,
            discount_cents=lock.discount_cents,
            redeemed_at=at_ms,
            order=lock.order,
        )
        after = coupon.model_copy(update={"state": "used", "redemption": done, "lock": None})
        # The budgets were spent at lock time: a confirm only settles.
        return Decision(
            "redeemed",
            after=after,
            order_id=order_id,
            order_cents=done.order_cents,
            discount_cents=done.discount_cents,
            redeemed=1,
            lock="-",
        )
    if body.get("expired") is True and at_ms < lock.until:
        return _refused(REJECT_LOCK_NOT_DUE, order_id=order_id)
    after = coupon.model_copy(update={"state": "available", "lock": None})
    return Decision(
        "released",
        after=after,
        order_id=order_id,
        order_cents=-lock.order.total_cents,
        discount_cents=-lock.discount_cents,
        spend_cents=-lock.discount_cents,
        spend_redemptions=-1,
        spent_on=utc_day(lock.locked_at),
        order_index="-",
        expiry="+",
        lock="-",
    )


def _reverse(
    body: dict[str, Any],
    coupon: Coupon,
    template: CouponTemplate | None,
    partner_id: str,
    order_id: str,
) -> Decision:
    done = redeemed_for(coupon, partner_id, order_id)
    if done is None:
        return _refused(REJECT_NOT_REDEEMED, order_id=order_id)
    try:
        lines = tuple(RefundLine.model_validate(x) for x in body.get("items") or ())
    except ValidationError:  # the api checked them: a bug, refused
        return _refused(REJECT_REFUND_EXCEEDS_ORDER, order_id=order_id)
    shipping = body.get("shipping_cents", 0)
    shipping = shipping if type(shipping) is int else 0
    day = utc_day(done.redeemed_at)
    if lines or shipping:
        if done.order is None or template is None:
            return _refused(REJECT_ORDER_UNKNOWN, order_id=order_id)
        left = remaining(done.order, lines, shipping)
        if isinstance(left, str):
            return _refused(left, order_id=order_id)
        discount = repriced(template, coupon, done, left) if left is not None else None
        if left is not None and discount is not None:
            kept = done.model_copy(
                update={"order": left, "order_cents": left.total_cents, "discount_cents": discount}
            )
            back = discount - done.discount_cents
            return Decision(
                "partially_reversed",
                after=coupon.model_copy(update={"redemption": kept}),
                order_id=order_id,
                order_cents=left.total_cents - done.order_cents,
                discount_cents=back,
                spend_cents=back,
                spent_on=day,
            )
    # All of it refunded, or what is left no longer qualifies: the coupon comes back.
    return Decision(
        "reversed",
        after=coupon.model_copy(update={"state": "available", "redemption": None}),
        order_id=order_id,
        order_cents=-done.order_cents,
        discount_cents=-done.discount_cents,
        spend_cents=-done.discount_cents,
        spend_redemptions=-1,
        spent_on=day,
        redeemed=-1,
        order_index="-",
        expiry="+",
    )


@dataclass(frozen=True, slots=True)
class Writeoff(Event):
    """The decision on one write-off request; exactly one per request key. A
    redemption carries the order's amount and the discount, so GMV and discount
    cost are sums over these events; a reversal carries them negated."""

    TYPE: ClassVar[str] = "writeoff"

    event_id: str  # the request key: "<partner id>:<request id>" (+ ":<coupon id>" for reversals)
    tenant_id: str
    template_id: str
    coupon_id: str
    user_id: str  # the coupon's holder ("" when none)
    partner_id: str
    request_id: str
    digest: str  # of the request's body: the same request id with another body is a 409
    op: WriteoffOp
    status: WriteoffStatus
    reason: str  # "" when applied, else a REJECT_* code
    detail: str  # the discount engine's reason for coupon_not_applicable
    order_id: str
    order_cents: int  # negative on a reversal
    discount_cents: int  # negative on a reversal
    batch_id: str
    occurred_at: int = field(default_factory=now_ms)
