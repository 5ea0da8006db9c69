"""The durable draw path: the owner actor deciding batches, committed to the Redis ledger.

Requests reach the actor as the dispatcher hands them over: REQUESTS records
(JSON arrays of envelopes), ``depth`` calls in flight, so the actor decides a
batch while the previous one's commit runs (as under ``carnival up``).
"""

from __future__ import annotations

import time

from carnival.bench.fixtures import Advance, PathResult
from domain.activity import Activity
from runtime.settings import Settings

# Calls in flight: the dispatcher's default (CARNIVAL_PIPELINE_DEPTH).
PIPELINE_DEPTH: int = Settings.model_fields["pipeline_depth"].default


def run_durable(
    redis_url: str,
    activity: Activity,
    users: list[str],
    draws: int,
    batch: int,
    advance: Advance,
    depth: int = PIPELINE_DEPTH,
) -> PathResult:
    import ray

    from actors.owner_actor import OwnerActor
    from domain.road import DRAW, RequestRecord
    from ledger.admin import SyncLedger

    ledger = SyncLedger.from_url(redis_url)
    ledger.install_activity(activity)
    # num_cpus=0 like the production actors: never blocked by a busy head's CPUs.
    actor = OwnerActor.options(num_cpus=0).remote(redis_url, 7)  # type: ignore[attr-defined]
    tenant_id, activity_id = activity.tenant_id, activity.id
    n_users = len(users)

    # Records are built before the clock starts: the api builds them, in its own process.
    def rows(first: int) -> list:
        return [
            (users[i % n_users], f"r{i}", 0, None) for i in range(first, min(first + batch, draws))
        ]

    batches = [
        RequestRecord(
            DRAW.name,
            tenant_id,
            activity_id,
            "",  # nobody waits for a reply
            [
                (users[i % n_users], f"r{i}", 0, None)
                for i in range(first, min(first + batch, draws))
            ],
        ).dumps()
        for first in range(0, draws, batch)
    ]
    try:
        ray.get(actor.ping.remote())
        outcomes = 0
        in_flight: list = []
        began = time.perf_counter()
        for calls, record in enumerate(batches):
            # Distinct batch ids, as the dispatcher's: topic:partition:offset.
            in_flight.append(actor.decide_batch.remote(f"bench:0:{calls}", [record]))
            if len(in_flight) >= depth:
                result = ray.get(in_flight.pop(0))
                outcomes += result.decided
                advance(result.decided)
        for ref in in_flight:
            result = ray.get(ref)
            outcomes += result.decided
            advance(result.decided)
        seconds = time.perf_counter() - began
    finally:
        ray.kill(actor)
    totals = ledger.totals(tenant_id, activity_id)
    ledger.close()
    detail = {
        "calls": len(batches),
        "in_flight": depth,
        "outcomes": outcomes,
        "ledger_draws": totals["draws"],
    }
    return PathResult("durable", draws, seconds, detail)
