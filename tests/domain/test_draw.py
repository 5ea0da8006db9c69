"""Pure draw rules: exact weights, stock, limits, rules in their documented order."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from domain import draw as rules
from domain.activity import Activity, Envelopes, Limits, Prize, Rules, Tier
from domain.draw import PoolState, initial_stock

THANKS = Prize(id="none", name="Thanks", kind="thanks", weight=7)


def _activity(**overrides: object) -> Activity:
    fields: dict = {
        "id": "w1",
        "tenant_id": "t1",
        "name": "Wheel",
        "status": "running",
        "prizes": (
            Prize(id="a", name="A", kind="coupon", weight=1, stock=3),
            Prize(id="b", name="B", kind="points", weight=2, points=10),
            THANKS,
        ),
        "fallback_prize_id": "none",
    }
    fields.update(overrides)
    return Activity(**fields)


def _state(activity: Activity) -> PoolState:
    return PoolState(activity=activity, stock=initial_stock(activity))


def test_stock_is_never_exceeded_and_weight_moves_to_fallback() -> None:
    state = _state(_activity())
    rng = random.Random(7)
    wins = Counter(state.decide(f"u{i}", 0, rng).prize.id for i in range(5000))
    assert wins["a"] == 3
    assert state.stock["a"] == 0
    # After "a" ran out, its weight (1 of 10) went to the fallback: b stays ~20%.
    assert 0.17 < wins["b"] / 5000 < 0.23
    assert state.table(-1).probabilities() == {"b": 0.2, "none": 0.8}


def test_per_user_and_daily_limits() -> None:
    state = _state(_activity(limits=Limits(per_user_total=3, per_user_daily=2)))
    rng = random.Random(3)
    day1, day2 = 1_700_000_000_000, 1_700_000_000_000 + 86_400_000
    assert [state.decide("u", day1, rng).status != "rejected" for _ in range(2)] == [True, True]
    assert state.decide("u", day1, rng).reason == rules.REJECT_DAILY_LIMIT
    assert state.decide("u", day2, rng).status != "rejected"
    assert state.decide("u", day2, rng).reason == rules.REJECT_USER_LIMIT
    assert state.user_draws["u"] == 3
    assert state.decide("other", day2, rng).status != "rejected"


def _shanghai(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() * 1000)  # type: ignore[misc]


def test_days_and_months_follow_the_activity_time_zone_and_chances_raise_limits() -> None:
    limits = Limits(per_user_daily=1, per_user_monthly=2)
    state = _state(_activity(limits=limits, timezone="Asia/Shanghai"))
    rng = random.Random(5)
    # 23:30 on 31 March in Shanghai, then 00:30 on 1 April there: both 31 March in UTC.
    march, april = _shanghai(2026, 3, 31, 23, 30), _shanghai(2026, 4, 1, 0, 30)
    assert state.decide("u", march, rng).counts_as_draw
    assert state.decide("u", march, rng).reason == rules.REJECT_DAILY_LIMIT
    assert state.decide("u", april, rng).counts_as_draw, "a new local day and month"
    assert (state.day, state.month) == (20260401, 202604)
    assert state.decide("u", april, rng).reason == rules.REJECT_DAILY_LIMIT
    state.top_up("u", 2, april)  # two chances: today's limit 3, this month's 4
    assert state.decide("u", april, rng).counts_as_draw
    assert state.decide("u", april, rng).counts_as_draw
    assert state.decide("u", april, rng).reason == rules.REJECT_DAILY_LIMIT
    assert state.decide("u", _shanghai(2026, 4, 2, 9), rng).counts_as_draw  # April's 4th of 4
    assert state.decide("u", _shanghai(2026, 4, 3, 9), rng).reason == rules.REJECT_MONTHLY_LIMIT
    assert state.bonus == {"u": 2} and state.bonus_day == {}, "today's chances ended with the day"


def test_top_up_rejections() -> None:
    sold = _activity(limits=Limits(chance_points=20))
    assert rules.top_up_rejection(sold, 0, 3, bought=True) == ""
    assert rules.top_up_rejection(_activity(), 0, 3, bought=True) == rules.REJECT_CHANCES_NOT_SOLD
    assert rules.top_up_rejection(_activity(), 0, 3, bought=False) == ""
    for bad in (0, -1, 10**6, "3", None):
        assert rules.top_up_rejection(sold, 0, bad, bought=True) == rules.REJECT_INVALID_CHANCES
    ended = _activity(limits=Limits(chance_points=20), ends_at=10)
    assert rules.top_up_rejection(ended, 10, 1, bought=True) == rules.REJECT_NOT_RUNNING


def test_activity_wide_maximum() -> None:
    state = _state(_activity(limits=Limits(max_draws=2)))
    rng = random.Random(0)
    statuses = [state.decide(f"u{i}", 0, rng) for i in range(3)]
    assert statuses[2].reason == rules.REJECT_ACTIVITY_EXHAUSTED
    assert state.total_draws == 2


def test_points_cost_and_points_prizes_update_the_wallet() -> None:
    activity = _activity(
        prizes=(Prize(id="b", name="B", kind="points", weight=1, points=25), THANKS),
        limits=Limits(points_cost=10),
    )
    state = _state(activity)
    wallet = {"rich": 10, "poor": 9}
    rng = random.Random(5)
    assert state.decide("poor", 0, rng, wallet).reason == rules.REJECT_NO_POINTS
    decision = state.decide("rich", 0, rng, wallet)
    assert decision.status in {"won", "lost"}
    gained = 25 if decision.status == "won" else 0
    assert decision.points_delta == gained - 10
    assert wallet == {"rich": gained, "poor": 9}


def test_blacklisted_user_is_rejected_before_limits() -> None:
    state = _state(_activity(rules=Rules(blacklist=("bad",))))
    decision = state.decide("bad", 0, random.Random(1))
    assert decision.reason == rules.REJECT_BLACKLISTED and not decision.counts_as_draw
    assert "bad" not in state.user_draws


def test_locked_prize_gives_the_fallback_until_unlocked() -> None:
    activity = _activity(
        prizes=(
            Prize(id="gold", name="Gold", kind="item", weight=1, stock=10, unlock_after_draws=2),
            THANKS.model_copy(update={"weight": 0}),
        ),
    )
    state = _state(activity)
    rng = random.Random(2)
    first, second, third = (state.decide("u", 0, rng) for _ in range(3))
    assert (first.prize.id, first.reason) == ("none", rules.FALLBACK_LOCKED)
    assert (second.prize.id, second.reason) == ("none", rules.FALLBACK_LOCKED)
    assert (third.prize.id, third.status) == ("gold", "won")
    assert state.stock["gold"] == 9


def test_weight_tiers_by_draws_and_points() -> None:
    activity = _activity(
        rules=Rules(
            tiers=(
                Tier(name="regular", min_draws=2, weights={"b": 1}),
                Tier(name="vip", min_points=100, weights={"a": 1}),
            )
        )
    )
    state = _state(activity)
    assert state.tier_for(0, 0) == -1
    assert state.tier_for(2, 0) == 0
    assert state.tier_for(0, 500) == 1  # the last matching tier wins
    rng = random.Random(4)
    assert state.decide("vip", 0, rng, {"vip": 500}).prize.id == "a"


def test_red_envelopes_sum_to_the_budget() -> None:
    activity = Activity(
        id="env",
        tenant_id="t1",
        kind="red_envelope",
        name="Envelopes",
        status="running",
        envelopes=Envelopes(budget_cents=10_000, count=7, min_cents=100),
    )
    state = _state(activity)
    rng = random.Random(9)
    opened = [state.decide(f"u{i}", 0, rng) for i in range(9)]
    amounts = [d.amount for d in opened if d.status == "won"]
    assert len(amounts) == 7 and sum(amounts) == 10_000 and min(amounts) >= 100
    assert [d.reason for d in opened[7:]] == [rules.REJECT_SOLD_OUT] * 2
    assert state.stock == {rules.ENVELOPES_LEFT: 0, rules.BUDGET_LEFT: 0}


def test_closed_activity_rejects() -> None:
    rng = random.Random(0)
    for closed in (_activity(status="paused"), _activity(starts_at=10_000), _activity(ends_at=5)):
        decision = _state(closed).decide("u", 100, rng)
        assert decision.reason == rules.REJECT_NOT_RUNNING


@pytest.mark.parametrize(
    "overrides",
    [
        {"fallback_prize_id": "missing"},
        {"fallback_prize_id": "a"},  # finite stock cannot be the fallback
        {
            "prizes": (
                THANKS.model_copy(update={"weight": 0}),
                Prize(id="x", name="X", kind="item", weight=0),
            )
        },
        {"starts_at": 10, "ends_at": 5},
        {"kind": "grid"},  # a grid has exactly 8 cells
        {"envelopes": Envelopes(budget_cents=100, count=1)},
        {"rules": Rules(tiers=(Tier(name="t", weights={"nope": 1}),))},
    ],
)
def test_invalid_configuration_is_refused(overrides: dict) -> None:
    with pytest.raises(ValidationError):
        _activity(**overrides)


def test_grid_has_eight_cells() -> None:
    cells = tuple(
        Prize(id=f"c{i}", name=f"Cell {i}", kind="coupon", weight=1, stock=5) for i in range(7)
    )
    grid = _activity(kind="grid", prizes=(*cells, THANKS))
    assert len(grid.prizes) == 8
