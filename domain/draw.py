"""Draw decisions for one activity, in memory and without I/O.

The owning actor calls ``PoolState.decide`` for every request of a batch; the
effects are then committed to the ledger in one script. Probabilities are the
configured weights exactly: a prize that runs out of stock hands its weight
to the fallback prize, which is the same distribution as "drawn but out of
stock -> fallback", without a rounded lookup table.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from itertools import accumulate

from domain.activity import Activity, Prize

REJECT_NOT_RUNNING = "activity_not_running"
REJECT_USER_LIMIT = "user_limit_reached"


@dataclass(frozen=True, slots=True)
class Decision:
    status: str  # "won" | "lost" | "rejected"
    prize: Prize | None
    reason: str = ""

    @property
    def consumes_stock(self) -> bool:
        return self.prize is not None and self.prize.stock is not None

    @property
    def counts_as_draw(self) -> bool:
        return self.status != "rejected"


class WeightTable:
    """Cumulative weights + bisect: exact for integer weights."""

    def __init__(self, prizes: list[Prize], weights: list[int]) -> None:
        self._prizes = prizes
        self._cumulative = list(accumulate(weights))
        self.total = self._cumulative[-1] if self._cumulative else 0

    def pick(self, rng: random.Random) -> Prize:
        point = rng.randrange(self.total)
        return self._prizes[bisect.bisect_right(self._cumulative, point)]


@dataclass
class PoolState:
    activity: Activity
    stock: dict[str, int]  # remaining, only for prizes with finite stock
    user_draws: dict[str, int] = field(default_factory=dict)
    total_draws: int = 0
    _table: WeightTable | None = field(default=None, repr=False)

    def table(self) -> WeightTable:
        if self._table is None:
            fallback = self.activity.fallback_prize_id
            moved = 0
            live: list[Prize] = []
            weights: list[int] = []
            for prize in self.activity.prizes:
                if prize.stock is not None and self.stock.get(prize.id, 0) <= 0:
                    moved += prize.weight
                    continue
                live.append(prize)
                weights.append(prize.weight)
            weights[[p.id for p in live].index(fallback)] += moved
            self._table = WeightTable(live, weights)
        return self._table

    def decide(self, user_id: str, at_ms: int, rng: random.Random) -> Decision:
        activity = self.activity
        if not activity.is_open(at_ms):
            return Decision("rejected", None, REJECT_NOT_RUNNING)
        used = self.user_draws.get(user_id, 0)
        if activity.per_user_limit and used >= activity.per_user_limit:
            return Decision("rejected", None, REJECT_USER_LIMIT)
        prize = self.table().pick(rng)
        self.user_draws[user_id] = used + 1
        self.total_draws += 1
        if prize.stock is not None:
            left = self.stock[prize.id] - 1
            self.stock[prize.id] = left
            if left <= 0:
                self._table = None
        status = "lost" if prize.kind == "thanks" else "won"
        return Decision(status, prize)
