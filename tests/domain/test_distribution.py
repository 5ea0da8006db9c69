"""10⁶ draws with unlimited stock match the configured probabilities (chi-square)."""

from __future__ import annotations

import random
from collections import Counter

from domain.activity import Activity, Prize
from domain.draw import PoolState

# Critical value of chi-square with 5 degrees of freedom at p = 0.001.
CHI2_CRITICAL_5DF_P001 = 20.515


def test_million_draws_match_configured_weights() -> None:
    weights = {"p1": 1, "p2": 5, "p3": 14, "p4": 80, "p5": 300, "none": 600}
    activity = Activity(
        id="dist",
        tenant_id="t",
        name="Distribution",
        status="running",
        prizes=tuple(
            Prize(id=pid, name=pid, kind="thanks" if pid == "none" else "coupon", weight=w)
            for pid, w in weights.items()
        ),
        fallback_prize_id="none",
    )
    state = PoolState(activity=activity, stock={})
    rng = random.Random(20261121)
    n = 1_000_000
    seen = Counter(state.decide(f"u{i % 1000}", 0, rng).prize.id for i in range(n))
    total = sum(weights.values())
    chi2 = sum((seen[p] - n * w / total) ** 2 / (n * w / total) for p, w in weights.items())
    assert chi2 < CHI2_CRITICAL_5DF_P001, (chi2, seen)
