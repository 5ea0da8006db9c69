"""The reduced chaos run (CI): `carnival chaos` on its own embedded stack kills
each of the six processes mid-load, and every row holds every invariant."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from carnival.chaos.kill import PROCESSES
from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.servers

# Small enough for ~4 minutes on two cores, big enough to sell every stock out.
REQUESTS, USERS = 150, 40


def test_every_process_killed_mid_load_breaks_no_invariant(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KAFKA_BOOTSTRAP", "REDIS_URL", "CLICKHOUSE_URL", "RAY_ADDRESS"}
    }
    began = time.monotonic()
    done = subprocess.run(
        [
            *(sys.executable, "-m", "carnival", "chaos"),
            *("--requests-per-phase", str(REQUESTS), "--users", str(USERS)),
            *("--out", str(out), "--data-dir", str(tmp_path / "data")),
        ],
        env={**env, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )
    print(done.stdout)
    print(f"reduced chaos run: {time.monotonic() - began:.0f}s")
    if done.returncode != 0:  # the services' logs outlive the temp dir, for a look
        shutil.copytree(tmp_path / "data" / "logs", ARTIFACTS / "chaos-logs", dirs_exist_ok=True)
    assert done.returncode == 0, done.stdout
    report = orjson.loads(out.read_bytes())
    rows = {row["process"]: row for row in report["rows"]}
    assert list(rows) == list(PROCESSES)
    for name, row in rows.items():
        assert row["ok"] and not row["notes"], (name, row)
        assert row["lost"] == row["duplicated"] == row["oversold"] == 0, (name, row)
        assert row["acknowledged"] > 0 and row["recover_s"] is not None, (name, row)
        assert row["killed_pids"], (name, row)
    assert report["ok"]
