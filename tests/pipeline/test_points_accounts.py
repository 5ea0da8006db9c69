"""Points on real servers: sign-in streaks, order rebates (pending, refunded),
adjustments, statements, exchanges for coupons, expiry in a tenant's time zone,
and a mixed load of thousands of shoppers earning and spending across a SIGKILL
of the dispatcher and of the actor worker: every balance equals its ledger, no
chance or coupon without its points and no points without their effect."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import uuid
from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from domain.activity import Limits, Prize
from domain.coupons import CouponTemplate, Validity
from domain.events import request_key
from domain.points import ExpiryPolicy, PointsRules, account_shard
from domain.road import POINTS, RequestRecord
from domain.topics import REQUESTS
from tests.pipeline.conftest import (
    FULL_SIZE,
    Pipeline,
    Tenant,
    assert_error,
    assert_reconciled,
    wait_for,
)
from tests.pipeline.test_activity_admin import _wheel_body
from tests.pipeline.test_lottery_invariants import _actor_pid

ADMIN = "/v1/admin"
ORDERS, GRANTS = f"{ADMIN}/points/orders", f"{ADMIN}/points/grants"
SHOPPERS = 10_000 if FULL_SIZE else 2_000
SHANGHAI = "Asia/Shanghai"


def _ok(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def _template(tenant: Tenant, **fields: Any) -> CouponTemplate:
    template = CouponTemplate(
        **{
            "id": f"ct{uuid.uuid4().hex[:8]}",
            "tenant_id": tenant.tenant_id,
            "name": "5 off",
            "kind": "fixed",
            "amount_cents": 500,
            "validity": Validity(days_after_claim=30),
            "status": "running",
            **fields,
        }
    )
    tenant.pipeline.ledger.install_template(template)
    return template


def _rules(http: httpx.Client, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    return _ok(http.put(f"{ADMIN}/points/rules", json=fields, headers=tenant.staff_headers))


def _check_accounts(pipeline: Pipeline, tenant: Tenant) -> dict[str, list]:
    """Every account equals its ledger: the balance is the sum of its entries and
    of its lots, cached beside it; no lot or balance below zero; no entry twice."""
    accounts = pipeline.ledger.points_accounts(tenant.tenant_id)
    balances = pipeline.ledger.points(tenant.tenant_id)
    logs = {}
    for user, account in accounts.items():
        log = pipeline.ledger.points_log(tenant.tenant_id, user)
        assert account.balance == sum(e.amount for e in log) == sum(x.left for x in account.lots)
        assert account.balance == balances[user] >= 0
        assert all(x.left >= 0 for x in account.lots)
        assert len({e.key for e in log}) == len(log), f"an entry of {user} was written twice"
        running = 0
        for entry in log:  # each entry's balance is the running sum: appended in order
            running += entry.amount
            assert entry.balance == running
        logs[user] = log
    return logs


def test_signin_order_refund_adjust_and_statement(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    me = tenant.shopper_headers("ann")
    rules = _rules(
        http,
        tenant,
        signin=[5, 10],
        order_points_per_unit=2,
        order_pending_days=7,
        expiry={"kind": "end_of_month", "months": 1, "timezone": SHANGHAI},
    )
    assert rules["version"] == 1 and rules["signin"] == [5, 10]
    # An activity created without a time zone takes the tenant's.
    created = http.post(f"{ADMIN}/activities", json=_wheel_body(), headers=tenant.staff_headers)
    assert created.status_code == 201 and created.json()["activity"]["timezone"] == SHANGHAI

    first = _ok(http.post("/v1/me/points/signins", json={"request_id": "s-1"}, headers=me))
    assert (first["op"], first["amount"], first["balance"]) == ("signin", 5, 5)
    assert first["movements"][0]["reason"] == "signin day 1"
    # A retry of the same request is the same answer; another sign-in today is refused.
    again = _ok(http.post("/v1/me/points/signins", json={"request_id": "s-1"}, headers=me))
    assert again == first
    assert_error(http.post("/v1/me/points/signins", headers=me), 409, "already_signed_in")
    assert _ok(http.get("/v1/me/points/requests/s-1", headers=me)) == first

    order = {"user_id": "ann", "order_id": "o-1", "amount_cents": 12_345}
    staff = tenant.staff_headers
    earned = _ok(http.post(ORDERS, json=order, headers=staff))
    assert (earned["amount"], earned["balance"]) == (246, 251)
    assert _ok(http.post(ORDERS, json=order, headers=staff)) == earned
    changed = {**order, "amount_cents": 1}
    assert_error(http.post(ORDERS, json=changed, headers=staff), 409, "duplicate_order")
    other = {**order, "user_id": "bob"}
    assert_error(http.post(ORDERS, json=other, headers=staff), 409, "duplicate_order")

    mine = _ok(http.get("/v1/me/points", headers=me))
    assert (mine["points"], mine["usable"], mine["pending"]) == (251, 5, 246)
    assert mine["signed_in_today"] is True and mine["streak"] == 1
    # Pending points are not spendable.
    spend = {"user_id": "ann", "amount": -6}
    assert_error(http.post(GRANTS, json=spend, headers=staff), 409, "insufficient_points")

    # The refund takes the whole pending rebate back: it never becomes usable.
    refunded = _ok(http.post(f"{ORDERS}/o-1/refund", headers=staff))
    assert (refunded["op"], refunded["amount"], refunded["balance"]) == ("refund", -246, 5)
    assert _ok(http.post(f"{ORDERS}/o-1/refund", headers=staff)) == refunded
    assert _ok(http.get("/v1/me/points", headers=me))["pending"] == 0
    assert_error(http.post(f"{ORDERS}/nope/refund", headers=staff), 404, "order_not_found")

    adjusted = _ok(http.post(GRANTS, json={**spend, "amount": -3}, headers=staff))
    assert adjusted["balance"] == 2

    statement = _ok(http.get("/v1/me/points/statement", params={"limit": 2}, headers=me))
    assert [e["kind"] for e in statement["entries"]] == ["adjust", "reverse"]
    older = _ok(
        http.get(
            "/v1/me/points/statement",
            params={"limit": 2, "before": statement["next_before"]},
            headers=me,
        )
    )
    assert [e["kind"] for e in older["entries"]] == ["earn", "earn"] and older[
        "next_before"
    ] is None
    assert (
        _ok(http.get(f"{ADMIN}/points/accounts/ann/statement", headers=staff))["entries"][0]
        == (statement["entries"][0])
    )
    _check_accounts(pipeline, tenant)

    # Bad input: each its own 4xx.
    for body in (
        {"user_id": "ann", "order_id": "o-2", "amount_cents": -1},
        {"user_id": "ann", "order_id": "o-2", "amount_cents": 10**13},
        {"user_id": "a:b", "order_id": "o-2", "amount_cents": 100},
    ):
        assert_error(http.post(ORDERS, json=body, headers=staff), 422, "invalid_request")
    for amount in (0, 10**9 + 1, -(10**9) - 1):
        body = {"user_id": "ann", "amount": amount}
        assert_error(http.post(GRANTS, json=body, headers=staff), 422, "invalid_request")
    assert_error(
        http.get(f"{ADMIN}/points/accounts/nobody", headers=staff), 404, "shopper_not_found"
    )
    assert_error(
        http.put(f"{ADMIN}/points/rules", json={"signin": [0]}, headers=staff),
        422,
        "invalid_request",
    )
    # Another tenant sees none of it.
    stranger = pipeline.tenant()
    assert_error(
        http.get(f"{ADMIN}/points/accounts/ann", headers=stranger.staff_headers),
        404,
        "shopper_not_found",
    )
    assert _ok(http.get("/v1/me/points", headers=stranger.shopper_headers("ann")))["points"] == 0


def test_exchange_points_for_coupons(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    _rules(http, tenant, exchange_daily_limit=2)
    template = _template(tenant, points_price=50, limits={"stock": 10})
    free = _template(tenant)
    pipeline.ledger.grant_points(tenant.tenant_id, {"cy": 120})
    me = tenant.shopper_headers("cy")
    url = f"/v1/templates/{template.id}/exchanges"
    first = _ok(http.post(url, json={"request_id": "x1"}, headers=me))
    assert _ok(http.post(url, json={"request_id": "x1"}, headers=me)) == first
    _ok(http.post(url, json={"request_id": "x2"}, headers=me))
    assert_error(http.post(url, headers=me), 409, "exchange_limit_reached")
    assert_error(
        http.post(f"/v1/templates/{free.id}/exchanges", headers=me), 409, "not_exchangeable"
    )
    assert_error(http.post(url, headers=tenant.shopper_headers("poor")), 409, "insufficient_points")
    assert _ok(http.get("/v1/me/points", headers=me))["points"] == 20
    coupons = pipeline.ledger.coupons(tenant.tenant_id)
    assert sorted(c.source for c in coupons.values()) == ["exchange", "exchange"]
    assert first["coupon"]["coupon_id"] in coupons
    log = _check_accounts(pipeline, tenant)["cy"]
    assert [e.key for e in log[1:]] == [f"exchange:{template.id}:x1", f"exchange:{template.id}:x2"]


def _ms(zone: str, *parts: int) -> int:
    return int(datetime(*parts, tzinfo=ZoneInfo(zone)).timestamp() * 1000)  # type: ignore[misc]


def _submit_expiries(pipeline: Pipeline, tenant: Tenant, due: dict[str, int]) -> None:
    """What the expiry sweep sends (api/expiry_sweep.py), produced directly."""
    from aiokafka import AIOKafkaProducer

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap)
        await producer.start()
        try:
            for user, expires_at in due.items():
                shard = account_shard(user)
                row = (user, f"expire:{expires_at}", 0, {"op": "expire"})
                record = RequestRecord("points", tenant.tenant_id, shard, "", [row])
                key = f"{POINTS.owner}/{tenant.tenant_id}/{shard}".encode()
                await producer.send_and_wait(REQUESTS.name, record.dumps(), key=key)
        finally:
            await producer.stop()

    asyncio.run(send())


def test_expiry_at_a_month_boundary_in_the_tenants_time_zone(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    """Points earned in the last minutes of November in Shanghai (still November
    in UTC too) expire at Shanghai's month end; points earned in the first
    minutes of December in Shanghai (November in UTC) do not. The sweep asks,
    a second run asks again, a dispatcher killed mid-way redelivers: each due
    lot gets one ``expire`` entry."""
    tenant = pipeline.tenant()
    policy = ExpiryPolicy(kind="end_of_month", months=12, timezone=SHANGHAI)
    pipeline.ledger.points_rules(tenant.tenant_id, PointsRules(expiry=policy))
    november = _ms(SHANGHAI, 2025, 11, 30, 23, 30)
    december = _ms(SHANGHAI, 2025, 12, 1, 0, 30)
    assert datetime.fromtimestamp(december / 1000, ZoneInfo("UTC")).month == 11
    users = [f"e{i}" for i in range(50)]
    for user in users:
        pipeline.ledger.grant_points(tenant.tenant_id, {user: 7}, at_ms=november)
        pipeline.ledger.grant_points(tenant.tenant_id, {user: 11}, at_ms=december)
    due_at = _ms(SHANGHAI, 2026, 12, 1)
    accounts = pipeline.ledger.points_accounts(tenant.tenant_id)
    assert {a.next_expiry() for a in accounts.values()} == {due_at}

    _submit_expiries(pipeline, tenant, dict.fromkeys(users, due_at))
    pipeline.dispatcher.kill()
    _submit_expiries(pipeline, tenant, dict.fromkeys(users, due_at))  # the job runs again
    pipeline.dispatcher.start(timeout=120)

    def expired() -> bool:
        balances = pipeline.ledger.points(tenant.tenant_id)
        return all(balances[u] == 11 for u in users)

    wait_for(expired, timeout=60, what="the due lots to expire")
    logs = _check_accounts(pipeline, tenant)
    for user in users:
        expiries = [e for e in logs[user] if e.kind == "expire"]
        assert [(e.amount, e.source_id) for e in expiries] == [(-7, expiries[0].source_id)]
        assert _ok(http.get("/v1/me/points", headers=tenant.shopper_headers(user)))["usable"] == 11
    # The accounts' next expiry moved on to the December lot's (Shanghai's end of 2026).
    accounts = pipeline.ledger.points_accounts(tenant.tenant_id)
    assert {a.next_expiry() for a in accounts.values()} == {_ms(SHANGHAI, 2027, 1, 1)}
    outcomes = pipeline.ledger.points_outcomes(tenant.tenant_id)
    assert len(outcomes) == len(users)  # one decision per (user, expiry), however often asked


async def _mixed_load(
    pipeline: Pipeline, tenant: Tenant, wheel_id: str, template_id: str, users: list[str]
) -> dict[tuple[str, str], httpx.Response]:
    """Per shopper: a sign-in, an order, two draws costing points, an exchange."""
    limit = asyncio.Semaphore(128)
    staff = tenant.staff_headers
    async with httpx.AsyncClient(base_url=pipeline.url, timeout=60) as client:

        async def one(user: str, what: str) -> tuple[tuple[str, str], httpx.Response]:
            me = tenant.shopper_headers(user)
            async with limit:
                if what == "signin":
                    reply = await client.post(
                        "/v1/me/points/signins", json={"request_id": "signin"}, headers=me
                    )
                elif what == "order":
                    body = {"user_id": user, "order_id": f"o-{user}", "amount_cents": 1_000}
                    reply = await client.post(f"{ADMIN}/points/orders", json=body, headers=staff)
                elif what.startswith("draw"):
                    reply = await client.post(
                        f"/v1/activities/{wheel_id}/draws", json={"request_id": what}, headers=me
                    )
                else:
                    reply = await client.post(
                        f"/v1/templates/{template_id}/exchanges",
                        json={"request_id": "x"},
                        headers=me,
                    )
            return (user, what), reply

        jobs = [(u, w) for w in ("draw1", "signin", "exchange", "order", "draw2") for u in users]
        return dict(await asyncio.gather(*(one(u, w) for u, w in jobs)))


@pytest.mark.parametrize("kill", ["dispatcher", "actor"])
def test_thousands_earning_and_spending_across_a_sigkill(
    pipeline: Pipeline, http: httpx.Client, ray_client: Any, kill: str
) -> None:
    tenant = pipeline.tenant()
    _rules(http, tenant, signin=[5], order_points_per_unit=2)  # an order of 10.00: 20
    # The seeded half can exchange after its first draw and sign-in, the other half
    # only once its sign-in came first: both outcomes, and a stock that sells out.
    cost, price, stock = 10, 5, SHOPPERS // 4
    template = _template(tenant, points_price=price, limits={"stock": stock})
    wheel = tenant.wheel(
        [Prize(id="pts", name="3 points", kind="points", weight=1, points=3)],
        limits=Limits(points_cost=cost),
    )
    users = [f"m{i}" for i in range(SHOPPERS)]
    # Half the shoppers start with some points, half with none.
    pipeline.ledger.grant_points(tenant.tenant_id, {u: 12 for u in users[::2]})
    replies: dict[tuple[str, str], httpx.Response] = {}
    runner = threading.Thread(
        target=lambda: replies.update(
            asyncio.run(_mixed_load(pipeline, tenant, wheel.id, template.id, users))
        )
    )
    old_pid = _actor_pid(ray_client)
    runner.start()
    wait_for(
        lambda: len(pipeline.ledger.outcomes(tenant.tenant_id, wheel.id)) >= SHOPPERS // 3,
        timeout=120,
        what="the load to be under way",
    )
    if kill == "dispatcher":
        pipeline.dispatcher.kill()
        pipeline.dispatcher.start(timeout=120)
    else:
        os.kill(old_pid, signal.SIGKILL)
    runner.join(timeout=600)
    assert not runner.is_alive()
    codes = Counter(r.status_code for r in replies.values())
    assert set(codes) <= {200, 202, 409}, codes
    if kill == "actor":
        assert _actor_pid(ray_client) != old_pid

    draws = pipeline.ledger.outcomes(tenant.tenant_id, wheel.id)
    claims = pipeline.ledger.claim_outcomes(tenant.tenant_id, template.id)
    earned = pipeline.ledger.points_outcomes(tenant.tenant_id)

    def drained() -> bool:
        nonlocal draws, claims, earned
        draws = pipeline.ledger.outcomes(tenant.tenant_id, wheel.id)
        claims = pipeline.ledger.claim_outcomes(tenant.tenant_id, template.id)
        earned = pipeline.ledger.points_outcomes(tenant.tenant_id)
        return len(draws) == len(earned) == 2 * SHOPPERS and len(claims) == SHOPPERS

    try:
        wait_for(drained, timeout=180, what="every request to be decided")
    except AssertionError as exc:
        counts = (len(draws), len(claims), len(earned))
        raise AssertionError(f"{exc}: draws, claims, points {counts}; HTTP {codes}") from exc
    logs = _check_accounts(pipeline, tenant)
    coupons = pipeline.ledger.coupons(tenant.tenant_id)
    by_source = {c.source_id: c for c in coupons.values()}
    for user in users:
        keys = {e.key: e for e in logs.get(user, [])}
        for rid in ("draw1", "draw2"):  # a chance exactly when its points were spent
            outcome = draws[request_key(user, rid)]
            spent = keys.get(f"draw:{wheel.id}:{rid}")
            if outcome["status"] == "rejected":
                assert spent is None and outcome["reason"] == "insufficient_points"
            else:
                assert spent is not None and spent.amount == -cost
                assert outcome["points_spent"] == cost
                prize = keys.get(f"prize:{wheel.id}:{rid}")  # a points prize: a lot
                won = outcome["prize_id"] == "pts"
                assert (prize.amount if prize else 0) == outcome["points_earned"] == 3 * won
        claim = claims[request_key(user, "x")]  # a coupon exactly when its points were spent
        spent = keys.get(f"exchange:{template.id}:x")
        if claim["status"] == "issued":
            assert spent is not None and spent.amount == -price
            coupon = by_source[request_key(user, "x")]
            assert coupon.coupon_id == claim["coupon_id"] and coupon.source == "exchange"
        else:
            assert spent is None
            assert claim["reason"] in ("insufficient_points", "sold_out")
        for rid, amount in (("signin", 5), (f"order:m/o-{user}", 20)):
            outcome = earned[request_key(user, rid)]
            assert outcome["status"] == "applied" and keys[rid].amount == amount
    issued = [c for c in coupons.values() if c.source == "exchange"]
    assert 0 < len(issued) == sum(c["status"] == "issued" for c in claims.values()) <= stock
    # Every acknowledged answer is the one on the ledger.
    for (user, what), reply in replies.items():
        if reply.status_code != 200:
            continue
        body = reply.json()
        if what.startswith("draw"):
            assert body["decided_at"] == draws[request_key(user, what)]["occurred_at"]
        elif what == "exchange":
            assert body["coupon"]["coupon_id"] == claims[request_key(user, "x")]["coupon_id"]
        else:
            rid = "signin" if what == "signin" else f"order:m/o-{user}"
            assert body["decided_at"] == earned[request_key(user, rid)]["occurred_at"]
    # ClickHouse holds every movement once: its liability is the ledger's balances
    # less the seeded points (written straight to the ledger, never an event).
    seeded = 12 * len(users[::2])
    liability = sum(pipeline.ledger.points(tenant.tenant_id).values()) - seeded
    movements = sum(len(log) for log in logs.values()) - len(users[::2])
    wait_for(
        lambda: (
            (s := http.get("/v1/stats/points", headers=tenant.staff_headers).json())["liability"]
            == liability
            and s["movements"] == movements
        ),
        timeout=60,
        what="ClickHouse to hold every points movement once",
    )
    print(f"{kill} killed; HTTP {dict(codes)}; coupons {len(issued)} of {stock}")
    assert_reconciled(pipeline, tenant.tenant_id)


def test_chances_bought_with_points_and_granted_raise_the_quota(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    """A quota account per shopper and activity: daily and monthly limits on the
    activity's time zone, raised by chances bought with points (spent in the
    same commit) or granted by the merchant (a rebate)."""
    tenant = pipeline.tenant()
    limits = Limits(per_user_daily=1, per_user_monthly=10, chance_points=20)
    wheel = tenant.wheel(
        [Prize(id="p", name="P", kind="item", weight=1)], limits=limits, timezone=SHANGHAI
    )
    plain = tenant.wheel([Prize(id="p", name="P", kind="item", weight=1)])
    pipeline.ledger.grant_points(tenant.tenant_id, {"dee": 50})
    me = tenant.shopper_headers("dee")
    draws = f"/v1/activities/{wheel.id}/draws"
    chances = f"/v1/activities/{wheel.id}/chances"
    assert http.post(draws, headers=me).status_code == 200
    assert_error(http.post(draws, headers=me), 409, "daily_limit_reached")

    bought = _ok(http.post(chances, json={"chances": 2, "request_id": "c1"}, headers=me))
    assert (bought["op"], bought["amount"], bought["balance"]) == ("chances", -40, 10)
    assert _ok(http.post(chances, json={"chances": 2, "request_id": "c1"}, headers=me)) == bought
    assert _ok(http.get(f"{chances}/c1", headers=me)) == bought
    view = _ok(http.get(f"/v1/activities/{wheel.id}", headers=me))
    assert view["chance_points"] == 20
    assert (view["me"]["chances"], view["me"]["remaining_today"]) == (2, 2)
    assert view["me"]["remaining_month"] == 11
    for _ in range(2):
        assert http.post(draws, headers=me).status_code == 200
    assert_error(http.post(draws, headers=me), 409, "daily_limit_reached")
    assert_error(http.post(chances, json={"chances": 1}, headers=me), 409, "insufficient_points")

    grant = {"user_id": "dee", "chances": 1}
    staff = tenant.staff_headers
    granted = _ok(http.post(f"{ADMIN}/activities/{wheel.id}/chances", json=grant, headers=staff))
    assert (granted["op"], granted["amount"]) == ("grant_chances", 0)
    assert http.post(draws, headers=me).status_code == 200
    assert_error(http.post(draws, headers=me), 409, "daily_limit_reached")

    # Bad input, each its own 4xx.
    assert_error(
        http.post(f"/v1/activities/{plain.id}/chances", json={"chances": 1}, headers=me),
        409,
        "chances_not_sold",
    )
    for body in ({"chances": 0}, {"chances": 10**6}, {"chances": "x"}, {}):
        assert_error(http.post(chances, json=body, headers=me), 422, "invalid_request")
    assert_error(
        http.post("/v1/activities/nope/chances", json={"chances": 1}, headers=me),
        404,
        "activity_not_found",
    )
    stranger = pipeline.tenant()
    assert_error(
        http.post(
            f"{ADMIN}/activities/{wheel.id}/chances", json=grant, headers=stranger.staff_headers
        ),
        404,
        "activity_not_found",
    )
    log = _check_accounts(pipeline, tenant)["dee"]
    assert [(e.key, e.amount) for e in log[1:]] == [(f"chances:{wheel.id}:c1", -40)]
