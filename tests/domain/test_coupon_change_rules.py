"""The rules of a change to an issued coupon: which state and window each
change needs, what it leaves, and that its request id is derived, not chosen."""

from __future__ import annotations

import pytest

from domain.claims import Coupon
from domain.coupon_changes import (
    REJECT_COUPON_EXPIRED,
    REJECT_COUPON_NOT_AVAILABLE,
    REJECT_COUPON_NOT_DUE,
    REJECT_COUPON_NOT_FOUND,
    change_rejection,
    change_request_id,
    changed,
)
from tests.domain.test_coupons import _template

UNTIL = 10_000


def _coupon(**changes: object) -> Coupon:
    template = _template(id="tpl", validity={"starts_at": 0, "ends_at": UNTIL})
    return Coupon.issue(template, "ann", "claim", "ann:r1", 0).model_copy(update=changes)


@pytest.mark.parametrize(
    ("op", "at", "state", "reason"),
    [
        ("void", UNTIL - 1, "available", None),
        ("void", UNTIL, "available", REJECT_COUPON_EXPIRED),  # the window is half-open
        ("expire", UNTIL - 1, "available", REJECT_COUPON_NOT_DUE),
        ("expire", UNTIL, "available", None),
        ("void", 0, "used", REJECT_COUPON_NOT_AVAILABLE),
        ("void", 0, "voided", REJECT_COUPON_NOT_AVAILABLE),
        ("expire", UNTIL, "voided", REJECT_COUPON_NOT_AVAILABLE),
        ("expire", UNTIL, "expired", REJECT_COUPON_NOT_AVAILABLE),
        ("void", UNTIL - 1, "expired", REJECT_COUPON_NOT_AVAILABLE),
    ],
)
def test_rejection_by_state_and_window(op: str, at: int, state: str, reason: str | None) -> None:
    assert change_rejection(op, _coupon(state=state), "tpl", at) == reason


def test_a_coupon_of_another_template_or_none_is_not_found() -> None:
    assert change_rejection("void", None, "tpl", 0) == REJECT_COUPON_NOT_FOUND
    assert change_rejection("void", _coupon(), "other", 0) == REJECT_COUPON_NOT_FOUND


def test_a_coupon_without_window_never_expires() -> None:
    endless = _coupon(valid_until=None)
    assert change_rejection("expire", endless, "tpl", 2**62) == REJECT_COUPON_NOT_DUE
    assert change_rejection("void", endless, "tpl", 2**62) is None


def test_changed_sets_the_state_and_nothing_else() -> None:
    coupon = _coupon()
    assert changed(coupon, "void") == coupon.model_copy(update={"state": "voided"})
    assert changed(coupon, "expire").state == "expired"
    assert change_request_id("void", coupon.coupon_id) == f"void-{coupon.coupon_id}"
