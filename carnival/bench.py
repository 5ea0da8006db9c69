"""`carnival bench draws`: draws/s of four decision paths, measured in one run.

1. ceiling      - `PoolState.decide` in a plain in-process loop (no I/O at all).
2. actor batch  - the same loop inside a Ray actor, one call per batch.
3. durable      - the real path: `PoolActor.decide_batch` + one Lua commit per batch
                  to the Redis ledger (AOF, appendfsync always).
4. classic      - the per-request Redis-Lua design of big-market / seckill systems:
                  one EVALSHA per draw (stock DECR, per-user counter, outcome).

The numbers are only comparable within one run on one machine, so every path
runs in the same process against the same Redis, and the JSON records the machine.
Heavy modules (ray, redis, actors) are imported inside the functions so that
registering this sub-command keeps every other `carnival` command fast.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import random
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from domain.activity import Activity, Limits, Prize
from domain.draw import PoolState, WeightTable, initial_stock

bench_app = typer.Typer(no_args_is_help=True, help="Measure the decision paths on this machine.")

PATHS = ("ceiling", "actor_batch", "durable", "classic")
RAY_NAMESPACE = "carnival-bench"
CLASSIC_THREADS = 8
AIM_ACTOR_VS_CEILING = 0.5
AIM_DURABLE_VS_CLASSIC = 10.0
# Report progress every this many in-process draws: a rich update per draw
# would cost more than the draw and distort the ceiling.
_PROGRESS_EVERY = 10_000

# Advance(task, amount); a no-op when nobody watches (tests).
Advance = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class BenchConfig:
    draws: int = 1_000_000  # in-memory paths (ceiling, actor batch)
    batch: int = 1000
    classic_draws: int = 20_000  # per classic variant (sequential, threaded)
    durable_draws: int = 200_000
    users: int = 100_000
    seed: int = 42


@dataclass(frozen=True, slots=True)
class PathResult:
    path: str
    draws: int
    seconds: float
    detail: dict[str, Any]

    @property
    def rate(self) -> float:
        return self.draws / self.seconds if self.seconds > 0 else 0.0


# -- the activity every path draws from ----------------------------------------------


def bench_activity(tenant_id: str, activity_id: str, stock: int) -> Activity:
    """A running wheel, six stocked prizes + an unlimited "thanks" fallback.

    ``stock`` per prize is at least the number of draws of any path, so no prize
    runs out mid-run: an exhausted prize would change the work per draw (table
    rebuild, fallback) and make the paths incomparable.
    """
    return Activity(
        id=activity_id,
        tenant_id=tenant_id,
        kind="wheel",
        name="Bench wheel",
        status="running",
        prizes=(
            Prize(id="coupon-100", name="100 off", kind="coupon", weight=1, stock=stock),
            Prize(id="coupon-50", name="50 off", kind="coupon", weight=3, stock=stock),
            Prize(id="coupon-10", name="10 off", kind="coupon", weight=10, stock=stock),
            Prize(
                id="points-500", name="500 points", kind="points", weight=5, stock=stock, points=500
            ),
            Prize(
                id="points-100",
                name="100 points",
                kind="points",
                weight=20,
                stock=stock,
                points=100,
            ),
            Prize(id="item-mug", name="Mug", kind="item", weight=2, stock=stock),
            Prize(id="thanks", name="Thanks for playing", kind="thanks", weight=59),
        ),
        fallback_prize_id="thanks",
        limits=Limits(per_user_total=0),
    )


def user_ids(count: int) -> list[str]:
    return [f"u{i}" for i in range(count)]


def _fresh_pool(activity: Activity) -> PoolState:
    return PoolState(activity=activity, stock=initial_stock(activity))


# -- 1. ceiling --------------------------------------------------------------------


def run_ceiling(
    activity: Activity, users: list[str], draws: int, seed: int, advance: Advance
) -> PathResult:
    pool = _fresh_pool(activity)
    rng = random.Random(seed)
    wallet: dict[str, int] = {}
    n_users = len(users)
    at_ms = int(time.time() * 1000)
    decide = pool.decide  # bound once: the loop measures decide, not attribute look-ups
    began = time.perf_counter()
    done = 0
    while done < draws:
        chunk = min(_PROGRESS_EVERY, draws - done)
        for i in range(done, done + chunk):
            decide(users[i % n_users], at_ms, rng, wallet)
        done += chunk
        advance(chunk)
    seconds = time.perf_counter() - began
    return PathResult("ceiling", draws, seconds, {"won": pool.total_draws})


# -- 2. actor batch ----------------------------------------------------------------


class BenchPool:
    """The decision loop of the ceiling, hosted by a Ray actor (no I/O)."""

    def __init__(self, activity_json: str, seed: int) -> None:
        # JSON in, so the actor builds its own Activity (no pydantic pickling quirks).
        self._pool = _fresh_pool(Activity.model_validate_json(activity_json))
        self._rng = random.Random(seed)
        self._wallet: dict[str, int] = {}

    def ping(self) -> bool:
        return True

    def decide_many(self, users: list[str]) -> int:
        """Decide one batch in memory; returns how many draws counted."""
        at_ms = int(time.time() * 1000)
        decide, rng, wallet = self._pool.decide, self._rng, self._wallet
        counted = 0
        for user in users:
            if decide(user, at_ms, rng, wallet).counts_as_draw:
                counted += 1
        return counted


def _batches(users: list[str], total: int, batch: int, start: int = 0) -> Iterator[list[str]]:
    n_users = len(users)
    for first in range(start, start + total, batch):
        last = min(first + batch, start + total)
        yield [users[i % n_users] for i in range(first, last)]


def run_actor_batch(
    activity: Activity, users: list[str], draws: int, batch: int, seed: int, advance: Advance
) -> PathResult:
    import ray

    actor = (
        ray.remote(BenchPool)
        .options(num_cpus=0)  # type: ignore[attr-defined]
        .remote(activity.model_dump_json(), seed)
    )
    try:
        ray.get(actor.ping.remote())  # worker start-up is not part of the measurement
        # Batches are built before timing: the dispatcher receives them ready-made
        # from Kafka, and the path measures the actor plus its call overhead.
        batches = list(_batches(users, draws, batch))
        calls = 0
        counted = 0
        began = time.perf_counter()
        for users_batch in batches:
            # One call at a time, waited for: includes the full Ray round trip.
            counted += ray.get(actor.decide_many.remote(users_batch))
            calls += 1
            advance(len(users_batch))
        seconds = time.perf_counter() - began
    finally:
        ray.kill(actor)
    return PathResult("actor_batch", draws, seconds, {"calls": calls, "counted": counted})


# -- 3. durable --------------------------------------------------------------------


def run_durable(
    redis_url: str, activity: Activity, users: list[str], draws: int, batch: int, advance: Advance
) -> PathResult:
    import ray

    from actors.ledger import Ledger
    from actors.pool_actor import PoolActor
    from domain.events import DrawRequested, request_key

    ledger = Ledger.from_url(redis_url)
    ledger.install_activity(activity)
    # num_cpus=0 like the production actors: never blocked by a busy head's CPUs.
    actor = PoolActor.options(num_cpus=0).remote(redis_url, 7)  # type: ignore[attr-defined]
    tenant_id, activity_id = activity.tenant_id, activity.id
    n_users = len(users)
    # Requests are built before the clock starts: parsing and grouping them is
    # the dispatcher's work, in its own process, not the actor's.
    batches = [
        [
            DrawRequested(
                event_id=request_key(users[i % n_users], f"r{i}"),
                tenant_id=tenant_id,
                activity_id=activity_id,
                user_id=users[i % n_users],
                request_id=f"r{i}",
                reply_to="",
            ).dumps()
            for i in range(first, min(first + batch, draws))
        ]
        for first in range(0, draws, batch)
    ]
    try:
        ray.get(actor.ping.remote())
        calls = 0
        outcomes = 0
        began = time.perf_counter()
        for requests in batches:
            # Distinct batch ids: a repeated batch would be answered from the ledger.
            outcomes += len(ray.get(actor.decide_batch.remote(f"bench:0:{calls}", requests)))
            calls += 1
            advance(len(requests))
        seconds = time.perf_counter() - began
    finally:
        ray.kill(actor)
    totals = ledger.totals(tenant_id, activity_id)
    detail = {"calls": calls, "outcomes": outcomes, "ledger_draws": totals["draws"]}
    return PathResult("durable", draws, seconds, detail)


# -- 4. classic --------------------------------------------------------------------

# One request, one script: the shape of big-market / seckill stock deduction.
# Idempotent by request key, per-user limit, stock DECR else fallback, outcome record.
CLASSIC_LUA = """
local done = redis.call('HGET', KEYS[3], ARGV[5])
if done then return done end
local limit = tonumber(ARGV[4])
local used = tonumber(redis.call('HGET', KEYS[2], ARGV[3]) or '0')
if limit > 0 and used >= limit then return 'rejected:user_limit_reached' end
local prize = ARGV[1]
if ARGV[6] == '1' then
  if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
    redis.call('DECR', KEYS[1])
  else
    prize = ARGV[2]
  end
