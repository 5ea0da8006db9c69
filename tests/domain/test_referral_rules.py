"""The referral rule's coupon rewards and the request ids that make each reward
decided once: pure rules, no I/O."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from domain.ids import REQUEST_ID_PATTERN
from domain.shares import SIDES, ReferralRule, reward_request_id


def test_a_rule_names_a_template_per_side_or_none() -> None:
    rule = ReferralRule(advocate_points=5, friend_template_id="welcome-5")
    assert [rule.points(s) for s in SIDES] == [5, 0]
    assert [rule.template_id(s) for s in SIDES] == [None, "welcome-5"]
    assert ReferralRule().template_id("advocate") is None


@pytest.mark.parametrize("bad", ["", "../x", "a b", "x" * 65])
def test_a_template_id_is_an_id(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ReferralRule(advocate_template_id=bad)
    assert caught.value.errors()[0]["loc"] == ("advocate_template_id",)


def test_a_coupon_reward_has_its_own_request_id_per_friend_and_side() -> None:
    long_id = "a" * 64
    ids = {
        reward_request_id(long_id, long_id, side, kind)
        for side in SIDES
        for kind in ("points", "coupon")
    }
    assert len(ids) == 4  # one per side and kind
    for request_id in ids:
        assert re.fullmatch(REQUEST_ID_PATTERN, request_id), request_id
    # the points ids are the ones the points rewards always had
    assert reward_request_id("a", "b", "friend") == reward_request_id("a", "b", "friend", "points")
    assert reward_request_id("a", "b", "friend", "coupon").endswith(":friend:coupon")
    assert reward_request_id("a", "b", "friend", "coupon") != reward_request_id(
        "a", "c", "friend", "coupon"
    )
