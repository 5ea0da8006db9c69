"""ClickHouse access for the streams stage: connect and insert (migrations:
streams/migrations.py).

One module for both backends: ``chdb:///abs/path`` (embedded engine, in this
process) and ``http(s)://...`` (a real server). clickhouse-connect picks the
backend from the DSN scheme, so callers never branch on it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from domain.claims import ClaimOutcome
from domain.coupon_changes import CouponChange
from domain.events import DrawOutcome
from domain.points import PointsOutcome
from domain.shares import ShareEvent
from domain.writeoffs import Writeoff
from streams import movements

log = logging.getLogger(__name__)

DRAW_OUTCOMES_TABLE = "draw_outcomes"
CLAIM_OUTCOMES_TABLE = "claim_outcomes"
COUPON_CHANGES_TABLE = "coupon_changes"
WRITEOFFS_TABLE = "writeoffs"
POINTS_TABLE = "points_movements"
SHARE_EVENTS_TABLE = "share_events"
# Points a draw or a claim moved are rows of points_movements, not columns here:
# the movements table is the one place points are summed.
_POINTS_FIELDS = frozenset(("points_spent", "points_earned"))
# One column per event field, in field order; ingested_at is left to its DEFAULT.
OUTCOME_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in fields(DrawOutcome) if f.name not in _POINTS_FIELDS
)
CLAIM_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in fields(ClaimOutcome) if f.name not in _POINTS_FIELDS
)
CHANGE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(CouponChange))
WRITEOFF_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Writeoff))
SHARE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ShareEvent))


def connect(dsn: str) -> Client:
    """Open a client. For chdb the DSN must be ``chdb:///absolute/path``.

    chdb allows one engine (data directory) per process, and only one process
    may open a directory: call this once per process and share the client.
    """
    if dsn.startswith("chdb:"):
        # Create the data directory up front: a missing parent is a confusing
        # engine error, and the path is ours (under CARNIVAL_DATA_DIR).
        path = dsn.removeprefix("chdb://").split("?", 1)[0]
        if path.startswith("/"):
            Path(path).mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(dsn=dsn)


def _row(event: object, columns: tuple[str, ...]) -> list[Any]:
    row = [getattr(event, name) for name in columns]
    # Epoch ms -> aware UTC datetime; DateTime64(3) keeps the millis.
    at = columns.index("occurred_at")
    row[at] = datetime.fromtimestamp(row[at] / 1000, tz=UTC)
    return row


def _insert(client: Client, table: str, columns: tuple[str, ...], events: Sequence[object]) -> int:
    """Insert a batch in one column-oriented INSERT; returns rows written.

    Duplicates (same event_id) are fine: the table dedupes them.
    """
    if not events:
        return 0
    data = [list(col) for col in zip(*(_row(e, columns) for e in events), strict=True)]
    client.insert(table, data, column_names=list(columns), column_oriented=True)
    return len(events)


def insert_outcomes(client: Client, outcomes: Sequence[DrawOutcome]) -> int:
    """The outcomes, then the points they moved. Not atomic: a failed second INSERT
    fails the call, the batch is retried whole, and the first one's rows dedupe."""
    written = _insert(client, DRAW_OUTCOMES_TABLE, OUTCOME_COLUMNS, outcomes)
    insert_movements(client, movements.flatten(outcomes))
    return written


def insert_claims(client: Client, claims: Sequence[ClaimOutcome]) -> int:
    """The claims, then the points exchanges spent (not atomic: as insert_outcomes)."""
    written = _insert(client, CLAIM_OUTCOMES_TABLE, CLAIM_COLUMNS, claims)
    insert_movements(client, movements.flatten(claims))
    return written


def insert_changes(client: Client, changes: Sequence[CouponChange]) -> int:
    return _insert(client, COUPON_CHANGES_TABLE, CHANGE_COLUMNS, changes)


def insert_writeoffs(client: Client, writeoffs: Sequence[Writeoff]) -> int:
    return _insert(client, WRITEOFFS_TABLE, WRITEOFF_COLUMNS, writeoffs)


def insert_points(client: Client, outcomes: Sequence[PointsOutcome]) -> int:
    """The movements of a batch of points outcomes; returns outcomes taken (a
    rejected one writes no row)."""
    insert_movements(client, movements.flatten(outcomes))
    return len(outcomes)


def insert_shares(client: Client, events: Sequence[ShareEvent]) -> int:
    return _insert(client, SHARE_EVENTS_TABLE, SHARE_COLUMNS, events)


def insert_movements(client: Client, rows: Sequence[movements.Movement]) -> int:
    return _insert(client, POINTS_TABLE, movements.COLUMNS, rows)


def ping(client: Client) -> bool:
    """True when ``SELECT 1`` answers; never raises."""
    try:
        return client.command("SELECT 1") == 1
    except Exception:
        log.warning("clickhouse ping failed", exc_info=True)
        return False
