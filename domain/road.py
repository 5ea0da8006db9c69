"""The road every request takes: its envelope, its kinds, and how it is keyed.

A request (a draw, a claim; redemptions and exchanges next) is accepted by
the api, travels on REQUESTS keyed by its *owner* (the entity whose counters it
touches: an activity's pool, a coupon template), is decided in a batch by the
one actor that owns that entity, and comes back as an outcome event on the
kind's outcome topic and, when an api instance waits for it, on REPLIES.

A new kind is: a ``Kind`` here (its owner and outcome topic), its decision and
ledger commit in the actor (``actors/kinds``), and its route in the api.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple

from domain.events import Event, now_ms
from domain.topics import (
    CLAIM_OUTCOMES,
    COUPON_CHANGES,
    DRAW_OUTCOMES,
    POINTS_OUTCOMES,
    WRITEOFFS,
    Topic,
)

KindName = Literal["draw", "claim", "coupon", "writeoff", "points", "quota"]


@dataclass(frozen=True, slots=True)
class Kind:
    name: KindName
    owner: str  # what owns the counters a request of this kind touches
    outcomes: Topic  # where its outcome events go


DRAW = Kind("draw", "activity", DRAW_OUTCOMES)
CLAIM = Kind("claim", "template", CLAIM_OUTCOMES)
# Changes to a coupon already issued (void, expire): the template's owner decides
# them too, so one actor orders everything that happens to a template's coupons.
COUPON = Kind("coupon", "template", COUPON_CHANGES)
# A partner's redemption: it spends the template's redemption count and budget.
WRITEOFF = Kind("writeoff", "template", WRITEOFFS)
# A points movement of the points kind (sign-in, order rebate, refund, adjustment,
# expiry): it touches one shopper's account, owned by the account's shard.
POINTS = Kind("points", "accounts", POINTS_OUTCOMES)
# Chances added to a shopper's quota account in an activity (bought with points or
# granted): they raise the pool's limits, so the activity's pool decides them.
QUOTA = Kind("quota", "activity", POINTS_OUTCOMES)
KINDS: dict[str, Kind] = {k.name: k for k in (DRAW, CLAIM, COUPON, WRITEOFF, POINTS, QUOTA)}


# One request inside a REQUESTS record: [user_id, request_id, reply_id, body].
# reply_id is the waiter's number in the api instance named by the record's
# reply_to (0: nobody waits); body is what the kind needs beyond the envelope.
Row = tuple[str, str, int, dict[str, Any] | None]


class Request(NamedTuple):
    """A request as the actor decides it: a row and the api instance that waits."""

    key: str  # the ledger key: request_key(user_id, request_id)
    user_id: str
    request_id: str
    reply_id: int
    body: dict[str, Any] | None
    reply_to: str


@dataclass(frozen=True, slots=True)
class RequestRecord(Event):
    """One REQUESTS record: requests of one kind for one owner, from one api instance.

    The envelope is written once per record and each request is a short row, so
    neither the api nor the actor spends a JSON object per request.
    """

    TYPE: ClassVar[str] = "requests"

    kind: str
    tenant_id: str
    owner_id: str
    reply_to: str  # api instance id; "" when nobody waits
    rows: list[Row]
    occurred_at: int = field(default_factory=now_ms)


def owner_key(kind: Kind, tenant_id: str, owner_id: str) -> str:
    """The Kafka key of a request: one owner, one partition, one actor."""
    return f"{kind.owner}/{tenant_id}/{owner_id}"


def owner_index(key: bytes, actor_count: int) -> int:
    """The actor that owns an owner key; stable across processes and restarts."""
    return zlib.crc32(key) % actor_count


def reply_entry(reply_id: int, outcome: bytes) -> bytes:
    """One element of a REPLIES record: ``[reply_id, outcome event]``."""
    return b"[%d,%s]" % (reply_id, outcome)


@dataclass(slots=True)
class BatchResult:
    """What an actor hands back for one batch, grouped the way it is produced:
    outcome events per (kind, owner id) and reply entries per api instance."""

    outcomes: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)
    replies: dict[str, list[bytes]] = field(default_factory=dict)
    decided: int = 0  # requests answered (duplicates included)
