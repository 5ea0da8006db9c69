"""The `carnival` command: run the stack, its services, and small admin chores."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import httpx
import orjson
import typer
from rich.console import Console
from rich.table import Table

from carnival.bench.cli import bench_app
from carnival.codes import codes_app
from carnival.loadcli import load_cmd, soak_cmd
from runtime.settings import get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(bench_app, name="bench")
app.add_typer(codes_app, name="codes")
app.command("load")(load_cmd)
app.command("soak")(soak_cmd)
console = Console(stderr=True)


@app.command()
def up() -> None:
    """Start the embedded stack (Kafka, Redis, Ray, ClickHouse via chdb) and all services."""
    from carnival.embedded import MissingPrerequisite, ProcessFailed
    from carnival.stack import LocalStack

    # SIGTERM (a service manager, `kill`) stops the stack as cleanly as Ctrl-C;
    # otherwise the supervisor would die and leave its children running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    stack = LocalStack(get_settings(), report=lambda msg: console.print(f"[cyan]•[/] {msg}"))
    try:
        s = stack.start()
    except MissingPrerequisite as exc:
        console.print(f"[red]missing prerequisite:[/] {exc}")
        stack.stop()
        raise typer.Exit(1) from None
    except (ProcessFailed, OSError, TimeoutError) as exc:
        console.print(f"[red]start failed:[/] {exc}")
        stack.stop()
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        stack.stop()
        raise typer.Exit(130) from None
    console.print(f"[green]Carnival is up[/]: api http://{s.api_host}:{s.api_port}  (Ctrl-C stops)")
    console.print("  token for a shopper:  carnival token alice")
    console.print("  demo admin API key:   carnival api-key")
    try:
        stack.supervise()
    except KeyboardInterrupt:
        console.print("stopping...")
    finally:
        stack.stop()


def _reachable(address: str) -> bool:
    if address.startswith("chdb://"):
        return Path(address.removeprefix("chdb://")).exists()
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 80), 1):
            return True
    except OSError:
        return False


@app.command()
def status() -> None:
    """Show each component of the running stack and its address."""
    from carnival.stack import stack_file

    path = stack_file(get_settings().data_dir.resolve())
    if not path.exists():
        console.print(f"no stack running from {path.parent} (start it with `carnival up`)")
        raise typer.Exit(1)
    state = orjson.loads(path.read_bytes())
    table = Table("component", "address", "pid", "state")
    for name in ("kafka", "redis", "ray", "clickhouse", "streams", "api", "dispatcher_metrics"):
        address = state[name]
        pid = state["pids"].get(name.removesuffix("_metrics"), "")
        up_ = _reachable(address)
        table.add_row(name, address, str(pid), "[green]up[/]" if up_ else "[red]down[/]")
    Console().print(table)


@app.command()
def api() -> None:
    """Run the HTTP ingress (uvicorn)."""
    from api.app import main

    main(get_settings())


@app.command()
def dispatcher() -> None:
    """Run the Kafka -> Ray dispatcher."""
    from actors.dispatcher import main

    main(get_settings())


@app.command()
def streams() -> None:
    """Run the Faust worker that fills ClickHouse and serves stats queries."""
    import sys

    from streams.__main__ import main

    sys.argv = sys.argv[:1]  # Faust parses argv itself
    main()


@app.command()
def relay() -> None:
    """Run the relay: webhooks to partners, issuances to upstream channels."""
    from relay.app import main

    main(get_settings())


@app.command("upstream-sim")
def upstream_sim(
    port: int = typer.Option(7070, help="port to listen on (loopback)"),
    seed: int = typer.Option(None, help="seed of the fault dice, for a repeatable run"),
) -> None:
    """Run a simulated upstream coupon issuer (channel protocol, injectable faults)."""
    from carnival.upstream_sim import main

    main("127.0.0.1", port, seed)


@app.command()
def migrate(
    to: int = typer.Option(None, help="the version to bring the schema to (default: the latest)"),
    show: bool = typer.Option(False, "--status", help="only list the migrations and their state"),
) -> None:
    """Migrate ClickHouse (CLICKHOUSE_URL, else the embedded chdb, which only one
    process may open: stop the stack first)."""
    from rich.table import Table

    from streams import clickhouse, migrations

    client = clickhouse.connect(get_settings().clickhouse_dsn)
    try:
        if not show:
            steps = migrations.migrate(client, to)
            for step in steps:
                console.print(step)
            if not steps:
                console.print("nothing to do: the schema is at that version")
        table = Table("version", "migration", "state")
        for migration, applied in migrations.status(client):
            state = "[green]applied[/]" if applied else "[yellow]not applied[/]"
            table.add_row(str(migration.version), migration.file, state)
        console.print(table)
    except migrations.MigrationError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    finally:
        client.close()


@app.command("init-topics")
def init_topics() -> None:
    """Create the Kafka topics (idempotent)."""
    from carnival.embedded.kafka import create_topics
    from domain.topics import ALL_TOPICS

    created = asyncio.run(create_topics(get_settings().kafka_bootstrap, ALL_TOPICS))
    console.print(f"created: {', '.join(created) or 'nothing (all exist)'}")


def _redis_url() -> str:
    from carnival.stack import stack_file

    s = get_settings()
    if s.redis_url:
        return s.redis_url
    path = stack_file(s.data_dir.resolve())
    if path.exists():
        return orjson.loads(path.read_bytes())["redis"]
    console.print("REDIS_URL is unset and no stack is running: start it with `carnival up`")
    raise typer.Exit(1)


def _streams_url() -> str:
    from carnival.stack import stack_file

    s = get_settings()
    path = stack_file(s.data_dir.resolve())
    if not s.redis_url and path.exists():
        return orjson.loads(path.read_bytes())["streams"]
    return s.streams_base_url


@app.command()
def reconcile(
    tenant: Annotated[
        list[str] | None, typer.Option(help="only this tenant (repeatable); default: all")
    ] = None,
    wait: float = typer.Option(0.0, help="seconds to keep asking while events may be in flight"),
    topics: bool = typer.Option(
        False, "--topics", help="also compare the ledger's outcome events with the outcome topics"
    ),
) -> None:
    """Compare the Redis ledger with ClickHouse per activity, template, partner and
    the points totals of each tenant (and, with --topics, with the outcome topics);
    exit 1 on any difference."""
    import redis as redis_lib
    from rich.table import Table

    from carnival.reconcile import Reconciler

    client = redis_lib.Redis.from_url(_redis_url())
    checker = Reconciler(client, _streams_url())
    try:
        tenants = tenant or checker.tenants()
        report = checker.run(tenants, wait)
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot read ClickHouse's figures from the streams worker: {exc}[/]")
        raise typer.Exit(2) from exc
    finally:
        checker.close()
        client.close()
    if report.seeded:
        console.print(
            f"left out: {report.seeded} points entries ({report.seeded_points} points) "
            "seeded by tools straight into the ledger, never events"
        )
    if not report.differences:
        console.print(f"[green]ledger and ClickHouse agree on {report.compared} entities[/]")
    else:
        table = Table(
            "tenant", "kind", "entity", "figure", "ledger", "clickhouse", title="differences"
        )
        for d in report.differences:
            table.add_row(
                d.tenant_id, d.kind, d.entity_id, d.figure, str(d.ledger), str(d.clickhouse)
            )
        console.print(table)
        console.print(
            f"[red]{len(report.differences)} differences over {report.compared} entities[/]"
        )
    gaps = topics and _topic_gaps(tenants)
    if report.differences or gaps:
        raise typer.Exit(1)


def _topic_gaps(tenants: list[str]) -> bool:
    """Print the ledger against the outcome topics; True when they differ."""
    import redis as redis_lib
    from rich.table import Table

    from carnival.topic_audit import audit

    client = redis_lib.Redis.from_url(_redis_url())
    try:
        compared, gaps = audit(client, _kafka_bootstrap(), tenants)
    finally:
        client.close()
    if not gaps:
        console.print(f"[green]ledger and the outcome topics agree on {compared} entities[/]")
        return False
    table = Table(
        "tenant", "kind", "entity", "topic", "ledger", "on topic", "missing", "unknown",
        title="ledger against the outcome topics",
    )  # fmt: skip
    for g in gaps:
        table.add_row(
            g.tenant_id, g.kind, g.entity_id, g.topic,
            str(g.ledger), str(g.on_topic), str(g.missing), str(g.unknown),
        )  # fmt: skip
    console.print(table)
    console.print(f"[red]{len(gaps)} entities differ from their topic[/]")
    return True


def _kafka_bootstrap() -> str:
    from carnival.stack import stack_file

    s = get_settings()
    path = stack_file(s.data_dir.resolve())
    if s.kafka_bootstrap:
        return s.kafka_bootstrap
    if path.exists():
        return orjson.loads(path.read_bytes())["kafka"]
    console.print("KAFKA_BOOTSTRAP is unset and no stack is running: start it with `carnival up`")
    raise typer.Exit(1)


@app.command()
def chaos(
    requests_per_phase: int = typer.Option(300, help="mixed requests per phase"),
    users: int = typer.Option(100, help="shoppers per phase"),
    processes: str = typer.Option(
        "all", help="comma-separated, in order: api,dispatcher,actor,streams,redis,kafka (or none)"
    ),
    rate: float = typer.Option(0.0, help="requests per second (0: a phase lasts about 20 s)"),
    out: Annotated[str, typer.Option(help="where to write the table as JSON")] = "chaos.json",
    data_dir: Annotated[
        str | None, typer.Option(help="keep the stack's data here (default: a temp dir)")
    ] = None,
) -> None:
    """Kill each process mid-load on a fresh embedded stack, restart it, drain, and
    check every invariant; print the table, exit 1 on any broken invariant."""
    import time

    from carnival.bench.report import progress_bars
    from carnival.chaos.kill import PROCESSES
    from carnival.chaos.run import ChaosConfig, run_chaos
    from carnival.chaos.table import table, write_json
    from carnival.embedded import MissingPrerequisite, ProcessFailed

    names = PROCESSES if processes == "all" else tuple(p.strip() for p in processes.split(","))
    try:
        config = ChaosConfig(
            names, requests_per_phase, users, rate, Path(data_dir) if data_dir else None
        )
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    began = time.monotonic()
    with progress_bars(console) as progress:
        task = progress.add_task("phases", total=len(names))
        try:
            rows = run_chaos(
                config,
                report=lambda msg: progress.console.print(f"[cyan]•[/] {msg}"),
                advance=lambda: progress.advance(task),
            )
        except (MissingPrerequisite, ProcessFailed, TimeoutError, OSError) as exc:
            console.print(f"[red]chaos run failed:[/] {exc}")
            raise typer.Exit(2) from None
    seconds = round(time.monotonic() - began, 1)
    meta = {"requests_per_phase": requests_per_phase, "users": users, "seconds": seconds}
    write_json(Path(out), rows, {**meta, "rate": config.pace})
    Console().print(table(rows, f"chaos: {requests_per_phase} requests/phase, {users} users"))
    for row in rows:
        for note in row.notes:
            console.print(f"[red]{row.process}:[/] {note}")
    console.print(f"{len(rows)} phases in {seconds}s; wrote {Path(out).resolve()}")
    if not all(row.ok for row in rows):
        raise typer.Exit(1)


@app.command("seed-demo")
def seed_demo_cmd() -> None:
    """Create the demo tenant, admin key and running big wheel (idempotent)."""
    from carnival.demo import seed_demo

    creds = seed_demo(_redis_url(), get_settings().data_dir.resolve())
    console.print(f"demo tenant '{creds['tenant_id']}', activity '{creds['activity_id']}'")


@app.command()
def token(
    user_id: str,
    tenant: str = typer.Option("demo", help="tenant id"),
    ttl: int = typer.Option(86_400, help="lifetime in seconds"),
) -> None:
    """Print a shopper token (what a merchant backend gets from POST /v1/shopper-tokens)."""
    from carnival.demo import shopper_token

    try:
        print(shopper_token(_redis_url(), tenant, user_id, ttl))
    except (LookupError, ValueError) as exc:
        console.print(str(exc))
        raise typer.Exit(1) from None


@app.command("api-key")
def api_key() -> None:
    """Print the demo tenant's admin API key."""
    from carnival.demo import credentials_path

    path = credentials_path(get_settings().data_dir.resolve())
    if not path.exists():
        console.print("no demo credentials yet: run `carnival up` first")
        raise typer.Exit(1)
    print(orjson.loads(path.read_bytes())["admin_api_key"])
