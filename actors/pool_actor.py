"""Ray actors that host PoolHost, one or a few per cluster.

Actors are named and detached so a restarted dispatcher finds the same
in-memory pools; Ray restarts a crashed actor (state rebuilt from Redis on
first use) and calls are not retried by Ray: the dispatcher re-sends the
batch, which the ledger makes idempotent.
"""

from __future__ import annotations

import zlib

import ray
from ray.actor import ActorHandle

from actors.pool_host import PoolHost

PoolActor = ray.remote(PoolHost)


def pool_actor(index: int, redis_url: str, namespace: str) -> ActorHandle:
    return PoolActor.options(  # type: ignore[attr-defined]
        name=f"carnival-pool-{index}",
        namespace=namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        max_task_retries=0,
        num_cpus=0,
    ).remote(redis_url)


def owner_index(activity_id: str, actor_count: int) -> int:
    """Stable (process-independent) choice of the actor that owns an activity."""
    return zlib.crc32(activity_id.encode()) % actor_count
