"""The Faust worker: draw, claim, coupon change, write-off and points events -> ClickHouse, plus
the stats web views.

Data flow step 4. The worker is the one process that opens ClickHouse (chdb
allows one process per data directory), so it also serves the read side over
its own web server; the api proxies /internal/stats to it.

Delivery: at-least-once. ``stream.take`` acks a batch only after the agent
body returns, and Faust commits acked offsets only, so a batch is committed
after its INSERT succeeded. A crash replays uncommitted events; the table and
the queries dedupe by event_id.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import faust
import orjson
from clickhouse_connect.driver.client import Client
from faust.web import Request, Response, View

from domain.events import Event
from domain.topics import (
    CLAIM_OUTCOMES,
    COUPON_CHANGES,
    DEAD_LETTERS,
    DRAW_OUTCOMES,
    POINTS_OUTCOMES,
    WRITEOFFS,
)
from runtime.settings import get_settings
from streams import clickhouse, migrations, stats
from streams.decode import (
    Rejected,
    decode_batch,
    decode_change,
    decode_claim,
    decode_outcome,
    decode_points,
    decode_writeoff,
)

log = logging.getLogger("carnival.streams")

settings = get_settings()

# Batch bounds: 1000 rows or 500 ms, whichever first. Each INSERT makes a part that
# chdb merges in the background: at 100 ms the merges cost the streams process a
# fifth of a core under load. Half a second keeps event -> visible under the 1 s target.
BATCH_MAX = 1000
BATCH_WITHIN_S = 0.5
# Backoff between retries of a failed INSERT (the batch is never dropped).
RETRY_DELAYS_S = (0.1, 0.2, 0.5, 1.0, 2.0)

# Faust creates its datadir without parents; the data dir may be brand new.
STREAMS_DATADIR = settings.data_dir / "streams"
STREAMS_DATADIR.mkdir(parents=True, exist_ok=True)

app = faust.App(
    settings.streams_app_id,
    # aiokafka with batched fetches (streams/transport.py), registered in pyproject.toml
    broker=f"batchedkafka://{settings.kafka_bootstrap or '127.0.0.1:9092'}",
    store="memory://",
    # Faust otherwise writes "<id>-data" into the current directory.
    datadir=str(STREAMS_DATADIR),
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

# Raw bytes: we parse with DrawOutcome.loads so one bad message is logged and
# skipped instead of crashing the agent in a Faust deserializer.
draw_outcomes_topic = app.topic(
    DRAW_OUTCOMES.name,
    partitions=DRAW_OUTCOMES.partitions,
    key_serializer="raw",
    value_serializer="raw",
)
claim_outcomes_topic = app.topic(
    CLAIM_OUTCOMES.name,
    partitions=CLAIM_OUTCOMES.partitions,
    key_serializer="raw",
    value_serializer="raw",
)
coupon_changes_topic = app.topic(
    COUPON_CHANGES.name,
    partitions=COUPON_CHANGES.partitions,
    key_serializer="raw",
    value_serializer="raw",
)
writeoffs_topic = app.topic(
    WRITEOFFS.name,
    partitions=WRITEOFFS.partitions,
    key_serializer="raw",
    value_serializer="raw",
)
points_outcomes_topic = app.topic(
    POINTS_OUTCOMES.name,
    partitions=POINTS_OUTCOMES.partitions,
    key_serializer="raw",
    value_serializer="raw",
)
dead_letters_topic = app.topic(
    DEAD_LETTERS.name,
    partitions=DEAD_LETTERS.partitions,
    key_serializer="raw",
    value_serializer="raw",
)

# --- the ClickHouse client: opened once per process --------------------------

_client: Client | None = None
_client_lock = threading.Lock()


def get_client() -> Client:
    """Open (once) and migrate the process-wide client. Blocking: call in a thread."""
    global _client
    with _client_lock:
        if _client is None:
            client = clickhouse.connect(settings.clickhouse_dsn)
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


# --- the agent ----------------------------------------------------------------


async def write_batch(
    events: Sequence[Event], insert: Callable[[Client, Sequence[Any]], int]
) -> None:
    """INSERT a batch, retrying until it succeeds.

    ``take`` acks the batch when this returns *or raises* (its ``finally``),
    so giving up would lose the batch: we retry instead, which stalls the
    stream (back-pressure) while ClickHouse is down. If the worker is being
    stopped mid-write, we let the write finish; if it cannot, we exit without
    committing so Kafka redelivers.
    """
    attempt = 0
    while True:
        task = asyncio.ensure_future(run_ch(insert, events))
        try:
            await asyncio.shield(task)
            return
        except asyncio.CancelledError:
            try:
                await task  # shutdown: finish this write before the acks run
            except Exception:
                log.critical("insert failed during shutdown; exiting without commit")
                os._exit(70)
            raise
        except Exception:
            delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
            log.exception("insert of %d events failed; retry in %.1fs", len(events), delay)
            attempt += 1
            await asyncio.sleep(delay)


async def dead_letter(source: str, rejected: Sequence[Rejected]) -> None:
    """Send what a batch could not decode to the dead-letter topic, and wait until
    the broker has it: the batch's offsets are committed after this returns."""
    sent = [
        await dead_letters_topic.send(
            key=source.encode(),
            value=orjson.dumps(
                {
                    "topic": source,
                    "reason": r.reason,
                    "raw": r.raw.decode("utf-8", "replace"),
                    "at": int(time.time() * 1000),
                }
            ),
        )
        for r in rejected
    ]
    await asyncio.gather(*sent)


