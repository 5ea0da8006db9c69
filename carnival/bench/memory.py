"""The in-memory draw paths: the plain-loop ceiling and the same loop inside a Ray actor."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

from carnival.bench.fixtures import Advance, PathResult, fresh_pool
from domain.activity import Activity

# Report progress every this many in-process draws: a rich update per draw
# would cost more than the draw and distort the ceiling.
_PROGRESS_EVERY = 10_000


def run_ceiling(
    activity: Activity, users: list[str], draws: int, seed: int, advance: Advance
) -> PathResult:
    pool = fresh_pool(activity)
    rng = random.Random(seed)
    wallet: dict[str, int] = {}
    n_users = len(users)
    at_ms = int(time.time() * 1000)
    decide = pool.decide  # bound once: the loop measures decide, not attribute look-ups
    began = time.perf_counter()
    done = 0
    while done < draws:
        chunk = min(_PROGRESS_EVERY, draws - done)
        for i in range(done, done + chunk):
            decide(users[i % n_users], at_ms, rng, wallet)
        done += chunk
        advance(chunk)
    seconds = time.perf_counter() - began
    return PathResult("ceiling", draws, seconds, {"won": pool.total_draws})


# -- 2. actor batch ----------------------------------------------------------------


class BenchPool:
    """The decision loop of the ceiling, hosted by a Ray actor (no I/O)."""

    def __init__(self, activity_json: str, seed: int) -> None:
        # JSON in, so the actor builds its own Activity (no pydantic pickling quirks).
        self._pool = fresh_pool(Activity.model_validate_json(activity_json))
        self._rng = random.Random(seed)
        self._wallet: dict[str, int] = {}

    def ping(self) -> bool:
        return True

    def decide_many(self, users: list[str]) -> int:
        """Decide one batch in memory; returns how many draws counted."""
        at_ms = int(time.time() * 1000)
        decide, rng, wallet = self._pool.decide, self._rng, self._wallet
        counted = 0
        for user in users:
            if decide(user, at_ms, rng, wallet).counts_as_draw:
                counted += 1
        return counted


def _batches(users: list[str], total: int, batch: int, start: int = 0) -> Iterator[list[str]]:
    n_users = len(users)
    for first in range(start, start + total, batch):
        last = min(first + batch, start + total)
        yield [users[i % n_users] for i in range(first, last)]


def run_actor_batch(
    activity: Activity, users: list[str], draws: int, batch: int, seed: int, advance: Advance
) -> PathResult:
    import ray

    actor = (
        ray.remote(BenchPool)
        .options(num_cpus=0)  # type: ignore[attr-defined]
        .remote(activity.model_dump_json(), seed)
    )
    try:
        ray.get(actor.ping.remote())  # worker start-up is not part of the measurement
        # Batches are built before timing: the dispatcher receives them ready-made
        # from Kafka, and the path measures the actor plus its call overhead.
        batches = list(_batches(users, draws, batch))
        calls = 0
        counted = 0
        began = time.perf_counter()
        for users_batch in batches:
            # One call at a time, waited for: includes the full Ray round trip.
            counted += ray.get(actor.decide_many.remote(users_batch))
            calls += 1
            advance(len(users_batch))
        seconds = time.perf_counter() - began
    finally:
        ray.kill(actor)
    return PathResult("actor_batch", draws, seconds, {"calls": calls, "counted": counted})
