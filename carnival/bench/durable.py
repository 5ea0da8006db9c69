"""The durable draw path: the pool actor deciding batches, committed to the Redis ledger."""

from __future__ import annotations

import time

from carnival.bench.fixtures import Advance, PathResult
from domain.activity import Activity


def run_durable(
    redis_url: str, activity: Activity, users: list[str], draws: int, batch: int, advance: Advance
) -> PathResult:
    import ray

    from actors.ledger import Ledger
    from actors.pool_actor import PoolActor
    from domain.events import DrawRequested, request_key

    ledger = Ledger.from_url(redis_url)
    ledger.install_activity(activity)
    # num_cpus=0 like the production actors: never blocked by a busy head's CPUs.
    actor = PoolActor.options(num_cpus=0).remote(redis_url, 7)  # type: ignore[attr-defined]
    tenant_id, activity_id = activity.tenant_id, activity.id
    n_users = len(users)
    # Requests are built before the clock starts: parsing and grouping them is
    # the dispatcher's work, in its own process, not the actor's.
    batches = [
        [
            DrawRequested(
                event_id=request_key(users[i % n_users], f"r{i}"),
                tenant_id=tenant_id,
                activity_id=activity_id,
                user_id=users[i % n_users],
                request_id=f"r{i}",
                reply_to="",
            ).dumps()
            for i in range(first, min(first + batch, draws))
        ]
        for first in range(0, draws, batch)
    ]
    try:
        ray.get(actor.ping.remote())
        calls = 0
        outcomes = 0
        began = time.perf_counter()
        for requests in batches:
            # Distinct batch ids: a repeated batch would be answered from the ledger.
            outcomes += len(ray.get(actor.decide_batch.remote(f"bench:0:{calls}", requests)))
            calls += 1
            advance(len(requests))
        seconds = time.perf_counter() - began
    finally:
        ray.kill(actor)
    totals = ledger.totals(tenant_id, activity_id)
    detail = {"calls": calls, "outcomes": outcomes, "ledger_draws": totals["draws"]}
    return PathResult("durable", draws, seconds, detail)
