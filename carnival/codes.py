"""`carnival codes`: coupon code batches through the HTTP API of a running stack.

The api and key default to the stack `carnival up` runs from this data directory
and its demo admin key (`carnival api-key`); `--api` / `--api-key` (or
CARNIVAL_API_URL / CARNIVAL_API_KEY) name any other.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from runtime.settings import get_settings

codes_app = typer.Typer(no_args_is_help=True, help="Coupon code batches: generate, import, export.")
console = Console(stderr=True)

BATCHES = "/v1/admin/code-batches"
POLL_EVERY_S = 0.5
HTTP_TIMEOUT_S = 30.0
# An import is stored in the request: a million lines take a while.
IMPORT_TIMEOUT_S = 600.0
REPORT_ROWS = 100
FINISHED = frozenset({"done", "failed", "cancelled"})

ApiUrl = typer.Option(None, "--api", envvar="CARNIVAL_API_URL", help="api base URL")
ApiKey = typer.Option(None, "--api-key", envvar="CARNIVAL_API_KEY", help="operator API key")


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]{message}[/]")
    return typer.Exit(1)


def _stack_state(path: Path, option: str) -> Any:
    if not path.exists():
        raise _fail(f"{path} is missing: start the stack with `carnival up`, or pass {option}")
    return orjson.loads(path.read_bytes())


@contextmanager
def _api(
    api: str | None, api_key: str | None, timeout: float = HTTP_TIMEOUT_S
) -> Iterator[httpx.Client]:
    from carnival.demo import credentials_path
    from carnival.stack import stack_file

    data_dir = get_settings().data_dir.resolve()
    url = api or _stack_state(stack_file(data_dir), "--api")["api"]
    key = api_key or _stack_state(credentials_path(data_dir), "--api-key")["admin_api_key"]
    with httpx.Client(base_url=url, headers={"X-Api-Key": key}, timeout=timeout) as client:
        try:
            yield client
        except httpx.TransportError as exc:
            raise _fail(f"the api at {url} did not answer ({exc}); is the stack up?") from None


def _ok(reply: httpx.Response) -> Any:
    """The reply's JSON, or exit with the API's error code and message."""
    if reply.is_success:
        return reply.json()
    try:
        error = reply.json()["error"]
    except (ValueError, KeyError):
        raise _fail(f"HTTP {reply.status_code}: {reply.text[:500]}") from None
    raise _fail(f"{error['code']}: {error['message']}")


@codes_app.command()
def generate(
    template: str = typer.Option(..., "--template", help="coupon template id"),
    count: int = typer.Option(..., "--count", help="codes to generate (up to 1,000,000)"),
    prefix: str = typer.Option("", help="A-Z, 0-9 and '-', at most 16"),
    length: int = typer.Option(12, help="length of the random part"),
    charset: str = typer.Option("safe", help="safe (no 0, 1, I, L, O) | digits | alphanumeric"),
    check_char: bool = typer.Option(True, help="append a check character"),
    api: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Generate a batch as a job in the api, with a progress bar; prints the batch id."""
    body = {
        "template_id": template,
        "count": count,
        "pattern": {
            "prefix": prefix,
            "length": length,
            "charset": charset,
            "check_char": check_char,
        },
    }
    with _api(api, api_key) as client:
        batch = _ok(client.post(BATCHES, json=body))
        console.print(f"batch [bold]{batch['id']}[/] queued: {batch['status_url']}")
        try:
            batch = _follow(client, batch)
        except KeyboardInterrupt:
            console.print(f"the job goes on in the api: carnival codes status {batch['id']}")
            raise typer.Exit(130) from None
    print(batch["id"])
    if batch["state"] != "done":
        raise _fail(f"batch {batch['id']} {batch['state']}: {batch['error'] or 'see its status'}")


def _follow(client: httpx.Client, batch: dict[str, Any]) -> dict[str, Any]:
    """Poll the batch's status until its job finishes, drawing its progress."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(batch["state"], total=batch["count"])
        while batch["state"] not in FINISHED:
            time.sleep(POLL_EVERY_S)
            batch = _ok(client.get(batch["status_url"]))
            progress.update(bar, completed=batch["done"], description=batch["state"])
    return batch


@codes_app.command()
def status(batch_id: str, api: str | None = ApiUrl, api_key: str | None = ApiKey) -> None:
    """Show a batch and its job's progress."""
    with _api(api, api_key) as client:
        batch = _ok(client.get(f"{BATCHES}/{batch_id}"))
    table = Table("field", "value")
    for name in ("id", "template_id", "source", "state", "done", "count", "error", "rejected"):
        table.add_row(name, str(batch[name]))
    Console().print(table)


@codes_app.command()
def cancel(batch_id: str, api: str | None = ApiUrl, api_key: str | None = ApiKey) -> None:
    """Stop a batch's job; the codes it stored stay."""
    with _api(api, api_key) as client:
        batch = _ok(client.post(f"{BATCHES}/{batch_id}/cancel"))
    console.print(f"batch {batch_id} cancelled after {batch['done']:,} of {batch['count']:,} codes")


@codes_app.command()
def export(batch_id: str, api: str | None = ApiUrl, api_key: str | None = ApiKey) -> None:
    """Write a batch's codes as CSV (code,state,user_id,coupon_id) to stdout."""
    with _api(api, api_key) as client, client.stream("GET", f"{BATCHES}/{batch_id}/export") as r:
        if not r.is_success:
            r.read()
            _ok(r)
        for chunk in r.iter_bytes():
            sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


@codes_app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV, codes in column 1")
    ],
    template: str = typer.Option(..., "--template", help="coupon template id"),
    as_json: bool = typer.Option(False, "--json", help="print the whole report as JSON"),
    api: str | None = ApiUrl,
    api_key: str | None = ApiKey,
) -> None:
    """Import external codes from a CSV file as a new batch; prints the report."""
    with _api(api, api_key, IMPORT_TIMEOUT_S) as client:
        report = _ok(
            client.post(
                f"{BATCHES}/import",
                params={"template_id": template},
                content=file.read_bytes(),
                headers={"Content-Type": "text/csv"},
            )
        )
    if as_json:
        print(orjson.dumps(report).decode())
        return
    rejected = report["rejected"]
    console.print(
        f"batch [bold]{report['batch']['id']}[/]: {report['accepted']:,} imported, "
        f"{len(rejected):,} rejected"
    )
    if rejected:
        table = Table("line", "reason", "message", "raw")
        for r in rejected[:REPORT_ROWS]:
            table.add_row(str(r["line"]), r["reason"], r["message"], r["raw"])
        Console().print(table)
        if len(rejected) > REPORT_ROWS:
            console.print(f"... and {len(rejected) - REPORT_ROWS:,} more (--json prints all)")
