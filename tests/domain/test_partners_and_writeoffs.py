"""Pure rules of write-offs: when a coupon is redeemed for what discount, and
who may reverse it (what an operator may register as a partner:
tests/domain/test_partners.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from domain.claims import Coupon, Redemption
from domain.discount import Cart
from domain.writeoffs import (
    REJECT_ALREADY_REDEEMED,
    REJECT_BUDGET,
    REJECT_EXPIRED,
    REJECT_NOT_APPLICABLE,
    REJECT_NOT_REDEEMED,
    REJECT_NOT_YET_VALID,
    REJECT_VOIDED,
    Budget,
    RedemptionRequest,
    body_digest,
    canonical,
    decide,
    redemption,
)
from tests.domain.test_coupons import _template

TEMPLATE = _template(
    id="tpl", amount_cents=500, threshold_cents=2000, validity={"starts_at": 100, "ends_at": 1000}
)
CART = Cart(items=({"sku": "a", "unit_cents": 3000, "qty": 1},))


def _coupon(**changes: Any) -> Coupon:
    return Coupon.issue(TEMPLATE, "ann", "claim", "ann:r", 0).model_copy(update=changes)


@pytest.mark.parametrize(
    ("changes", "at", "reason"),
    [
        ({}, 500, ""),
        ({"state": "used"}, 500, REJECT_ALREADY_REDEEMED),
        ({"state": "voided"}, 500, REJECT_VOIDED),
        ({"state": "expired"}, 500, REJECT_EXPIRED),
        ({}, 1000, REJECT_EXPIRED),
        ({}, 99, REJECT_NOT_YET_VALID),
    ],
)
def test_redemption_by_state_and_window(changes: dict, at: int, reason: str) -> None:
    assert redemption(_coupon(**changes), TEMPLATE, CART, at, [])[1] == reason


def test_redemption_prices_the_order_and_respects_every_budget() -> None:
    assert redemption(_coupon(), TEMPLATE, CART, 500, [Budget("b", 1000, 500)]) == (500, "", "")
    assert redemption(_coupon(), TEMPLATE, CART, 500, [Budget("b", 1000, 501)])[1] == REJECT_BUDGET
    small = Cart(items=({"sku": "a", "unit_cents": 1000, "qty": 1},))
    assert redemption(_coupon(), TEMPLATE, small, 500, []) == (
        0,
        REJECT_NOT_APPLICABLE,
        "below_threshold",
    )


def test_only_the_redeeming_partner_reverses_for_that_order() -> None:
    done = Redemption(
        partner_id="p1", order_id="o1", order_cents=3000, discount_cents=500, redeemed_at=1
    )
    used = _coupon(state="used", redemption=done)

    def reverse(coupon: Coupon, partner: str, order: str) -> Any:
        return decide("reverse", {"order_id": order}, coupon, TEMPLATE, partner, 2, [])

    back = reverse(used, "p1", "o1")
    assert back.after is not None and (back.after.state, back.after.redemption) == (
        "available",
        None,
    )
    assert (back.spend_cents, back.spend_redemptions, back.redeemed) == (-500, -1, -1)
    assert reverse(used, "p2", "o1").reason == REJECT_NOT_REDEEMED
    assert reverse(used, "p1", "o2").reason == REJECT_NOT_REDEEMED
    assert reverse(_coupon(), "p1", "o1").reason == REJECT_NOT_REDEEMED


def test_the_digest_ignores_key_order_but_not_content() -> None:
    one = RedemptionRequest.model_validate_json(
        b'{"request_id":"r","coupon_id":"c","order":{"order_id":"o","items":[{"sku":"a","unit_cents":1,"qty":1}]}}'
    )
    two = RedemptionRequest.model_validate_json(
        b'{"order":{"items":[{"qty":1,"unit_cents":1,"sku":"a"}],"order_id":"o"},"coupon_id":"c","request_id":"r"}'
    )
    assert body_digest(canonical(one)) == body_digest(canonical(two))
    three = one.model_copy(update={"coupon_id": "d"})
    assert body_digest(canonical(one)) != body_digest(canonical(three))
    with pytest.raises(ValidationError, match="exactly one"):
        RedemptionRequest.model_validate({"request_id": "r", "order": one.order.model_dump()})
