"""The soak's memory rule, its sampler's reading of Locust's history CSV and
of this machine's processes, and its chart (no stack needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from carnival.soak import MIN_SAMPLES, Sampler, chart, memory_verdict, rss_by_process


def _samples(series: dict[str, list[float]]) -> list[dict]:
    n = len(next(iter(series.values())))
    return [
        {
            "t_s": 10.0 * i,
            "req_per_s": 100.0,
            "error_rate": 0.0,
            "rss_mb": {name: values[i] for name, values in series.items() if values[i] >= 0},
        }
        for i in range(n)
    ]


def test_a_climbing_process_is_growing_and_a_levelled_one_is_not() -> None:
    leaking = [100.0 + 40 * i for i in range(12)]  # +40 MB every sample, to the end
    warming = [100.0, 300.0, 380.0] + [400.0] * 9  # climbs while warming up, then flat
    noisy = [50.0 + (7 if i % 2 else -7) for i in range(12)]
    verdict = memory_verdict(_samples({"leak": leaking, "warm": warming, "noisy": noisy}))
    assert verdict["judged"]
    assert verdict["growing"] == ["leak"]
    leak = verdict["processes"]["leak"]
    assert leak["last_median_mb"] > leak["middle_median_mb"] * 1.2
    assert not verdict["processes"]["warm"]["grows"]


def test_small_growth_and_late_workers_are_not_judged_as_leaks() -> None:
    # +25 % but only +10 MB: under the absolute floor (small processes' noise).
    small = [40.0] * 4 + [40.0] * 4 + [50.0] * 4
    late = [-1.0] * 8 + [500.0, 600.0, 700.0, 800.0]  # a worker present in the last third only
    verdict = memory_verdict(_samples({"small": small, "late": late}))
    assert verdict["growing"] == []
    assert "late" not in verdict["processes"]


def test_too_few_samples_are_not_judged() -> None:
    verdict = memory_verdict(_samples({"leak": [100.0 * (i + 1) for i in range(MIN_SAMPLES - 1)]}))
    assert verdict == {
        "judged": False,
        "why": f"{MIN_SAMPLES - 1} samples, fewer than {MIN_SAMPLES}: too short to judge",
        "processes": {},
        "growing": [],
    }


def test_sampler_reads_throughput_and_errors_from_the_history_csv(tmp_path: Path) -> None:
    history = tmp_path / "mixed_stats_history.csv"
    header = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,Total Request Count,"
    header += "Total Failure Count\n"
    history.write_text(header + "1000,10,,Aggregated,0,0,100,0\n")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        sampler = Sampler({"api": os.getpid(), "redis": child.pid}, history)
        first = sampler.sample()
        assert first["req_per_s"] is None  # one point: no rate yet
        assert first["rss_mb"]["api"] > 10  # this pytest process and its children
        assert first["rss_mb"]["redis"] > 1
        with open(history, "a") as f:
            f.write("1000,10,POST,POST draws,0,0,9999,9999\n")  # not the Aggregated row
            f.write("1010,20,,Aggregated,0,0,600,5\n")
        second = sampler.sample()
    finally:
        child.kill()
        child.wait()
    assert (second["users"], second["requests"], second["failures"]) == (20, 600, 5)
    assert second["req_per_s"] == 50.0
    assert second["error_rate"] == 0.01
    assert "redis" not in rss_by_process({"redis": child.pid})  # gone: left out


def test_chart_is_a_png(tmp_path: Path) -> None:
    path = tmp_path / "soak.png"
    chart(_samples({"api": [100.0] * 10, "kafka": [400.0] * 10}), path, "soak")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