end
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('HSET', KEYS[3], ARGV[5], prize)
return prize
"""
# A limit that is checked on every request but never reached in the bench.
CLASSIC_USER_LIMIT = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ClassicKeys:
    base: str  # shares the ledger's hash tag, so it would run on Redis Cluster too

    def stock(self, prize_id: str) -> str:
        return f"{self.base}:classic:stock:{prize_id}"

    @property
    def users(self) -> str:
        return f"{self.base}:classic:users"

    @property
    def outcomes(self) -> str:
        return f"{self.base}:classic:outcomes"


def run_classic(
    redis_url: str,
    activity: Activity,
    users: list[str],
    draws: int,
    seed: int,
    advance: Advance,
) -> PathResult:
    import redis

    keys = ClassicKeys(f"carnival:{{t:{activity.tenant_id}}}:a:{activity.id}")
    fallback = activity.fallback_prize_id or ""
    stocked = {p.id for p in activity.prizes if p.stock is not None}
    table = WeightTable(list(activity.prizes), [p.weight for p in activity.prizes])
    client = redis.Redis.from_url(redis_url, max_connections=CLASSIC_THREADS + 2)
    try:
        client.mset({keys.stock(p.id): p.stock for p in activity.prizes if p.stock is not None})
        sha = client.script_load(CLASSIC_LUA)

        def one_range(start: int, count: int, rng: random.Random) -> None:
            n_users = len(users)
            for i in range(start, start + count):
                user = users[i % n_users]
                # The prize is drawn in the app before the call, as those systems do.
                prize = table.pick(rng).id
                client.evalsha(
                    sha,
                    3,
                    keys.stock(prize),
                    keys.users,
                    keys.outcomes,
                    prize,
                    fallback,
                    user,
                    CLASSIC_USER_LIMIT,
                    f"{user}:c{i}",
                    "1" if prize in stocked else "0",
                )
                if (i - start) % 100 == 99:
                    advance(100)

        # Sequential: one app thread, one connection.
        began = time.perf_counter()
        one_range(0, draws, random.Random(seed))
        sequential = time.perf_counter() - began
        advance(draws % 100)

        # Threaded: 8 threads share a connection pool, to be fair to the classic
        # design (its app servers run many request threads).
        shares = [
            draws // CLASSIC_THREADS + (t < draws % CLASSIC_THREADS) for t in range(CLASSIC_THREADS)
        ]
        starts = [draws + sum(shares[:t]) for t in range(CLASSIC_THREADS)]
        began = time.perf_counter()
        with ThreadPoolExecutor(CLASSIC_THREADS, thread_name_prefix="classic") as pool:
            futures = [
                pool.submit(one_range, s, n, random.Random(seed + 1 + t))
                for t, (s, n) in enumerate(zip(starts, shares, strict=True))
            ]
            for future in futures:
                future.result()
        threaded = time.perf_counter() - began
        advance(sum(n % 100 for n in shares))
        recorded = int(client.hlen(keys.outcomes))
    finally:
        client.close()
    best = "sequential" if sequential <= threaded else f"threads_{CLASSIC_THREADS}"
    detail = {
        "sequential_draws_per_s": draws / sequential,
        f"threads_{CLASSIC_THREADS}_draws_per_s": draws / threaded,
        "best": best,
        "recorded": recorded,
    }
    return PathResult("classic", draws, min(sequential, threaded), detail)


# -- orchestration -----------------------------------------------------------------


@contextlib.contextmanager
def _ray_session() -> Iterator[None]:
    """Reuse an initialised Ray (tests), join RAY_ADDRESS, or start one in-process."""
    # Must be set before ray is imported: auth and usage stats are read at import.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        yield  # not ours: the caller shuts it down
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False, namespace=RAY_NAMESPACE)
    else:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=100_000_000,
            namespace=RAY_NAMESPACE,
        )
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _redis_session(redis_url: str | None) -> Iterator[str]:
    """REDIS_URL as given, else an embedded redis-server (AOF, fsync always) we stop."""
    url = redis_url or os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    from carnival.embedded import RedisServer, free_port

    with tempfile.TemporaryDirectory(prefix="carnival-bench-") as tmp:
        server = RedisServer(Path(tmp), free_port())
        server.start(timeout=30)
        try:
            yield server.url
        finally:
            server.stop()


def machine_info(redis_url: str) -> dict[str, Any]:
    import ray
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        server = client.info("server")
        persistence = client.config_get("appendfsync")
    finally:
        client.close()
    return {
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "ray": ray.__version__,
        "redis_server": server.get("redis_version", "?"),
        "appendfsync": persistence.get("appendfsync", "?"),
    }


def _cleanup(redis_url: str, tenant_id: str) -> int:
    """Delete the bench tenant's keys (only ours: the tenant id is fresh per run)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        removed = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"carnival:{{t:{tenant_id}}}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += int(client.unlink(*batch))
                batch = []
        if batch:
            removed += int(client.unlink(*batch))
        return removed
    finally:
        client.close()


