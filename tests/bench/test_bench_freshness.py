"""`carnival bench freshness` end to end, short and slow, on the session's Kafka: the
JSON report has its figures and every probe became visible. No bound on the figures
themselves: timings on a shared CI machine are noise."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from carnival.bench.freshness import render

RATE, SECONDS = 200, 3


def test_cli_writes_the_json(kafka_bootstrap: str, tmp_path: Path) -> None:
    from carnival.cli import app

    out = tmp_path / "bench-freshness.json"
    args = ["bench", "freshness", "--rate", str(RATE), "--seconds", str(SECONDS)]
    args += ["--kafka-bootstrap", kafka_bootstrap, "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = orjson.loads(out.read_bytes())

    assert report["ok"] is True
    assert report["config"]["rate"] == RATE and report["config"]["kafka"] == "given"
    assert report["load"]["events"] == RATE * SECONDS
    assert report["load"]["events_per_s"] > 0 and report["load"]["seconds"] > 0
    # Every probe became visible, and ClickHouse counts every event once.
    assert report["probes"] > 0
    assert report["visible"] == report["probes"] and report["lost"] == 0
    assert report["drain"]["visible"] == report["drain"]["expected"]
    assert report["drain"]["expected"] == RATE * SECONDS + report["probes"] + 1  # + warm-up
    f = report["freshness_s"]
    assert 0 < f["min"] <= f["p50"] <= f["p95"] <= f["p99"] <= f["max"]
    assert set(report["aims"]) == {"p95_s", "events_per_s"}
    assert report["aims"]["p95_s"]["value"] == f["p95"]
    assert report["cpu_cores"]["streams"] is not None  # the worker was alive throughout
    assert render(report).row_count == 1
