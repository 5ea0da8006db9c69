"""Offset-cursor pages over a newest-first index (an outbox's group), optionally
filtered: what the delivery log and the issuance list share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from api.errors import ApiError

T = TypeVar("T")

# Index entries read to fill one filtered page, at most, in pages' worth.
SCAN_PAGES = 10


def offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 9:
        raise ApiError(400, "bad_cursor", "cursor must be a next_cursor this endpoint returned")
    return int(cursor)


async def filtered(
    read: Callable[[int, int], Awaitable[list[T]]],
    keep: Callable[[T], bool] | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[T], str | None]:
    """Up to ``limit`` items that ``keep`` accepts (all when None), from the
    cursor on, reading at most `SCAN_PAGES` pages' worth; and the next cursor
    (None at the end). ``read(offset, count)`` reads the index."""
    start = offset(cursor)
    found: list[T] = []
    taken = 0
    while len(found) < limit and taken < limit * (SCAN_PAGES if keep else 1):
        page = await read(start + taken, limit)
        if not page:
            return found, None
        for item in page:
            taken += 1
            if keep is None or keep(item):
                found.append(item)
                if len(found) == limit:
                    break
    return found, str(start + taken)
