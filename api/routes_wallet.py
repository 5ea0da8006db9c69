"""Shopper wallet: the coupons a shopper holds with what each is worth, and the
best combination of them for a cart, with the reason each other one is left out.

A coupon's terms are its template's at claim time. They are read from the
current template, which is correct because a template's terms cannot change
once shoppers may hold its coupons (``domain.template_lifecycle``: after it
starts only name, description and claim_closes_at move).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, ValidationError

from api.deps import Res, Shopper
from api.errors import validation_error
from domain.claims import Coupon, CouponState
from domain.coupons import CouponKind, CouponTemplate, FlashPrice, Scope
from domain.discount import REASON_MESSAGES, Candidate, Cart, best_combination
from domain.events import now_ms
from ledger.templates import TemplateStore

router = APIRouter(prefix="/v1/wallet", tags=["shopper"])


class WalletCoupon(BaseModel):
    coupon_id: str
    template_id: str
    name: str
    description: str
    kind: CouponKind
    face_value_cents: int | None  # None when the cart decides (uncapped percent, flash price)
    threshold_cents: int  # minimum spend on the covered items (threshold: per step)
    percent: int
    cap_cents: int | None
    flash: FlashPrice | None
    scope: Scope
    claimed_at: int
    valid_from: int | None
    valid_until: int | None  # excluded: the coupon expires at this millisecond
    state: CouponState  # as shown: an available coupon past its window shows expired


class BestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cart: Cart


class AppliedCoupon(BaseModel):
    coupon_id: str
    template_id: str
    name: str
    discount_cents: int


class LeftOut(BaseModel):
    coupon_id: str
    template_id: str
    name: str
    reason: str  # a domain.discount.DiscountReason
    message: str


class BestResult(BaseModel):
    chosen: list[AppliedCoupon]  # in the order they apply
    left_out: list[LeftOut]  # every other usable coupon, by coupon id
    cart_total_cents: int
    total_discount_cents: int
    payable_cents: int


async def _held(res: Res, shopper: Shopper) -> list[tuple[Coupon, CouponTemplate]]:
    """The shopper's coupons with their templates, oldest first."""
    store = TemplateStore(res.store.redis)
    coupons = await store.wallet(shopper.tenant_id, shopper.user_id)
    templates = await store.templates_by_id(
        shopper.tenant_id, sorted({c.template_id for c in coupons})
    )
    # Templates are never deleted; should one be missing, its coupons are left
    # out rather than failing the whole wallet.
    return [(c, templates[c.template_id]) for c in coupons if c.template_id in templates]


@router.get("", response_model=list[WalletCoupon])
async def list_wallet(
    res: Res,
    shopper: Shopper,
    state: Annotated[CouponState | Literal["all"], Query()] = "all",
) -> list[WalletCoupon]:
    """My coupons, oldest first; an available coupon past its window shows as expired."""
    at = now_ms()
    out = []
    for coupon, template in await _held(res, shopper):
        shown = coupon.shown_state(at)
        if state in ("all", shown):
            out.append(
                WalletCoupon(
                    coupon_id=coupon.coupon_id,
                    template_id=template.id,
                    name=template.name,
                    description=template.description,
                    kind=template.kind,
                    face_value_cents=template.face_value_cents,
                    threshold_cents=template.threshold_cents,
                    percent=template.percent,
                    cap_cents=template.cap_cents,
                    flash=template.flash,
                    scope=template.scope,
                    claimed_at=coupon.claimed_at,
                    valid_from=coupon.valid_from,
                    valid_until=coupon.valid_until,
                    state=shown,
                )
            )
    return out


@router.post("/best", response_model=BestResult)
async def best_for_cart(
    res: Res,
    shopper: Shopper,
    body: Annotated[dict[str, Any], Body(description="{cart: {items: [...], shipping_cents}}")],
) -> BestResult:
    """The combination of my usable coupons (available, not expired) that takes
    the most off this cart, and why each other one does not apply."""
    try:
        cart = BestRequest.model_validate(body).cart
    except ValidationError as exc:
        raise validation_error("invalid_cart", exc.errors(), whole="cart") from exc
    at = now_ms()
    usable = [(c, t) for c, t in await _held(res, shopper) if c.shown_state(at) == "available"]
    template_of = {c.coupon_id: t for c, t in usable}
    best = best_combination(
        (Candidate(c.coupon_id, t, c.valid_from, c.valid_until) for c, t in usable), cart, at
    )
    application = best.application
    return BestResult(
        chosen=[
            AppliedCoupon(
                coupon_id=r.coupon_id,
                template_id=template_of[r.coupon_id].id,
                name=template_of[r.coupon_id].name,
                discount_cents=r.discount_cents,
            )
            for r in application.coupons
        ],
        left_out=[
            LeftOut(
                coupon_id=coupon_id,
                template_id=template_of[coupon_id].id,
                name=template_of[coupon_id].name,
                reason=reason,
                message=REASON_MESSAGES[reason],  # type: ignore[index]  # a DiscountReason
            )
            for coupon_id, reason in best.rejected
        ],
        cart_total_cents=cart.total_cents,
        total_discount_cents=application.total_discount_cents,
        payable_cents=application.payable_cents,
    )
