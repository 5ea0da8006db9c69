"""A Ray head node we own: `ray start --head --block` in its own process group."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from carnival.embedded.process import ManagedProcess, free_ports, kill_pids, pid_alive, port_open
from runtime.ray_env import RAY_ENV

READY_MARK = b"Ray runtime started"
START_MARK = b"=== "
# Ports a head listens on besides its GCS port: each gets a free one (Ray's
# defaults are fixed numbers, which two heads on one machine would share).
_PORTS = (
    "dashboard-agent-listen",
    "dashboard-agent-grpc",
    "runtime-env-agent",
    "dashboard",
    "metrics-export",
    "node-manager",
    "object-manager",
)


def ray_binary() -> str:
    """The `ray` CLI next to this interpreter, else from PATH."""
    local = Path(sys.executable).parent / "ray"
    if local.is_file():
        return str(local)
    found = shutil.which("ray")
    if not found:
        raise FileNotFoundError("the `ray` CLI is not installed: pip install 'ray>=2.60'")
    return found


def pids_mentioning(needle: str) -> list[int]:
    """PIDs (other than ours) whose command line contains `needle`."""
    pids: list[int] = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if needle.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


class RayHead(ManagedProcess):
    """A single-node Ray cluster head on 127.0.0.1:`port` (GCS port).

    Ray's runtime files live in a short temp dir (`/tmp/carnival-ray-<port>`,
    unix socket paths are limited to ~107 chars); logs of `ray start` go to
    `data_dir/ray.log`. Every auxiliary port is chosen free so several heads
    (tests and `carnival up`) can coexist. `stop()` kills the process group and
    then any process whose command line names this head's temp dir, by PID;
    it never runs `ray stop`.
    """

    name = "ray"
    terminate_group = False  # `ray start --block` drains and stops its children on SIGTERM

    def __init__(
        self,
        data_dir: Path | str,
        port: int,
        *,
        num_cpus: int = 2,
        object_store_memory: int = 200_000_000,
        temp_dir: Path | str | None = None,
    ) -> None:
        super().__init__(data_dir)
        self.port = port
        self.num_cpus = num_cpus
        self.object_store_memory = object_store_memory
        self.temp_dir = Path(temp_dir) if temp_dir else Path(f"/tmp/carnival-ray-{port}")
        self._log_offset = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> Mapping[str, str]:
        env = dict(os.environ)
        env.pop("RAY_ADDRESS", None)
        env.update(RAY_ENV)
        return env

    def prepare(self) -> None:
        self.kill_strays()  # leftovers of a crashed run on the same temp dir
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0

    def command(self) -> list[str]:
        *ports, client_port = free_ports(len(_PORTS) + 1, taken={self.port})
        return [
            ray_binary(),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={self.port}",
            f"--num-cpus={self.num_cpus}",
            "--num-gpus=0",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--object-store-memory={self.object_store_memory}",
            f"--temp-dir={self.temp_dir}",
            *(f"--{name}-port={port}" for name, port in zip(_PORTS, ports, strict=True)),
            *self._client_port_args(client_port),
        ]

    @staticmethod
    def _client_port_args(port: int) -> list[str]:
        """Ray Client listens on 10001 by default when installed: pick a free port instead."""
        try:
            from ray._private.utils import get_ray_client_dependency_error
        except ImportError:
            return []
        if get_ray_client_dependency_error() is not None:
            return []
        return [f"--ray-client-server-port={port}"]

    def is_ready(self) -> bool:
        if not port_open(self.port):
            return False
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            return READY_MARK in log.read()

    def stray_pids(self) -> list[int]:
        return [pid for pid in pids_mentioning(str(self.temp_dir)) if pid_alive(pid)]

    def kill_strays(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL, every live process naming this head's temp dir."""
        strays = self.stray_pids()
        if not strays:
            return
        kill_pids(strays, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(pid_alive(p) for p in strays):
            time.sleep(0.05)
        kill_pids([p for p in strays if pid_alive(p)], signal.SIGKILL)

    def stop(self, timeout: float = 15.0) -> None:
        super().stop(timeout)
        self.kill_strays()

    def kill(self) -> None:
        super().kill()
        self.kill_strays(timeout=0)

    def remove_temp_dir(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.temp_dir)