async def store(
    stream: faust.StreamT,
    source: str,
    decode: Callable[[Any], Any],
    insert: Callable[[Client, Sequence[Any]], int],
) -> None:
    """One stream's agent body: batches decoded, what cannot be decoded to the
    dead-letter topic, the rest inserted; the batch is acked after both."""
    async for values in stream.take(BATCH_MAX, within=BATCH_WITHIN_S):
        rejected: list[Rejected] = []
        events = decode_batch(values, decode, rejected)
        if rejected:
            await dead_letter(source, rejected)
        if events:
            await write_batch(events, insert)


@app.agent(draw_outcomes_topic)
async def store_draw_outcomes(stream: faust.StreamT) -> None:
    await store(stream, DRAW_OUTCOMES.name, decode_outcome, clickhouse.insert_outcomes)


@app.agent(claim_outcomes_topic)
async def store_claim_outcomes(stream: faust.StreamT) -> None:
    await store(stream, CLAIM_OUTCOMES.name, decode_claim, clickhouse.insert_claims)


@app.agent(coupon_changes_topic)
async def store_coupon_changes(stream: faust.StreamT) -> None:
    await store(stream, COUPON_CHANGES.name, decode_change, clickhouse.insert_changes)


@app.agent(writeoffs_topic)
async def store_writeoffs(stream: faust.StreamT) -> None:
    await store(stream, WRITEOFFS.name, decode_writeoff, clickhouse.insert_writeoffs)


@app.agent(points_outcomes_topic)
async def store_points_outcomes(stream: faust.StreamT) -> None:
    await store(stream, POINTS_OUTCOMES.name, decode_points, clickhouse.insert_points)


@app.task
async def open_clickhouse_at_startup() -> None:
    # Open and migrate before the first batch or request arrives; fail loudly
    # in the log (the health view reports 503) rather than at first insert.
    try:
        await asyncio.to_thread(get_client)
    except Exception:
        log.exception("cannot open ClickHouse at %s", settings.clickhouse_dsn)


# --- web views (served by the Faust worker's web server) ---------------------


def _json(view: View, body: Any, status: int = 200) -> Response:
    return view.bytes(orjson.dumps(body), content_type="application/json", status=status)


def _tenant(request: Request) -> str | None:
    tenant_id = request.query.get("tenant_id", "")
    return tenant_id or None


@app.page("/internal/health")
class Health(View):
    async def get(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            ok = await run_ch(clickhouse.ping)
        except Exception:  # the client could not even be opened
            log.exception("cannot open ClickHouse")
            ok = False
        ms = round((time.perf_counter() - started) * 1000, 2)
        return _json(self, {"ok": ok, "ms": ms}, 200 if ok else 503)


@app.page("/internal/stats/activities/{activity_id}")
class ActivityStats(View):
    async def get(self, request: Request, activity_id: str) -> Response:
        tenant_id = _tenant(request)
        if tenant_id is None:
            return _json(self, {"error": "tenant_id_required"}, 400)
        try:
            body = await run_ch(stats.activity_stats, tenant_id, activity_id)
        except Exception:
            log.exception("activity stats query failed")
            return _json(self, {"error": "clickhouse_unavailable"}, 503)
        return _json(self, body)


@app.page("/internal/stats/templates/{template_id}")
class TemplateStats(View):
    async def get(self, request: Request, template_id: str) -> Response:
        tenant_id = _tenant(request)
        if tenant_id is None:
            return _json(self, {"error": "tenant_id_required"}, 400)
        try:
            body = await run_ch(stats.template_stats, tenant_id, template_id)
        except Exception:
            log.exception("template stats query failed")
            return _json(self, {"error": "clickhouse_unavailable"}, 503)
        return _json(self, body)


@app.page("/internal/stats/points")
class PointsStats(View):
    async def get(self, request: Request) -> Response:
        tenant_id = _tenant(request)
        if tenant_id is None:
            return _json(self, {"error": "tenant_id_required"}, 400)
        try:
            body = await run_ch(stats.points_stats, tenant_id)
        except Exception:
            log.exception("points stats query failed")
            return _json(self, {"error": "clickhouse_unavailable"}, 503)
        return _json(self, body)


@app.page("/internal/count")
class Count(View):
    async def get(self, request: Request) -> Response:
        tenant_id = _tenant(request)
        if tenant_id is None:
            return _json(self, {"error": "tenant_id_required"}, 400)
        try:
            count = await run_ch(stats.tenant_event_count, tenant_id)
        except Exception:
            log.exception("count query failed")
            return _json(self, {"error": "clickhouse_unavailable"}, 503)
        return _json(self, {"tenant_id": tenant_id, "count": count})
