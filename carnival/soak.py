"""`carnival soak`: the mixed day with many users for minutes, watching memory.

Runs `carnival load mixed` (set-up, Locust, closing check: carnival.loadrun)
against its own embedded stack in a temporary directory (or, with ``--host``,
against a running `carnival up`, whose processes it finds through the data
directory's stack.json), and every ``--every`` seconds samples:

* throughput and error rate, from Locust's per-second history CSV
  (``--csv-full-history``): requests and failures since the previous sample;
* resident memory (RSS) of each process: api, dispatcher, streams, relay,
  Kafka, Redis, the Ray head (its own processes: gcs_server, raylet, agents,
  dashboard, summed) and each Ray worker (Carnival's actor, idle workers) apart.

Written to ``soak.json`` (every sample, the verdict, the load summary) and
``soak.png`` (RSS per process and throughput over time).

**Verdict.** The soak fails when the closing check fails (any 5xx or other
failed request, oversell, a shopper over a limit, a budget overspent, ledger
!= ClickHouse) or when a process's memory grows without bound. Growth is
judged per process present in at least two thirds of the samples: the median
RSS of the last third of its samples against the median of the middle third
(the first third is warm-up: JIT, caches, pools filling). It grows when the
last is more than GROWTH_RATIO above the middle and by more than GROWTH_MIN_MB:
a leak keeps climbing into the last third, a bounded process levels off. Below
MIN_SAMPLES samples the thirds are too short to judge, and the report says so
instead of passing or failing on memory.
"""

from __future__ import annotations

import contextlib
import csv
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from carnival.loadrun import run_load
from carnival.loadsetup import LoadConfig

SAMPLE_EVERY_S: Final = 10.0
GROWTH_RATIO: Final = 0.20  # last-third median over middle-third median
GROWTH_MIN_MB: Final = 32.0  # and at least this much, so small processes' noise never fails
MIN_SAMPLES: Final = 9  # three per third
MB: Final = 1024 * 1024
# Ray's own agents run as "ray::" processes too; they belong to the head, not to a worker.
RAY_HEAD_AGENTS: Final = frozenset({"ray::DashboardAgent", "ray::RuntimeEnvAgent"})
STACK_NAMES: Final = ("api", "dispatcher", "streams", "relay", "kafka", "redis")


def rss_by_process(pids: dict[str, int]) -> dict[str, float]:
    """MB resident per Carnival process now: each named process with its
    children; the Ray head's own processes summed as "ray-head"; each Ray worker
    as "ray-worker <name> <pid>". A process that is gone is left out."""
    import psutil

    def rss(proc: psutil.Process) -> float:
        with contextlib.suppress(psutil.Error):
            return proc.memory_info().rss / MB
        return 0.0

    out: dict[str, float] = {}
    for name in STACK_NAMES:
        if name not in pids:
            continue
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pids[name])
            out[name] = round(rss(root) + sum(rss(c) for c in root.children(recursive=True)), 1)
    if "ray" in pids:
        with contextlib.suppress(psutil.Error):
            head = psutil.Process(pids["ray"])
            total = rss(head)
            for child in head.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    name = child.name()
                    if name.startswith("ray::") and name not in RAY_HEAD_AGENTS:
                        out[f"ray-worker {name.removeprefix('ray::')} {child.pid}"] = round(
                            rss(child), 1
                        )
                    else:
                        total += rss(child)
            out["ray-head"] = round(total, 1)
    return out


