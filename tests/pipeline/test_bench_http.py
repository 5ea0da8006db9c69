"""`carnival bench http` end to end with tiny sizes, against the pipeline's api:
wrk drives the no-op app, the classic app and Carnival, and every phase's
limited prize is checked against the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from carnival.bench.http import LIMITED_PRIZE, LOADS, TARGETS
from carnival.cli import app
from carnival.embedded import KafkaServer, RedisServer
from tests.pipeline.conftest import Pipeline, ledger_outcomes

TINY = ["--users", "200", "--connections", "4", "--duration", "2", "--stock", "20", "--warmup", "1"]


@pytest.fixture(scope="module")
def run(
    pipeline: Pipeline,
    kafka_server: KafkaServer,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    tenant = pipeline.tenant()
    tmp = tmp_path_factory.mktemp("bench-http")
    stack = tmp / "stack.json"
    s = pipeline.settings
    state = {
        "pids": {
            "api": pipeline.api.pid,
            "dispatcher": pipeline.dispatcher.pid,
            "streams": pipeline.streams.pid,
            "kafka": kafka_server.pid,
            "redis": redis_server.pid,
        },
        "ray": s.ray_address,
        "ray_namespace": s.ray_namespace,
        "actors": s.actor_count,
    }
    stack.write_bytes(orjson.dumps(state))
    out = tmp / "bench-http.json"
    args = ["bench", "http", "--api-url", pipeline.url, "--redis-url", s.redis_url]
    args += ["--admin-key", tenant.api_key, "--stack-file", str(stack), "--out", str(out), *TINY]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return {
        "report": orjson.loads(out.read_bytes()),
        "out": out,
        "output": result.output,
        "tenant": tenant,
    }


def test_report_has_every_target_and_load(run: dict[str, Any]) -> None:
    report = run["report"]
    assert set(report) >= {"machine", "config", "results", "ratios", "checks", "warnings", "ok"}
    assert report["ok"] is True
    assert list(report["results"]) == list(TARGETS)
    for target in TARGETS:
        assert list(report["results"][target]) == list(LOADS)
    config = report["config"]
    assert (config["connections"], config["duration_s"], config["users"]) == (4, 2, 200)
    assert config["embedded_stack"] is False
    assert report["machine"]["appendfsync"] == "always"
    assert report["machine"]["wrk"].startswith("wrk")


def test_rates_statuses_and_latencies_add_up(run: dict[str, Any]) -> None:
    for target, loads in run["report"]["results"].items():
        for load, row in loads.items():
            where = f"{target} {load}"
            assert row["requests"] > 0 and row["req_per_s"] > 0, where
            assert row["decided_per_s"] > 0, where
            # every response wrk counted was tallied by the script's response()
            assert sum(row["status"].values()) == row["requests"], where
            assert row["2xx"] + row["409"] + row["other_non_2xx"] == row["requests"], where
            assert row["other_non_2xx"] == 0, (where, row["status"])
            lat = row["latency_ms"]
            assert 0 < lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"], where
            cpu = row["cpu_cores"]
            assert cpu["wrk"] > 0 and cpu["target"]["total"] > 0, where
    results = run["report"]["results"]
    assert set(results["noop"]["full"]["status"]) == {"200"}
    assert set(results["classic"]["full"]["status"]) == {"200"}
    assert set(results["carnival"]["full"]["status"]) <= {"200", "202"}
    # Carnival's CPU is its processes', the actor's included (found through Ray).
    carnival_cpu = results["carnival"]["full"]["cpu_cores"]["target"]
    assert {"api", "dispatcher", "streams", "kafka", "redis", "actor"} <= set(carnival_cpu)
    assert set(results["classic"]["full"]["cpu_cores"]["target"]) == {"server", "redis", "total"}
    for target in TARGETS:
        full, half = results[target]["full"], results[target]["half"]
        assert full["rate_limit"] is None
        assert half["rate_limit"] == pytest.approx(full["req_per_s"] / 2, abs=0.2)


def test_ratios_compare_carnival_with_both(run: dict[str, Any]) -> None:
    ratios = run["report"]["ratios"]
    for other in ("classic", "noop"):
        full = ratios["full"][f"carnival_vs_{other}"]
        assert full["req_per_s"] > 0 and full["p99"] > 0
        assert ratios["half"][f"carnival_vs_{other}"]["p99"] > 0


def test_no_oversell_in_any_phase(run: dict[str, Any], pipeline: Pipeline) -> None:
    checks = run["report"]["checks"]
    assert [(c["target"], c["load"]) for c in checks] == [
        (t, load) for t in ("classic", "carnival") for load in LOADS
    ]
    for c in checks:
        assert c["ok"], c
        assert c["failures"] == []
        assert c["stock_left"] >= 0 and c["awarded"] == c["configured"] - c["stock_left"]
        assert c["decided"] >= c["answered_200"]
    # The classic app at full load draws hundreds of times: its 20 units run out.
    classic_full = checks[0]
    assert (classic_full["stock_left"], classic_full["awarded"]) == (0, 20)
    # The ledger itself agrees with the report for Carnival's phases.
    tenant = run["tenant"]
    for c in checks[2:]:
        assert c["drained"]
        outcomes = ledger_outcomes(pipeline, tenant, c["activity_id"])
        won = [o for o in outcomes.values() if o["prize_id"] == LIMITED_PRIZE]
        assert all(o["status"] == "won" for o in won)
        assert len(won) == c["awarded"] and len(outcomes) == c["decided"]


def test_table_and_file(run: dict[str, Any]) -> None:
    output = run["output"]
    assert "Carnival over HTTP" in output
    for label in ("no-op FastAPI", "classic", "Carnival", "oversell carnival full"):
        assert label in output
    assert isinstance(run["out"], Path) and run["out"].stat().st_size > 0