def summarise(results: dict[str, PathResult]) -> dict[str, dict[str, Any]]:
    ceiling = results["ceiling"].rate
    classic = results["classic"].rate
    out: dict[str, dict[str, Any]] = {}
    for name in PATHS:
        r = results[name]
        out[name] = {
            "draws": r.draws,
            "seconds": round(r.seconds, 4),
            "draws_per_s": round(r.rate, 1),
            "ratio_to_ceiling": round(r.rate / ceiling, 4) if ceiling else None,
            "ratio_to_classic": round(r.rate / classic, 3) if classic else None,
            "detail": r.detail,
        }
    return out


def run_bench(
    config: BenchConfig,
    *,
    redis_url: str | None = None,
    progress: Progress | None = None,
    keep_data: bool = False,
) -> dict[str, Any]:
    """Run the four paths once and return the report (what `--out` holds)."""
    run_id = f"{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
    tenant_id, activity_id = f"bench-{run_id}", "bench-wheel"
    stock = max(config.draws, config.durable_draws, 2 * config.classic_draws) + 1
    activity = bench_activity(tenant_id, activity_id, stock)
    users = user_ids(config.users)
    lock = threading.Lock()  # the classic threads advance the same task

    def advancer(name: str, total: int) -> Advance:
        if progress is None:
            return lambda _n: None
        task: TaskID = progress.add_task(name, total=total)

        def advance(amount: int) -> None:
            with lock:
                progress.advance(task, amount)

        return advance

    with _redis_session(redis_url) as url, _ray_session():
        results: dict[str, PathResult] = {}
        results["ceiling"] = run_ceiling(
            activity, users, config.draws, config.seed, advancer("ceiling", config.draws)
        )
        results["actor_batch"] = run_actor_batch(
            activity,
            users,
            config.draws,
            config.batch,
            config.seed,
            advancer("actor batch", config.draws),
        )
        results["durable"] = run_durable(
            url,
            activity,
            users,
            config.durable_draws,
            config.batch,
            advancer("durable (ledger)", config.durable_draws),
        )
        results["classic"] = run_classic(
            url,
            activity,
            users,
            config.classic_draws,
            config.seed,
            advancer(f"classic (seq + {CLASSIC_THREADS} threads)", 2 * config.classic_draws),
        )
        machine = machine_info(url)
        removed = 0 if keep_data else _cleanup(url, tenant_id)

    paths = summarise(results)
    actor_ratio = paths["actor_batch"]["ratio_to_ceiling"] or 0.0
    durable_ratio = paths["durable"]["ratio_to_classic"] or 0.0
    return {
        "machine": machine,
        "config": asdict(config),
        "paths": paths,
        "aims": {
            "actor_batch_vs_ceiling": {
                "value": actor_ratio,
                "target": AIM_ACTOR_VS_CEILING,
                "met": actor_ratio >= AIM_ACTOR_VS_CEILING,
            },
            "durable_vs_classic": {
                "value": durable_ratio,
                "target": AIM_DURABLE_VS_CLASSIC,
                "met": durable_ratio >= AIM_DURABLE_VS_CLASSIC,
            },
        },
        "ledger": {
            "tenant_id": tenant_id,
            "activity_id": activity_id,
            "kept": keep_data,
            "keys_removed": removed,
        },
    }


