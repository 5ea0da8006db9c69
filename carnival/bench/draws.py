"""`carnival bench draws`: draws/s of four decision paths, measured in one run.

1. ceiling      - `PoolState.decide` in a plain in-process loop (no I/O at all).
2. actor batch  - the same loop inside a Ray actor, one call per batch.
3. durable      - the real path: `OwnerActor.decide_batch` + one Lua commit per batch
                  to the Redis ledger (AOF, appendfsync always).
4. classic      - the per-request Redis-Lua design of big-market / seckill systems:
                  one EVALSHA per draw (stock DECR, per-user counter, outcome).

The numbers are only comparable within one run on one machine, so every path
runs in the same process against the same Redis, and the JSON records the machine.
Heavy modules (ray, redis, actors) are imported inside the functions so that
registering this sub-command keeps every other `carnival` command fast.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    Progress,
)
from rich.table import Table

from carnival.bench.classic import CLASSIC_THREADS, run_classic
from carnival.bench.durable import run_durable
from carnival.bench.fixtures import BenchConfig, PathResult, advancers, bench_activity, user_ids
from carnival.bench.memory import run_actor_batch, run_ceiling
from carnival.bench.report import progress_bars, publish
from carnival.bench.sessions import cleanup, machine_info, ray_session, redis_session

PATHS = ("ceiling", "actor_batch", "durable", "classic")
AIM_ACTOR_VS_CEILING = 0.5
AIM_DURABLE_VS_CLASSIC = 10.0


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

    advancer = advancers(progress)

    with redis_session(redis_url) as url, ray_session():
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
        removed = 0 if keep_data else cleanup(url, tenant_id)

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
    with progress_bars(console) as progress:
        report = run_bench(config, progress=progress, keep_data=keep_data)
    publish(report, render(report), out, console)
