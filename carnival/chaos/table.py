"""The chaos table: one row per process killed, printed with rich and written as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

# Columns that must be 0 for the row to pass.
BROKEN = ("lost", "duplicated", "oversold", "over_limit", "overspent", "reconcile", "unexpected")


@dataclass
class Row:
    process: str
    sent: int = 0
    acknowledged: int = 0
    not_acknowledged: int = 0  # no answer while the process was down: nothing asserted
    lost: int = 0
    duplicated: int = 0
    oversold: int = 0
    over_limit: int = 0
    overspent: int = 0
    reconcile: int = 0  # differences: ledger vs ClickHouse, ledger vs outcome topics
    unexpected: int = 0  # answers that are neither a decision, a ticket nor a 503
    recover_s: float | None = None
    killed_pids: list[int] = field(default_factory=list)
    also_restarted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(getattr(self, name) == 0 for name in BROKEN)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def table(rows: list[Row], title: str) -> Table:
    t = Table(title=title)
    for name in (
        "process killed", "sent", "acknowledged", "not ack'd", "lost", "duplicated",
        "oversold", "over limit", "overspent", "reconcile", "unexpected", "recover s", "",
    ):  # fmt: skip
        t.add_column(name, justify="left" if name == "process killed" else "right")
    for r in rows:
        recover = "-" if r.recover_s is None else f"{r.recover_s:.1f}"
        t.add_row(
            r.process,
            *(str(v) for v in (r.sent, r.acknowledged, r.not_acknowledged)),
            *(_mark(getattr(r, name)) for name in BROKEN),
            recover,
            "[green]ok[/]" if r.ok else "[red]FAIL[/]",
        )
    return t


def _mark(value: int) -> str:
    return str(value) if value == 0 else f"[red]{value}[/]"


def write_json(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    body = {**meta, "ok": all(r.ok for r in rows), "rows": [r.as_dict() for r in rows]}
    path.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n")
