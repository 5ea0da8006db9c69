"""`carnival bench http`: three draw endpoints through the real HTTP layer, in one run.

1. noop      - a FastAPI POST endpoint that does nothing (``http_servers.noop_app``):
               the ceiling of one uvicorn worker for this route.
2. classic   - the per-request design (``http_servers.classic_app``): verify the
               shopper token, draw in the app, ONE Redis Lua script per request.
3. carnival  - Carnival's own ``POST /v1/activities/{id}/draws``: api -> Kafka ->
               dispatcher -> Ray actor -> Redis ledger -> reply.

Every target is loaded with Debian's ``wrk`` and ``loadtests/wrk_bench.lua``, first
at full load (``-t1 -c<connections> -d<duration>s``), then at half load (the
script paces requests to half the rate that target reached at full load). All
three run while the whole Carnival stack is up (the same background), against
the same Redis (AOF, appendfsync always), with the same shopper tokens; each
classic and Carnival phase draws from a fresh activity created through the admin
API, with one prize of limited stock that runs out under full load.

What a run guarantees: after each classic and Carnival phase, once every request
Carnival accepted is decided (a bounded wait), the limited prize's awarded units
equal configured minus stock left, never more than configured, stock left never
below zero, and the ledger holds at least as many outcomes as there were 200s.
``ok`` in the report is False (and the command exits 1) when any check fails.
What it does not: the numbers are only comparable within one run on one machine,
and only while nothing else loads it (``machine`` CPU shows what did); wrk's
percentiles are its own (wrk corrects them for coordinated omission, we do not).

CPU is measured from /proc/<pid>/stat (utime + stime over the run's wall time)
for the target's processes and the rest of the stack, from wait4's rusage for
wrk, and from /proc/stat for the whole machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.table import Table

from carnival.bench.classic import ClassicKeys
from carnival.embedded.process import ManagedProcess, free_port, port_open
from ledger.keys import ActivityKeys, TenantKeys

TARGETS = ("noop", "classic", "carnival")
LOADS = ("full", "half")
# Carnival's processes sampled for CPU, as named in the stack's stack.json, plus its actor(s).
STACK_PROCESSES = ("api", "dispatcher", "streams", "relay", "kafka", "redis")

WRK_THREADS = 1
# Answers slower than wrk's timeout keep their status but lose their latency sample;
# Carnival answers 202 after its reply timeout (3 s), so this sits well above it.
WRK_TIMEOUT_S = 10
WRK_EXIT_GRACE_S = 30.0  # wrk must have exited this long after its --duration
WRK_POLL_S = 0.05
WRK_CPU_WARN_CORES = 0.7  # above this, the load generator may be what limits the rate
# CPU the machine spent outside wrk, the target and the stack: above this, other work
# competed with the run and its figures do not compare with the other runs'.
OTHER_LOAD_WARN_CORES = 0.25
WRK_SCRIPT = Path(__file__).resolve().parents[2] / "loadtests" / "wrk_bench.lua"

SERVER_START_TIMEOUT_S = 60.0
SETTLE_S = 2.0  # pause before each run, so one run's tail does not load the next
HTTP_TIMEOUT_S = 30.0
TOKEN_CONCURRENCY = 32
TOKEN_TTL_S = 86_400
TOKEN_ATTEMPTS = 3  # per token: a request the api never answered is simply sent again
TOKEN_RETRY_PAUSE_S = 0.5
RAY_CALL_TIMEOUT_S = 30.0
# Carnival decides accepted requests after wrk stops (202 tickets, in-flight requests):
DRAIN_TIMEOUT_S = 120.0  # the bounded wait for every one of them to be decided
DRAIN_QUIET_S = 1.0  # ... seen as no change in decided count and stock for this long
DRAIN_POLL_S = 0.2

LIMITED_PRIZE = "coupon-limited"
LIMITED_WEIGHT = 10  # of 100: ~10 % of draws pick it until it runs out

Say = Callable[[str], None]


class BenchError(RuntimeError):
    """The bench could not run (a missing tool, a server that did not start)."""


@dataclass(frozen=True, slots=True)
class HttpBenchConfig:
    connections: int = 64
    duration_s: int = 15
    users: int = 20_000
    # Units of the limited prize in each fresh activity: at ~1k draws/s and a 10 % weight
    # Carnival's 15 s full-load run asks for ~1,500, so the prize runs out mid-run.
    stock: int = 1_000
    threads: int = WRK_THREADS
    # Load on a throwaway activity before anything is measured: a fresh stack's JVM
    # (Kafka) spends a fifth of a core compiling for its first minute, which would
    # be charged to whichever target runs first.
    warmup_s: int = 20


def activity_body(activity_id: str, stock: int) -> dict[str, Any]:
    """A wheel: one prize of limited stock, two unlimited prizes and the unlimited
    fallback; no per-user limit, so rejections do not dominate."""
    return {
        "id": activity_id,
        "kind": "wheel",
        "name": "HTTP bench wheel",
        "prizes": [
            {
                "id": LIMITED_PRIZE,
                "name": "50 off, limited",
                "kind": "coupon",
                "weight": LIMITED_WEIGHT,
                "stock": stock,
            },
            {"id": "coupon-5", "name": "5 off", "kind": "coupon", "weight": 20},
            {"id": "points-10", "name": "10 points", "kind": "points", "weight": 20, "points": 10},
            {
                "id": "thanks",
                "name": "Thanks for playing",
                "kind": "thanks",
                "weight": 100 - LIMITED_WEIGHT - 40,
            },
        ],
        "fallback_prize_id": "thanks",
        "limits": {"per_user_total": 0},
    }


# -- CPU, from /proc ----------------------------------------------------------------

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on, None when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process (all its threads), None when it is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def process_trees(roots: Mapping[str, int]) -> dict[str, list[int]]:
    """Each root pid with its live descendants (an api with several uvicorn workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    trees: dict[str, list[int]] = {}
    for name, root in roots.items():
        tree, todo = [], [root]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        trees[name] = tree
    return trees


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return (total - idle) / CLOCK_TICKS_PER_S, total / CLOCK_TICKS_PER_S


@dataclass
class CpuWindow:
    """CPU of named process trees (and of the machine) over one wall-clock window, in cores."""

    pids: Mapping[str, int]
    _began: float = 0.0
    _before: dict[str, dict[int, float]] = field(default_factory=dict)
    _machine: tuple[float, float] = (0.0, 0.0)

    def start(self) -> None:
        self._before = {
            name: {pid: cpu for pid in tree if (cpu := cpu_seconds(pid)) is not None}
            for name, tree in process_trees(self.pids).items()
        }
        self._machine = machine_busy_seconds()
        self._began = time.monotonic()

    def stop(self) -> tuple[dict[str, float | None], float]:
        """Cores per name (None when its process was gone) and busy cores of the machine.
        A descendant that exits during the window is not counted."""
        wall = max(time.monotonic() - self._began, 1e-9)
        cores: dict[str, float | None] = {}
        for name, before in self._before.items():
            used, alive = 0.0, False
            for pid, start in before.items():
                now = cpu_seconds(pid)
                if now is not None:
                    used, alive = used + now - start, alive or pid == self.pids[name]
            cores[name] = used / wall if alive else None
        busy, total = machine_busy_seconds()
        ncpu = os.cpu_count() or 1
        machine = (busy - self._machine[0]) / max(total - self._machine[1], 1e-9) * ncpu
        return cores, machine


def _cores(sample: Mapping[str, float | None], names: tuple[str, ...]) -> dict[str, Any]:
    picked = {n: round(v, 3) if v is not None else None for n, v in sample.items() if n in names}
    picked["total"] = round(sum(v for v in picked.values() if v is not None), 3)
    return picked


# -- wrk ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WrkRun:
    summary: dict[str, Any]  # the JSON line of wrk_bench.lua's done()
    cpu_cores: float  # wrk's user + system CPU over its wall time (wait4's rusage)
    wall_s: float
    command: list[str]


def wrk_binary(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BenchError(f"'{name}' not found: apt-get install -y wrk (or scripts/bootstrap.sh)")
    return found


def wrk_version(binary: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        # `wrk -v` prints its version and the usage, and exits 1
        run = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=5)
        return (run.stdout or run.stderr).split("Copyright")[0].strip()
    return "?"


def run_wrk(
    binary: str,
    base_url: str,
    path: str,
    tokens_file: Path,
    config: HttpBenchConfig,
    rate: float | None,
    log_path: Path,
) -> WrkRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRK_")}
    env.update(
        CARNIVAL_TOKENS_FILE=str(tokens_file), WRK_PATH=path, WRK_THREADS=str(config.threads)
    )
    if rate is not None:
        env["WRK_RATE"] = f"{rate:.1f}"
    command = [
        binary,
        f"-t{config.threads}",
        f"-c{config.connections}",
        f"-d{config.duration_s}s",
        "--timeout",
        f"{WRK_TIMEOUT_S}s",
        "-s",
        str(WRK_SCRIPT),
        base_url,
    ]
    with open(log_path, "wb") as log:
        began = time.monotonic()
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = began + config.duration_s + WRK_EXIT_GRACE_S
        try:
            while True:
                # wait4 rather than wait: the child's rusage is its exact CPU time
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"wrk still running {WRK_EXIT_GRACE_S:.0f}s after its run")
                time.sleep(WRK_POLL_S)
        except BaseException:  # a deadline, Ctrl-C or SIGTERM: wrk must not outlive us
            if proc.returncode is None:
                proc.kill()
                proc.wait()
            raise
        wall = time.monotonic() - began
    output = log_path.read_text(errors="replace")
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise BenchError(f"wrk failed (exit {proc.returncode}); output:\n{output[-2000:]}")
    cpu = (usage.ru_utime + usage.ru_stime) / wall
    return WrkRun(orjson.loads(lines[-1]), cpu, wall, command)


# -- the servers under test -----------------------------------------------------------


class BenchServer(ManagedProcess):
    """One of ``http_servers``' apps in its own uvicorn process on a free port."""

    def __init__(self, kind: str, log_dir: Path, extra_env: Mapping[str, str]) -> None:
        self.name = f"bench-{kind}"
        super().__init__(log_dir)
        self.kind = kind
        self.port = free_port()
        self.extra_env = dict(extra_env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "carnival.bench.http_servers",
            self.kind,
            f"--port={self.port}",
        ]

    def env(self) -> Mapping[str, str]:
        return {**os.environ, **self.extra_env}

    def is_ready(self) -> bool:
        # uvicorn runs the lifespan (the classic app loads its script) before it listens
        return port_open(self.port)


@contextlib.contextmanager
def bench_server(kind: str, log_dir: Path, extra_env: Mapping[str, str]) -> Iterator[BenchServer]:
    server = BenchServer(kind, log_dir, extra_env)
    try:
        server.start(timeout=SERVER_START_TIMEOUT_S)
        yield server
    finally:
        server.stop()


@dataclass
class Stack:
    """The Carnival the bench draws from, and the processes whose CPU it samples."""

    api_url: str
    redis_url: str
    admin_key: str
    pids: dict[str, int]  # STACK_PROCESSES that were found, plus "actor" (or "actor-<i>")
    embedded: bool
    notes: list[str] = field(default_factory=list)


def actor_pids(ray_address: str, namespace: str) -> dict[str, int]:
    """The worker pid of every named actor in Carnival's Ray namespace, from the
    actor's own ``pid()`` method ("actor" when there is one, else "actor:<name>")."""
    from runtime.ray_env import set_ray_env

    set_ray_env()
    import ray

    ours = not ray.is_initialized()
    if ours:
        ray.init(
            address=ray_address,
            namespace=namespace,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    pids: dict[str, int] = {}
    try:
        named = ray.util.list_named_actors(all_namespaces=True)
        for name in sorted(a["name"] for a in named if a["namespace"] == namespace):
            handle = ray.get_actor(name, namespace=namespace)
            with contextlib.suppress(Exception):  # not one of ours: it has no pid()
                pids[name] = int(ray.get(handle.pid.remote(), timeout=RAY_CALL_TIMEOUT_S))
    finally:
        if ours:
            ray.shutdown()
    if len(pids) == 1:
        return {"actor": next(iter(pids.values()))}
    return {f"actor:{name}": pid for name, pid in pids.items()}


def _stack_pids(state: Mapping[str, Any], notes: list[str]) -> dict[str, int]:
    from runtime.settings import Settings

    pids = {n: int(p) for n, p in state.get("pids", {}).items() if n in STACK_PROCESSES}
    missing = [n for n in STACK_PROCESSES if n not in pids]
    if missing:
        notes.append(f"no pid for {', '.join(missing)}: their CPU is not counted")
    ray_address = state.get("ray")
    namespace = state.get("ray_namespace") or Settings.model_fields["ray_namespace"].default
    if ray_address:
        try:
            actors = actor_pids(ray_address, namespace)
            if not actors:
                notes.append(f"no named actor in Ray namespace '{namespace}': not counted")
            pids |= actors
        except Exception as exc:  # the bench still runs; the report says what is missing
            notes.append(f"actor pid not found ({type(exc).__name__}: {exc}): not counted")
    else:
        notes.append("no Ray address: the actor's CPU is not counted")
    return pids


@contextlib.contextmanager
def carnival_stack(
    work_dir: Path,
    say: Say,
    api_url: str | None = None,
    redis_url: str | None = None,
    admin_key: str | None = None,
    stack_file: Path | None = None,
) -> Iterator[Stack]:
    """A running api given by URL (tests), else a fresh embedded stack we start and remove."""
    if api_url:
        if not (redis_url and admin_key):
            raise BenchError("--api-url needs --redis-url and --admin-key")
        notes: list[str] = []
        state = orjson.loads(stack_file.read_bytes()) if stack_file else {}
        pids = _stack_pids(state, notes)
        yield Stack(api_url.rstrip("/"), redis_url, admin_key, pids, False, notes)
        return

    from carnival.loadstack import embedded_stack

    with embedded_stack(work_dir, say) as running:
        state = {
            "pids": running.pids,
            "ray": running.ray_address,
            "ray_namespace": running.ray_namespace,
        }
        notes: list[str] = []
        pids = _stack_pids(state, notes)
        yield Stack(running.api, running.redis_url, running.admin_key, pids, True, notes)


# -- fixtures through the admin API -----------------------------------------------------


def issue_tokens(api_url: str, admin_key: str, users: int) -> list[str]:
    """One shopper token per user, ``TOKEN_CONCURRENCY`` requests at a time."""

    async def run() -> list[str]:
        tokens: list[str] = [""] * users
        todo = iter(range(users))
        headers = {"X-Api-Key": admin_key}
        async with httpx.AsyncClient(
            base_url=api_url, headers=headers, timeout=HTTP_TIMEOUT_S
        ) as client:

            async def issue(i: int) -> httpx.Response:
                body = {"user_id": f"bench-{i}", "ttl_s": TOKEN_TTL_S}
                for _ in range(TOKEN_ATTEMPTS - 1):
                    try:
                        return await client.post("/v1/shopper-tokens", json=body)
                    except httpx.TransportError:  # a reset keep-alive connection, a stall
                        await asyncio.sleep(TOKEN_RETRY_PAUSE_S)
                return await client.post("/v1/shopper-tokens", json=body)

            async def worker() -> None:
                for i in todo:
                    reply = await issue(i)
                    if reply.status_code != 200:
                        raise BenchError(
                            f"POST /v1/shopper-tokens: {reply.status_code} {reply.text}"
                        )
                    tokens[i] = reply.json()["token"]

            await asyncio.gather(*(worker() for _ in range(TOKEN_CONCURRENCY)))
        return tokens

    return asyncio.run(run())


def _expect(reply: httpx.Response, status: int) -> dict[str, Any]:
    if reply.status_code != status:
        raise BenchError(
            f"{reply.request.method} {reply.request.url.path}: {reply.status_code} {reply.text}"
        )
    return reply.json()


def create_running_activity(admin: httpx.Client, activity_id: str, stock: int) -> dict[str, Any]:
    """draft -> scheduled -> running through the admin API; returns the admin view."""
    _expect(admin.post("/v1/admin/activities", json=activity_body(activity_id, stock)), 201)
    view: dict[str, Any] = {}
    for to in ("scheduled", "running"):
        view = _expect(
            admin.post(f"/v1/admin/activities/{activity_id}/transitions", json={"to": to}), 200
        )
    return view


# -- the oversell checks ----------------------------------------------------------------


def _stock_check(
    target: str, load: str, activity_id: str, configured: int, left: int, awarded: int
) -> dict[str, Any]:
    failures = []
    if left < 0:
        failures.append(f"stock left {left} < 0")
    if awarded > configured:
        failures.append(f"awarded {awarded} > configured {configured}")
    if awarded != configured - left:
        failures.append(f"awarded {awarded} != configured {configured} - left {left}")
    return {
        "target": target,
        "load": load,
        "activity_id": activity_id,
        "prize_id": LIMITED_PRIZE,
        "configured": configured,
        "stock_left": left,
        "awarded": awarded,
        "failures": failures,
    }


def classic_check(
    redis: Any, keys: ClassicKeys, activity_id: str, load: str, configured: int, answered_200: int
) -> dict[str, Any]:
    """The classic keys after a phase: the script runs synchronously, so no wait."""
    left = int(redis.get(keys.stock(LIMITED_PRIZE)) or 0)
    given = redis.hvals(keys.outcomes)
    awarded = sum(v == LIMITED_PRIZE.encode() for v in given)
    check = _stock_check("classic", load, activity_id, configured, left, awarded)
    check |= {"decided": len(given), "answered_200": answered_200}
    if len(given) < answered_200:
        check["failures"].append(f"{answered_200} answered 200 but {len(given)} recorded")
    check["ok"] = not check["failures"]
    return check


def carnival_check(
    redis: Any,
    admin: httpx.Client,
    tenant_id: str,
    activity_id: str,
    load: str,
    configured: int,
    accepted: int,
    answered_200: int,
) -> dict[str, Any]:
    """Wait (at most DRAIN_TIMEOUT_S) until the ledger holds an outcome for every
    accepted request and stops changing, then compare the ledger with the stock."""
    keys = ActivityKeys(tenant_id, activity_id)
    began = time.monotonic()
    last: tuple[int, int] | None = None
    quiet_since = began
    drained = False
    while True:
        view = _expect(admin.get(f"/v1/admin/activities/{activity_id}"), 200)
        seen = (int(redis.hlen(keys.outcomes)), int(view["stock_left"][LIMITED_PRIZE]))
        now = time.monotonic()
        if seen != last:
            last, quiet_since = seen, now
        elif seen[0] >= accepted and now - quiet_since >= DRAIN_QUIET_S:
            drained = True
            break
        if now - began > DRAIN_TIMEOUT_S:
            break
        time.sleep(DRAIN_POLL_S)
    left = int(
        _expect(admin.get(f"/v1/admin/activities/{activity_id}"), 200)["stock_left"][LIMITED_PRIZE]
    )
    outcomes = [orjson.loads(v) for v in redis.hvals(keys.outcomes)]
    awarded = sum(o["prize_id"] == LIMITED_PRIZE and o["status"] == "won" for o in outcomes)
    check = _stock_check("carnival", load, activity_id, configured, left, awarded)
    check |= {
        "decided": len(outcomes),
        "accepted": accepted,
        "answered_200": answered_200,
        "drained": drained,
        "drain_wait_s": round(time.monotonic() - began, 2),
    }
    if not drained:
        check["failures"].append(
            f"{accepted} accepted, {len(outcomes)} decided after {DRAIN_TIMEOUT_S:.0f}s"
        )
    if len(outcomes) < answered_200:
        check["failures"].append(f"{answered_200} answered 200 but {len(outcomes)} in the ledger")
    check["ok"] = not check["failures"]
    return check


# -- the run ----------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def ratios(results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Carnival over classic and over no-op: throughput and p99 at full load, p99 at half."""

    def pick(target: str, load: str, metric: str) -> float | None:
        row = results.get(target, {}).get(load)
        if row is None:
            return None
        return row["latency_ms"]["p99"] if metric == "p99" else row[metric]

    out: dict[str, Any] = {}
    for load, metrics in (("full", ("req_per_s", "decided_per_s", "p99")), ("half", ("p99",))):
        out[load] = {
            f"carnival_vs_{other}": {
                m: _ratio(pick("carnival", load, m), pick(other, load, m)) for m in metrics
            }
            for other in ("classic", "noop")
        }
    return out


@dataclass
class Phases:
    """What every phase shares: the stack, its clients, the tokens, the wrk settings."""

    config: HttpBenchConfig
    wrk: str
    work_dir: Path
    stack: Stack
    redis: Any  # redis.Redis
    admin: httpx.Client  # the api, with the admin key
    tokens_file: Path
    tenant_id: str
    shopper_secret: str
    run_tag: str

    def run(self, target: str, load: str, rate: float | None) -> tuple[dict, dict | None]:
        """One phase: its measurement row and, for classic and Carnival, its check."""
        return {"noop": self._noop, "classic": self._classic, "carnival": self._carnival}[target](
            load, rate
        )

    def warm_up(self) -> None:
        activity_id = f"bench-{self.run_tag}-warmup"
        create_running_activity(self.admin, activity_id, self.config.stock)
        config = replace(self.config, duration_s=self.config.warmup_s)
        log = self.work_dir / "wrk-warmup.log"
        path = f"/v1/activities/{activity_id}/draws"
        run_wrk(self.wrk, self.stack.api_url, path, self.tokens_file, config, None, log)

    def _noop(self, load: str, rate: float | None) -> tuple[dict, None]:
        with bench_server("noop", self.work_dir, {}) as server:
            row = self._measure(
                "noop", load, server, "/v1/activities/bench-noop/draws", rate, ("server",)
            )
        return row, None

    def _classic(self, load: str, rate: float | None) -> tuple[dict, dict]:
        from carnival.bench.http_servers import (
            ENV_ACTIVITY,
            ENV_REDIS_URL,
            ENV_SHOPPER_SECRET,
            classic_keys,
        )
        from domain.activity import Activity

        activity_id = f"bench-{self.run_tag}-classic-{load}"
        raw = create_running_activity(self.admin, activity_id, self.config.stock)["activity"]
        keys = classic_keys(Activity.model_validate(raw))
        self.redis.set(keys.stock(LIMITED_PRIZE), self.config.stock)
        env = {
            ENV_REDIS_URL: self.stack.redis_url,
            ENV_SHOPPER_SECRET: self.shopper_secret,
            ENV_ACTIVITY: orjson.dumps(raw).decode(),
        }
        path = f"/v1/activities/{activity_id}/draws"
        with bench_server("classic", self.work_dir, env) as server:
            # The classic design's work is split between the app and Redis.
            row = self._measure("classic", load, server, path, rate, ("server", "redis"))
        row["activity_id"] = activity_id
        check = classic_check(
            self.redis, keys, activity_id, load, self.config.stock, row["status"].get("200", 0)
        )
        return row, check

    def _carnival(self, load: str, rate: float | None) -> tuple[dict, dict]:
        activity_id = f"bench-{self.run_tag}-carnival-{load}"
        create_running_activity(self.admin, activity_id, self.config.stock)
        path = f"/v1/activities/{activity_id}/draws"
        row = self._measure("carnival", load, None, path, rate, tuple(self.stack.pids))
        row["activity_id"] = activity_id
        answered_200 = row["status"].get("200", 0)
        accepted = answered_200 + row["status"].get("202", 0)
        check = carnival_check(
            self.redis,
            self.admin,
            self.tenant_id,
            activity_id,
            load,
            self.config.stock,
            accepted,
            answered_200,
        )
        return row, check

    def _measure(
        self,
        target: str,
        load: str,
        server: BenchServer | None,
        path: str,
        rate: float | None,
        target_names: tuple[str, ...],
    ) -> dict[str, Any]:
        """One wrk run, with the CPU of the target's processes and of the rest."""
        pids = dict(self.stack.pids)
        if server is not None and server.pid is not None:
            pids["server"] = server.pid
        base_url = server.url if server is not None else self.stack.api_url
        time.sleep(SETTLE_S)
        window = CpuWindow(pids)
        window.start()
        log = self.work_dir / f"wrk-{target}-{load}.log"
        run = run_wrk(self.wrk, base_url, path, self.tokens_file, self.config, rate, log)
        sample, machine = window.stop()
        s = run.summary
        duration = s["duration_s"] or 1e-9
        background = tuple(n for n in pids if n not in target_names)
        mine, rest = _cores(sample, target_names), _cores(sample, background)
        other = machine - run.cpu_cores - mine["total"] - rest["total"]
        return {
            "target": target,
            "load": load,
            "rate_limit": round(rate, 1) if rate is not None else None,
            "url": base_url + path,
            "requests": s["requests"],
            "duration_s": round(duration, 3),
            "req_per_s": round(s["requests"] / duration, 1),
            "decided_per_s": round(s["status"].get("200", 0) / duration, 1),
            "status": s["status"],
            "2xx": s["2xx"],
            "409": s["409"],
            "other_non_2xx": s["other_non_2xx"],
            "socket_errors": s["socket_errors"],
            "latency_ms": s["latency_ms"],
            "cpu_cores": {
                "wrk": round(run.cpu_cores, 3),
                "target": mine,
                "background": rest,
                "machine_busy": round(machine, 3),
                "other": round(max(other, 0.0), 3),
            },
            "wrk_command": run.command,
        }


def run_http_bench(
    config: HttpBenchConfig,
    *,
    say: Say = lambda _msg: None,
    api_url: str | None = None,
    redis_url: str | None = None,
    admin_key: str | None = None,
    stack_file: Path | None = None,
    wrk: str = "wrk",
) -> dict[str, Any]:
    """Run every target at full then half load; returns the report (what ``--out`` holds)."""
    import redis as redis_lib

    from carnival.bench.sessions import machine_info

    binary = wrk_binary(wrk)
    if not WRK_SCRIPT.exists():
        raise BenchError(f"{WRK_SCRIPT} is missing (run from a source checkout)")
    load_avg = os.getloadavg()
    results: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TARGETS}
    checks: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="carnival-bench-http-") as tmp,
        carnival_stack(Path(tmp), say, api_url, redis_url, admin_key, stack_file) as stack,
        contextlib.closing(redis_lib.Redis.from_url(stack.redis_url)) as redis,
        httpx.Client(
            base_url=stack.api_url, headers={"X-Api-Key": stack.admin_key}, timeout=HTTP_TIMEOUT_S
        ) as admin,
    ):
        say(f"issuing {config.users:,} shopper tokens...")
        began = time.monotonic()
        tokens = issue_tokens(stack.api_url, stack.admin_key, config.users)
        say(f"... in {time.monotonic() - began:.1f}s")
        tokens_file = Path(tmp) / "tokens.txt"
        tokens_file.write_text("\n".join(tokens) + "\n")
        tenant_id, secret = tenant_secret(redis, tokens[0], stack.redis_url)
        machine = machine_info(stack.redis_url) | {
            "wrk": wrk_version(binary),
            "loadavg_at_start": [round(v, 2) for v in load_avg],
        }
        phases = Phases(
            config,
            binary,
            Path(tmp),
            stack,
            redis,
            admin,
            tokens_file,
            tenant_id,
            secret,
            time.strftime("%Y%m%d%H%M%S"),
        )
        if config.warmup_s > 0:
            say(f"warming the stack up: {config.warmup_s}s of draws, not measured...")
            phases.warm_up()
        for target in TARGETS:
            for load in LOADS:
                rate = results[target]["full"]["req_per_s"] / 2 if load == "half" else None
                pace = f", paced at {rate:,.0f} req/s" if rate else ""
                say(f"{target}, {load} load{pace}: {config.duration_s}s of wrk...")
                row, check = phases.run(target, load, rate)
                results[target][load] = row
                if check is not None:
                    checks.append(check)

    warnings = list(stack.notes)
    for target, loads in results.items():
        for load, row in loads.items():
            cpu = row["cpu_cores"]
            if cpu["wrk"] > WRK_CPU_WARN_CORES:
                warnings.append(
                    f"wrk used {cpu['wrk']:.2f} cores on {target} at {load} load "
                    f"(> {WRK_CPU_WARN_CORES}): the load generator may limit the rate"
                )
            if cpu["other"] > OTHER_LOAD_WARN_CORES:
                warnings.append(
                    f"other processes used {cpu['other']:.2f} cores during {target} at {load} "
                    f"load (> {OTHER_LOAD_WARN_CORES}): this run competed with other work"
                )
    return {
        "machine": machine,
        "config": asdict(config)
        | {
            "wrk_timeout_s": WRK_TIMEOUT_S,
            "limited_prize": LIMITED_PRIZE,
            "limited_weight_pct": LIMITED_WEIGHT,
            "embedded_stack": stack.embedded,
            "api_url": stack.api_url,
            "tenant_id": tenant_id,
        },
        "processes": stack.pids,
        "results": results,
        "ratios": ratios(results),
        "checks": checks,
        "warnings": warnings,
        "ok": all(c["ok"] for c in checks),
    }


