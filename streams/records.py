"""Detail records over ClickHouse: pages with a cursor, and a CSV export in
chunks. Pure functions of a clickhouse-connect client (chdb or a server alike).

Order and pages. Records come newest first by (occurred_at, event_id), a key
no two rows share, and a page continues strictly after the cursor's key
(keyset pagination): no OFFSET to skip over, and a row inserted while a client
walks the pages never shifts the next page (a newer one is simply not in this
walk; a late one older than the cursor is met once, in its place).

Duplicates. Events are at-least-once, so a table may hold an event twice until a
merge. Every read is ``FROM <table> FINAL``: the copies of an event share the
ReplacingMergeTree sorting key (tenant, entity, event_id: all fixed by the
event), so FINAL collapses them exactly, and the WHERE, the ORDER BY and the
LIMIT apply to one row per event, which lets ClickHouse keep only the top
``limit`` rows while it sorts. ``LIMIT 1 BY event_id`` would dedupe too, but it
sits between the sort and the LIMIT, so the whole filtered set is sorted and
every event id seen is held. (The copies are the same event: whatever columns
a WHERE reads hold the same values in each, so filtering before or after the
collapse gives the same rows.)

The export. A CSV of a million rows is read in chunks of ``CHUNK_ROWS``, one
keyset query each, never one streaming query for the whole export. Measured on
chdb with 1,000,000 write-offs (112-164 MB of CSV), from an RSS of ~300 MB
after opening the engine: ``raw_stream`` in CSVWithNames is materialised whole
(peak +940 MB: the chdb backend streams only formats without a header); in CSV
it streams, but the engine's sort of the whole result costs +356 MB and, worse,
the client's one chdb handle stays locked for the whole download, so every
insert of the worker waits for a slow client. Chunks release the handle between
queries and read a ClickHouse server the same way. Their size sets the peak:
the engine keeps a top-``limit`` of whole rows per thread while it sorts, so
50,000-row chunks cost +284 MB and 10,000-row chunks +61 MB, with the whole
export ~5 s either way (~0.05 s a chunk).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

from domain.records import Cursor, Filters, RecordsError
from domain.visibility import Visibility
from streams import scoping

CHUNK_ROWS = 10_000
# NULL (a claim's open-ended validity) as an empty CSV field, as spreadsheets expect.
_CSV_SETTINGS = "SETTINGS format_csv_null_representation = ''"


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    # Output columns in order; occurred_at (first) is given as epoch ms.
    columns: tuple[str, ...]
    # The column that places a row in an institution (streams.scoping.condition).
    activity_column: str = ""
    template_column: str = ""


TABLES: dict[str, Table] = {
    "draws": Table(
        "draw_outcomes",
        (
            "occurred_at", "event_id", "activity_id", "user_id", "request_id", "status",
            "reason", "prize_id", "prize_name", "prize_kind", "amount", "coupon_id",
            "coupon_template",
        ),
        activity_column="activity_id",
    ),
    "claims": Table(
        "claim_outcomes",
        (
            "occurred_at", "event_id", "template_id", "user_id", "request_id", "status",
            "reason", "source", "coupon_id", "valid_from", "valid_until",
        ),
        template_column="template_id",
    ),
    "writeoffs": Table(
        "writeoffs",
        (
            "occurred_at", "event_id", "template_id", "partner_id", "coupon_id", "user_id",
            "request_id", "op", "status", "reason", "detail", "order_id", "order_cents",
            "discount_cents",
        ),
        template_column="template_id",
    ),
    "changes": Table(
        "coupon_changes",
        (
            "occurred_at", "event_id", "template_id", "coupon_id", "user_id", "request_id",
            "op", "status", "reason", "note",
        ),
        template_column="template_id",
    ),
    "points": Table(
        "points_movements",
        (
            "occurred_at", "event_id", "user_id", "kind", "amount", "balance", "reason",
            "source_id", "origin", "outcome_id",
        ),
    ),
}  # fmt: skip


def _ordered(
    table: Table, view: Visibility, filters: Filters, after: Cursor | None, limit: int
) -> tuple[str, dict[str, Any]]:
    """The newest ``limit`` rows after ``after`` as a subquery, and its parameters.
    Filter values are bound parameters, never SQL text."""
    try:
        where = [scoping.condition(view, table.activity_column, table.template_column)]
    except ValueError as exc:  # points: the tenant's, not an institution's
        raise RecordsError(
            "scope_is_institution", "these records belong to the whole tenant"
        ) from exc
    params: dict[str, Any] = {**scoping.parameters(view), "limit": limit}
    if filters.since is not None:
        where.append("occurred_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')")
        params["since"] = filters.since
    if filters.until is not None:
        where.append("occurred_at < fromUnixTimestamp64Milli({until:Int64}, 'UTC')")
        params["until"] = filters.until
    for name, value in filters.given().items():  # every filter name is a column name
        where.append(f"{name} = {{where_{name}:String}}")
        params[f"where_{name}"] = value
    if after is not None:
        where.append(
            "(occurred_at, event_id) < "
            "(fromUnixTimestamp64Milli({after_at:Int64}, 'UTC'), {after_id:String})"
        )
        params["after_at"], params["after_id"] = after.occurred_at, after.event_id
    sql = (
        f"SELECT {', '.join(table.columns)} FROM {table.name} FINAL "
        f"WHERE {' AND '.join(where)} "
        "ORDER BY occurred_at DESC, event_id DESC LIMIT {limit:UInt32}"
    )
    return sql, params


def _outer(table: Table) -> str:
    """The output columns over the subquery: occurred_at as epoch ms."""
    return ", ".join(
        "toUnixTimestamp64Milli(occurred_at)" if c == "occurred_at" else c for c in table.columns
    )


def _table(kind: str, filters: Filters) -> Table:
    filters.check(kind)
    return TABLES[kind]


def page(
    client: Client,
    view: Visibility,
    kind: str,
    filters: Filters,
    cursor: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """One page of ``kind`` records the view may see, newest first: ``rows`` (one
    dict per event, columns as TABLES names them, times in epoch ms) and
    ``next_cursor`` (None on the last page). Raises RecordsError on a filter
    that does not apply to the kind or a cursor that is not one of ours."""
    table = _table(kind, filters)
    after = Cursor.decode(cursor) if cursor is not None else None
    # One row more than asked: whether another page follows, without a count.
    inner, params = _ordered(table, view, filters, after, limit + 1)
    result = client.query(f"SELECT {_outer(table)} FROM ({inner})", parameters=params)
    rows = [dict(zip(table.columns, row, strict=True)) for row in result.result_rows]
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return {
        "kind": kind,
        "rows": rows,
        "next_cursor": Cursor(last["occurred_at"], last["event_id"]).encode()
        if more and last
        else None,
    }


def csv_header(kind: str) -> bytes:
    return (",".join(TABLES[kind].columns) + "\n").encode()


def csv_chunk(
    client: Client,
    view: Visibility,
    kind: str,
    filters: Filters,
    after: Cursor | None = None,
    size: int = CHUNK_ROWS,
) -> tuple[bytes, Cursor | None]:
    """Up to ``size`` rows after ``after`` as CSV lines (no header), and the key
    to continue from (None when this chunk was the last). ClickHouse formats the
    lines (formatRow), so Python only joins them."""
    table = _table(kind, filters)
    inner, params = _ordered(table, view, filters, after, size)
    sql = (
        "SELECT toUnixTimestamp64Milli(occurred_at), event_id, "
        f"formatRow('CSV', {_outer(table)}) AS line FROM ({inner}) {_CSV_SETTINGS}"
    )
    result = client.query(sql, parameters=params, column_formats={"line": "bytes"})
    at, ids, lines = result.result_columns if result.row_count else ([], [], [])
    if len(lines) < size:
        return b"".join(lines), None
    return b"".join(lines), Cursor(int(at[-1]), ids[-1])


def export(
    client: Client, view: Visibility, kind: str, filters: Filters, size: int = CHUNK_ROWS
) -> Iterator[bytes]:
    """The whole CSV (header first), one chunk of at most ``size`` rows at a time."""
    _table(kind, filters)  # a bad request fails before the header is out
    yield csv_header(kind)
    after: Cursor | None = None
    while True:
        chunk, after = csv_chunk(client, view, kind, filters, after, size)
        if chunk:
            yield chunk
        if after is None:
            return
