"""Kafka topics: names, partition counts and message keys, defined once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key_doc: str


# Requests are keyed by the owning entity so one dispatcher sees an activity's
# requests in order and the actor that owns its pool gets them in one batch.
DRAW_REQUESTS = Topic("carnival.draw.requests", 6, "activity_id")
# Replies are keyed by the api instance waiting for them (request-reply).
DRAW_REPLIES = Topic("carnival.draw.replies", 3, "api instance id")
# Outcome events, the stream Faust aggregates into ClickHouse.
DRAW_OUTCOMES = Topic("carnival.draw.outcomes", 6, "activity_id")

ALL_TOPICS: tuple[Topic, ...] = (DRAW_REQUESTS, DRAW_REPLIES, DRAW_OUTCOMES)


def message_key(value: str) -> bytes:
    return value.encode()
