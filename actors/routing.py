"""Step 1 of a dispatch: polled REQUESTS records → one call per (partition, actor).

Pure: records are routed by their Kafka key (the owner key) without being
parsed, and carried to the actor as the bytes they arrived as.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.road import owner_index
from domain.topics import COUNT_HEADER


class Record(Protocol):
    @property
    def key(self) -> bytes | None: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def offset(self) -> int: ...


class Partition(Protocol):
    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


@dataclass(slots=True)
class Call:
    actor: int
    batch_id: str  # topic:partition:offset of the call's first record
    records: list[bytes]
    requests: int = 0


def request_count(record: Record) -> int:
    for name, value in record.headers or ():
        if name == COUNT_HEADER:
            return int(value)
    return 1


def route(
    polled: Mapping[Partition, Sequence[Record]], actor_count: int, max_requests: int
) -> list[Call]:
    """Calls in record order per actor, each of at most ``max_requests`` requests
    (a single record larger than that still makes one call)."""
    calls: list[Call] = []
    for tp, records in polled.items():
        open_calls: dict[int, Call] = {}
        for record in records:
            if record.value is None:  # a tombstone carries no request
                continue
            actor = owner_index(record.key or b"", actor_count)
            count = request_count(record)
            call = open_calls.get(actor)
            if call is None or (call.requests + count > max_requests and call.records):
                call = open_calls[actor] = Call(
                    actor, f"{tp.topic}:{tp.partition}:{record.offset}", []
                )
                calls.append(call)
            call.records.append(record.value)
            call.requests += count
    return calls


def next_offsets(polled: Mapping[Partition, Sequence[Record]]) -> dict[Partition, int]:
    """The offsets to commit once every record of ``polled`` is answered."""
    return {tp: records[-1].offset + 1 for tp, records in polled.items() if records}
