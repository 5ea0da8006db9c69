"""Code batches: the moves a batch's job makes, and which states end it."""

from __future__ import annotations

import itertools

from domain.code_batches import BATCH_TRANSITIONS, FINISHED, BatchState, from_states

STATES: tuple[BatchState, ...] = ("queued", "running", "done", "failed", "cancelled")


def test_batch_moves_are_exactly_the_allowed_ones() -> None:
    allowed = {
        ("queued", "running"),
        ("queued", "cancelled"),
        ("running", "running"),  # a resume, by another runner
        ("running", "done"),
        ("running", "failed"),
        ("running", "cancelled"),
    }
    assert {(s, t) for s, targets in BATCH_TRANSITIONS.items() for t in targets} == allowed
    for state, to in itertools.product(STATES, STATES):
        assert (state in from_states(to)) == ((state, to) in allowed)


def test_finished_batches_never_move_again() -> None:
    assert frozenset({"done", "failed", "cancelled"}) == FINISHED
    assert from_states("cancelled") == ("queued", "running")
