"""Pure draw rules: exact weights, stock exhaustion, per-user limits."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from pydantic import ValidationError

from domain.activity import Activity, Prize
from domain.draw import REJECT_NOT_RUNNING, REJECT_USER_LIMIT, PoolState


def _activity(**overrides: object) -> Activity:
    fields: dict = {
        "id": "w1",
        "tenant_id": "t1",
        "name": "Wheel",
        "status": "running",
        "prizes": (
            Prize(id="a", name="A", kind="coupon", weight=1, stock=3),
            Prize(id="b", name="B", kind="points", weight=2, stock=None),
            Prize(id="none", name="Thanks", kind="thanks", weight=7),
        ),
        "fallback_prize_id": "none",
    }
    fields.update(overrides)
    return Activity(**fields)


def _state(activity: Activity) -> PoolState:
    stock = {p.id: p.stock for p in activity.prizes if p.stock is not None}
    return PoolState(activity=activity, stock=stock)


def test_stock_is_never_exceeded_and_weight_moves_to_fallback() -> None:
    state = _state(_activity())
    rng = random.Random(7)
    wins = Counter(state.decide(f"u{i}", 0, rng).prize.id for i in range(5000))
    assert wins["a"] == 3
    assert state.stock["a"] == 0
    # After "a" ran out, its weight (1 of 10) went to the fallback: b stays ~20%.
    assert 0.17 < wins["b"] / 5000 < 0.23


def test_weights_are_exact_with_unlimited_stock() -> None:
    activity = _activity(
        prizes=(
            Prize(id="a", name="A", kind="coupon", weight=1),
            Prize(id="none", name="Thanks", kind="thanks", weight=3),
        )
    )
    state = _state(activity)
    rng = random.Random(1)
    n = 200_000
    wins = Counter(state.decide("u", 0, rng).prize.id for _ in range(n))
    assert abs(wins["a"] / n - 0.25) < 0.005


def test_per_user_limit_rejects_after_limit() -> None:
    state = _state(_activity(per_user_limit=2))
    rng = random.Random(3)
    statuses = [state.decide("u", 0, rng).status for _ in range(4)]
    assert statuses[:2] != ["rejected", "rejected"] and "rejected" not in statuses[:2]
    rejected = state.decide("u", 0, rng)
    assert rejected.status == "rejected" and rejected.reason == REJECT_USER_LIMIT
    assert state.user_draws["u"] == 2
    assert state.decide("other", 0, rng).status != "rejected"


def test_closed_activity_rejects() -> None:
    rng = random.Random(0)
    for closed in (_activity(status="paused"), _activity(starts_at=10_000), _activity(ends_at=5)):
        decision = _state(closed).decide("u", 100, rng)
        assert decision.status == "rejected" and decision.reason == REJECT_NOT_RUNNING


@pytest.mark.parametrize(
    "overrides",
    [
        {"fallback_prize_id": "missing"},
        {"fallback_prize_id": "a"},  # finite stock cannot be the fallback
        {"prizes": (Prize(id="x", name="X", kind="thanks", weight=0),), "fallback_prize_id": "x"},
        {"starts_at": 10, "ends_at": 5},
    ],
)
def test_invalid_configuration_is_refused(overrides: dict) -> None:
    with pytest.raises(ValidationError):
        _activity(**overrides)
