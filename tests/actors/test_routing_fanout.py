"""The dispatcher's pure steps: routing polled records to calls, fanning results out."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from actors.fanout import MESSAGES_PER_RECORD, fan_out
from actors.routing import next_offsets, route
from domain.road import DRAW, BatchResult, owner_index, owner_key
from domain.topics import COUNT_HEADER, DRAW_OUTCOMES, REPLIES


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass(frozen=True)
class Rec:
    key: bytes | None
    value: bytes | None
    offset: int
    headers: tuple[tuple[str, bytes], ...] = field(default=())


def rec(owner: str, offset: int, count: int = 1) -> Rec:
    key = owner_key(DRAW, "t", owner).encode()
    return Rec(key, f"[{owner}]".encode(), offset, ((COUNT_HEADER, str(count).encode()),))


def _owners_for_two_actors() -> tuple[str, str]:
    """Two owners that land on different actors out of two."""
    by_actor: dict[int, str] = {}
    n = 0
    while len(by_actor) < 2:
        owner = f"a{n}"
        by_actor.setdefault(owner_index(owner_key(DRAW, "t", owner).encode(), 2), owner)
        n += 1
    return by_actor[0], by_actor[1]


def test_one_call_per_partition_and_actor_with_its_first_offset() -> None:
    zero, one = _owners_for_two_actors()
    polled = {
        TP("req", 0): [rec(zero, 10), rec(one, 11), rec(zero, 12)],
        TP("req", 3): [rec(one, 7)],
    }
    calls = route(polled, actor_count=2, max_requests=1000)
    got = {(c.actor, c.batch_id): (c.records, c.requests) for c in calls}
    assert got == {
        (0, "req:0:10"): ([f"[{zero}]".encode()] * 2, 2),
        (1, "req:0:11"): ([f"[{one}]".encode()], 1),
        (1, "req:3:7"): ([f"[{one}]".encode()], 1),
    }
    assert next_offsets(polled) == {TP("req", 0): 13, TP("req", 3): 8}


def test_calls_are_split_by_request_count_not_records() -> None:
    polled = {TP("req", 1): [rec("a", 1, 400), rec("a", 2, 400), rec("a", 3, 400), rec("a", 4, 5)]}
    calls = route(polled, actor_count=1, max_requests=1000)
    assert [(c.batch_id, c.requests) for c in calls] == [("req:1:1", 800), ("req:1:3", 405)]
    # A record larger than the limit still travels, alone.
    big = route({TP("req", 1): [rec("a", 9, 5000)]}, actor_count=1, max_requests=1000)
    assert [c.requests for c in big] == [5000]


def test_tombstones_are_skipped_and_missing_count_means_one() -> None:
    polled = {TP("req", 0): [Rec(b"k", None, 1), Rec(b"k", b"[x]", 2)]}
    (call,) = route(polled, actor_count=3, max_requests=10)
    assert call.records == [b"[x]"] and call.requests == 1 and call.batch_id == "req:0:2"


def test_fan_out_one_record_per_owner_and_per_waiting_api() -> None:
    result = BatchResult(
        outcomes={("draw", "a1"): [b'{"e":1}', b'{"e":2}'], ("draw", "a2"): [b'{"e":3}']},
        replies={"api-1": [b'[1,{"e":1}]'], "api-2": [b'[7,{"e":2}]', b'[8,{"e":3}]']},
    )
    sends = {(s.topic, s.key): orjson.loads(s.value) for s in fan_out(result)}
    assert sends == {
        (DRAW_OUTCOMES.name, b"a1"): [{"e": 1}, {"e": 2}],
        (DRAW_OUTCOMES.name, b"a2"): [{"e": 3}],
        (REPLIES.name, b"api-1"): [[1, {"e": 1}]],
        (REPLIES.name, b"api-2"): [[7, {"e": 2}], [8, {"e": 3}]],
    }


def test_fan_out_chunks_big_groups() -> None:
    events = [b'{"e":%d}' % i for i in range(MESSAGES_PER_RECORD * 2 + 1)]
    sends = fan_out(BatchResult(outcomes={("draw", "a"): events}))
    assert [len(orjson.loads(s.value)) for s in sends] == [MESSAGES_PER_RECORD] * 2 + [1]
    assert [e for s in sends for e in orjson.loads(s.value)] == [orjson.loads(e) for e in events]
