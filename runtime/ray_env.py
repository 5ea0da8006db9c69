"""Ray's environment and connection, defined once for every process that talks to Ray."""

from __future__ import annotations

import logging
import os
from typing import Any

# Read by Ray at import and by `ray start`: no token auth on loopback, no usage report.
RAY_ENV: dict[str, str] = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def set_ray_env() -> None:
    """Set Ray's variables here unless the operator did; call before importing ray."""
    for name, value in RAY_ENV.items():
        os.environ.setdefault(name, value)


def connect(address: str, namespace: str) -> Any:
    """Join the cluster at ``address`` (once per process); returns the ``ray`` module."""
    set_ray_env()
    import ray

    if not ray.is_initialized():
        ray.init(
            address=address or None,
            namespace=namespace,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    return ray
