"""Migrations: every one reversible and recorded, through `carnival migrate` on
its own chdb directory (one chdb directory per process: each call is a process)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.migrations import SQL_DIR, MigrationError, load

# Prints the schema (every column of every table but the record) as JSON.
_SCHEMA = """
import sys, orjson
from streams import clickhouse
client = clickhouse.connect(sys.argv[1])
rows = client.query(
    "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() "
    "AND table != 'schema_migrations' ORDER BY table, position"
).result_rows
print(orjson.dumps([list(r) for r in rows]).decode())
"""
_EDITED = """
import sys
from pathlib import Path
from streams import clickhouse, migrations
client = clickhouse.connect(sys.argv[1])
try:
    migrations.migrate(client, sql_dir=Path(sys.argv[2]))
except migrations.MigrationError as exc:
    print(exc)
    sys.exit(3)
"""


def _run(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLICKHOUSE_URL": dsn, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "carnival", "migrate", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # the CLI's console writes to stderr
        text=True,
        timeout=120,
    )


def _schema(dsn: str) -> list[list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", _SCHEMA, dsn],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return orjson.loads(out.stdout)


def test_every_migration_reverses_and_is_recorded(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    latest = len(load())
    first = _run(dsn)
    assert first.returncode == 0, first.stdout
    assert first.stdout.count("up 0") == latest
    again = _run(dsn)
    assert "nothing to do" in again.stdout and "up 0" not in again.stdout
    full = _schema(dsn)
    assert {table for table, _, _ in full} >= {"draw_outcomes", "claim_outcomes", "writeoffs"}

    down = _run(dsn, "--to", "0")
    assert down.returncode == 0 and down.stdout.count("down 0") == latest
    assert _schema(dsn) == [], "every down undoes its up"
    assert _run(dsn).stdout.count("up 0") == latest
    assert _schema(dsn) == full, "up after down makes the same schema"

    partial = _run(dsn, "--to", "3")
    assert partial.stdout.count("down 0") == latest - 3
    columns = {(table, name) for table, name, _ in _schema(dsn)}
    assert ("draw_outcomes", "amount") in columns  # 002
    assert ("draw_outcomes", "coupon_id") not in columns  # 004, reversed
    assert ("claim_outcomes", "source") not in columns  # 007, reversed
    status = _run(dsn, "--status")
    assert status.stdout.count("not applied") == latest - 3
    assert _run(dsn, "--to", str(latest + 1)).returncode == 1


def test_an_applied_migration_edited_afterwards_is_refused(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    assert _run(dsn).returncode == 0
    edited = tmp_path / "sql"
    shutil.copytree(SQL_DIR, edited)
    first = edited / "001_draw_outcomes.sql"
    first.write_text(first.read_text() + "\n-- edited\n")
    out = subprocess.run(
        [sys.executable, "-c", _EDITED, dsn, str(edited)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 3, out.stderr
    assert "001_draw_outcomes.sql changed after it was applied" in out.stdout


def test_the_files_must_pair_and_run_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="no reverse"):
        load(tmp_path)
    (tmp_path / "001_a.down.sql").write_text("SELECT 1;")
    (tmp_path / "003_c.sql").write_text("SELECT 1;")
    (tmp_path / "003_c.down.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="expected 002"):
        load(tmp_path)
    (tmp_path / "003_c.sql").rename(tmp_path / "002_c.sql")
    (tmp_path / "003_c.down.sql").rename(tmp_path / "002_c.down.sql")
    assert [m.version for m in load(tmp_path)] == [1, 2]
