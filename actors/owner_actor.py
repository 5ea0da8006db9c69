"""Ray actors that host OwnerHost, one or a few per cluster.

Actors are named and detached so a restarted dispatcher finds the same
in-memory state; Ray restarts a crashed actor (state rebuilt from Redis on
first use) and calls are not retried by Ray: the dispatcher re-sends the
batch, which the ledger makes idempotent. The host is an async actor: while
one batch's commit is in flight, the next batch's decisions run.
"""

from __future__ import annotations

import ray
from ray.actor import ActorHandle

from actors.host import OwnerHost

OwnerActor = ray.remote(OwnerHost)


def actor_name(index: int) -> str:
    return f"carnival-owner-{index}"


def owner_actor(index: int, redis_url: str, namespace: str) -> ActorHandle:
    return OwnerActor.options(  # type: ignore[attr-defined]
        name=actor_name(index),
        namespace=namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        max_task_retries=0,
        num_cpus=0,
    ).remote(redis_url)