def _history_total(history: Path) -> tuple[float, int, int, int] | None:
    """(timestamp, users, requests, failures) of the last Aggregated row."""
    if not history.exists():
        return None
    last = None
    with open(history, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("Name") == "Aggregated":
                last = row
    if last is None:
        return None
    return (
        float(last["Timestamp"]),
        int(last["User Count"]),
        int(last["Total Request Count"]),
        int(last["Total Failure Count"]),
    )


@dataclass
class Sampler:
    """Samples every ``every_s`` on a thread, from start() to stop()."""

    pids: dict[str, int]
    history: Path
    every_s: float = SAMPLE_EVERY_S
    samples: list[dict[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _began: float = 0.0
    _last: tuple[float, int, int, int] | None = None

    def sample(self) -> dict[str, Any]:
        now = time.monotonic()
        seen = _history_total(self.history)
        rate = error_rate = None
        users = requests = failures = 0
        if seen is not None:
            _, users, requests, failures = seen
            if self._last is not None and seen[0] > self._last[0]:
                span = seen[0] - self._last[0]
                done = requests - self._last[2]
                rate = round(done / span, 1)
                error_rate = round((failures - self._last[3]) / done, 6) if done else 0.0
            self._last = seen
        point = {
            "t_s": round(now - self._began, 1),
            "users": users,
            "requests": requests,
            "failures": failures,
            "req_per_s": rate,
            "error_rate": error_rate,
            "rss_mb": rss_by_process(self.pids),
        }
        self.samples.append(point)
        return point

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def __enter__(self) -> Sampler:
        self._began = time.monotonic()
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="soak-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


def memory_verdict(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Per process: middle- and last-third median RSS and whether it grows."""
    if len(samples) < MIN_SAMPLES:
        return {
            "judged": False,
            "why": f"{len(samples)} samples, fewer than {MIN_SAMPLES}: too short to judge",
            "processes": {},
            "growing": [],
        }
    names = {n for s in samples for n in s["rss_mb"]}
    processes: dict[str, Any] = {}
    for name in sorted(names):
        series = [s["rss_mb"][name] for s in samples if name in s["rss_mb"]]
        if len(series) < len(samples) * 2 / 3:
            continue  # a worker that came late or went: not a series to judge
        third = len(series) // 3
        middle = statistics.median(series[third : 2 * third])
        last = statistics.median(series[2 * third :])
        grows = last > middle * (1 + GROWTH_RATIO) and last - middle > GROWTH_MIN_MB
        processes[name] = {
            "first_mb": series[0],
            "max_mb": max(series),
            "middle_median_mb": middle,
            "last_median_mb": last,
            "grows": grows,
        }
    growing = [n for n, p in processes.items() if p["grows"]]
    return {"judged": True, "why": "", "processes": processes, "growing": growing}


def chart(samples: list[dict[str, Any]], path: Path, title: str) -> None:
    """RSS per process (top) and throughput with error rate (bottom) over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [s["t_s"] for s in samples]
    fig, (mem, rate) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    names = sorted({n for s in samples for n in s["rss_mb"]})
    for name in names:
        mem.plot(times, [s["rss_mb"].get(name) for s in samples], label=name, linewidth=1.2)
    mem.set_ylabel("RSS (MB)")
    mem.set_title(title)
    mem.legend(fontsize=7, ncol=3, loc="upper left")
    mem.grid(alpha=0.3)
    rate.plot(times, [s["req_per_s"] for s in samples], color="tab:blue", label="req/s")
    rate.set_ylabel("requests / s")
    rate.set_ylim(bottom=0)
    rate.set_xlabel("seconds since the start")
    rate.grid(alpha=0.3)
    errors = rate.twinx()
    errors.plot(
        times, [s["error_rate"] for s in samples], color="tab:red", linestyle="--", label="errors"
    )
    errors.set_ylabel("error rate", color="tab:red")
    worst = max((s["error_rate"] or 0.0 for s in samples), default=0.0)
    errors.set_ylim(0, max(0.01, worst * 1.2))  # 0 at the bottom: a flat line means none
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass(frozen=True, slots=True)
class SoakConfig:
    users: int = 1000
    spawn_rate: float = 50.0
    duration_s: int = 600
    every_s: float = SAMPLE_EVERY_S


@contextlib.contextmanager
def _target(
    host: str | None, admin_key: str | None, work_dir: Path, say: Any
) -> Iterator[tuple[str, str, dict[str, int], dict[str, str] | None, list[str]]]:
    """(api, admin key, pids, reconcile env, notes) of an embedded stack we start,
    or of the running stack at ``host``."""
    if host is None:
        from carnival.loadstack import embedded_stack

        with embedded_stack(work_dir, say) as stack:
            yield stack.api, stack.admin_key, stack.pids, stack.reconcile_env, []
        return
    from carnival.loadcli import default_api_key
    from carnival.stack import stack_file
    from runtime.settings import get_settings

    notes: list[str] = []
    path = stack_file(get_settings().data_dir.resolve())
    pids: dict[str, int] = {}
    if path.exists():
        pids = {n: int(p) for n, p in orjson.loads(path.read_bytes())["pids"].items()}
    else:
        notes.append(f"no {path}: process memory is not sampled (set CARNIVAL_DATA_DIR)")
    yield host, admin_key or default_api_key(), pids, None, notes


def run_soak(
    config: SoakConfig, out: Path, say: Any, host: str | None = None, admin_key: str | None = None
) -> dict[str, Any]:
    """The soak; returns its report (also ``out``/soak.json, chart ``out``/soak.png)."""
    out.mkdir(parents=True, exist_ok=True)
    load = LoadConfig("mixed", config.users, config.spawn_rate, config.duration_s)
    with (
        tempfile.TemporaryDirectory(prefix="carnival-soak-") as tmp,
        _target(host, admin_key, Path(tmp), say) as (api, key, pids, env, notes),
    ):
        sampler = Sampler(pids, out / "mixed_stats_history.csv", config.every_s)
        summary = run_load(load, api, key, out, say, env, ("--csv-full-history",), during=sampler)
    verdict = memory_verdict(sampler.samples)
    failures = list(summary["failures"])
    failures += [f"memory grows without bound: {name}" for name in verdict["growing"]]
    rates = [s["req_per_s"] for s in sampler.samples if s["req_per_s"] is not None]
    report = {
        "config": asdict(config) | {"embedded_stack": host is None, "api": api},
        "ok": not failures,
        "failures": failures,
        "notes": notes + summary["notes"],
        "throughput": {
            "requests": summary["locust"]["requests"],
            "failed": summary["locust"]["failures"],
            "mean_req_per_s": summary["locust"]["req_per_s"],
            "sampled_req_per_s_min": min(rates, default=None),
            "sampled_req_per_s_max": max(rates, default=None),
            "statuses": summary["locust"]["statuses"],
        },
        "memory": verdict,
        "samples": sampler.samples,
        "load": summary,
    }
    (out / "soak.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    title = f"carnival soak: mixed day, {config.users} users, {config.duration_s}s"
    chart(sampler.samples, out / "soak.png", title)
    return report
