"""The actor's decision path against a real Redis ledger (Ray not needed).

Covers the pipelined commit's failure cases: a refused commit invalidates the
batch decided on top of it, a crash between two commits, a re-sent batch
(after the fact and while the first send is still committing).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from actors.host import OwnerHost
from domain.activity import Activity, Limits, Prize
from domain.road import DRAW, BatchResult, RequestRecord, Row
from ledger.admin import SyncLedger

Hosts = Callable[..., OwnerHost]


def _install(redis_url: str, stock: int, per_user_limit: int = 0) -> Activity:
    activity = Activity(
        id=f"a{uuid.uuid4().hex[:8]}",
        tenant_id="t1",
        name="Wheel",
        status="running",
        prizes=(
            Prize(id="p", name="P", kind="coupon", weight=1_000_000, stock=stock),
            Prize(id="none", name="Thanks", kind="thanks", weight=1),
        ),
        fallback_prize_id="none",
        limits=Limits(per_user_total=per_user_limit),
    )
    SyncLedger.from_url(redis_url).install_activity(activity)
    return activity


def _users(n: int) -> list[str]:
    return [f"u{uuid.uuid4().hex[:6]}" for _ in range(n)]


def _records(activity: Activity, users: list[str], tag: str, tenant: str = "") -> list[bytes]:
    rows: list[Row] = [(u, tag, i, None) for i, u in enumerate(users)]
    record = RequestRecord(DRAW.name, tenant or activity.tenant_id, activity.id, "api-test", rows)
    return [record.dumps()]


def _outcomes(result: BatchResult) -> list[dict]:
    return [orjson.loads(o) for events in result.outcomes.values() for o in events]


def _totals(redis_url: str, activity: Activity) -> dict[str, int]:
    return SyncLedger.from_url(redis_url).totals(activity.tenant_id, activity.id)


def _ledger(redis_url: str, activity: Activity) -> dict[str, dict]:
    return SyncLedger.from_url(redis_url).outcomes(activity.tenant_id, activity.id)


@pytest.fixture
async def hosts(redis_url: str) -> AsyncIterator[Hosts]:
    made: list[OwnerHost] = []

    def make(seed: int | None = 1) -> OwnerHost:
        host = OwnerHost(redis_url, seed=seed)
        made.append(host)
        return host

    yield make
    for host in made:
        await host.close()


class Gate:
    """Holds a host's commits (as a slow ledger would) until opened; counts those sent."""

    def __init__(self, host: OwnerHost) -> None:
        self.committer = host._commits
        self.held: list[Any] = []
        self.sent = 0
        self.open = False
        self._write = self.committer._write
        self.committer._write = self._hold  # type: ignore[method-assign]

    def _hold(self, job: Any) -> None:
        if self.open:
            self.sent += 1
            self._write(job)
        else:
            self.held.append(job)

    def release(self) -> None:
        self.open = True
        held, self.held = self.held, []
        for job in held:
            self._hold(job)

    def close(self) -> None:
        self.open = False


