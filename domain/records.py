"""Detail records (seed 002's 发放明细 / 核销明细): the kinds, the filters each
kind takes, and the page cursor. Pure, and shared by the api (which validates a
request) and the streams worker (which turns it into SQL), so a filter that
applies to a kind is written down once.

A cursor is opaque to clients: it encodes the last row of a page, its
(occurred_at ms, event_id), the key records are ordered by (newest first).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Literal, get_args

import orjson

from domain.claims import ClaimStatus
from domain.coupon_changes import ChangeStatus
from domain.events import OutcomeStatus
from domain.writeoffs import WriteoffStatus

Kind = Literal["draws", "claims", "writeoffs", "changes", "points"]
KINDS: tuple[str, ...] = get_args(Kind)
FilterName = Literal["activity_id", "template_id", "partner_id", "user_id", "status"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# A cursor is a few dozen bytes; anything much longer is not one of ours.
MAX_CURSOR_CHARS = 256
# Times are epoch ms within what DateTime64(3) holds (to 2299-12-31): outside it
# ClickHouse refuses the query, which would be a 503 instead of a 400.
MAX_MS = 10_413_791_999_999
# Raw events are kept this long after they occurred (sql/011_raw_ttl.sql): detail
# records, the overview and the funnels read them, so their windows start no
# earlier than this before now.
RAW_RETENTION_MS = 90 * 86_400_000
# On the api -> streams hop the filters travel beside Visibility.params(), which
# already uses activity_id / template_id for the scope: filters get a prefix.
PARAM_PREFIX = "where_"


@dataclass(frozen=True, slots=True)
class KindSpec:
    filters: frozenset[str]  # the FilterName values that apply
    statuses: frozenset[str]  # the values of status (empty: no status filter)


SPECS: dict[str, KindSpec] = {
    "draws": KindSpec(
        frozenset({"activity_id", "user_id", "status"}), frozenset(get_args(OutcomeStatus))
    ),
    "claims": KindSpec(
        frozenset({"template_id", "user_id", "status"}), frozenset(get_args(ClaimStatus))
    ),
    "writeoffs": KindSpec(
        frozenset({"template_id", "partner_id", "user_id", "status"}),
        frozenset(get_args(WriteoffStatus)),
    ),
    "changes": KindSpec(
        frozenset({"template_id", "user_id", "status"}), frozenset(get_args(ChangeStatus))
    ),
    # Points belong to the tenant's accounts, not to an activity or a template.
    "points": KindSpec(frozenset({"user_id"}), frozenset()),
}


class RecordsError(ValueError):
    """A request the records cannot answer; ``code`` is the api's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Filters:
    """What a records request asks for; None: not filtered. Times are epoch ms of
    occurred_at, ``since`` inclusive, ``until`` exclusive."""

    since: int | None = None
    until: int | None = None
    activity_id: str | None = None
    template_id: str | None = None
    partner_id: str | None = None
    user_id: str | None = None
    status: str | None = None

    def given(self) -> dict[str, str]:
        """The entity and status filters that are set, by name."""
        names = ("activity_id", "template_id", "partner_id", "user_id", "status")
        return {n: v for n in names if (v := getattr(self, n)) is not None}

    def check(self, kind: str) -> None:
        """Raise RecordsError unless every filter set applies to ``kind``."""
        spec = SPECS.get(kind)
        if spec is None:
            raise RecordsError(
                "unknown_record_kind", f"no record kind '{kind}'; one of {', '.join(KINDS)}"
            )
        for name in self.given():
            if name not in spec.filters:
                raise RecordsError(
                    "filter_not_applicable",
                    f"{kind} records have no {name}; filters that apply: "
                    f"since, until, {', '.join(sorted(spec.filters))}",
                )
        if self.status is not None and self.status not in spec.statuses:
            raise RecordsError(
                "invalid_status",
                f"status of {kind} records is one of {', '.join(sorted(spec.statuses))}",
            )
        for name, at in (("since", self.since), ("until", self.until)):
            if at is not None and not 0 <= at <= MAX_MS:
                raise RecordsError("invalid_time_range", f"{name} is epoch ms from 0 to {MAX_MS}")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise RecordsError("invalid_time_range", "since must be before until")

    def params(self) -> list[tuple[str, str]]:
        """Query parameters of the api -> streams hop."""
        return [
            (PARAM_PREFIX + f.name, str(v))
            for f in fields(self)
            if (v := getattr(self, f.name)) is not None
        ]

    @classmethod
    def from_params(cls, query: Mapping[str, str] | Sequence[tuple[str, str]]) -> Filters:
        """The inverse of ``params`` (other parameters are ignored); raises
        RecordsError on a time that is not an integer."""
        pairs: Iterable[tuple[str, str]] = query.items() if isinstance(query, Mapping) else query
        values: dict[str, str | int] = {}
        names = {f.name for f in fields(cls)}
        for key, value in pairs:
            name = key.removeprefix(PARAM_PREFIX)
            if key.startswith(PARAM_PREFIX) and name in names:
                values[name] = value
        for name in ("since", "until"):
            if name in values:
                try:
                    values[name] = int(values[name])
                except ValueError as exc:
                    raise RecordsError("invalid_time_range", f"{name} is epoch ms") from exc
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Cursor:
    """The last row of a page: the next page starts strictly after (older than) it."""

    occurred_at: int
    event_id: str

    def encode(self) -> str:
        raw = orjson.dumps([self.occurred_at, self.event_id])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises RecordsError ``invalid_cursor`` on anything encode did not make."""
        try:
            if len(text) > MAX_CURSOR_CHARS:
                raise ValueError("too long")
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            at, event_id = orjson.loads(raw)
            if type(at) is not int or not 0 <= at <= MAX_MS:
                raise ValueError("not a time")
            if not isinstance(event_id, str) or not event_id:
                raise ValueError("not a cursor")
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
            raise RecordsError(
                "invalid_cursor", "the cursor is not one a records page returned"
            ) from exc
        return cls(at, event_id)
