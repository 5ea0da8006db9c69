"""Step 3 of a dispatch: an actor's BatchResult → the records to produce.

Pure: outcome events go to their kind's outcome topic, one record per owner
(keyed by the owner id, chunked), and replies go to REPLIES, one record per
waiting api instance (keyed by its id, chunked).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.road import KINDS, BatchResult
from domain.topics import REPLIES, pack

# Messages per produced record: ~300 bytes each keeps a record well under
# Kafka's default 1 MB message limit.
MESSAGES_PER_RECORD = 1000


@dataclass(frozen=True, slots=True)
class Send:
    topic: str
    key: bytes
    value: bytes


def fan_out(result: BatchResult) -> list[Send]:
    sends: list[Send] = []
    for (kind, owner), events in result.outcomes.items():
        sends += _chunks(KINDS[kind].outcomes.name, owner.encode(), events)
    for reply_to, entries in result.replies.items():
        sends += _chunks(REPLIES.name, reply_to.encode(), entries)
    return sends


def _chunks(topic: str, key: bytes, messages: list[bytes]) -> list[Send]:
    return [
        Send(topic, key, pack(messages[i : i + MESSAGES_PER_RECORD]))
        for i in range(0, len(messages), MESSAGES_PER_RECORD)
    ]
