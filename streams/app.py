"""The Faust worker: draw, claim, coupon change, write-off and points events -> ClickHouse, plus
the stats web views.

Data flow step 4. ``create_app`` builds the app from the settings; the agents
(``streams.agents``) write, the views (``streams.views``) read, and both share
the process's one ClickHouse client (``streams.engine``).
"""

from __future__ import annotations

import asyncio
import logging

import faust

from runtime.settings import Settings, get_settings
from streams import agents, record_views, report_views, share_views, views
from streams.engine import get_client

log = logging.getLogger("carnival.streams")


def create_app(settings: Settings | None = None) -> faust.App:
    settings = settings or get_settings()
    # Faust creates its datadir without parents; the data dir may be brand new.
    datadir = settings.data_dir / "streams"
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.streams_app_id,
        # aiokafka with batched fetches (streams/transport.py), registered in pyproject.toml
        broker=f"batchedkafka://{settings.kafka_bootstrap or '127.0.0.1:9092'}",
        store="memory://",
        # Faust otherwise writes "<id>-data" into the current directory.
        datadir=str(datadir),
        web_host=settings.streams_host,
        web_port=settings.streams_port,
        web_bind=settings.streams_host,
        # No leader election topic: this app has no leader-only tasks.
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        # After a SIGKILL the dead member holds its partitions until the session
        # times out (Faust default 60 s): keep that short so a restarted worker
        # resumes within ~10 s. Heartbeats run on the loop, which chdb never blocks
        # (its calls go to threads), so a short timeout is safe.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        # No Faust tables, no changelogs: nothing to recover on rebalance.
        table_standby_replicas=0,
    )
    agents.register(app)
    views.register(app)
    report_views.register(app)
    record_views.register(app)
    share_views.register(app)

    @app.task
    async def open_clickhouse_at_startup() -> None:
        # Open and migrate before the first batch or request arrives; fail loudly
        # in the log (the health view reports 503) rather than at first insert.
        try:
            await asyncio.to_thread(get_client)
        except Exception:
            log.exception("cannot open ClickHouse at %s", settings.clickhouse_dsn)

    return app