async def _until(predicate: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_resent_batch_returns_the_same_outcomes(redis_url: str, hosts: Hosts) -> None:
    activity = _install(redis_url, stock=5)
    batch = _records(activity, [f"u{i}" for i in range(20)], "r1")
    first = await hosts().decide_batch("t:0:0", batch)
    again = await hosts(seed=2).decide_batch("t:0:0", batch)  # a restarted actor
    assert first.outcomes == again.outcomes and first.replies == again.replies
    assert len(first.replies["api-test"]) == 20 and first.decided == 20
    assert _totals(redis_url, activity)["draws"] == 20
    assert sum(o["status"] == "won" for o in _outcomes(first)) == 5


async def test_duplicate_request_inside_one_batch_is_decided_once(
    redis_url: str, hosts: Hosts
) -> None:
    activity = _install(redis_url, stock=5)
    result = await hosts().decide_batch("t:0:1", _records(activity, ["u1", "u1", "u1"], "same"))
    assert len(_outcomes(result)) == 1 and result.decided == 3
    replies = [orjson.loads(r) for r in result.replies["api-test"]]
    assert [r[0] for r in replies] == [0, 1, 2]
    assert replies[0][1] == replies[1][1] == replies[2][1]
    assert _totals(redis_url, activity)["draws"] == 1


async def test_two_owners_of_one_pool_cannot_oversell(redis_url: str, hosts: Hosts) -> None:
    """Split brain (two actors believing they own the pool): the chain head makes
    the ledger refuse a batch decided on a stale pool, and the loser reloads."""
    activity = _install(redis_url, stock=10)
    a, b = hosts(1), hosts(2)
    won = 0
    for round_ in range(10):
        for host, name in ((a, "a"), (b, "b")):
            users = [f"{name}{round_}-{i}" for i in range(10)]
            result = await host.decide_batch(f"t:0:{name}{round_}", _records(activity, users, "r"))
            won += sum(o["status"] == "won" for o in _outcomes(result))
    totals = _totals(redis_url, activity)
    assert won == 10 - totals["stock:p"] == 10
    assert totals["draws"] == 200


async def test_restarted_owner_keeps_per_user_limits(redis_url: str, hosts: Hosts) -> None:
    activity = _install(redis_url, stock=100, per_user_limit=2)
    await hosts().decide_batch("t:0:2", _records(activity, ["u1", "u2"], "r1"))
    await hosts().decide_batch("t:0:3", _records(activity, ["u1"], "r2"))
    result = await hosts().decide_batch("t:0:4", _records(activity, ["u1", "u2"], "r3"))
    by_user = {o["user_id"]: o for o in _outcomes(result)}
    assert by_user["u1"]["reason"] == "user_limit_reached"
    assert by_user["u2"]["status"] != "rejected"
    assert SyncLedger.from_url(redis_url).user_draws("t1", activity.id)["u1"] == 2


async def test_other_tenants_request_touches_nothing(redis_url: str, hosts: Hosts) -> None:
    activity = _install(redis_url, stock=1)
    result = await hosts().decide_batch("t:0:5", _records(activity, ["x"], "r", tenant="intruder"))
    assert _outcomes(result)[0]["reason"] == "activity_not_found"
    assert _totals(redis_url, activity)["outcomes"] == 0


async def test_malformed_requests_are_dropped_and_the_rest_decided(
    redis_url: str, hosts: Hosts
) -> None:
    activity = _install(redis_url, stock=3)
    good = _records(activity, ["u1"], "ok")
    bad_row = RequestRecord(DRAW.name, "t1", activity.id, "", [("u2", "r", "not an int", None)])
    junk = [b"not json", b'{"kind":"draw"}', b"[1]", bad_row.dumps()]
    result = await hosts().decide_batch("t:0:6", [*junk, *good])
    assert [o["user_id"] for o in _outcomes(result)] == ["u1"]


async def test_next_batch_is_decided_while_the_previous_commits(
    redis_url: str, hosts: Hosts
) -> None:
    activity = _install(redis_url, stock=15)
    host = hosts()
    gate = Gate(host)
    first = asyncio.ensure_future(host.decide_batch("t:0:7", _records(activity, _users(10), "a")))
    second = asyncio.ensure_future(host.decide_batch("t:0:8", _records(activity, _users(10), "b")))
    # The second batch is decided and its commit queued while the first is held.
    await _until(lambda: len(gate.held) == 2, "both commits held")
    assert not first.done() and not second.done() and gate.sent == 0
    gate.release()
    a, b = await first, await second
    assert sum(o["status"] == "won" for o in (*_outcomes(a), *_outcomes(b))) == 15
    totals = _totals(redis_url, activity)
    assert totals["stock:p"] == 0 and totals["draws"] == 20


async def test_refused_commit_refuses_the_batch_decided_on_top(
    redis_url: str, hosts: Hosts
) -> None:
    """Batches A and B are decided (B on top of A) while another owner commits C to
    the same pool: A is refused (stale head), B with it, and both are decided again."""
    activity = _install(redis_url, stock=12)
    host = hosts(1)
    gate = Gate(host)
    a = asyncio.ensure_future(host.decide_batch("t:0:10", _records(activity, _users(8), "a")))
    b = asyncio.ensure_future(host.decide_batch("t:0:11", _records(activity, _users(8), "b")))
    await _until(lambda: len(gate.held) == 2, "A's and B's commits held")
    c = await hosts(2).decide_batch("t:0:12", _records(activity, _users(8), "c"))
    gate.release()
    results = [await a, await b, c]
    answered = {o["event_id"]: o for r in results for o in _outcomes(r)}
    ledger = _ledger(redis_url, activity)
    assert answered == ledger  # every answer is the one the ledger kept
    assert sum(o["status"] == "won" for o in ledger.values()) == 12 and len(ledger) == 24
    assert _totals(redis_url, activity)["stock:p"] == 0
    assert gate.sent >= 4  # A and B refused, then both decided again


async def test_crash_between_two_commits_then_both_batches_resent(
    redis_url: str, hosts: Hosts
) -> None:
    activity = _install(redis_url, stock=6)
    host = hosts(1)
    gate = Gate(host)
    gate.release()
    batch_a, batch_b = _records(activity, _users(4), "a"), _records(activity, _users(4), "b")
    first_a = await host.decide_batch("t:0:13", batch_a)  # A committed...
    gate.close()
    b = asyncio.ensure_future(host.decide_batch("t:0:14", batch_b))
    await _until(lambda: len(gate.held) == 1, "B's commit held")
    b.cancel()  # ... and the actor dies before B's commit is sent
    await host.close()
    assert gate.sent == 1
    # The restarted actor gets both polls again (their offsets were not committed).
    fresh = hosts(2)
    again_a = await fresh.decide_batch("t:0:13", batch_a)
    again_b = await fresh.decide_batch("t:0:14", batch_b)
    assert again_a.outcomes == first_a.outcomes  # acknowledged: unchanged, byte for byte
    ledger = _ledger(redis_url, activity)
    assert len(ledger) == 8
    assert all(ledger[o["event_id"]] == o for o in _outcomes(again_b))
    assert _totals(redis_url, activity)["draws"] == 8


async def test_batch_resent_while_the_first_send_commits(redis_url: str, hosts: Hosts) -> None:
    activity = _install(redis_url, stock=3)
    host = hosts()
    gate = Gate(host)
    batch = _records(activity, _users(6), "r")
    first = asyncio.ensure_future(host.decide_batch("t:0:15", batch))
    await _until(lambda: len(gate.held) == 1, "the first commit held")
    second = asyncio.ensure_future(host.decide_batch("t:0:15", batch))  # the dispatcher retried
    await asyncio.sleep(0.05)
    assert not second.done()  # answered from memory, but only once the commit is accepted
    gate.release()
    a, b = await first, await second
    assert a.outcomes == b.outcomes and gate.sent == 1
    assert _totals(redis_url, activity)["draws"] == 6


async def test_pause_reaches_the_next_batch(redis_url: str, hosts: Hosts) -> None:
    activity = _install(redis_url, stock=3)
    host = hosts()
    await host.decide_batch("t:0:16", _records(activity, ["u1"], "r1"))
    paused = activity.model_copy(update={"status": "paused", "version": 2})
    SyncLedger.from_url(redis_url).install_activity(paused)
    result = await host.decide_batch("t:0:17", _records(activity, ["u2"], "r2"))
    assert _outcomes(result)[0]["reason"] == "activity_not_running"
    assert _totals(redis_url, activity)["draws"] == 1
