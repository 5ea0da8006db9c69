"""What every draw path of the bench shares: sizes, result row, the activity it draws from."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.progress import Progress

from domain.activity import Activity, Limits, Prize
from domain.draw import PoolState, initial_stock

# Advance(amount) moves a progress bar; a no-op when nobody watches (tests).
Advance = Callable[[int], None]


def advancers(progress: Progress | None) -> Callable[[str, int], Advance]:
    """A factory of progress tasks: ``make(name, total)`` adds a task and returns
    its Advance, safe from several threads (the classic paths' client threads)."""
    lock = threading.Lock()

    def make(name: str, total: int) -> Advance:
        if progress is None:
            return lambda _n: None
        task = progress.add_task(name, total=total)

        def advance(amount: int) -> None:
            with lock:
                progress.advance(task, amount)

        return advance

    return make


@dataclass(frozen=True, slots=True)
class BenchConfig:
    draws: int = 1_000_000  # in-memory paths (ceiling, actor batch)
    batch: int = 1000
    classic_draws: int = 20_000  # per classic variant (sequential, threaded)
    durable_draws: int = 200_000
    users: int = 100_000
    seed: int = 42


@dataclass(frozen=True, slots=True)
class PathResult:
    path: str
    draws: int
    seconds: float
    detail: dict[str, Any]

    @property
    def rate(self) -> float:
        return self.draws / self.seconds if self.seconds > 0 else 0.0


# -- the activity every path draws from ----------------------------------------------


def bench_activity(tenant_id: str, activity_id: str, stock: int) -> Activity:
    """A running wheel, six stocked prizes + an unlimited "thanks" fallback.

    ``stock`` per prize is at least the number of draws of any path, so no prize
    runs out mid-run: an exhausted prize would change the work per draw (table
    rebuild, fallback) and make the paths incomparable.
    """
    return Activity(
        id=activity_id,
        tenant_id=tenant_id,
        kind="wheel",
        name="Bench wheel",
        status="running",
        prizes=(
            Prize(id="coupon-100", name="100 off", kind="coupon", weight=1, stock=stock),
            Prize(id="coupon-50", name="50 off", kind="coupon", weight=3, stock=stock),
            Prize(id="coupon-10", name="10 off", kind="coupon", weight=10, stock=stock),
            Prize(
                id="points-500", name="500 points", kind="points", weight=5, stock=stock, points=500
            ),
            Prize(
                id="points-100",
                name="100 points",
                kind="points",
                weight=20,
                stock=stock,
                points=100,
            ),
            Prize(id="item-mug", name="Mug", kind="item", weight=2, stock=stock),
            Prize(id="thanks", name="Thanks for playing", kind="thanks", weight=59),
        ),
        fallback_prize_id="thanks",
        limits=Limits(per_user_total=0),
    )


def user_ids(count: int) -> list[str]:
    return [f"u{i}" for i in range(count)]


def fresh_pool(activity: Activity) -> PoolState:
    return PoolState(activity=activity, stock=initial_stock(activity))
