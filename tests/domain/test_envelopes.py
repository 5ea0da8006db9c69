"""Red-envelope split: property tests of the double-mean method."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from domain.envelopes import split


@st.composite
def envelopes(draw: st.DrawFn) -> tuple[int, int, int, int]:
    count = draw(st.integers(1, 500))
    min_cents = draw(st.integers(1, 1000))
    budget = draw(st.integers(count * min_cents, count * min_cents + 1_000_000))
    return budget, count, min_cents, draw(st.integers(0, 2**32))


@given(envelopes())
def test_split_is_exact_and_respects_the_minimum(case: tuple[int, int, int, int]) -> None:
    budget, count, min_cents, seed = case
    amounts = split(budget, count, min_cents, random.Random(seed))
    assert len(amounts) == count
    assert sum(amounts) == budget
    assert min(amounts) >= min_cents


@given(st.integers(1, 100), st.integers(0, 2**32))
def test_budget_of_exactly_count_times_minimum_gives_the_minimum_each(
    count: int, seed: int
) -> None:
    assert split(count * 7, count, 7, random.Random(seed)) == [7] * count
