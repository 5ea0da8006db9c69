"""`carnival reconcile --topics`: the ledger's outcome events against the outcome
topics themselves.

ClickHouse is fed from the topics, so a difference that `carnival reconcile`
finds is either on the way into Kafka (the dispatcher never produced an
outcome the ledger committed) or after it (the streams worker). This check
tells the two apart: every outcome event the ledger holds for an activity or a
template must be on its topic, and every event on the topic must be in the
ledger. It reads each topic from the beginning, so it costs a pass over the
topics' retention; points outcomes are not covered (their ledger is per
shopper's request and holds chance top-ups decided by activities too).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from aiokafka import AIOKafkaConsumer, TopicPartition

from domain.topics import CLAIM_OUTCOMES, COUPON_CHANGES, DRAW_OUTCOMES, WRITEOFFS, Topic
from ledger.keys import ActivityKeys, TemplateKeys, TenantKeys

SCAN_COUNT = 2000
# An idle poll this long after the end offsets were reached ends the read.
POLL_MS = 200


@dataclass(frozen=True, slots=True)
class Stream:
    topic: Topic
    kind: str  # "activity" | "template"
    owner_field: str  # the event's field naming its entity
    ledger_key: Callable[[str, str], str]  # (tenant, entity) -> the ledger's outcome hash


STREAMS = (
    Stream(DRAW_OUTCOMES, "activity", "activity_id", lambda t, e: ActivityKeys(t, e).outcomes),
    Stream(CLAIM_OUTCOMES, "template", "template_id", lambda t, e: TemplateKeys(t, e).outcomes),
    Stream(COUPON_CHANGES, "template", "template_id", lambda t, e: TemplateKeys(t, e).changes),
    Stream(WRITEOFFS, "template", "template_id", lambda t, e: TemplateKeys(t, e).writeoffs),
)


@dataclass(frozen=True, slots=True)
class Gap:
    tenant_id: str
    kind: str
    entity_id: str
    topic: str
    ledger: int  # distinct outcome events in the ledger
    on_topic: int  # distinct events of the entity on the topic
    missing: int  # in the ledger, not on the topic
    unknown: int  # on the topic, not in the ledger


async def events_on(bootstrap: str, topic: Topic) -> AsyncIterator[dict[str, Any]]:
    """Every event on ``topic``, from its start to its end as of the call (a
    record carries a batch of events; duplicates are yielded as they stand)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            polled = await consumer.getmany(timeout_ms=POLL_MS)
            for records in polled.values():
                for record in records:
                    for event in orjson.loads(record.value):
                        yield event
    finally:
        await consumer.stop()


async def _read(bootstrap: str, topic: Topic, tenants: set[str], owner_field: str) -> dict:
    """(tenant, entity) -> event ids on the topic, for the tenants asked."""
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    async for event in events_on(bootstrap, topic):
        if event.get("tenant_id") in tenants:
            found[(event["tenant_id"], event[owner_field])].add(event["event_id"])
    return found


def _ledger_ids(client: redis.Redis, key: str) -> set[str]:
    return {orjson.loads(raw)["event_id"] for _, raw in client.hscan_iter(key, count=SCAN_COUNT)}


def audit(client: redis.Redis, bootstrap: str, tenants: Iterable[str]) -> tuple[int, list[Gap]]:
    """(entities compared, gaps) over every activity and template of the tenants."""
    tenants = set(tenants)
    compared, gaps = 0, []
    for stream in STREAMS:
        on_topic = asyncio.run(_read(bootstrap, stream.topic, tenants, stream.owner_field))
        for tenant_id in sorted(tenants):
            keys = TenantKeys(tenant_id)
            index = keys.activities if stream.kind == "activity" else keys.templates
            entities = {m.decode() for m in client.smembers(index)}
            entities |= {e for t, e in on_topic if t == tenant_id}
            for entity_id in sorted(entities):
                compared += 1
                ledger = _ledger_ids(client, stream.ledger_key(tenant_id, entity_id))
                seen = on_topic.get((tenant_id, entity_id), set())
                if ledger != seen:
                    gaps.append(
                        Gap(
                            tenant_id,
                            stream.kind,
                            entity_id,
                            stream.topic.name,
                            len(ledger),
                            len(seen),
                            len(ledger - seen),
                            len(seen - ledger),
                        )
                    )
    return compared, gaps
