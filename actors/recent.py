"""Outcomes an actor decided lately, so a retried request is answered from memory.

The api no longer reads the ledger before producing a request, so a client's
retry reaches the actor; answering it from here spares the ledger a refused
commit. An entry is *pending* until its commit is accepted: a batch that
answers from a pending entry must wait for that commit before it returns, so
no outcome is ever acknowledged that the ledger could still refuse.
"""

from __future__ import annotations

import asyncio
from typing import Any

# Entries kept (FIFO): ~0.5 KB each, so about 50 MB at this size. A retry older
# than that is answered by the ledger after one refused commit.
RECENT_OUTCOMES_MAX = 100_000

Commit = asyncio.Future[Any]


def accepted(commit: Commit) -> bool:
    """A finished commit future whose script said ok."""
    return not commit.cancelled() and commit.exception() is None and commit.result()[0] == b"ok"


class RecentOutcomes:
    def __init__(self, capacity: int = RECENT_OUTCOMES_MAX) -> None:
        self._capacity = capacity
        self._entries: dict[tuple[str, str], tuple[bytes, Commit | None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, owner: str, request_key: str) -> tuple[bytes, Commit | None] | None:
        """The outcome and, while its commit is in flight, that commit; None if unknown
        here or its commit was refused."""
        hit = self._entries.get((owner, request_key))
        if hit is None:
            return None
        outcome, commit = hit
        if commit is not None and commit.done():
            if not accepted(commit):
                return None
            commit = None
        return outcome, commit

    def add(self, owner: str, items: list[tuple[str, bytes]], commit: Commit | None) -> None:
        entries = self._entries
        for request_key, outcome in items:
            entries[(owner, request_key)] = (outcome, commit)
        overflow = len(entries) - self._capacity
        if overflow > 0:
            for key in [k for k, _ in zip(entries, range(overflow), strict=False)]:
                del entries[key]

    def drop(self, owner: str, request_keys: list[str]) -> None:
        for request_key in request_keys:
            self._entries.pop((owner, request_key), None)
