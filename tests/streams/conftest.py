"""The one embedded ClickHouse of the streams tests: chdb allows one data
directory per process, so every module shares this session's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from streams import clickhouse, migrations


@pytest.fixture(scope="session")
def ch_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    path: Path = tmp_path_factory.mktemp("chdb") / "clickhouse"
    client = clickhouse.connect(f"chdb://{path}")
    migrations.migrate(client)
    # The tests' events happened on fixed days in 2025: keep them, although the
    # raw tables drop events older than 90 days (sql/011_raw_ttl.sql;
    # tests/streams/test_rollups.py shows that expiry itself).
    client.command("SYSTEM STOP TTL MERGES")
    yield client
    client.close()
