"""Claiming coupons: the rules a claim is decided by, the coupon it issues, and
the template lifecycle that governs claiming. Pure: the actor passes the clock.

A claim is decided by the actor that owns the template (its stock and per-user
counts), exactly like a draw: ``claim_rejection`` is the one definition of
whether a claim is issued. An issued claim creates a ``Coupon`` with an
unguessable id in the shopper's wallet, in the same ledger commit that takes
the stock (ledger/commit_claims.lua).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pydantic import Field

from domain.activity import _Frozen
from domain.coupons import CouponTemplate, TemplateStatus
from domain.discount import Cart
from domain.events import Event, now_ms

TEMPLATE_TRANSITIONS: dict[TemplateStatus, frozenset[TemplateStatus]] = {
    "draft": frozenset({"running", "ended"}),
    "running": frozenset({"paused", "ended"}),
    "paused": frozenset({"running", "ended"}),
    "ended": frozenset(),
}
# What an operator may change on a template shoppers already hold coupons of:
# the coupon's terms are what the shopper claimed, so only these move.
LIVE_EDITABLE = frozenset({"name", "description", "claim_closes_at", "institution_id"})

# Reason codes of a rejected claim (the api maps each to a message).
REJECT_UNKNOWN_TEMPLATE = "template_not_found"
REJECT_NOT_RUNNING = "template_not_running"
REJECT_NOT_OPEN = "claim_not_open_yet"
REJECT_CLOSED = "claim_closed"
REJECT_SOLD_OUT = "sold_out"
REJECT_USER_LIMIT = "user_limit_reached"
REJECT_CODE_NOT_FOUND = "code_not_found"
REJECT_CODE_NOT_AVAILABLE = "code_not_available"
REJECT_NOT_EXCHANGEABLE = "not_exchangeable"

CouponSource = Literal["claim", "draw", "distribution", "code", "exchange", "referral"]
# The ``grant`` of a referral reward's claim request (a distribution's names its job).
REFERRAL_GRANT = "referral"
CouponState = Literal["available", "locked", "used", "voided", "expired"]
ClaimStatus = Literal["issued", "rejected"]

# 128 bits: a coupon id is a bearer secret at a partner's till.
COUPON_ID_BYTES = 16


def new_coupon_id() -> str:
    return "c_" + secrets.token_urlsafe(COUPON_ID_BYTES)


def claim_rejection(
    template: CouponTemplate, at_ms: int, left: int | None, user_claimed: int
) -> str | None:
    """Why a claim at ``at_ms`` is refused, or None when it is issued.
    ``left``: coupons the template may still issue (None: unlimited stock);
    ``user_claimed``: coupons this user already claimed from it."""
    if template.status != "running":
        return REJECT_NOT_RUNNING
    if template.claim_opens_at is not None and at_ms < template.claim_opens_at:
        return REJECT_NOT_OPEN
    if template.claim_closes_at is not None and at_ms >= template.claim_closes_at:
        return REJECT_CLOSED
    if left is not None and left <= 0:
        return REJECT_SOLD_OUT
    per_user = template.limits.per_user
    if per_user and user_claimed >= per_user:
        return REJECT_USER_LIMIT
    return None


def grant_rejection(template: CouponTemplate, left: int | None) -> str | None:
    """Why an operator's grant (a bulk distribution line) is refused, or None.
    A grant is the operator's choice of shopper: the claim window and the
    per-user claim limit do not apply, the stock does, and only a template
    that has started and not ended issues."""
    if template.status not in ("running", "paused"):
        return REJECT_NOT_RUNNING
    if left is not None and left <= 0:
        return REJECT_SOLD_OUT
    return None


def code_rejection(
    found: tuple[str, str] | None, batch_id: str, taken_in_batch: bool
) -> str | None:
    """Why a code cannot be claimed: ``found`` is the code's (batch, state) in
    the ledger (None: no such code), ``batch_id`` the batch the api found it in.
    Only an available code is claimed, and once."""
    if found is None or found[0] != batch_id:
        return REJECT_CODE_NOT_FOUND
    if found[1] != "available" or taken_in_batch:
        return REJECT_CODE_NOT_AVAILABLE
    return None


class Redemption(_Frozen):
    """How a used coupon was redeemed: a reversal needs the same partner and
    order, and gives back exactly this discount. ``order`` is what is left of
    the order after partial refunds: a further refund is priced on it."""

    partner_id: str
    order_id: str
    order_cents: int
    discount_cents: int
    redeemed_at: int
    order: Cart | None = None  # None on coupons redeemed before partial refunds existed


class Lock(_Frozen):
    """A coupon held for one partner's order until ``until``: its discount is
    priced and its budgets reserved at lock time, so a confirm cannot fail on
    them; a release (or the lock's expiry) gives them back."""

    partner_id: str
    order_id: str
    order: Cart
    discount_cents: int
    locked_at: int
    until: int


class Coupon(_Frozen):
    """A coupon in a shopper's wallet, as the ledger holds it (JSON, by coupon id).
    Its terms are its template's at claim time (``template_version``). It stops
    being usable the moment ``valid_until`` passes; the state turns ``expired``
    when the expiry sweep's change is committed (domain.coupon_changes), shortly
    after."""

    coupon_id: str
    tenant_id: str
    template_id: str
    template_version: int = Field(ge=1)
    user_id: str
    source: CouponSource
    source_id: str  # the request key (claim, draw), job line or code it came from
    claimed_at: int
    valid_from: int | None
    valid_until: int | None
    state: CouponState = "available"
    redemption: Redemption | None = None  # while used
    lock: Lock | None = None  # while locked

    @classmethod
    def issue(
        cls,
        template: CouponTemplate,
        user_id: str,
        source: CouponSource,
        source_id: str,
        at_ms: int,
        coupon_id: str | None = None,
    ) -> Coupon:
        valid_from, valid_until = template.validity.window(at_ms)
        return cls(
            coupon_id=coupon_id or new_coupon_id(),
            tenant_id=template.tenant_id,
            template_id=template.id,
            template_version=template.version,
            user_id=user_id,
            source=source,
            source_id=source_id,
            claimed_at=at_ms,
            valid_from=valid_from,
            valid_until=valid_until,
        )

    def shown_state(self, at_ms: int) -> CouponState:
        """What a wallet shows: an available coupon past its window is expired."""
        if self.state == "available" and self.valid_until is not None and at_ms >= self.valid_until:
            return "expired"
        return self.state


@dataclass(frozen=True, slots=True)
class ClaimOutcome(Event):
    """The decision for one claim request; exactly one per request key. An issued
    claim carries the coupon (its id and window); it is also the issuance event."""

    TYPE: ClassVar[str] = "claim.outcome"

    event_id: str  # the request key: one request, one outcome
    tenant_id: str
    template_id: str
    user_id: str
    request_id: str
    status: ClaimStatus
    reason: str  # "" when issued, else a REJECT_* code
    coupon_id: str  # "" when rejected
    valid_from: int | None
    valid_until: int | None
    batch_id: str
    occurred_at: int = field(default_factory=now_ms)
    # Where an issued coupon came from (claim, distribution, code); "" when rejected
    # (added with a default: events of before still decode as version 1).
    source: str = ""
    # Points an exchange spent on the coupon, in the claim's commit; 0 otherwise.
    points_spent: int = 0
