"""The `carnival load` and `carnival soak` commands (thin: the work is in
carnival.loadrun and carnival.soak)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Annotated

import httpx
import orjson
import typer
from rich.console import Console

from carnival.loadrun import SCENARIOS, run_load
from carnival.loadsetup import LoadConfig, LoadError

console = Console(stderr=True, width=140)
DEFAULT_API = "http://127.0.0.1:8000"
_DURATION = re.compile(r"^(\d+)(s|m|h)?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``10m``, ``1h`` -> seconds (Locust's -t spelling)."""
    found = _DURATION.match(text.strip())
    if not found or int(found[1]) <= 0:
        raise typer.BadParameter(f"{text!r}: a duration like 60s, 10m or 1h")
    return int(found[1]) * _UNIT_S[found[2] or "s"]


def default_api() -> str:
    """The running stack's api (stack.json of the data directory), else :8000."""
    from carnival.stack import stack_file
    from runtime.settings import get_settings

    path = stack_file(get_settings().data_dir.resolve())
    return orjson.loads(path.read_bytes())["api"] if path.exists() else DEFAULT_API


def default_api_key() -> str:
    """CARNIVAL_API_KEY, else the demo admin key `carnival up` wrote."""
    from carnival.demo import credentials_path
    from runtime.settings import get_settings

    if key := os.environ.get("CARNIVAL_API_KEY"):
        return key
    path = credentials_path(get_settings().data_dir.resolve())
    if not path.exists():
        raise LoadError("no admin key: pass --api-key, set CARNIVAL_API_KEY or run `carnival up`")
    return orjson.loads(path.read_bytes())["admin_api_key"]


def default_out(kind: str) -> Path:
    """<data dir>/load/<kind>-<time>: inside the data directory (ignored by git)."""
    from runtime.settings import get_settings

    return get_settings().data_dir / "load" / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def _print_report(report: dict) -> None:
    locust = report["locust"]
    console.print(
        f"[bold]{report['scenario']}[/]: {report['config']['users']} users, "
        f"{report['config']['duration_s']}s: {locust['requests']:,} requests, "
        f"{locust['failures']:,} failed, {locust['req_per_s']} req/s"
    )
    console.print(f"statuses: {locust['statuses']}")
    console.print(report["reconcile"])
    for note in report["notes"]:
        console.print(f"note: {note}")
    if report["ok"]:
        console.print(
            "[green]closing check passed[/]: no 5xx, no failed request, no oversell, no shopper "
            "over a limit, no budget overspent, ledger == outcome topics == ClickHouse"
        )
    else:
        console.print(f"[red]closing check FAILED ({len(report['failures'])})[/]:")
        for failure in report["failures"]:
            console.print(f"  [red]✗[/] {failure}")


def load_cmd(
    scenario: str = typer.Argument(..., help=f"one of: {', '.join(SCENARIOS)}"),
    users: int = typer.Option(50, min=1, help="concurrent simulated users"),
    spawn_rate: float = typer.Option(10.0, min=0.1, help="users started per second"),
    duration: str = typer.Option("60s", "--time", "-t", help="run time: 60s, 10m, 1h"),
    host: str = typer.Option(None, help="api base URL, loopback only (default: the running stack)"),
    api_key: str = typer.Option(None, help="an admin key of the tenant (default: the demo's)"),
    out: Annotated[
        Path | None, typer.Option(help="reports directory (default: DATA_DIR/load/SCENARIO-TIME)")
    ] = None,
    shoppers: int = typer.Option(0, min=0, help="shopper tokens to mint (0: by scenario)"),
    coupons: int = typer.Option(0, min=0, help="coupons for the tills (0: by scenario)"),
) -> None:
    """Run one Locust scenario headless (flash, wheel, writeoffs, mixed) against a
    running Carnival, then its closing check; exit 1 on any broken invariant."""
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"{scenario!r}: one of {', '.join(SCENARIOS)}")
    config = LoadConfig(scenario, users, spawn_rate, parse_duration(duration), shoppers, coupons)  # type: ignore[arg-type]
    out = out or default_out(scenario)
    try:
        report = run_load(
            config,
            (host or default_api()).rstrip("/"),
            api_key or default_api_key(),
            out,
            lambda msg: console.print(f"[cyan]•[/] {msg}"),
        )
    except LoadError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except httpx.HTTPError as exc:
        console.print(f"[red]the api did not answer: {exc!r}[/]")
        raise typer.Exit(2) from None
    _print_report(report)
    console.print(f"reports: {out}/ (summary.json, {scenario}.html, {scenario}_stats.csv)")
    if not report["ok"]:
        raise typer.Exit(1)


def soak_cmd(
    users: int = typer.Option(1000, min=1, help="concurrent simulated users"),
    spawn_rate: float = typer.Option(50.0, min=0.1, help="users started per second"),
    duration: str = typer.Option("10m", "--time", "-t", help="run time: 90s, 10m, 1h"),
    every: float = typer.Option(10.0, min=1.0, help="seconds between two samples"),
    host: str = typer.Option(
        None, help="a running stack's api, loopback only (default: start an embedded one)"
    ),
    api_key: str = typer.Option(None, help="with --host: an admin key (default: the demo's)"),
    out: Annotated[
        Path | None, typer.Option(help="reports directory (default: DATA_DIR/load/soak-TIME)")
    ] = None,
) -> None:
    """The mixed day with many users for minutes against an embedded stack of its
    own (or --host): throughput, error rate and each process's RSS every 10 s into
    soak.json and soak.png; exit 1 on a 5xx, a broken invariant or memory growing
    without bound."""
    from carnival.soak import SoakConfig, run_soak

    config = SoakConfig(users, spawn_rate, parse_duration(duration), every)
    out = out or default_out("soak")
    try:
        report = run_soak(
            config, out, lambda msg: console.print(f"[cyan]•[/] {msg}"), host, api_key
        )
    except LoadError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except httpx.HTTPError as exc:
        console.print(f"[red]the api did not answer: {exc!r}[/]")
        raise typer.Exit(2) from None
    _print_report(report["load"])
    memory = report["memory"]
    if not memory["judged"]:
        console.print(f"memory: not judged ({memory['why']})")
    for name, p in memory["processes"].items():
        mark = "[red]grows[/]" if p["grows"] else "bounded"
        console.print(
            f"  {name:<34} first {p['first_mb']:>7.1f} MB  middle {p['middle_median_mb']:>7.1f}"
            f"  last {p['last_median_mb']:>7.1f}  max {p['max_mb']:>7.1f}  {mark}"
        )
    t = report["throughput"]
    console.print(
        f"throughput: {t['requests']:,} requests, {t['mean_req_per_s']} req/s on average, "
        f"{t['sampled_req_per_s_min']}–{t['sampled_req_per_s_max']} per sample; "
        f"{t['failed']:,} failed"
    )
    console.print(f"reports: {out}/soak.json, {out}/soak.png")
    if not report["ok"]:
        for failure in report["failures"]:
            console.print(f"  [red]✗[/] {failure}")
        raise typer.Exit(1)
    console.print("[green]soak passed[/]")
