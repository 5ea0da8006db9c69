"""Operator API over HTTP on the real pipeline: create activities, drive their
lifecycle, edit, add stock, roles, tenant isolation and the audit log."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.pipeline.conftest import Pipeline, Tenant, assert_error, draw, wait_for

ADMIN = "/v1/admin"


def _ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _id(prefix: str = "act") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _wheel_body(activity_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A wheel whose only real prize (stock 5) is drawn ~always: weight 1e6 vs 1."""
    body: dict[str, Any] = {
        "id": activity_id or _id(),
        "kind": "wheel",
        "name": "Spring wheel",
        "prizes": [
            {"id": "coupon5", "name": "5 off", "kind": "coupon", "weight": 1_000_000, "stock": 5},
            {"id": "thanks", "name": "Thanks", "kind": "thanks", "weight": 1},
        ],
        "fallback_prize_id": "thanks",
    }
    body.update(overrides)
    return body


def _grid_body(cells: int, **overrides: Any) -> dict[str, Any]:
    prizes = [
        {"id": f"c{i}", "name": f"Cell {i}", "kind": "item", "weight": 10, "stock": 3}
        for i in range(cells - 1)
    ]
    prizes.append({"id": "thanks", "name": "Thanks", "kind": "thanks", "weight": 10})
    return {
        "id": _id("grid"),
        "kind": "grid",
        "name": "Marquee",
        "prizes": prizes,
        "fallback_prize_id": "thanks",
        **overrides,
    }