# -- CLI ---------------------------------------------------------------------------


def render(report: dict[str, Any]) -> Table:
    machine = report["machine"]
    table = Table(
        title=(
            f"Carnival draws/s — {machine['nproc']} CPUs, Python {machine['python']}, "
            f"Redis {machine['redis_server']} (appendfsync {machine['appendfsync']})"
        )
    )
    for column in ("path", "draws", "seconds", "draws/s", "× ceiling", "× classic"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for name, row in report["paths"].items():
        label = name
        if name == "classic":
            label = f"classic ({row['detail']['best']})"
        table.add_row(
            label,
            f"{row['draws']:,}",
            f"{row['seconds']:.3f}",
            f"{row['draws_per_s']:,.0f}",
            f"{row['ratio_to_ceiling']:.3f}",
            f"{row['ratio_to_classic']:.1f}",
        )
    return table


@bench_app.command("draws")
def draws_cmd(
    draws: int = typer.Option(1_000_000, min=1, help="draws of the in-memory paths"),
    batch: int = typer.Option(1000, min=1, help="requests per actor call"),
    classic_draws: int = typer.Option(20_000, min=8, help="draws per classic variant"),
    durable_draws: int = typer.Option(200_000, min=1, help="draws of the durable path"),
    users: int = typer.Option(100_000, min=1, help="distinct shoppers"),
    out: Path = typer.Option(Path("bench-draws.json"), help="JSON report"),  # noqa: B008
    keep_data: bool = typer.Option(False, help="keep the bench tenant's keys in Redis"),
) -> None:
    """Draws/s of ceiling, actor batch, durable (ledger) and classic (Lua per request)."""
    config = BenchConfig(
        draws=draws,
        batch=batch,
        classic_draws=classic_draws,
        durable_draws=durable_draws,
        users=users,
    )
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        report = run_bench(config, progress=progress, keep_data=keep_data)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    Console().print(render(report))
    for name, aim in report["aims"].items():
        verdict = "[green]met[/]" if aim["met"] else "[yellow]not met[/]"
        Console().print(f"aim {name} ≥ {aim['target']}: {aim['value']} ({verdict})")
    console.print(f"wrote {out.resolve()}")
