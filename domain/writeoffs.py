"""Write-off: a partner redeems a coupon against an order, or reverses that on a
refund. Pure: the actor passes the clock, the coupon, its template and the
budgets' counters as the ledger holds them.

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
from typing import ClassVar, Literal

import orjson
from pydantic import ConfigDict, Field, model_validator

from domain.activity import _Frozen
from domain.claims import Coupon
from domain.coupons import CouponTemplate
from domain.discount import Candidate, Cart, evaluate
from domain.events import Event, now_ms
from domain.ids import ID_PATTERN, REQUEST_ID_PATTERN

WriteoffOp = Literal["redeem", "reverse"]
WriteoffStatus = Literal["redeemed", "reversed", "rejected"]
WRITEOFF_OPS: frozenset[str] = frozenset({"redeem", "reverse"})
APPLIED: dict[str, WriteoffStatus] = {"redeem": "redeemed", "reverse": "reversed"}

REJECT_COUPON_NOT_FOUND = "coupon_not_found"
REJECT_ALREADY_REDEEMED = "coupon_already_redeemed"
REJECT_VOIDED = "coupon_voided"
REJECT_EXPIRED = "coupon_expired"
REJECT_NOT_YET_VALID = "coupon_not_yet_valid"
REJECT_NOT_APPLICABLE = "coupon_not_applicable"  # the order does not qualify: see detail
REJECT_BUDGET = "budget_exhausted"
REJECT_NOT_REDEEMED = "coupon_not_redeemed"  # a reversal of a coupon no order of yours used


class Order(Cart):
    """The order a coupon is redeemed against: a cart with the partner's order id."""

    order_id: str = Field(pattern=ID_PATTERN)


class RedemptionRequest(_Frozen):
    """``POST /v1/partner/redemptions``: one coupon (by id, or by the code it was
    claimed with or that stands for it offline) against one order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    coupon_id: str | None = Field(default=None, pattern=ID_PATTERN)
    code: str | None = Field(default=None, min_length=1, max_length=64)
    order: Order

    @model_validator(mode="after")
    def _one_coupon(self) -> RedemptionRequest:
        if (self.coupon_id is None) == (self.code is None):
            raise ValueError("give exactly one of coupon_id and code")
        return self


class ReversalRequest(_Frozen):
    """``POST /v1/partner/reversals``: the order was refunded; its coupons come back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    order_id: str = Field(pattern=ID_PATTERN)


def body_digest(body: bytes) -> str:
    """What a request id is bound to: the same id with another body is refused."""
    return hashlib.sha256(body).hexdigest()[:32]


def canonical(model: _Frozen) -> bytes:
    """A request's body as its digest sees it: key order and spacing do not count."""
    return orjson.dumps(model.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True, slots=True)
class Budget:
    """One budget a redemption spends from, as the ledger holds it now."""

    key: str  # the ledger counter
    limit: int
    spent: int


def redemption(
    coupon: Coupon | None,
    template: CouponTemplate | None,
    order: Cart,
    at_ms: int,
    budgets: list[Budget],
) -> tuple[int, str, str]:
    """``(discount cents, reason, detail)``: reason is "" when the coupon is
    redeemed for that discount; detail names the discount engine's reason when
    the order does not qualify."""
    if coupon is None or template is None or coupon.template_id != template.id:
        return 0, REJECT_COUPON_NOT_FOUND, ""
    if coupon.state == "used":
        return 0, REJECT_ALREADY_REDEEMED, ""
    if coupon.state == "voided":
        return 0, REJECT_VOIDED, ""
    if coupon.shown_state(at_ms) == "expired":
        return 0, REJECT_EXPIRED, ""
    if coupon.valid_from is not None and at_ms < coupon.valid_from:
        return 0, REJECT_NOT_YET_VALID, ""
    candidate = Candidate(coupon.coupon_id, template, coupon.valid_from, coupon.valid_until)
    discount = evaluate(candidate, order, at_ms)
    if isinstance(discount, str):
        return 0, REJECT_NOT_APPLICABLE, discount
    if any(b.spent + discount > b.limit for b in budgets):
        return 0, REJECT_BUDGET, ""
    return discount, "", ""


def reversal(coupon: Coupon | None, partner_id: str, order_id: str) -> Coupon | str:
    """The coupon given back after its order was refunded, or why not: only the
    partner that redeemed it, for that order, reverses it. It comes back
    available and back on the expiry schedule: one whose window passed
    meanwhile is expired by the sweep, with its event."""
    if coupon is None:
        return REJECT_COUPON_NOT_FOUND
    done = coupon.redemption
    if (
        coupon.state != "used"
        or done is None
        or (done.partner_id, done.order_id)
        != (
            partner_id,
            order_id,
        )
    ):
        return REJECT_NOT_REDEEMED
    return coupon.model_copy(update={"state": "available", "redemption": None})


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
