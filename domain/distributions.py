"""Bulk distribution: a coupon template issued to a list of shoppers, once each
(pure, no I/O).

An operator uploads a CSV of user ids (an optional ``user_id`` header, one per
line, up to ``MAX_DISTRIBUTION_LINES``); ``parse_users`` keeps the valid lines
and reports every other with its reason. A job then sends each kept line on
the road as a *grant* for ``user``, request id ``grant_request_id(job)``: the
ledger decides a request key once, so a line sent again after any crash gets
the outcome it already had, and nobody is skipped or served twice.

States: queued -> running -> done | cancelled | failed (a runner that died
leaves ``running``; another takes it over).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from domain.activity import _Frozen
from domain.ids import ID_PATTERN, USER_ID_PATTERN

MAX_DISTRIBUTION_LINES = 1_000_000
HEADER = "user_id"
REJECTED_RAW_MAX_CHARS = 100

DistributionState = Literal["queued", "running", "done", "cancelled", "failed"]
FINISHED: frozenset[DistributionState] = frozenset({"done", "cancelled", "failed"})
LineRejectReason = Literal["empty_line", "invalid_user_id", "duplicate_user", "not_csv"]

_USER = re.compile(USER_ID_PATTERN)


class Distribution(_Frozen):
    id: str = Field(pattern=ID_PATTERN)
    tenant_id: str
    template_id: str
    state: DistributionState = "queued"
    lines: int = Field(ge=0)  # lines read from the upload (the header excluded)
    accepted: int = Field(ge=0)  # lines sent as grants
    done: int = Field(default=0, ge=0)  # accepted lines decided so far, in file order
    issued: int = Field(default=0, ge=0)
    refused: int = Field(default=0, ge=0)  # decided but not issued (sold out, ended...)
    created_by: str
    created_at: int
    finished_at: int | None = None

    @property
    def rejected_lines(self) -> int:
        """Lines in the report: bad input, plus lines refused when issued."""
        return self.lines - self.accepted + self.refused


@dataclass(frozen=True, slots=True)
class LineRejection:
    line: int  # 1-based line number in the upload
    raw: str
    reason: str  # a LineRejectReason, or the claim rejection the actor decided
    message: str


@dataclass(slots=True)
class ParsedUsers:
    accepted: list[tuple[int, str]] = field(default_factory=list)  # (line, user id)
    rejected: list[LineRejection] = field(default_factory=list)
    lines: int = 0


class TooManyLines(ValueError):
    pass


def grant_request_id(job_id: str) -> str:
    """The request id of every grant of a job: with the user, one key per line."""
    return f"grant-{job_id}"


def parse_users(lines: Iterable[str]) -> ParsedUsers:
    """The upload's user ids, each line either kept or rejected with its reason;
    raises TooManyLines past MAX_DISTRIBUTION_LINES."""
    parsed = ParsedUsers()
    seen: dict[str, int] = {}
    for number, row in enumerate(csv.reader(lines), start=1):
        raw = row[0].strip() if row else ""
        if number == 1 and raw.lower() == HEADER:
            continue
        parsed.lines += 1
        if parsed.lines > MAX_DISTRIBUTION_LINES:
            raise TooManyLines(f"at most {MAX_DISTRIBUTION_LINES:,} lines per distribution")
        problem = _problem(raw, row, seen)
        if problem is None:
            seen[raw] = number
            parsed.accepted.append((number, raw))
        else:
            reason, message = problem
            parsed.rejected.append(
                LineRejection(number, raw[:REJECTED_RAW_MAX_CHARS], reason, message)
            )
    return parsed


def _problem(raw: str, row: list[str], seen: dict[str, int]) -> tuple[str, str] | None:
    if not raw:
        return "empty_line", "no user id on this line"
    if len(row) > 1 and any(cell.strip() for cell in row[1:]):
        return "not_csv", "one column only: the user id"
    if not _USER.match(raw):
        return "invalid_user_id", f"a user id matches {USER_ID_PATTERN}"
    if raw in seen:
        return "duplicate_user", f"already on line {seen[raw]}: each shopper gets one coupon"
    return None
