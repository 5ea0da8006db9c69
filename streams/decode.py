"""Decode and validate outcome records (draws, claims, coupon changes, write-offs,
points) before they reach ClickHouse.

A record is a JSON array of outcome events (domain/topics.py).

A message that parses but carries wrong types (say occurred_at as a string)
would fail its INSERT forever, and since the agent retries failed inserts to
stay at-least-once, one such poison message would stall the stream. So
everything the insert relies on is checked here, and bad messages are
logged and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any, TypeVar, get_args

import orjson

from domain.claims import ClaimOutcome, ClaimStatus
from domain.coupon_changes import CHANGE_OPS, ChangeStatus, CouponChange
from domain.events import DrawOutcome, Event, OutcomeStatus, SchemaError
from domain.points import MAX_AMOUNT, EntryKind, PointsOutcome
from domain.shares import CHANNELS, SHARE_EVENT_KINDS, ShareEvent
from domain.writeoffs import WRITEOFF_OPS, Writeoff, WriteoffStatus

log = logging.getLogger("carnival.streams")

E = TypeVar("E", bound=Event)

_STATUSES = frozenset(get_args(OutcomeStatus))
_STR_FIELDS = tuple(f.name for f in fields(DrawOutcome) if f.type == "str")
_CLAIM_STATUSES = frozenset(get_args(ClaimStatus))
_CLAIM_STR_FIELDS = tuple(f.name for f in fields(ClaimOutcome) if f.type == "str")
_CLAIM_WINDOW_FIELDS = ("valid_from", "valid_until")
_CHANGE_STATUSES = frozenset(get_args(ChangeStatus))
_CHANGE_STR_FIELDS = tuple(f.name for f in fields(CouponChange) if f.type == "str")
_WRITEOFF_STATUSES = frozenset(get_args(WriteoffStatus))
_WRITEOFF_STR_FIELDS = tuple(f.name for f in fields(Writeoff) if f.type == "str")
_WRITEOFF_CENTS_FIELDS = ("order_cents", "discount_cents")
_POINTS_STATUSES = frozenset(("applied", "rejected"))
_POINTS_STR_FIELDS = tuple(f.name for f in fields(PointsOutcome) if f.type == "str")
_ENTRY_KINDS = frozenset(get_args(EntryKind))
_ENTRY_STR_FIELDS = ("key", "kind", "reason", "source_id")
# Int64 columns: anything beyond would fail its INSERT forever.
_INT64_BOUND = 2**62
# DateTime64(3) range ClickHouse accepts: 1900-01-01 .. 2299-12-31.
_MIN_MS = -2_208_988_800_000
_MAX_MS = 10_413_791_999_999


def decode_outcome(body: Any) -> DrawOutcome:
    """Check one event of a record; raises SchemaError when it is not a valid outcome."""
    o = _typed(body, DrawOutcome, _STR_FIELDS)
    if not o.event_id or not o.tenant_id or not o.activity_id:
        raise SchemaError("event_id, tenant_id and activity_id are required")
    if o.status not in _STATUSES:
        raise SchemaError(f"unknown status {o.status!r}")
    _check_epoch_ms(o.occurred_at)
    _check_int("amount", o.amount)
    _check_int("points_spent", o.points_spent, 0, MAX_AMOUNT)
    _check_int("points_earned", o.points_earned, 0, MAX_AMOUNT)
    return o


def decode_claim(body: Any) -> ClaimOutcome:
    """Check one claim outcome; raises SchemaError when it is not a valid one."""
    o = _typed(body, ClaimOutcome, _CLAIM_STR_FIELDS)
    if not o.event_id or not o.tenant_id or not o.template_id:
        raise SchemaError("event_id, tenant_id and template_id are required")
    if o.status not in _CLAIM_STATUSES:
        raise SchemaError(f"unknown status {o.status!r}")
    _check_epoch_ms(o.occurred_at)
    for name in _CLAIM_WINDOW_FIELDS:
        value = getattr(o, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise SchemaError(f"{name} is not epoch ms: {value!r}")
    _check_int("points_spent", o.points_spent, 0, MAX_AMOUNT)
    return o


def decode_change(body: Any) -> CouponChange:
    """Check one coupon change; raises SchemaError when it is not a valid one."""
    o = _typed(body, CouponChange, _CHANGE_STR_FIELDS)
    if not o.event_id or not o.tenant_id or not o.template_id:
        raise SchemaError("event_id, tenant_id and template_id are required")
    if o.status not in _CHANGE_STATUSES or o.op not in CHANGE_OPS:
        raise SchemaError(f"unknown op or status {o.op!r} / {o.status!r}")
    _check_epoch_ms(o.occurred_at)
    return o


def decode_writeoff(body: Any) -> Writeoff:
    """Check one write-off; raises SchemaError when it is not a valid one."""
    o = _typed(body, Writeoff, _WRITEOFF_STR_FIELDS)
    if not o.event_id or not o.tenant_id or not o.template_id:
        raise SchemaError("event_id, tenant_id and template_id are required")
    if o.status not in _WRITEOFF_STATUSES or o.op not in WRITEOFF_OPS:
        raise SchemaError(f"unknown op or status {o.op!r} / {o.status!r}")
    for name in _WRITEOFF_CENTS_FIELDS:
        _check_int(name, getattr(o, name))
    _check_epoch_ms(o.occurred_at)
    return o


def decode_points(body: Any) -> PointsOutcome:
    """Check one points outcome and every movement it carries; raises SchemaError
    when it is not a valid one (one bad movement rejects its whole outcome, so an
    outcome's movements are stored all or none)."""
    o = _typed(body, PointsOutcome, _POINTS_STR_FIELDS)
    # The user is part of every movement's id.
    if not o.event_id or not o.tenant_id or not o.user_id:
        raise SchemaError("event_id, tenant_id and user_id are required")
    if o.status not in _POINTS_STATUSES:
        raise SchemaError(f"unknown status {o.status!r}")
    _check_epoch_ms(o.occurred_at)
    _check_int("amount", o.amount)
    _check_int("balance", o.balance)
    if not isinstance(o.movements, list):
        raise SchemaError("movements is not a list")
    if o.status == "rejected" and o.movements:
        raise SchemaError("a rejected points outcome moved points")
    for movement in o.movements:
        _check_entry(movement)
    return o


def _check_entry(entry: Any) -> None:
    if not isinstance(entry, dict):
        raise SchemaError(f"a movement is an object, not {type(entry).__name__}")
    for name in _ENTRY_STR_FIELDS:
        if not isinstance(entry.get(name), str):
            raise SchemaError(f"movement {name} is not a string")
    if not entry["key"]:
        raise SchemaError("a movement needs its key")
    if entry["kind"] not in _ENTRY_KINDS:
        raise SchemaError(f"unknown movement kind {entry['kind']!r}")
    _check_int("movement amount", entry.get("amount"))
    _check_int("movement balance", entry.get("balance"))
    _check_epoch_ms(entry.get("at"), "movement at")


def _check_int(name: str, value: Any, low: int = -_INT64_BOUND, high: int = _INT64_BOUND) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SchemaError(f"{name} is not an integer in {low}..{high}: {value!r}")


_SHARE_STR_FIELDS = tuple(f.name for f in fields(ShareEvent) if f.type == "str")


def decode_share(body: Any) -> ShareEvent:
    """Check one share event (click or conversion); raises SchemaError when it is
    not a valid one."""
    o = _typed(body, ShareEvent, _SHARE_STR_FIELDS)
    if not o.event_id or not o.tenant_id or not o.activity_id:
        raise SchemaError("event_id, tenant_id and activity_id are required")
    if o.kind not in SHARE_EVENT_KINDS or o.channel not in CHANNELS:
        raise SchemaError(f"unknown kind or channel {o.kind!r} / {o.channel!r}")
    _check_epoch_ms(o.occurred_at)
    return o


def _typed(body: Any, cls: type[E], str_fields: tuple[str, ...]) -> E:
    """``body`` as a ``cls`` event whose ``str_fields`` are strings, or SchemaError."""
    if not isinstance(body, dict):
        raise SchemaError(f"an event is an object, not {type(body).__name__}")
    o = cls.from_dict(body)
    for name in str_fields:
        if not isinstance(getattr(o, name), str):
            raise SchemaError(f"{name} is not a string")
    return o


def _check_epoch_ms(ts: Any, name: str = "occurred_at") -> None:
    if isinstance(ts, bool) or not isinstance(ts, int) or not _MIN_MS <= ts <= _MAX_MS:
        raise SchemaError(f"{name} is not epoch ms: {ts!r}")


@dataclass(frozen=True, slots=True)
class Rejected:
    """What could not be decoded, as received, and why: the dead-letter topic's."""

    raw: bytes
    reason: str


def _raw(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return orjson.dumps(value, default=repr)


def decode_record(
    raw: Any,
    decode: Callable[[Any], E] = decode_outcome,  # type: ignore[assignment]
    rejected: list[Rejected] | None = None,
) -> list[E]:
    """The valid events of one record (each bad one is logged and, when
    ``rejected`` is given, added to it); raises SchemaError when the record itself
    is not a JSON array."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise SchemaError(f"unexpected value type {type(raw).__name__}")
    try:
        events = orjson.loads(bytes(raw))
    except orjson.JSONDecodeError as exc:
        raise SchemaError(f"not JSON: {exc}") from exc
    if not isinstance(events, list):
        raise SchemaError("a record is a JSON array of events")
    outcomes: list[E] = []
    for body in events:
        try:
            outcomes.append(decode(body))
        except SchemaError as exc:
            log.warning("skipping bad outcome event: %s", exc)
            if rejected is not None:
                rejected.append(Rejected(_raw(body), f"bad event: {exc}"))
    return outcomes


def decode_batch(
    values: Iterable[Any],
    decode: Callable[[Any], E] = decode_outcome,  # type: ignore[assignment]
    rejected: list[Rejected] | None = None,
) -> list[E]:
    """Decode a batch of records; bad records and events are logged, added to
    ``rejected`` when given, and skipped, never raised."""
    outcomes: list[E] = []
    for raw in values:
        try:
            outcomes += decode_record(raw, decode, rejected)
        except SchemaError as exc:
            log.warning("skipping bad outcome record: %s", exc)
            if rejected is not None:
                rejected.append(Rejected(_raw(raw), f"bad record: {exc}"))
    return outcomes
