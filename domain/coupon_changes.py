"""Changes to a coupon a shopper holds: an operator voids it, or its validity
window passes and it expires. Pure: the actor passes the clock.

A change is a request on the road like a claim (kind ``coupon``, keyed by the
coupon's template, decided by the template's owning actor), so it is decided
once, committed atomically with the coupon's new state, and its outcome is an
event on COUPON_CHANGES. The request id is derived from the change and the
coupon (``change_request_id``): a coupon is voided or expired at most once, and
asking again answers with the first outcome, whoever asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from domain.claims import Coupon
from domain.events import Event, now_ms

ChangeOp = Literal["void", "expire"]
ChangeStatus = Literal["voided", "expired", "rejected"]
CHANGE_OPS: frozenset[str] = frozenset({"void", "expire"})
APPLIED: dict[str, ChangeStatus] = {"void": "voided", "expire": "expired"}

REJECT_COUPON_NOT_FOUND = "coupon_not_found"
REJECT_COUPON_NOT_AVAILABLE = "coupon_not_available"  # used, voided or expired already
REJECT_COUPON_EXPIRED = "coupon_expired"  # its window passed: nothing left to void
REJECT_COUPON_NOT_DUE = "coupon_not_due"  # an expiry asked before valid_until

# The longest note an operator may give with a void (kept in the event).
NOTE_MAX_CHARS = 200
# The sweep asks for an expiry this long after valid_until, so an actor whose
# clock is a little behind the api's does not find the coupon not yet due.
EXPIRY_GRACE_MS = 2_000


def change_request_id(op: ChangeOp, coupon_id: str) -> str:
    return f"{op}-{coupon_id}"


def change_rejection(op: str, coupon: Coupon | None, template_id: str, at_ms: int) -> str | None:
    """Why ``op`` is refused on ``coupon`` (None: no such coupon), or None when it applies."""
    if coupon is None or coupon.template_id != template_id:
        return REJECT_COUPON_NOT_FOUND
    if coupon.state != "available":
        return REJECT_COUPON_NOT_AVAILABLE
    past = coupon.valid_until is not None and at_ms >= coupon.valid_until
    if op == "void" and past:
        return REJECT_COUPON_EXPIRED
    if op == "expire" and not past:
        return REJECT_COUPON_NOT_DUE
    return None


def changed(coupon: Coupon, op: str) -> Coupon:
    """The coupon after ``op`` applied (``change_rejection`` said it may)."""
    return coupon.model_copy(update={"state": APPLIED[op]})


@dataclass(frozen=True, slots=True)
class CouponChange(Event):
    """The decision on one change request; exactly one per request key. Applied
    (``voided`` / ``expired``) it is the coupon's voided or expired event."""

    TYPE: ClassVar[str] = "coupon.change"

    event_id: str  # the request key: "<holder>:<op>-<coupon id>"
    tenant_id: str
    template_id: str
    coupon_id: str
    user_id: str  # the coupon's holder
    request_id: str
    op: ChangeOp
    status: ChangeStatus
    reason: str  # "" when applied, else a REJECT_* code
    note: str  # the operator's note on a void; "" otherwise
    batch_id: str
    occurred_at: int = field(default_factory=now_ms)
