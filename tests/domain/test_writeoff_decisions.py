"""Pure rules of the write-off decision (domain.writeoffs.decide): lock, confirm,
release, a lock's own end, partial refunds priced again, and which budget a
refusal names."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.claims import Coupon
from domain.coupons import DAY_MS
from domain.discount import Cart
from domain.writeoffs import (
    REJECT_BUDGET,
    REJECT_LOCK_EXPIRED,
    REJECT_LOCK_NOT_DUE,
    REJECT_LOCKED,
    REJECT_NOT_LOCKED,
    REJECT_ORDER_UNKNOWN,
    REJECT_REFUND_EXCEEDS_ORDER,
    Budget,
    RefundLine,
    decide,
    remaining,
)
from tests.domain.test_coupons import _template

FIXED = _template(
    id="tpl", amount_cents=500, threshold_cents=2000, validity={"days_after_claim": 30}
)
PERCENT = _template(id="pct", kind="percent", percent=10, amount_cents=0)
TEE = {"sku": "tee", "category": "clothes", "unit_cents": 2500, "qty": 2}
CAP = {"sku": "cap", "category": "clothes", "unit_cents": 1000, "qty": 1}


def _order(order_id: str = "o1", *items: dict[str, Any]) -> dict[str, Any]:
    return {"order_id": order_id, "items": list(items or [TEE]), "shipping_cents": 300}


def _coupon(template: Any = FIXED) -> Coupon:
    return Coupon.issue(template, "ann", "claim", "ann:r", 0)


def _locked(at: int = 1000, ttl_s: int = 60) -> Coupon:
    d = decide("lock", {"order": _order(), "ttl_s": ttl_s}, _coupon(), FIXED, "p1", at, [])
    assert d.after is not None
    return d.after


def test_a_lock_reserves_like_a_redemption_and_a_confirm_only_settles() -> None:
    d = decide("lock", {"order": _order(), "ttl_s": 60}, _coupon(), FIXED, "p1", 1000, [])
    assert (d.status, d.spend_cents, d.spend_redemptions, d.redeemed, d.lock) == (
        "locked",
        500,
        1,
        0,
        "+",
    )
    assert d.after is not None and d.after.lock is not None and d.after.lock.until == 61_000
    confirm = decide("confirm", {"order_id": "o1"}, d.after, FIXED, "p1", 2000, [])
    assert (confirm.status, confirm.spend_cents, confirm.redeemed, confirm.lock) == (
        "redeemed",
        0,
        1,
        "-",
    )
    assert confirm.after is not None and confirm.after.state == "used"
    assert confirm.after.redemption is not None and confirm.after.redemption.discount_cents == 500


@pytest.mark.parametrize(
    ("op", "body", "partner", "at", "reason"),
    [
        ("confirm", {"order_id": "o1"}, "p2", 2000, REJECT_NOT_LOCKED),
        ("confirm", {"order_id": "o2"}, "p1", 2000, REJECT_NOT_LOCKED),
        ("confirm", {"order_id": "o1"}, "p1", 61_000, REJECT_LOCK_EXPIRED),
        ("release", {"order_id": "o1", "expired": True}, "p1", 60_999, REJECT_LOCK_NOT_DUE),
        ("redeem", {"order": _order("o9")}, "p2", 2000, REJECT_LOCKED),
        ("lock", {"order": _order("o9")}, "p1", 2000, REJECT_LOCKED),
    ],
)
def test_a_lock_is_its_partners_for_its_order_until_it_ends(
    op: str, body: dict[str, Any], partner: str, at: int, reason: str
) -> None:
    assert decide(op, body, _locked(), FIXED, partner, at, []).reason == reason


def test_a_release_gives_back_only_todays_day_budget() -> None:
    locked = _locked(at=DAY_MS - 10, ttl_s=60)
    d = decide(
        "release", {"order_id": "o1", "expired": True}, locked, FIXED, "p1", DAY_MS + 60_000, []
    )
    assert (d.status, d.spend_cents, d.spend_redemptions, d.order_index, d.expiry) == (
        "released",
        -500,
        -1,
        "-",
        "+",
    )
    assert d.spent_on == 19700101  # the lock's day: not the day the release happens
    assert d.after is not None and d.after.state == "available" and d.after.lock is None


def test_a_partial_refund_prices_the_coupon_again_never_higher() -> None:
    order = _order("o1", TEE, CAP)
    redeemed = decide("redeem", {"order": order}, _coupon(PERCENT), PERCENT, "p1", 1000, [])
    assert redeemed.discount_cents == 600 and redeemed.after is not None
    one_tee = {"order_id": "o1", "items": [{"sku": "tee", "qty": 1}]}
    part = decide("reverse", one_tee, redeemed.after, PERCENT, "p1", 5000, [])
    assert (part.status, part.discount_cents, part.spend_cents, part.order_cents) == (
        "partially_reversed",
        -250,
        -250,
        -2500,
    )
    assert part.redeemed == 0 and part.after is not None and part.after.state == "used"
    rest = decide("reverse", {"order_id": "o1"}, part.after, PERCENT, "p1", 6000, [])
    assert (rest.status, rest.spend_cents, rest.redeemed) == ("reversed", -350, -1)
    too_many = {"order_id": "o1", "items": [{"sku": "cap", "qty": 2}]}
    assert (
        decide("reverse", too_many, part.after, PERCENT, "p1", 6000, []).reason
        == REJECT_REFUND_EXCEEDS_ORDER
    )


def test_a_partial_refund_of_a_coupon_redeemed_without_lines_is_refused() -> None:
    redeemed = decide("redeem", {"order": _order()}, _coupon(), FIXED, "p1", 1000, []).after
    assert redeemed is not None and redeemed.redemption is not None
    old = redeemed.model_copy(
        update={"redemption": redeemed.redemption.model_copy(update={"order": None})}
    )
    one = {"order_id": "o1", "items": [{"sku": "tee", "qty": 1}]}
    assert decide("reverse", one, old, FIXED, "p1", 2000, []).reason == REJECT_ORDER_UNKNOWN


def test_a_refusal_names_the_budget_that_is_spent() -> None:
    budgets = [
        Budget("t", 10_000, 0),
        Budget("p", 3, 3, unit="redemptions", name="partner_redemptions"),
    ]
    d = decide("redeem", {"order": _order()}, _coupon(), FIXED, "p1", 1000, budgets)
    assert (d.reason, d.detail) == (REJECT_BUDGET, "partner_redemptions")


@given(
    qtys=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    refund=st.lists(st.integers(0, 6), min_size=1, max_size=4),
)
def test_what_is_left_after_a_refund_adds_up(qtys: list[int], refund: list[int]) -> None:
    cart = Cart(
        items=tuple({"sku": f"s{i}", "unit_cents": 100, "qty": q} for i, q in enumerate(qtys)),
        shipping_cents=50,
    )
    lines = tuple(RefundLine(sku=f"s{i}", qty=r) for i, r in enumerate(refund) if r)
    left = remaining(cart, lines, 0)
    over = any(r > (qtys[i] if i < len(qtys) else 0) for i, r in enumerate(refund))
    if over:
        assert left == REJECT_REFUND_EXCEEDS_ORDER
    elif left is None:
        assert sum(line.qty for line in lines) == sum(qtys)
    else:
        assert isinstance(left, Cart)
        assert left.items_cents == cart.items_cents - 100 * sum(line.qty for line in lines)
