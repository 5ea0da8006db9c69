"""decode_batch: bad records and events are skipped, never raised (no poison pills)."""

from __future__ import annotations

import logging

import orjson
import pytest

from domain.events import DrawOutcome, SchemaError
from domain.topics import pack
from streams.decode import Rejected, decode_batch, decode_outcome, decode_record

GOOD = DrawOutcome(
    event_id="u1:r1",
    tenant_id="t1",
    activity_id="a1",
    user_id="u1",
    request_id="r1",
    status="won",
    prize_id="p1",
    prize_name="Prize",
    prize_kind="coupon",
    reason="",
    batch_id="b",
    occurred_at=1_760_000_000_000,
)


def variant(**changes: object) -> dict:
    body = GOOD.to_dict()
    body.update(changes)
    return body


def test_good_event_roundtrips() -> None:
    assert decode_outcome(orjson.loads(GOOD.dumps())) == GOOD
    assert decode_record(pack([GOOD.dumps()])) == [GOOD]
    assert decode_record(bytearray(pack([GOOD.dumps(), GOOD.dumps()]))) == [GOOD, GOOD]


@pytest.mark.parametrize("raw", [b"", b"{not json", b"null", GOOD.dumps(), None, "a str"])
def test_bad_records_are_rejected(raw: object) -> None:
    with pytest.raises(SchemaError):
        decode_record(raw)


@pytest.mark.parametrize(
    "raw",
    [
        1,
        None,
        "a str",
        [1, 2],
        variant(schema_version=2),
        variant(type="draw.requested"),
        variant(status="maybe"),
        variant(occurred_at="2026-01-01"),
        variant(occurred_at=True),
        variant(occurred_at=10**18),
        variant(occurred_at=1.5),
        variant(tenant_id=""),
        variant(tenant_id=7),
        variant(prize_name=None),
        {k: v for k, v in GOOD.to_dict().items() if k != "user_id"},
    ],
)
def test_bad_events_are_rejected(raw: object) -> None:
    with pytest.raises(SchemaError):
        decode_outcome(raw)


def test_batch_skips_bad_and_keeps_order(caplog: pytest.LogCaptureFixture) -> None:
    other = orjson.dumps(variant(event_id="u2:r2", user_id="u2", request_id="r2"))
    bad_event = orjson.dumps(variant(occurred_at="x"))
    with caplog.at_level(logging.WARNING, logger="carnival.streams"):
        rejected: list[Rejected] = []
        out = decode_batch(
            [pack([GOOD.dumps()]), b"junk", pack([bad_event, other])], rejected=rejected
        )
    assert [o.event_id for o in out] == ["u1:r1", "u2:r2"]
    assert len([r for r in caplog.records if "skipping bad" in r.message]) == 2
    # Each rejection as received, with its reason, for the dead-letter topic.
    assert [r.raw for r in rejected] == [b"junk", bad_event]
    assert rejected[0].reason.startswith("bad record: not JSON")
    assert rejected[1].reason.startswith("bad event: occurred_at is not epoch ms")
