"""Code batches: a set of coupon codes of one template, and the job that fills it
(pure, no I/O).

A batch is made either by a generation job from a `CodePattern` (``generated``)
or by an upload of external codes (``imported``). Its job moves through

    queued -> running -> done | failed | cancelled

``queued`` waits for a job runner to take it; ``running`` may be taken again by
another runner after its runner died (``running -> running``: a resume). The
codes a batch stored stay in the tenant whatever state it ends in; a cancel
stops the job, it does not void the codes already stored.

The rules here are the only definition of those moves: the ledger compares a
batch's state against `from_states` before it writes, so a cancel that lands
between two chunks of a job is never overwritten by the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from domain.activity import _Frozen
from domain.codes import CodePattern
from domain.ids import ID_PATTERN

BatchSource = Literal["generated", "imported"]
BatchState = Literal["queued", "running", "done", "failed", "cancelled"]

# One job stores at most this many codes (the million-code batch); the
# tenant's code index grows by about 100 bytes of Redis memory per code.
MAX_BATCH_CODES = 1_000_000

BATCH_TRANSITIONS: Mapping[BatchState, frozenset[BatchState]] = {
    "queued": frozenset({"running", "cancelled"}),
    "running": frozenset({"running", "done", "failed", "cancelled"}),
    "done": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
FINISHED: frozenset[BatchState] = frozenset(s for s, to in BATCH_TRANSITIONS.items() if not to)


def from_states(to: BatchState) -> tuple[BatchState, ...]:
    """Every state a batch may move to `to` from, in a fixed order."""
    return tuple(s for s, targets in BATCH_TRANSITIONS.items() if to in targets)


class CodeBatch(_Frozen):
    """A batch as the ledger holds it and the api shows it."""

    id: str = Field(pattern=ID_PATTERN)
    tenant_id: str = Field(pattern=ID_PATTERN)
    template_id: str = Field(pattern=ID_PATTERN)
    source: BatchSource
    pattern: CodePattern | None = None  # None for an import
    # Codes the batch is to hold: requested for a generation, the file's
    # acceptable codes for an import (then those stored, once it is done).
    count: int = Field(ge=0, le=MAX_BATCH_CODES)
    done: int = Field(default=0, ge=0)  # codes stored so far
    state: BatchState = "queued"
    created_by: str
    created_at: int  # epoch ms, like every time in Carnival
    updated_at: int
    finished_at: int | None = None
    error: str = ""  # why a batch failed
    rejected: int = 0  # lines of an import that were not stored

    @property
    def finished(self) -> bool:
        return self.state in FINISHED
