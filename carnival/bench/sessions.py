"""The servers a bench runs against (from the environment, else its own) and machine facts."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RAY_NAMESPACE = "carnival-bench"


@contextlib.contextmanager
def ray_session() -> Iterator[None]:
    """Reuse an initialised Ray (tests), join RAY_ADDRESS, or start one in-process."""
    # Must be set before ray is imported: auth and usage stats are read at import.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        yield  # not ours: the caller shuts it down
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False, namespace=RAY_NAMESPACE)
    else:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=100_000_000,
            namespace=RAY_NAMESPACE,
        )
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def redis_session(redis_url: str | None) -> Iterator[str]:
    """REDIS_URL as given, else an embedded redis-server (AOF, fsync always) we stop."""
    url = redis_url or os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    from carnival.embedded import RedisServer, free_port

    with tempfile.TemporaryDirectory(prefix="carnival-bench-") as tmp:
        server = RedisServer(Path(tmp), free_port())
        server.start(timeout=30)
        try:
            yield server.url
        finally:
            server.stop()


def machine_info(redis_url: str) -> dict[str, Any]:
    import ray
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        server = client.info("server")
        persistence = client.config_get("appendfsync")
    finally:
        client.close()
    return {
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "ray": ray.__version__,
        "redis_server": server.get("redis_version", "?"),
        "appendfsync": persistence.get("appendfsync", "?"),
    }


def cleanup(redis_url: str, tenant_id: str) -> int:
    """Delete the bench tenant's keys (only ours: the tenant id is fresh per run)."""
    from ledger.admin import SyncLedger

    ledger = SyncLedger.from_url(redis_url)
    try:
        return ledger.delete_tenant_keys(tenant_id)
    finally:
        ledger.close()
