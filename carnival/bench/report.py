"""What every bench command does with its report: a progress bar while it runs,
then the JSON file, the table and each aim's verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from carnival.bench.fixtures import PathResult


def progress_bars(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def paths_table(report: dict[str, Any], title: str, unit: str) -> Table:
    """One row per path: ``unit`` (e.g. "claims") done, seconds, per second, × classic."""
    machine = report["machine"]
    table = Table(
        title=(
            f"{title} — {machine['nproc']} CPUs, Python {machine['python']}, "
            f"Redis {machine['redis_server']} (appendfsync {machine['appendfsync']})"
        )
    )
    for column in ("path", unit, "seconds", f"{unit}/s", "× classic"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for name, row in report["paths"].items():
        label = f"classic ({row['detail']['best']})" if name == "classic" else name
        table.add_row(
            label,
            f"{row[unit]:,}",
            f"{row['seconds']:.3f}",
            f"{row[f'{unit}_per_s']:,.0f}",
            f"{row['ratio_to_classic']:.1f}",
        )
    return table


def publish(report: dict[str, Any], table: Table, out: Path, console: Console) -> None:
    """Write the JSON report, print the table and each aim's verdict."""
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    Console().print(table)
    for name, aim in report["aims"].items():
        verdict = "[green]met[/]" if aim["met"] else "[yellow]not met[/]"
        Console().print(f"aim {name} ≥ {aim['target']}: {aim['value']} ({verdict})")
    console.print(f"wrote {out.resolve()}")


def path_rows(results: dict[str, PathResult], unit: str) -> dict[str, dict[str, Any]]:
    """Each path's row of the report, its rate against the classic path's."""
    classic_rate = results["classic"].rate
    return {
        name: {
            unit: r.draws,
            "seconds": round(r.seconds, 4),
            f"{unit}_per_s": round(r.rate, 1),
            "ratio_to_classic": round(r.rate / classic_rate, 3) if classic_rate else None,
            "detail": r.detail,
        }
        for name, r in results.items()
    }


def aim(value: float, target: float) -> dict[str, Any]:
    return {"value": value, "target": target, "met": value >= target}