def _create(http: httpx.Client, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    return _ok(http.post(f"{ADMIN}/activities", json=body, headers=tenant.staff_headers), 201)


def _transition(http: httpx.Client, tenant: Tenant, activity_id: str, to: str) -> httpx.Response:
    return http.post(
        f"{ADMIN}/activities/{activity_id}/transitions",
        json={"to": to},
        headers=tenant.staff_headers,
    )


def _drawn_prize(http: httpx.Client, tenant: Tenant, activity_id: str, user: str) -> str:
    body = _ok(draw(http, tenant, activity_id, user))
    assert body["status"] in {"won", "lost"}
    return body["prize"]["id"]


# -- creation ---------------------------------------------------------------------------


def test_create_wheel_starts_as_draft(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    body = _wheel_body()
    view = _create(http, tenant, body)
    assert view["activity"]["id"] == body["id"]
    assert view["activity"]["tenant_id"] == tenant.tenant_id
    assert view["activity"]["status"] == "draft"
    assert view["effective_status"] == "draft"
    assert view["stock_left"] == {"coupon5": 5}  # the fallback is unlimited: no stock field

    got = _ok(http.get(f"{ADMIN}/activities/{body['id']}", headers=tenant.staff_headers))
    assert got == view
    listed = _ok(http.get(f"{ADMIN}/activities", headers=tenant.staff_headers))
    assert [v["activity"]["id"] for v in listed] == [body["id"]]

    assert_error(
        http.post(f"{ADMIN}/activities", json=body, headers=tenant.staff_headers),
        409,
        "activity_exists",
    )
    assert_error(draw(http, tenant, body["id"], "early-bird"), 409, "activity_not_running")


def test_create_without_id_generates_one(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    body = _wheel_body()
    del body["id"]
    view = _create(http, tenant, body)
    assert view["activity"]["id"].startswith("act-")


def test_create_grid_needs_exactly_eight_cells(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    grid = _grid_body(8)
    view = _create(http, tenant, grid)
    assert view["activity"]["kind"] == "grid"
    assert len(view["activity"]["prizes"]) == 8
    assert view["stock_left"] == {f"c{i}": 3 for i in range(7)}

    seven = _grid_body(7)
    body = assert_error(
        http.post(f"{ADMIN}/activities", json=seven, headers=tenant.staff_headers),
        422,
        "invalid_activity",
    )
    problems = body["details"]["problems"]
    assert problems and all({"field", "problem"} <= set(p) for p in problems)
    assert any("8" in p["problem"] for p in problems), problems
    assert_error(
        http.get(f"{ADMIN}/activities/{seven['id']}", headers=tenant.staff_headers),
        404,
        "activity_not_found",
    )


def test_create_red_envelope(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    body = {
        "id": _id("env"),
        "kind": "red_envelope",
        "name": "Lucky money",
        "envelopes": {"budget_cents": 10_000, "count": 20, "min_cents": 10},
    }
    view = _create(http, tenant, body)
    assert view["activity"]["envelopes"] == body["envelopes"]
    assert view["stock_left"] == {"envelopes": 20, "budget_cents": 10_000}

    # A budget below count × min fails the body's schema; prizes on envelopes fail
    # the activity's own checks.
    bad = {**body, "id": _id("env"), "envelopes": {"budget_cents": 10, "count": 20}}
    problems = assert_error(
        http.post(f"{ADMIN}/activities", json=bad, headers=tenant.staff_headers),
        422,
        "invalid_request",
    )["details"]["problems"]
    assert problems[0]["field"].startswith("body.envelopes")
    with_prizes = {**_wheel_body(), "kind": "red_envelope", "envelopes": body["envelopes"]}
    assert_error(
        http.post(f"{ADMIN}/activities", json=with_prizes, headers=tenant.staff_headers),
        422,
        "invalid_activity",
    )


def test_invalid_wheels_are_refused(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    no_fallback = _wheel_body(fallback_prize_id="nope")
    limited_fallback = _wheel_body(
        prizes=[
            {"id": "p", "name": "P", "kind": "coupon", "weight": 1, "stock": 1},
            {"id": "thanks", "name": "Thanks", "kind": "thanks", "weight": 1, "stock": 3},
        ]
    )
    backwards = _wheel_body(starts_at=_now_ms() + 10_000, ends_at=_now_ms())
    for body in (no_fallback, limited_fallback, backwards):
        assert_error(
            http.post(f"{ADMIN}/activities", json=body, headers=tenant.staff_headers),
            422,
            "invalid_activity",
        )
    assert _ok(http.get(f"{ADMIN}/activities", headers=tenant.staff_headers)) == []


# -- lifecycle --------------------------------------------------------------------------


def test_lifecycle_over_http(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    aid = _create(http, tenant, _wheel_body())["activity"]["id"]

    assert_error(_transition(http, tenant, aid, "paused"), 409, "invalid_transition")
    assert_error(_transition(http, tenant, aid, "running"), 409, "invalid_transition")
    assert_error(draw(http, tenant, aid, "u1"), 409, "activity_not_running")

    # Scheduled without a start time: open at once.
    view = _ok(_transition(http, tenant, aid, "scheduled"))
    assert view["activity"]["status"] == "scheduled"
    assert view["effective_status"] == "running"
    assert _drawn_prize(http, tenant, aid, "u1") == "coupon5"

    view = _ok(_transition(http, tenant, aid, "paused"))
    assert view["activity"]["status"] == view["effective_status"] == "paused"
    assert_error(draw(http, tenant, aid, "u1"), 409, "activity_not_running")
    assert_error(_transition(http, tenant, aid, "scheduled"), 409, "invalid_transition")

    view = _ok(_transition(http, tenant, aid, "running"))
    assert view["activity"]["status"] == view["effective_status"] == "running"
    assert _drawn_prize(http, tenant, aid, "u2") == "coupon5"
    assert view["activity"]["version"] == 4

    view = _ok(_transition(http, tenant, aid, "ended"))
    assert view["activity"]["status"] == view["effective_status"] == "ended"
    assert_error(draw(http, tenant, aid, "u3"), 409, "activity_not_running")
    for to in ("running", "paused", "scheduled", "draft", "ended"):
        assert_error(_transition(http, tenant, aid, to), 409, "invalid_transition")

    # Nothing the rejected calls tried was written.
    got = _ok(http.get(f"{ADMIN}/activities/{aid}", headers=tenant.staff_headers))
    assert got["activity"]["status"] == "ended" and got["activity"]["version"] == 5
    assert got["stock_left"] == {"coupon5": 3}
    assert_error(
        http.post(
            f"{ADMIN}/activities/{aid}/transitions",
            json={"to": "nowhere"},
            headers=tenant.staff_headers,
        ),
        422,
        "invalid_request",
    )


def test_scheduled_then_started_early_accepts_draws(pipeline: Pipeline, http: httpx.Client) -> None:
    """Scheduled for later, the operator starts it now: status 'running' must mean
    shoppers can draw (not a 'running' activity that rejects every draw)."""
    tenant = pipeline.tenant()
    aid = _create(http, tenant, _wheel_body(starts_at=_now_ms() + 3_600_000))["activity"]["id"]
    view = _ok(_transition(http, tenant, aid, "scheduled"))
    assert view["effective_status"] == "scheduled"
    assert_error(draw(http, tenant, aid, "u1"), 409, "activity_not_running")

    view = _ok(_transition(http, tenant, aid, "running"))
    assert view["effective_status"] == "running"
    info = _ok(http.get(f"/v1/activities/{aid}", headers=tenant.shopper_headers("u1")))
    assert info["status"] == "running"
    assert info["me"]["can_draw"] is True, info
    assert _drawn_prize(http, tenant, aid, "u1") == "coupon5"


def test_time_window_by_the_clock(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    # Scheduled with a start in the past: it counts as running.
    started = _wheel_body(starts_at=_now_ms() - 60_000)
    aid = _create(http, tenant, started)["activity"]["id"]
    view = _ok(_transition(http, tenant, aid, "scheduled"))
    assert view["activity"]["status"] == "scheduled"
    assert view["effective_status"] == "running"
    assert _drawn_prize(http, tenant, aid, "u1") == "coupon5"
    # ... so it can be paused (the transition follows the effective status).
    assert _ok(_transition(http, tenant, aid, "paused"))["effective_status"] == "paused"

    # Scheduled with an end already past: it counts as ended.
    over = _wheel_body(starts_at=_now_ms() - 120_000, ends_at=_now_ms() - 60_000)
    oid = _create(http, tenant, over)["activity"]["id"]
    view = _ok(_transition(http, tenant, oid, "scheduled"))
    assert view["effective_status"] == "ended"
    assert_error(draw(http, tenant, oid, "u1"), 409, "activity_not_running")
    assert_error(_transition(http, tenant, oid, "running"), 409, "invalid_transition")
    info = _ok(http.get(f"/v1/activities/{oid}", headers=tenant.shopper_headers("u1")))
    assert info["status"] == "ended" and info["me"]["can_draw"] is False

    # A running activity ends when the clock passes ends_at.
    soon = _wheel_body(ends_at=_now_ms() + 1_500)
    sid = _create(http, tenant, soon)["activity"]["id"]
    _ok(_transition(http, tenant, sid, "scheduled"))
    wait_for(
        lambda: draw(http, tenant, sid, "u2").status_code == 409,
        15,
        "the draw to be refused after ends_at",
    )
    assert_error(draw(http, tenant, sid, "u3"), 409, "activity_not_running")
    got = _ok(http.get(f"{ADMIN}/activities/{sid}", headers=tenant.staff_headers))
    assert got["activity"]["status"] == "scheduled" and got["effective_status"] == "ended"


# -- editing ----------------------------------------------------------------------------


def test_edit_rules_per_state(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    aid = _create(http, tenant, _wheel_body())["activity"]["id"]
    url = f"{ADMIN}/activities/{aid}"
    headers = tenant.staff_headers

    assert_error(http.patch(url, json={}, headers=headers), 422, "nothing_to_change")
    assert_error(
        http.patch(url, json={"status": "running"}, headers=headers), 422, "invalid_request"
    )
    assert_error(
        http.patch(
            url,
            json={"prizes": [{"id": "only", "name": "O", "kind": "item", "weight": 1}]},
            headers=headers,
        ),
        422,
        "invalid_activity",
    )

    # Running: name and ends_at only.
    _ok(_transition(http, tenant, aid, "scheduled"))
    _ok(_transition(http, tenant, aid, "paused"))
    _ok(_transition(http, tenant, aid, "running"))
    new_prizes = [
        {"id": "coupon5", "name": "5 off", "kind": "coupon", "weight": 1, "stock": 500},
        {"id": "thanks", "name": "Thanks", "kind": "thanks", "weight": 1},
    ]
    assert_error(
        http.patch(url, json={"prizes": new_prizes}, headers=headers), 409, "activity_live"
    )
    assert_error(
        http.patch(url, json={"name": "x", "limits": {"per_user_total": 1}}, headers=headers),
        409,
        "activity_live",
    )
    ends = _now_ms() + 86_400_000
    view = _ok(http.patch(url, json={"name": "Summer wheel", "ends_at": ends}, headers=headers))
    assert view["activity"]["name"] == "Summer wheel" and view["activity"]["ends_at"] == ends
    assert view["activity"]["prizes"][0]["stock"] == 5
    assert view["effective_status"] == "running"

    # Paused is still live: the pool stays frozen.
    _ok(_transition(http, tenant, aid, "paused"))
    assert_error(
        http.patch(url, json={"prizes": new_prizes}, headers=headers), 409, "activity_live"
    )
    assert _ok(http.patch(url, json={"name": "Paused"}, headers=headers))["activity"]["name"] == (
        "Paused"
    )

    _ok(_transition(http, tenant, aid, "ended"))
    assert_error(http.patch(url, json={"name": "Too late"}, headers=headers), 409, "activity_ended")
    got = _ok(http.get(url, headers=headers))
    assert got["activity"]["name"] == "Paused"


def test_edit_draft_changes_prizes(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    aid = _create(http, tenant, _wheel_body())["activity"]["id"]
    url = f"{ADMIN}/activities/{aid}"
    new_prizes = [
        {"id": "coupon5", "name": "5 off", "kind": "coupon", "weight": 1, "stock": 1},
        {"id": "tv", "name": "TV", "kind": "item", "weight": 1_000_000, "stock": 2},
        {"id": "thanks", "name": "Thanks", "kind": "thanks", "weight": 1},
    ]
    view = _ok(
        http.patch(
            url,
            json={"prizes": new_prizes, "limits": {"per_user_total": 9}, "name": "Redone"},
            headers=tenant.staff_headers,
        )
    )
    assert [p["id"] for p in view["activity"]["prizes"]] == ["coupon5", "tv", "thanks"]
    assert view["activity"]["prizes"][1]["stock"] == 2
    assert view["activity"]["limits"]["per_user_total"] == 9
    assert view["activity"]["version"] == 2
    # The ledger's stock follows the edited pool (what the actor will award).
    assert view["stock_left"] == {"coupon5": 1, "tv": 2}

    _ok(_transition(http, tenant, aid, "scheduled"))
    assert _drawn_prize(http, tenant, aid, "u1") == "tv"


def test_stock_cut_on_draft_is_never_exceeded(pipeline: Pipeline, http: httpx.Client) -> None:
    """Stock lowered by editing a draft: the actor must not award more than configured."""
    tenant = pipeline.tenant()
    aid = _create(http, tenant, _wheel_body())["activity"]["id"]  # coupon5: stock 5
    cut = [
        {"id": "coupon5", "name": "5 off", "kind": "coupon", "weight": 1_000_000, "stock": 1},
        {"id": "thanks", "name": "Thanks", "kind": "thanks", "weight": 1},
    ]
    url = f"{ADMIN}/activities/{aid}"
    _ok(http.patch(url, json={"prizes": cut}, headers=tenant.staff_headers))
    _ok(_transition(http, tenant, aid, "scheduled"))
    drawn = [_drawn_prize(http, tenant, aid, f"u{i}") for i in range(3)]
    assert drawn.count("coupon5") <= 1, drawn


# -- stock ------------------------------------------------------------------------------


def test_add_stock_while_running_reaches_the_actor(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    body = _wheel_body(
        prizes=[
            {"id": "gold", "name": "Gold", "kind": "item", "weight": 1_000_000, "stock": 1},
            {"id": "thanks", "name": "Thanks", "kind": "thanks", "weight": 1},
        ]
    )
    aid = _create(http, tenant, body)["activity"]["id"]
    _ok(_transition(http, tenant, aid, "scheduled"))
    _ok(_transition(http, tenant, aid, "paused"))
    _ok(_transition(http, tenant, aid, "running"))
    stock_url = f"{ADMIN}/activities/{aid}/stock"

    assert _drawn_prize(http, tenant, aid, "u1") == "gold"
    assert _drawn_prize(http, tenant, aid, "u2") == "thanks"  # sold out: the fallback

    view = _ok(
        http.post(stock_url, json={"prize_id": "gold", "add": 2}, headers=tenant.staff_headers)
    )
    assert view["stock_left"] == {"gold": 2}
    assert view["activity"]["prizes"][0]["stock"] == 3  # total ever configured
    assert [_drawn_prize(http, tenant, aid, u) for u in ("u3", "u4")] == ["gold", "gold"]
    assert _drawn_prize(http, tenant, aid, "u5") == "thanks"
    got = _ok(http.get(f"{ADMIN}/activities/{aid}", headers=tenant.staff_headers))
    assert got["stock_left"] == {"gold": 0}

    assert_error(
        http.post(stock_url, json={"prize_id": "thanks", "add": 1}, headers=tenant.staff_headers),
        409,
        "unlimited_stock",
    )
    assert_error(
        http.post(stock_url, json={"prize_id": "nope", "add": 1}, headers=tenant.staff_headers),
        409,
        "prize_not_found",
    )
    assert_error(
        http.post(stock_url, json={"prize_id": "gold", "add": 0}, headers=tenant.staff_headers),
        422,
        "invalid_request",
    )
    _ok(_transition(http, tenant, aid, "ended"))
    assert_error(
        http.post(stock_url, json={"prize_id": "gold", "add": 1}, headers=tenant.staff_headers),
        409,
        "activity_ended",
    )
    assert _ok(http.get(f"{ADMIN}/activities/{aid}", headers=tenant.staff_headers))[
        "stock_left"
    ] == {"gold": 0}


# -- roles, tenants, audit --------------------------------------------------------------


def test_analyst_reads_but_cannot_change(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    aid = _create(http, tenant, _wheel_body())["activity"]["id"]
    analyst = {"X-Api-Key": pipeline.ledger.create_api_key(tenant.tenant_id, "analyst", "ana")}

    assert _ok(http.get(f"{ADMIN}/activities/{aid}", headers=analyst))["activity"]["id"] == aid
    assert len(_ok(http.get(f"{ADMIN}/activities", headers=analyst))) == 1
    assert _ok(http.get(f"{ADMIN}/audit", headers=analyst))

    url = f"{ADMIN}/activities/{aid}"
    for reply in (
        http.post(f"{ADMIN}/activities", json=_wheel_body(), headers=analyst),
        http.patch(url, json={"name": "nope"}, headers=analyst),
        http.post(f"{url}/transitions", json={"to": "scheduled"}, headers=analyst),
        http.post(f"{url}/stock", json={"prize_id": "coupon5", "add": 1}, headers=analyst),
        http.post(f"{ADMIN}/points/grants", json={"user_id": "u", "amount": 5}, headers=analyst),
    ):
        assert_error(reply, 403, "forbidden")
    got = _ok(http.get(url, headers=analyst))
    assert got["activity"]["version"] == 1 and got["activity"]["name"] == "Spring wheel"
    assert _ok(http.get(f"{ADMIN}/activities", headers=analyst))[0]["activity"]["id"] == aid

    assert_error(http.get(f"{ADMIN}/activities"), 401, "missing_api_key")
    assert_error(
        http.get(f"{ADMIN}/activities", headers={"X-Api-Key": "ck_nope"}), 401, "invalid_api_key"
    )


def test_other_tenant_cannot_see_or_change(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant, other = pipeline.tenant(), pipeline.tenant()
    aid = _create(http, tenant, _wheel_body())["activity"]["id"]
    url = f"{ADMIN}/activities/{aid}"
    h = other.staff_headers
    for reply in (
        http.get(url, headers=h),
        http.patch(url, json={"name": "mine now"}, headers=h),
        http.post(f"{url}/transitions", json={"to": "scheduled"}, headers=h),
        http.post(f"{url}/stock", json={"prize_id": "coupon5", "add": 100}, headers=h),
    ):
        assert_error(reply, 404, "activity_not_found")
    assert _ok(http.get(f"{ADMIN}/activities", headers=h)) == []
    assert _ok(http.get(f"{ADMIN}/audit", headers=h)) == []

    # The same id is free in the other tenant, and stays separate.
    mine = _create(http, other, _wheel_body(aid, name="Other shop"))
    assert mine["activity"]["tenant_id"] == other.tenant_id
    got = _ok(http.get(url, headers=tenant.staff_headers))
    assert got["activity"]["name"] == "Spring wheel" and got["activity"]["version"] == 1
    assert got["stock_left"] == {"coupon5": 5}


def test_audit_log_lists_changes_in_order(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    alice = {"X-Api-Key": pipeline.ledger.create_api_key(tenant.tenant_id, "operator", "alice")}
    aid = _create(http, tenant, _wheel_body())["activity"]["id"]
    url = f"{ADMIN}/activities/{aid}"
    _ok(http.patch(url, json={"name": "Renamed"}, headers=alice))
    _ok(_transition(http, tenant, aid, "scheduled"))
    _ok(http.post(f"{url}/stock", json={"prize_id": "coupon5", "add": 7}, headers=alice))
    _ok(http.post(f"{url}/transitions", json={"to": "paused"}, headers=alice))
    _ok(http.post(f"{ADMIN}/points/grants", json={"user_id": "bob", "amount": 3}, headers=alice))
    # Refused changes leave no trace.
    assert_error(
        http.patch(url, json={"fallback_prize_id": "coupon5"}, headers=alice), 409, "activity_live"
    )
    assert_error(_transition(http, tenant, aid, "draft"), 409, "invalid_transition")

    log = _ok(http.get(f"{ADMIN}/audit", headers=tenant.staff_headers))
    newest_first = [(e["who"], e["action"], e["subject"], e["version"]) for e in log]
    assert newest_first[::-1] == [
        ("test", "activity.created", aid, "1"),
        ("alice", "activity.edited", aid, "2"),
        ("test", "activity.scheduled", aid, "3"),
        ("alice", "activity.stock_added", aid, "4"),
        ("alice", "activity.paused", aid, "5"),
        ("alice", "points.adjusted", "bob:3", "0"),
    ]
    stamps = [int(e["at"]) for e in log]
    assert stamps == sorted(stamps, reverse=True)
    assert (
        _ok(http.get(f"{ADMIN}/audit", params={"limit": 2}, headers=tenant.staff_headers))
        == (log[:2])
    )
    assert_error(
        http.get(f"{ADMIN}/audit", params={"limit": 0}, headers=tenant.staff_headers),
        422,
        "invalid_request",
    )


@pytest.mark.parametrize("role", ["admin", "operator"])
def test_operator_roles_can_manage(pipeline: Pipeline, http: httpx.Client, role: str) -> None:
    tenant = pipeline.tenant(role=role)
    aid = _create(http, tenant, _wheel_body())["activity"]["id"]
    assert _ok(_transition(http, tenant, aid, "scheduled"))["effective_status"] == "running"


def test_coupon_prize_issues_from_a_template_of_the_tenant(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    tenant = pipeline.tenant()
    body = _wheel_body()
    body["prizes"][0]["coupon_template"] = "spring-5-off"
    refused = http.post(f"{ADMIN}/activities", json=body, headers=tenant.staff_headers)
    problem = assert_error(refused, 422, "unknown_coupon_template")
    assert "prizes.0.coupon_template" in problem["message"]
    assert_error(
        http.get(f"{ADMIN}/activities/{body['id']}", headers=tenant.staff_headers),
        404,
        "activity_not_found",
    )

    template = {
        "id": "spring-5-off",
        "name": "5 off",
        "kind": "fixed",
        "amount_cents": 500,
        "validity": {"days_after_claim": 7},
    }
    _ok(http.post(f"{ADMIN}/templates", json=template, headers=tenant.staff_headers), 201)
    _create(http, tenant, body)
    _ok(
        http.post(
            f"{ADMIN}/activities/{body['id']}/transitions",
            json={"to": "scheduled"},
            headers=tenant.staff_headers,
        )
    )
    won = _ok(draw(http, tenant, body["id"], "lucky"))
    assert won["status"] == "won" and won["prize"]["id"] == "coupon5"
    wallet = _ok(http.get("/v1/wallet", headers=tenant.shopper_headers("lucky")))
    assert [
        (c["coupon_id"], c["template_id"], c["state"], c["face_value_cents"]) for c in wallet
    ] == [(won["coupon_id"], "spring-5-off", "available", 500)]
    stats = wait_for(
        lambda: (
            (s := _ok(http.get("/v1/stats/templates/spring-5-off", headers=tenant.staff_headers)))[
                "won_in_draws"
            ]
            == 1
            and s
        ),
        timeout=30,
        what="the won coupon in the template's stats",
    )
    assert (stats["claims"], stats["issued"]) == (0, 0)
