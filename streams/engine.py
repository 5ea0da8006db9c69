"""The process's one ClickHouse client, opened and migrated on first use.

chdb allows one engine per process and one process per data directory, so the
streams worker opens it once and both its agents (writes) and its web views
(reads) share it.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from clickhouse_connect.driver.client import Client

from runtime.settings import get_settings
from streams import clickhouse, migrations

_client: Client | None = None
_client_lock = threading.Lock()


def get_client() -> Client:
    """Open (once) and migrate the process-wide client. Blocking: call in a thread."""
    global _client
    with _client_lock:
        if _client is None:
            client = clickhouse.connect(get_settings().clickhouse_dsn)
            migrations.migrate(client)
            _client = client
        return _client


async def run_ch(fn: Any, *args: Any) -> Any:
    """Run a sync clickhouse call off the event loop.

    chdb is sync-only; its calls are ms-scale but the first open and a cold
    insert take ~100+ ms, enough to delay Kafka heartbeats and web requests.
    The client serialises calls on its handle with its own lock, so calling it
    from worker threads is safe.
    """
    return await asyncio.to_thread(lambda: fn(get_client(), *args))