def tenant_secret(redis: Any, token: str, redis_url: str) -> tuple[str, str]:
    """The tenant the api's tokens name and its shopper secret, as the classic app gets it."""
    from domain.tokens import TokenError, read_unverified_tenant, verify_shopper_token

    tenant_id = read_unverified_tenant(token)
    secret = redis.hget(TenantKeys(tenant_id).record, "shopper_secret")
    try:
        verify_shopper_token(secret or b"", token)
    except TokenError as exc:
        raise BenchError(
            f"the shopper secret in {redis_url} does not verify the api's tokens "
            f"(wrong --redis-url?): {exc}"
        ) from exc
    return tenant_id, secret.decode()


# -- CLI ---------------------------------------------------------------------------------

LABELS = {"noop": "no-op FastAPI", "classic": "classic (Lua per request)", "carnival": "Carnival"}
REPORT_WIDTH = 140  # rich wraps at 80 columns when stdout is not a terminal


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _times(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def render(report: dict[str, Any]) -> list[Table]:
    """The README-style table (× columns: req/s ratio at full load, p99 ratio at half
    load) and one of statuses and CPU."""
    machine, config = report["machine"], report["config"]
    results = report["results"]
    main = Table(
        title=(
            f"Carnival over HTTP — wrk -t{config['threads']} -c{config['connections']} "
            f"-d{config['duration_s']}s, {machine['nproc']} CPUs, Python {machine['python']}, "
            f"Redis {machine['redis_server']} (appendfsync {machine['appendfsync']})"
        ),
        caption="× classic / × no-op: req/s ratio at full load, p99 ratio at half load",
    )
    for column in (
        "target",
        "load",
        "req/s",
        "decided/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "× classic",
        "× no-op",
    ):
        main.add_column(column, justify="left" if column in ("target", "load") else "right")
    usage = Table(
        title="Answers, and CPU in cores during each run",
        caption=(
            "target: its processes (classic: app + Redis); stack: the rest of Carnival; "
            "others: the machine's busy CPU outside wrk, target and stack"
        ),
    )
    for column in (
        "target",
        "load",
        "requests",
        "200",
        "202",
        "409",
        "non-2xx",
        "sock err",
        "wrk cpu",
        "target cpu",
        "stack cpu",
        "others cpu",
        "machine cpu",
    ):
        usage.add_column(column, justify="left" if column in ("target", "load") else "right")
    for target, loads in results.items():
        for load, row in loads.items():
            lat = row["latency_ms"]

            def versus(other: str, row: dict = row, load: str = load) -> float | None:
                base = results[other][load]
                if load == "full":
                    return _ratio(row["req_per_s"], base["req_per_s"])
                return _ratio(row["latency_ms"]["p99"], base["latency_ms"]["p99"])

            rate = f"{row['req_per_s']:,.0f}"
            if row["rate_limit"] is not None:
                rate += f" (of {row['rate_limit']:,.0f})"
            main.add_row(
                LABELS[target],
                load,
                rate,
                f"{row['decided_per_s']:,.0f}",
                _ms(lat["p50"]),
                _ms(lat["p95"]),
                _ms(lat["p99"]),
                _ms(lat["max"]),
                _times(versus("classic")),
                _times(versus("noop")),
            )
            cpu = row["cpu_cores"]
            usage.add_row(
                target,
                load,
                f"{row['requests']:,}",
                f"{row['status'].get('200', 0):,}",
                f"{row['status'].get('202', 0):,}",
                f"{row['409']:,}",
                f"{row['other_non_2xx']:,}",
                f"{row['socket_errors']['total']:,}",
                f"{cpu['wrk']:.2f}",
                f"{cpu['target']['total']:.2f}",
                f"{cpu['background']['total']:.2f}",
                f"{cpu['other']:.2f}",
                f"{cpu['machine_busy']:.2f}",
            )
    return [main, usage]


def check_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for c in report["checks"]:
        verdict = "[green]ok[/]" if c["ok"] else "[red]FAILED[/]: " + "; ".join(c["failures"])
        lines.append(
            f"oversell {c['target']} {c['load']}: {c['prize_id']} configured {c['configured']:,}, "
            f"awarded {c['awarded']:,}, left {c['stock_left']:,}, "
            f"decided {c['decided']:,} ({verdict})"
        )
    return lines


def http_cmd(
    connections: int = typer.Option(64, min=1, help="wrk connections (-c)"),
    duration: int = typer.Option(15, min=1, help="seconds of each wrk run (-d)"),
    users: int = typer.Option(20_000, min=1, help="distinct shoppers (one token each)"),
    stock: int = typer.Option(1_000, min=1, help="units of the limited prize per activity"),
    warmup: int = typer.Option(20, min=0, help="seconds of unmeasured draws first"),
    out: Path = typer.Option(Path("bench-http.json"), help="JSON report"),  # noqa: B008
    api_url: str | None = typer.Option(
        None, help="a running Carnival api to bench instead of a fresh embedded stack"
    ),
    redis_url: str | None = typer.Option(None, help="with --api-url: the Redis it uses"),
    admin_key: str | None = typer.Option(
        None, envvar="CARNIVAL_ADMIN_KEY", help="with --api-url: an admin API key"
    ),
    stack_file: Path | None = typer.Option(  # noqa: B008
        None, help="with --api-url: its stack.json (pids to sample, Ray address)"
    ),
    wrk: str = typer.Option("wrk", help="the wrk binary"),
) -> None:
    """Req/s and latency of a no-op endpoint, the classic design and Carnival, over HTTP."""
    config = HttpBenchConfig(
        connections=connections, duration_s=duration, users=users, stock=stock, warmup_s=warmup
    )
    console = Console(stderr=True)
    # SIGTERM stops the stack as cleanly as Ctrl-C (see `carnival up`).
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        report = run_http_bench(
            config,
            say=lambda msg: console.print(f"[cyan]•[/] {msg}"),
            api_url=api_url,
            redis_url=redis_url,
            admin_key=admin_key,
            stack_file=stack_file,
            wrk=wrk,
        )
    except (BenchError, httpx.HTTPError) as exc:
        console.print(f"[red]bench failed:[/] {type(exc).__name__}: {exc}")
        raise typer.Exit(2) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    stdout = Console() if sys.stdout.isatty() else Console(width=REPORT_WIDTH)
    for table in render(report):
        stdout.print(table)
    for line in check_lines(report):
        stdout.print(line)
    for warning in report["warnings"]:
        stdout.print(f"[yellow]warning:[/] {warning}")
    console.print(f"wrote {out.resolve()}")
    if not report["ok"]:
        raise typer.Exit(1)
