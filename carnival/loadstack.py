"""A throwaway embedded stack for the soak, the load scenarios' test and `make
screenshots`: the whole of `carnival up` (Kafka, Redis, Ray, streams with chdb,
dispatcher, api, relay) in a directory of its own, on free ports, removed
afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

Say = Callable[[str], None]
LOG_LINES = 30  # of a process that died, shown before its directory goes


@dataclass(frozen=True, slots=True)
class RunningStack:
    api: str
    admin_key: str
    data_dir: Path
    pids: dict[str, int]  # stack.json's: kafka, redis, ray (the head), streams, dispatcher, ...
    ray_address: str
    ray_namespace: str
    redis_url: str
    # What `carnival reconcile` needs to find this stack's Redis, Kafka and streams worker.
    reconcile_env: dict[str, str]


@contextlib.contextmanager
def embedded_stack(work_dir: Path, say: Say, **overrides: object) -> Iterator[RunningStack]:
    """``overrides``: settings fields by their variable names (CARNIVAL_...)."""
    from carnival.demo import credentials_path
    from carnival.embedded import RayHead
    from carnival.stack import LocalStack, isolated_settings, stack_file

    settings = isolated_settings(work_dir / "stack", **overrides)
    stack = LocalStack(settings, report=say, usual_ports=False)
    try:
        s = stack.start()
        state = orjson.loads(stack_file(stack.data_dir).read_bytes())
        creds = orjson.loads(credentials_path(stack.data_dir).read_bytes())
        yield RunningStack(
            api=state["api"],
            admin_key=creds["admin_api_key"],
            data_dir=stack.data_dir,
            pids={name: int(pid) for name, pid in state["pids"].items()},
            ray_address=s.ray_address,
            ray_namespace=s.ray_namespace,
            redis_url=s.redis_url,
            reconcile_env={
                "CARNIVAL_DATA_DIR": str(stack.data_dir),
                "REDIS_URL": s.redis_url,
                "KAFKA_BOOTSTRAP": s.kafka_bootstrap,
                "CARNIVAL_STREAMS_HOST": s.streams_host,
                "CARNIVAL_STREAMS_PORT": str(s.streams_port),
            },
        )
    except BaseException:
        # The directory goes with the stack: say now why a process died.
        for proc in [*stack.servers.values(), *stack.services]:
            if proc.pid is not None and not proc.alive:
                say(f"{proc.name} had exited; the end of its log:\n{proc.log_tail(LOG_LINES)}")
        raise
    finally:
        say("stopping the embedded stack...")
        stack.stop()
        for server in stack.servers.values():
            if isinstance(server, RayHead):
                server.remove_temp_dir()
