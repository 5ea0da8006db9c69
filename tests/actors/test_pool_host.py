"""The actor's decision path against a real Redis ledger (Ray not needed)."""

from __future__ import annotations

import uuid

import orjson
import redis

from actors.ledger import Ledger
from actors.pool_host import PoolHost
from domain.activity import Activity, Limits, Prize
from domain.events import DrawRequested, request_key
from ledger.keys import ActivityKeys


def _install(redis_url: str, stock: int, per_user_limit: int = 0) -> Activity:
    activity = Activity(
        id=f"a{uuid.uuid4().hex[:8]}",
        tenant_id="t1",
        name="Wheel",
        status="running",
        prizes=(
            Prize(id="p", name="P", kind="coupon", weight=1, stock=stock),
            Prize(id="none", name="Thanks", kind="thanks", weight=1),
        ),
        fallback_prize_id="none",
        limits=Limits(per_user_total=per_user_limit),
    )
    Ledger.from_url(redis_url).install_activity(activity)
    return activity


def _requests(activity: Activity, users: list[str], tag: str) -> list[bytes]:
    return [
        DrawRequested(
            event_id=request_key(u, tag),
            tenant_id=activity.tenant_id,
            activity_id=activity.id,
            user_id=u,
            request_id=tag,
            reply_to="",
        ).dumps()
        for u in users
    ]


def test_resent_batch_returns_the_same_outcomes(redis_url: str) -> None:
    activity = _install(redis_url, stock=5)
    host = PoolHost(redis_url, seed=1)
    batch = _requests(activity, [f"u{i}" for i in range(20)], "r1")
    first = host.decide_batch("t:0:0", batch)
    again = host.decide_batch("t:0:0", batch)
    # A fresh actor (as after a crash) answers from the ledger, too.
    rebuilt = PoolHost(redis_url, seed=99).decide_batch("t:0:0", batch)
    assert first == again == rebuilt
    assert Ledger.from_url(redis_url).totals(activity.tenant_id, activity.id)["draws"] == 20


def test_duplicate_request_inside_one_batch_is_decided_once(redis_url: str) -> None:
    activity = _install(redis_url, stock=5)
    batch = _requests(activity, ["u1", "u1", "u1"], "same")
    outcomes = [orjson.loads(o) for o in PoolHost(redis_url, seed=1).decide_batch("t:0:1", batch)]
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert Ledger.from_url(redis_url).totals(activity.tenant_id, activity.id)["draws"] == 1


def test_two_owners_of_one_pool_cannot_oversell(redis_url: str) -> None:
    """Split brain (two actors believing they own the pool): the ledger script
    refuses the batch that would oversell and the loser rebuilds from Redis."""
    activity = _install(redis_url, stock=10)
    a, b = PoolHost(redis_url, seed=1), PoolHost(redis_url, seed=2)
    won = 0
    for round_ in range(10):
        for host, name in ((a, "a"), (b, "b")):
            users = [f"{name}{round_}-{i}" for i in range(10)]
            outcomes = host.decide_batch(f"t:0:{name}{round_}", _requests(activity, users, "r"))
            won += sum(orjson.loads(o)["status"] == "won" for o in outcomes)
    totals = Ledger.from_url(redis_url).totals(activity.tenant_id, activity.id)
    assert won == 10 - totals["stock:p"] == 10
    assert totals["draws"] == 200


def test_restarted_owner_keeps_per_user_limits(redis_url: str) -> None:
    activity = _install(redis_url, stock=100, per_user_limit=2)
    PoolHost(redis_url).decide_batch("t:0:2", _requests(activity, ["u1", "u2"], "r1"))
    PoolHost(redis_url).decide_batch("t:0:3", _requests(activity, ["u1"], "r2"))
    outcomes = [
        orjson.loads(o)
        for o in PoolHost(redis_url).decide_batch("t:0:4", _requests(activity, ["u1", "u2"], "r3"))
    ]
    assert [o["status"] == "rejected" for o in outcomes] == [True, False]
    assert outcomes[0]["reason"] == "user_limit_reached"
    client = redis.Redis.from_url(redis_url)
    assert int(client.hget(ActivityKeys("t1", activity.id).users, "u1")) == 2


def test_other_tenants_request_touches_nothing(redis_url: str) -> None:
    activity = _install(redis_url, stock=1)
    foreign = [
        orjson.dumps(dict(orjson.loads(r), tenant_id="intruder"))
        for r in _requests(activity, ["x"], "r")
    ]
    outcomes = [orjson.loads(o) for o in PoolHost(redis_url).decide_batch("t:0:5", foreign)]
    assert outcomes[0]["reason"] == "activity_not_found"
    assert Ledger.from_url(redis_url).totals(activity.tenant_id, activity.id)["outcomes"] == 0
