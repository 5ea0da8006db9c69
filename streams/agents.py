"""The agents: one per outcome topic, each storing its events in ClickHouse.

Delivery: at-least-once. ``stream.take`` acks a batch only after the agent
body returns, and Faust commits acked offsets only, so a batch is committed
after its INSERT succeeded. A crash replays uncommitted events; the tables and
the queries dedupe by event_id.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import faust
import orjson
from clickhouse_connect.driver.client import Client

from domain.events import Event
from domain.topics import (
    CLAIM_OUTCOMES,
    COUPON_CHANGES,
    DEAD_LETTERS,
    DRAW_OUTCOMES,
    POINTS_OUTCOMES,
    SHARES,
    WRITEOFFS,
    Topic,
)
from streams import clickhouse
from streams.decode import (
    Rejected,
    decode_batch,
    decode_change,
    decode_claim,
    decode_outcome,
    decode_points,
    decode_share,
    decode_writeoff,
)
from streams.engine import run_ch

log = logging.getLogger("carnival.streams")

# Batch bounds: 1000 rows or 500 ms, whichever first. Each INSERT makes a part that
# chdb merges in the background: at 100 ms the merges cost the streams process a
# fifth of a core under load. Half a second keeps event -> visible under the 1 s target.
BATCH_MAX = 1000
BATCH_WITHIN_S = 0.5
# Backoff between retries of a failed INSERT (the batch is never dropped).
RETRY_DELAYS_S = (0.1, 0.2, 0.5, 1.0, 2.0)

# topic -> (decode one raw value, insert a batch of decoded events)
STREAMS: tuple[tuple[Topic, Callable[[Any], Any], Callable[[Client, Sequence[Any]], int]], ...] = (
    (DRAW_OUTCOMES, decode_outcome, clickhouse.insert_outcomes),
    (CLAIM_OUTCOMES, decode_claim, clickhouse.insert_claims),
    (COUPON_CHANGES, decode_change, clickhouse.insert_changes),
    (WRITEOFFS, decode_writeoff, clickhouse.insert_writeoffs),
    (POINTS_OUTCOMES, decode_points, clickhouse.insert_points),
    (SHARES, decode_share, clickhouse.insert_shares),
)


def raw_topic(app: faust.App, topic: Topic) -> faust.TopicT:
    # Raw bytes: the decoders parse, so one bad message goes to the dead-letter
    # topic instead of crashing the agent in a Faust deserializer.
    return app.topic(
        topic.name, partitions=topic.partitions, key_serializer="raw", value_serializer="raw"
    )


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


async def dead_letter(
    dead_letters: faust.TopicT, source: str, rejected: Sequence[Rejected]
) -> None:
    """Send what a batch could not decode to the dead-letter topic, and wait until
    the broker has it: the batch's offsets are committed after this returns."""
    sent = [
        await dead_letters.send(
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


def register(app: faust.App) -> None:
    """One agent per stream of STREAMS: batches decoded, what cannot be decoded to
    the dead-letter topic, the rest inserted; the batch is acked after both."""
    dead_letters = raw_topic(app, DEAD_LETTERS)
    for topic, decode, insert in STREAMS:

        async def store(
            stream: faust.StreamT,
            source: str = topic.name,
            decode: Callable[[Any], Any] = decode,
            insert: Callable[[Client, Sequence[Any]], int] = insert,
        ) -> None:
            async for values in stream.take(BATCH_MAX, within=BATCH_WITHIN_S):
                rejected: list[Rejected] = []
                events = decode_batch(values, decode, rejected)
                if rejected:
                    await dead_letter(dead_letters, source, rejected)
                if events:
                    await write_batch(events, insert)

        # Named for the topic: Faust names an agent (and its group member) by it.
        app.agent(raw_topic(app, topic), name=f"store-{topic.name}")(store)
