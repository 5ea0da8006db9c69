"""Outcomes an actor decided lately, so a retried request is answered from memory.

The api no longer reads the ledger before producing a request, so a client's
retry reaches the actor; answering it from here spares the ledger a refused
commit. An entry is *pending* until its commit is accepted: a batch that
answers from a pending entry must wait for that commit before it returns, so
no outcome is ever acknowledged that the ledger could still refuse.

Accepted entries are kept as plain ``str -> bytes`` (a dict the garbage
collector does not track, however large); only the few pending ones hold their
commit future.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("carnival.actors")

# Entries kept (FIFO): ~0.4 KB each, so about 40 MB at this size. A retry older
# than that is answered by the ledger after one refused commit.
RECENT_OUTCOMES_MAX = 100_000

Commit = asyncio.Future[Any]


def accepted(commit: Commit) -> bool:
    """A finished commit future whose script said ok."""
    return not commit.cancelled() and commit.exception() is None and commit.result()[0] == b"ok"


def _key(owner: str, request_key: str) -> str:
    return f"{owner}\0{request_key}"


class RecentOutcomes:
    def __init__(self, capacity: int = RECENT_OUTCOMES_MAX) -> None:
        self._capacity = capacity
        self._accepted: dict[str, bytes] = {}
        # one dict per commit in flight (a handful): looked up after ``_accepted``
        self._pending: list[tuple[dict[str, bytes], Commit]] = []

    def __len__(self) -> int:
        return len(self._accepted) + sum(len(batch) for batch, _ in self._pending)

    def get(self, owner: str, request_key: str) -> tuple[bytes, Commit | None] | None:
        """The outcome and, while its commit is in flight, that commit; None if unknown
        here or its commit was refused."""
        key = _key(owner, request_key)
        outcome = self._accepted.get(key)
        if outcome is not None:
            return outcome, None
        for batch, commit in self._pending:
            outcome = batch.get(key)
            if outcome is not None:
                if commit.done() and not accepted(commit):
                    return None
                return outcome, commit
        return None

    def add(self, owner: str, items: list[tuple[str, bytes]], commit: Commit) -> None:
        entry = ({_key(owner, request_key): outcome for request_key, outcome in items}, commit)
        self._pending.append(entry)
        commit.add_done_callback(lambda _: self._settle(entry))

    def drop(self, owner: str, request_keys: list[str]) -> None:
        for request_key in request_keys:
            key = _key(owner, request_key)
            self._accepted.pop(key, None)
            for batch, _ in self._pending:
                batch.pop(key, None)

    def _settle(self, entry: tuple[dict[str, bytes], Commit]) -> None:
        self._pending.remove(entry)
        batch, commit = entry
        if not accepted(commit):
            return
        entries = self._accepted
        entries.update(batch)
        if len(entries) > self._capacity + self._capacity // 10:
            # A tenth at a time, oldest first, so the cost is not paid on every batch.
            for key in list(itertools.islice(entries, len(entries) - self._capacity)):
                del entries[key]


async def settle(
    commit: Commit | None, borrowed: list[Commit], refused: Callable[[], None], what: str
) -> bool:
    """Whether a batch's answers stand: its own commit was accepted (if refused,
    ``refused`` forgets what the actor holds and the batch is decided again) and
    so was every commit it borrowed answers from. A failed commit raises after
    ``refused``: the dispatcher re-sends the batch."""
    if commit is not None:
        try:
            reply = await commit
        except Exception:
            refused()
            raise
        if reply[0] != b"ok":
            log.info("ledger refused %s (%s); reloading", what, reply[1])
            refused()
            return False
    for pending in borrowed:
        with contextlib.suppress(Exception):
            await pending
        if not accepted(pending):
            return False
    return True
