"""Shopper API on the real pipeline: activity info with my chances, my prizes,
points, and every rejection of the rule chain as a clear 4xx."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from domain.activity import Activity, Envelopes, Limits, Prize, Rules
from tests.pipeline.conftest import Pipeline, Tenant, assert_error, draw

ADMIN = "/v1/admin"
GOLD = Prize(id="gold", name="Gold", kind="coupon", weight=1_000_000)  # ~always drawn


def _ok(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def _info(http: httpx.Client, tenant: Tenant, activity_id: str, user: str) -> dict[str, Any]:
    return _ok(http.get(f"/v1/activities/{activity_id}", headers=tenant.shopper_headers(user)))


def _points(http: httpx.Client, tenant: Tenant, user: str) -> int:
    body = _ok(http.get("/v1/me/points", headers=tenant.shopper_headers(user)))
    assert body["user_id"] == user
    return body["points"]


def _grant(http: httpx.Client, tenant: Tenant, user: str, amount: int) -> int:
    body = _ok(
        http.post(
            f"{ADMIN}/points/grants",
            json={"user_id": user, "amount": amount},
            headers=tenant.staff_headers,
        )
    )
    assert body["user_id"] == user
    return body["balance"]


# -- activity info ----------------------------------------------------------------------


def test_info_shows_prizes_and_my_chances(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel(
        [GOLD, Prize(id="silver", name="Silver", kind="item", weight=0, stock=4)],
        name="Info wheel",
        limits=Limits(per_user_total=3, per_user_daily=2),
    )
    info = _info(http, tenant, wheel.id, "ann")
    assert info["id"] == wheel.id and info["kind"] == "wheel" and info["name"] == "Info wheel"
    assert info["status"] == "running"
    assert info["points_cost"] == 0
    assert info["envelopes_left"] is None
    assert info["prizes"] == [
        {"id": "gold", "name": "Gold", "kind": "coupon", "position": 0},
        {"id": "silver", "name": "Silver", "kind": "item", "position": 1},
        {"id": "thanks", "name": "Thanks", "kind": "thanks", "position": 2},
    ]
    assert info["me"] == {
        "draws": 0,
        "draws_today": 0,
        "remaining_total": 3,
        "remaining_today": 2,
        "remaining_month": None,
        "chances": 0,
        "points": 0,
        "can_draw": True,
    }

    _ok(draw(http, tenant, wheel.id, "ann"))
    me = _info(http, tenant, wheel.id, "ann")["me"]
    assert (me["draws"], me["remaining_total"], me["remaining_today"]) == (1, 2, 1)
    assert me["can_draw"] is True

    _ok(draw(http, tenant, wheel.id, "ann"))
    me = _info(http, tenant, wheel.id, "ann")["me"]
    assert (me["draws"], me["draws_today"]) == (2, 2)
    assert (me["remaining_total"], me["remaining_today"]) == (1, 0)
    assert me["can_draw"] is False
    assert_error(draw(http, tenant, wheel.id, "ann"), 409, "daily_limit_reached")
    assert _info(http, tenant, wheel.id, "ann")["me"]["draws"] == 2  # a rejection is no draw

    # Another shopper's chances are their own.
    assert _info(http, tenant, wheel.id, "ben")["me"]["remaining_total"] == 3


def test_info_without_limits_is_unlimited(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel([GOLD])
    _ok(draw(http, tenant, wheel.id, "cy"))
    me = _info(http, tenant, wheel.id, "cy")["me"]
    assert me["remaining_total"] is None and me["remaining_today"] is None
    assert me["draws"] == 1 and me["can_draw"] is True


def test_info_of_unknown_or_foreign_activity(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant, other = pipeline.tenant(), pipeline.tenant()
    wheel = tenant.wheel([GOLD])
    for url in (
        f"/v1/activities/{wheel.id}",
        f"/v1/activities/{wheel.id}/prizes/mine",
    ):
        assert_error(http.get(url, headers=other.shopper_headers("x")), 404, "activity_not_found")
    assert_error(
        http.get("/v1/activities/no-such-thing", headers=tenant.shopper_headers("x")),
        404,
        "activity_not_found",
    )
    assert_error(http.get(f"/v1/activities/{wheel.id}"), 401, "missing_token")


def test_info_of_paused_activity(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel([GOLD], status="paused")
    info = _info(http, tenant, wheel.id, "dee")
    assert info["status"] == "paused" and info["me"]["can_draw"] is False


# -- my prizes --------------------------------------------------------------------------


def test_my_prizes_lists_exactly_my_wins(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    # Even odds between a coupon and "thanks" (a loss): both outcomes occur.
    wheel = tenant.wheel([Prize(id="cup", name="Cup", kind="item", weight=1)])
    outcomes = [_ok(draw(http, tenant, wheel.id, "eve")) for _ in range(12)]
    _ok(draw(http, tenant, wheel.id, "fay"))  # someone else's draw

    won = {o["request_id"]: o for o in outcomes if o["status"] == "won"}
    assert all(o["prize"]["id"] == "cup" for o in won.values())
    assert all(o["prize"]["id"] == "thanks" for o in outcomes if o["status"] == "lost")
    mine = _ok(
        http.get(f"/v1/activities/{wheel.id}/prizes/mine", headers=tenant.shopper_headers("eve"))
    )
    assert len(mine) == len(won)
    assert {m["request_id"]: m for m in mine} == won
    assert [m["request_id"] for m in mine] == [
        o["request_id"] for o in outcomes if o["status"] == "won"
    ]

    nobody = http.get(
        f"/v1/activities/{wheel.id}/prizes/mine", headers=tenant.shopper_headers("gus")
    )
    assert _ok(nobody) == []


def test_retry_returns_the_same_outcome(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel([Prize(id="cup", name="Cup", kind="item", weight=1, stock=1)])
    first = _ok(draw(http, tenant, wheel.id, "hal", request_id="once"))
    again = _ok(draw(http, tenant, wheel.id, "hal", request_id="once"))
    assert again == first
    polled = http.get(
        f"/v1/activities/{wheel.id}/draws/once", headers=tenant.shopper_headers("hal")
    )
    assert _ok(polled) == first
    assert _info(http, tenant, wheel.id, "hal")["me"]["draws"] == 1


# -- points -----------------------------------------------------------------------------


def test_points_cost_perdraw(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel([GOLD], limits=Limits(points_cost=10))
    assert _points(http, tenant, "ivy") == 0
    info = _info(http, tenant, wheel.id, "ivy")
    assert info["points_cost"] == 10 and info["me"]["can_draw"] is False
    assert_error(draw(http, tenant, wheel.id, "ivy"), 409, "insufficient_points")

    assert _grant(http, tenant, "ivy", 25) == 25
    assert _points(http, tenant, "ivy") == 25
    assert _info(http, tenant, wheel.id, "ivy")["me"]["can_draw"] is True
    for left in (15, 5):
        assert _ok(draw(http, tenant, wheel.id, "ivy"))["prize"]["id"] in {"gold", "thanks"}
        assert _points(http, tenant, "ivy") == left
    assert_error(draw(http, tenant, wheel.id, "ivy"), 409, "insufficient_points")
    assert _points(http, tenant, "ivy") == 5
    info = _info(http, tenant, wheel.id, "ivy")
    assert info["me"]["points"] == 5 and info["me"]["draws"] == 2
    assert info["me"]["can_draw"] is False

    # Points are per tenant: another merchant's shopper of the same name has none.
    assert _points(http, pipeline.tenant(), "ivy") == 0
    assert_error(
        http.post(
            f"{ADMIN}/points/grants",
            json={"user_id": "ivy", "amount": 0},
            headers=tenant.staff_headers,
        ),
        422,
        "invalid_request",
    )


def test_points_prize_credits_the_balance(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    bonus = Prize(id="bonus", name="50 points", kind="points", weight=1_000_000, points=50)
    wheel = tenant.wheel([bonus])
    outcome = _ok(draw(http, tenant, wheel.id, "jo"))
    assert outcome["status"] == "won" and outcome["prize"]["id"] == "bonus"
    assert outcome["prize"]["kind"] == "points" and outcome["amount"] == 50
    assert _points(http, tenant, "jo") == 50

    # With a cost, the prize's points and the cost net out.
    costly = tenant.wheel([bonus], limits=Limits(points_cost=10))
    outcome = _ok(draw(http, tenant, costly.id, "jo"))
    assert outcome["prize"]["id"] == "bonus"
    assert _points(http, tenant, "jo") == 50 - 10 + 50


# -- rejections -------------------------------------------------------------------------


def test_blacklisted_user(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel([GOLD], rules=Rules(blacklist=("mallory",)))
    body = assert_error(draw(http, tenant, wheel.id, "mallory", "bl-1"), 403, "user_blacklisted")
    assert body["details"]["request_id"] == "bl-1"
    assert _info(http, tenant, wheel.id, "mallory")["me"]["can_draw"] is False
    _ok(draw(http, tenant, wheel.id, "kim"))
    assert _info(http, tenant, wheel.id, "kim")["me"]["can_draw"] is True
    # The rejection is the outcome of that request id: a retry gets it again.
    assert_error(draw(http, tenant, wheel.id, "mallory", "bl-1"), 403, "user_blacklisted")


def test_daily_limit(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel([GOLD], limits=Limits(per_user_daily=2))
    _ok(draw(http, tenant, wheel.id, "lou"))
    _ok(draw(http, tenant, wheel.id, "lou"))
    assert_error(draw(http, tenant, wheel.id, "lou"), 409, "daily_limit_reached")
    _ok(draw(http, tenant, wheel.id, "max"))


def test_activity_max_draws(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel([GOLD], limits=Limits(max_draws=3))
    for user in ("ned", "oli", "pat"):
        _ok(draw(http, tenant, wheel.id, user))
    assert_error(draw(http, tenant, wheel.id, "quin"), 409, "activity_draws_exhausted")
    assert_error(draw(http, tenant, wheel.id, "ned"), 409, "activity_draws_exhausted")
    assert pipeline.ledger.totals(tenant.tenant_id, wheel.id)["draws"] == 3


def test_red_envelopes_until_sold_out(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    envelopes = Envelopes(budget_cents=1_000, count=5, min_cents=50)
    activity = Activity(
        id=f"env-{uuid.uuid4().hex[:8]}",
        tenant_id=tenant.tenant_id,
        kind="red_envelope",
        name="Envelopes",
        status="running",
        envelopes=envelopes,
    )
    pipeline.ledger.install_activity(activity)
    info = _info(http, tenant, activity.id, "rae")
    assert info["kind"] == "red_envelope" and info["prizes"] == []
    assert info["envelopes_left"] == 5 and info["me"]["can_draw"] is True

    amounts = []
    for i in range(5):
        outcome = _ok(draw(http, tenant, activity.id, f"opener{i}"))
        assert outcome["status"] == "won" and outcome["prize"] is None
        assert outcome["amount"] > 0 and outcome["amount"] >= envelopes.min_cents
        amounts.append(outcome["amount"])
        assert _info(http, tenant, activity.id, "rae")["envelopes_left"] == 4 - i
    assert sum(amounts) == envelopes.budget_cents

    assert_error(draw(http, tenant, activity.id, "late"), 409, "sold_out")
    assert _info(http, tenant, activity.id, "late")["me"]["can_draw"] is False
    mine = _ok(
        http.get(
            f"/v1/activities/{activity.id}/prizes/mine", headers=tenant.shopper_headers("opener0")
        )
    )
    assert [m["amount"] for m in mine] == amounts[:1]


def test_red_envelope_created_over_http(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    aid = f"env-{uuid.uuid4().hex[:8]}"
    created = http.post(
        f"{ADMIN}/activities",
        json={
            "id": aid,
            "kind": "red_envelope",
            "name": "Lucky",
            "envelopes": {"budget_cents": 300, "count": 2, "min_cents": 100},
        },
        headers=tenant.staff_headers,
    )
    assert created.status_code == 201, created.text
    transition = http.post(
        f"{ADMIN}/activities/{aid}/transitions",
        json={"to": "scheduled"},
        headers=tenant.staff_headers,
    )
    assert _ok(transition)["effective_status"] == "running"
    first = _ok(draw(http, tenant, aid, "sam"))["amount"]
    second = _ok(draw(http, tenant, aid, "tia"))["amount"]
    assert first >= 100 and second >= 100 and first + second == 300
    assert_error(draw(http, tenant, aid, "uma"), 409, "sold_out")
    view = _ok(http.get(f"{ADMIN}/activities/{aid}", headers=tenant.staff_headers))
    assert view["stock_left"] == {"envelopes": 0, "budget_cents": 0}
