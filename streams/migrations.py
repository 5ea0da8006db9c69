"""ClickHouse schema migrations: ordered files in ``sql/``, each with its
reverse, recorded in a table, applied at start-up by the process that owns
ClickHouse (the streams worker) and by ``carnival migrate``.

``sql/NNN_name.sql`` moves the schema forward, ``sql/NNN_name.down.sql`` back;
versions run 1, 2, 3 ... without gaps. Both hold DDL only, each statement
idempotent (``IF [NOT] EXISTS``): a process killed between a statement and its
record applies it again harmlessly.

The record, ``schema_migrations``, is append-only (ClickHouse has no cheap
row update): one row per step taken, up or down, and a version's state is its
latest row. An applied migration whose file changed since is refused at
start-up (`MigrationError`): the schema it made is not the one the file says.
The same statements run on chdb and on a ClickHouse server.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

# sql/ is a data folder at the repo root, next to this package.
SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
TABLE = "schema_migrations"
_FILE = re.compile(r"(?P<version>\d{3})_(?P<name>[a-z0-9_]+)\.sql")
_LINE_COMMENT = re.compile(r"--[^\n]*")

Direction = Literal["up", "down"]


class MigrationError(RuntimeError):
    """The migration files or the record do not make sense together."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    up: str
    down: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.up.encode()).hexdigest()

    @property
    def file(self) -> str:
        return f"{self.version:03d}_{self.name}.sql"


def split_statements(sql: str) -> list[str]:
    """Split a migration file on ``;`` after dropping ``--`` line comments.

    Migrations hold DDL only (no string literals with ``;`` or ``--``), which
    is what makes this naive split safe.
    """
    text = _LINE_COMMENT.sub("", sql)
    return [stmt.strip() for stmt in text.split(";") if stmt.strip()]


def load(sql_dir: Path = SQL_DIR) -> list[Migration]:
    """Every migration, in order; raises `MigrationError` on a gap, a duplicate
    version or an up without its down."""
    found: list[Migration] = []
    for path in sorted(sql_dir.glob("[0-9][0-9][0-9]_*.sql")):
        match = _FILE.fullmatch(path.name)
        if match is None:
            continue  # NNN_name.down.sql, read with its up
        down = path.with_name(f"{path.stem}.down.sql")
        if not down.exists():
            raise MigrationError(f"{path.name} has no reverse: write {down.name}")
        version = int(match["version"])
        found.append(Migration(version, match["name"], path.read_text(), down.read_text()))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"{migration.file}: versions must run 1, 2, 3 ... without gaps or "
                f"duplicates; expected {expected:03d}"
            )
    return found


def _ensure_table(client: Client) -> None:
    client.command(
        f"CREATE TABLE IF NOT EXISTS {TABLE} ("
        " version UInt32, name String, checksum String,"
        " direction LowCardinality(String), seq UInt64,"
        " at DateTime64(3, 'UTC') DEFAULT now64(3)"
        ") ENGINE = MergeTree ORDER BY (version, seq)"
    )


def applied(client: Client) -> dict[int, str]:
    """Version -> checksum of every migration whose latest step was up."""
    _ensure_table(client)
    latest = "argMax(direction, seq), argMax(checksum, seq)"
    rows = client.query(f"SELECT version, {latest} FROM {TABLE} GROUP BY version").result_rows
    return {int(version): checksum for version, direction, checksum in rows if direction == "up"}


def _step(client: Client, migration: Migration, direction: Direction) -> None:
    for statement in split_statements(migration.up if direction == "up" else migration.down):
        client.command(statement)
    client.insert(
        TABLE,
        [[migration.version, migration.name, migration.checksum, direction, time.time_ns()]],
        column_names=["version", "name", "checksum", "direction", "seq"],
    )
    log.info("migration %s: %s", direction, migration.file)


def migrate(client: Client, to: int | None = None, sql_dir: Path = SQL_DIR) -> list[str]:
    """Bring the schema to version ``to`` (default: the latest): apply what is
    missing in order, then reverse what is above ``to`` newest first. Returns the
    steps taken (``"up 003_claim_outcomes.sql"``), empty when there was nothing to do."""
    migrations = load(sql_dir)
    target = len(migrations) if to is None else to
    if not 0 <= target <= len(migrations):
        raise MigrationError(f"no version {to}: the migrations run 0..{len(migrations)}")
    done = applied(client)
    for migration in migrations:
        recorded = done.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(
                f"{migration.file} changed after it was applied; add a new migration "
                "instead of editing an applied one"
            )
    steps: list[str] = []
    for migration in migrations:
        if migration.version <= target and migration.version not in done:
            _step(client, migration, "up")
            steps.append(f"up {migration.file}")
    for migration in reversed(migrations):
        if migration.version > target and migration.version in done:
            _step(client, migration, "down")
            steps.append(f"down {migration.file}")
    return steps


def status(client: Client, sql_dir: Path = SQL_DIR) -> list[tuple[Migration, bool]]:
    """Each migration and whether it is applied."""
    done = applied(client)
    return [(m, m.version in done) for m in load(sql_dir)]
