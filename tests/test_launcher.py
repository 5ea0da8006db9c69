"""`carnival up` on a fresh data directory: the README's flow, a clean stop on
SIGTERM, and data that survives a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from carnival.embedded import free_port
from carnival.embedded.process import pid_alive
from tests.pipeline.conftest import wait_for

pytestmark = pytest.mark.servers


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "carnival", *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class Up:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "carnival", "up"], env=self.env, stdout=out, stderr=out
            )
        wait_for(
            lambda: b"Carnival is up" in self.log.read_bytes() or self.proc.poll() is not None,
            timeout=180,
            what="carnival up",
            every=0.2,
        )
        assert self.proc.poll() is None, self.log.read_text()

    def stop(self) -> dict[str, int]:
        """SIGTERM; returns the pids the stack had recorded."""
        assert self.proc is not None
        state = orjson.loads((Path(self.env["CARNIVAL_DATA_DIR"]) / "stack.json").read_bytes())
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        self.log.write_bytes(self.log.read_bytes().replace(b"Carnival is up", b"(was up)"))
        return state["pids"]


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KAFKA_BOOTSTRAP", "REDIS_URL", "CLICKHOUSE_URL", "RAY_ADDRESS"}
    }
    env.update(
        CARNIVAL_DATA_DIR=str(tmp_path / "data"),
        CARNIVAL_API_PORT=str(free_port()),
        CARNIVAL_STREAMS_PORT=str(free_port()),
        CARNIVAL_DISPATCHER_METRICS_PORT=str(free_port()),
    )
    stack = Up(env, tmp_path / "up.log")
    yield stack
    if stack.proc is not None and stack.proc.poll() is None:
        stack.proc.kill()


def test_up_draw_stop_and_resume(up: Up) -> None:
    up.start()
    api = f"http://127.0.0.1:{up.env['CARNIVAL_API_PORT']}"
    token = _cli(up.env, "token", "alice")
    key = _cli(up.env, "api-key")
    shopper = {"Authorization": f"Bearer {token}"}
    first = httpx.post(
        f"{api}/v1/activities/demo-wheel/draws", json={"request_id": "r1"}, headers=shopper
    )
    assert first.status_code == 200, first.text
    answered = time.monotonic()
    wait_for(
        lambda: (
            httpx.get(f"{api}/v1/stats/activities/demo-wheel", headers={"X-Api-Key": key}).json()[
                "draws"
            ]
            == 1
        ),
        timeout=10,
        what="the draw in the stats endpoint",
    )
    print(f"curl draw -> stats: {time.monotonic() - answered:.3f}s")
    assert "kafka" in _cli(up.env, "status")

    pids = up.stop()
    assert up.proc is not None and up.proc.returncode == 0
    assert not [name for name, pid in pids.items() if pid_alive(pid)]

    up.start()  # the same data directory: the ledger and ClickHouse kept everything
    again = httpx.get(f"{api}/v1/activities/demo-wheel/draws/r1", headers=shopper)
    assert again.json() == first.json()
    stats = httpx.get(f"{api}/v1/stats/activities/demo-wheel", headers={"X-Api-Key": key})
    assert stats.json()["draws"] == 1
    up.stop()
