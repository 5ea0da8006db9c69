"""`carnival bench draws` end to end with tiny sizes, on the session's Redis and Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from carnival.bench.draws import PATHS, BenchConfig, render, run_bench
from ledger.admin import SyncLedger as Ledger

TINY = BenchConfig(draws=2000, batch=100, classic_draws=200, durable_draws=1000, users=500)


@pytest.fixture(scope="module")
def report(redis_url: str, ray_client: Any) -> dict[str, Any]:
    # keep_data: the test reads the ledger after the run (the CLI cleans up by default).
    return run_bench(TINY, redis_url=redis_url, keep_data=True)


def test_every_path_has_a_positive_rate(report: dict[str, Any]) -> None:
    assert list(report["paths"]) == list(PATHS)
    for name in PATHS:
        row = report["paths"][name]
        assert row["draws_per_s"] > 0, name
        assert row["seconds"] > 0, name
        assert row["ratio_to_ceiling"] > 0, name
        assert row["ratio_to_classic"] > 0, name
    assert report["paths"]["ceiling"]["ratio_to_ceiling"] == 1.0
    assert report["paths"]["classic"]["ratio_to_classic"] == 1.0
    assert report["paths"]["ceiling"]["draws"] == TINY.draws
    assert report["paths"]["durable"]["draws"] == TINY.durable_draws
    assert report["machine"]["nproc"] >= 1
    assert report["machine"]["appendfsync"] == "always"
    assert set(report["aims"]) == {"actor_batch_vs_ceiling", "durable_vs_classic"}


def test_durable_path_committed_every_draw_to_the_ledger(
    report: dict[str, Any], redis_url: str
) -> None:
    ledger = report["ledger"]
    totals = Ledger.from_url(redis_url).totals(ledger["tenant_id"], ledger["activity_id"])
    assert totals["draws"] == TINY.durable_draws
    assert totals["outcomes"] == TINY.durable_draws
    durable = report["paths"]["durable"]["detail"]
    assert durable["ledger_draws"] == TINY.durable_draws
    assert durable["calls"] == TINY.durable_draws // TINY.batch and durable["in_flight"] == 3
    assert durable["outcomes"] == TINY.durable_draws


def test_classic_path_recorded_one_outcome_per_request(report: dict[str, Any]) -> None:
    detail = report["paths"]["classic"]["detail"]
    # Sequential and threaded variants each ran classic_draws distinct requests.
    assert detail["recorded"] == 2 * TINY.classic_draws
    assert detail["sequential_draws_per_s"] > 0
    assert detail["threads_8_draws_per_s"] > 0


def test_report_is_json_and_renders(report: dict[str, Any]) -> None:
    again = orjson.loads(orjson.dumps(report))
    assert again["paths"]["durable"]["draws"] == TINY.durable_draws
    assert render(report).row_count == len(PATHS)


def test_cli_writes_the_json(
    redis_url: str, ray_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carnival.cli import app

    monkeypatch.setenv("REDIS_URL", redis_url)
    out = tmp_path / "bench-draws.json"
    args = ["bench", "draws", "--draws", "500", "--batch", "100", "--classic-draws", "80"]
    args += ["--durable-draws", "300", "--users", "50", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = orjson.loads(out.read_bytes())
    assert list(written["paths"]) == list(PATHS)
    # Without --keep-data the bench tenant's keys are removed.
    assert written["ledger"]["keys_removed"] > 0
    tenant, activity = written["ledger"]["tenant_id"], written["ledger"]["activity_id"]
    assert Ledger.from_url(redis_url).totals(tenant, activity)["draws"] == 0
