"""The share stream: decoding, and the figures on an embedded chdb engine with
every event delivered twice (Kafka is at-least-once): each counts once."""

from __future__ import annotations

import uuid

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from domain.events import SchemaError
from domain.shares import ShareEvent
from domain.topics import pack
from streams import clickhouse
from streams.decode import decode_batch, decode_share
from streams.shares_stats import share_stats

AT = 1_760_000_000_000  # 2025-10-09 UTC


def _event(tenant: str, activity: str, kind: str, channel: str, event_id: str) -> ShareEvent:
    user = "bob" if kind == "conversion" else ""
    return ShareEvent(event_id, tenant, activity, kind, "code", "ann", channel, user, AT)


def test_decode_round_trip_and_refusals() -> None:
    event = _event("t", "a", "share_click", "x", "click:1")
    assert decode_batch([pack([event.dumps()])], decode_share) == [event]
    body = orjson.loads(event.dumps())
    for bad in ({"channel": "myspace"}, {"kind": "like"}, {"event_id": ""}, {"code": 7}):
        with pytest.raises(SchemaError):
            decode_share({**body, **bad})


def test_clicks_and_conversions_per_channel_count_once(ch_client: Client) -> None:
    tenant, activity = f"t{uuid.uuid4().hex[:8]}", "wheel"
    events = [
        _event(tenant, activity, "share_click", "x", "click:1"),
        _event(tenant, activity, "share_click", "x", "click:2"),
        _event(tenant, activity, "share_click", "facebook", "click:3"),
        _event(tenant, activity, "conversion", "x", f"conversion:{tenant}:{activity}:bob"),
        _event(tenant, "other", "share_click", "x", "click:4"),
    ]
    clickhouse.insert_shares(ch_client, events)
    clickhouse.insert_shares(ch_client, events)  # the redelivery
    figures = share_stats(ch_client, tenant, activity)
    assert (figures["clicks"], figures["conversions"]) == (3, 1)
    by_channel = {c["channel"]: (c["clicks"], c["conversions"]) for c in figures["channels"]}
    assert by_channel == {"x": (2, 1), "facebook": (1, 0), "tiktok": (0, 0), "copy": (0, 0)}
    assert share_stats(ch_client, "nobody", activity)["clicks"] == 0
