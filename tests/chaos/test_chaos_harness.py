"""The harness can fail: a deliberately broken actor, started from test code in
place of the real one, makes the chaos checks report the broken invariant in
its own column (not an exception elsewhere)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from carnival.chaos.kill import NO_KILL
from carnival.chaos.run import ChaosConfig, run_chaos
from carnival.chaos.table import Row

pytestmark = pytest.mark.servers

FAULTY = Path(__file__).with_name("faulty_dispatcher.py")
# Small and quick: one phase without a kill, on a stack of its own.
REQUESTS, USERS, RATE = 80, 20, 40.0
# A difference that lasts this long is reported (a broken run waits for it).
SETTLE_S = 20.0


def _run(fault: str) -> Row:
    config = ChaosConfig(
        processes=(NO_KILL,),
        requests_per_phase=REQUESTS,
        users=USERS,
        rate=RATE,
        settle_s=SETTLE_S,
        commands={"dispatcher": [sys.executable, str(FAULTY), fault]},
    )
    (row,) = run_chaos(config)
    print(row.as_dict())
    return row


def test_an_actor_that_skips_the_stock_check_is_reported_as_oversold() -> None:
    row = _run("unlimited-stock")
    assert not row.ok
    assert row.oversold > 0
    assert any(n.startswith("flash-sale coupons:") for n in row.notes), row.notes
    # The per-user limit is still checked: the stock is what broke. (The broken
    # actor's coupons past the stock confuse more than the stock: other columns
    # may show it too, which is the suite doing its job.)
    assert row.over_limit == 0, row.notes


def test_an_actor_that_skips_the_ledger_commit_is_reported_as_lost() -> None:
    row = _run("skip-commit")
    assert not row.ok
    assert row.lost > 0
    assert any("missing from the ledger" in n for n in row.notes), row.notes
    # The outcome events went out while the ledger holds nothing: reconcile differs.
    assert row.reconcile > 0
    assert row.oversold == 0
