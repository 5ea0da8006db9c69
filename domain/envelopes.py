"""Red-envelope amounts: the double-mean method, exact in cents.

Each opening takes a uniform amount in [min, 2 × remaining / left], capped so
every envelope still to come can get its minimum; the last takes the rest.
So amounts sum exactly to the budget and none is below the minimum.
"""

from __future__ import annotations

import random


def next_amount(remaining_cents: int, left: int, min_cents: int, rng: random.Random) -> int:
    if left <= 0:
        raise ValueError("no envelope left")
    if left == 1:
        return remaining_cents
    cap = min(2 * remaining_cents // left, remaining_cents - min_cents * (left - 1))
    return rng.randint(min_cents, max(min_cents, cap))


def split(budget_cents: int, count: int, min_cents: int, rng: random.Random) -> list[int]:
    amounts = []
    remaining = budget_cents
    for left in range(count, 0, -1):
        amount = next_amount(remaining, left, min_cents, rng)
        amounts.append(amount)
        remaining -= amount
    return amounts
