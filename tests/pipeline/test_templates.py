"""Operator API for coupon templates over HTTP on the real pipeline: create every
kind, bad templates refused with their field and nothing written, lifecycle,
live edits refused, stock, roles, tenant isolation, the audit log."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from domain.coupons import CouponTemplate
from ledger.store import VersionConflict
from ledger.templates import TemplateStore
from tests.pipeline.conftest import Pipeline, Tenant, assert_error

TEMPLATES = "/v1/admin/templates"
DAY_MS = 86_400_000
NOW_MS = 1_750_000_000_000

KIND_BODIES: dict[str, dict[str, Any]] = {
    "fixed": {"amount_cents": 500, "threshold_cents": 2000},
    "threshold": {"amount_cents": 1000, "threshold_cents": 10_000, "repeat": True},
    "free_order": {"cap_cents": 5000, "scope": {"include_shipping": True}},
    "percent": {"percent": 15, "cap_cents": 3000, "scope": {"categories": ["shoes"]}},
    "flash_price": {
        "flash": {"sku": "tv-55", "price_cents": 19_900, "max_qty": 1},
        "validity": {"starts_at": NOW_MS, "ends_at": NOW_MS + DAY_MS},
    },
}


def _ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


def _body(kind: str = "fixed", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"tpl-{uuid.uuid4().hex[:10]}",
        "name": f"{kind} coupon",
        "kind": kind,
        "validity": {"days_after_claim": 30},
        "limits": {"stock": 100, "per_user": 1},
        **KIND_BODIES[kind],
    }
    body.update(overrides)
    return body


def _create(http: httpx.Client, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    return _ok(http.post(TEMPLATES, json=body, headers=tenant.staff_headers), 201)


def _move(http: httpx.Client, tenant: Tenant, template_id: str, verb: str) -> httpx.Response:
    return http.post(f"{TEMPLATES}/{template_id}/{verb}", headers=tenant.staff_headers)


def _running(http: httpx.Client, tenant: Tenant, **overrides: Any) -> str:
    template_id = _create(http, tenant, _body(**overrides))["template"]["id"]
    _ok(_move(http, tenant, template_id, "start"))
    return template_id


# -- creation ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KIND_BODIES))
def test_create_every_kind_as_draft(pipeline: Pipeline, http: httpx.Client, kind: str) -> None:
    tenant = pipeline.tenant()
    body = _body(kind)
    view = _create(http, tenant, body)
    template = view["template"]
    assert template["id"] == body["id"] and template["kind"] == kind
    assert (template["tenant_id"], template["status"], template["version"]) == (
        tenant.tenant_id,
        "draft",
        1,
    )
    expected = CouponTemplate.model_validate({**body, "tenant_id": tenant.tenant_id})
    assert template == expected.model_dump(mode="json")
    assert (view["stock_left"], view["issued"]) == (100, 0)

    assert _ok(http.get(f"{TEMPLATES}/{body['id']}", headers=tenant.staff_headers)) == view
    assert _ok(http.get(TEMPLATES, headers=tenant.staff_headers)) == [view]
    assert_error(
        http.post(TEMPLATES, json=body, headers=tenant.staff_headers), 409, "template_exists"
    )


def test_create_without_id_and_unlimited_stock(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    body = _body(limits={})
    del body["id"]
    view = _create(http, tenant, body)
    assert view["template"]["id"].startswith("tpl-")
    assert view["stock_left"] is None and view["template"]["limits"]["stock"] is None


BAD_TEMPLATES: list[tuple[str, dict[str, Any], str]] = [
    ("fixed without amount", _body(amount_cents=0), "amount_cents"),
    ("percent above 99", _body("percent", percent=150), "percent"),
    ("threshold step below amount", _body("threshold", threshold_cents=500), "amount_cents"),
    ("free order without cap", _body("free_order", cap_cents=None), "cap_cents"),
    ("field of another kind", _body(percent=10), "percent"),
    (
        "validity both ways",
        _body(validity={"days_after_claim": 3, "ends_at": NOW_MS}),
        "validity",
    ),
    (
        "flash price relative window",
        _body("flash_price", validity={"days_after_claim": 1}),
        "validity",
    ),
    ("exclusive with a group", _body(stacking={"group": "spring"}), "stacking.group"),
    ("negative stock", _body(limits={"stock": -1}), "limits.stock"),
    ("claim closes first", _body(claim_opens_at=2000, claim_closes_at=1000), "claim_closes_at"),
    ("bad id", _body(id="no spaces"), "id"),
    ("no name", {k: v for k, v in _body().items() if k != "name"}, "name"),
    ("unknown field", _body(colour="red"), "colour"),
    ("tenant chosen by the client", _body(tenant_id="someone-else"), "tenant_id"),
    ("status chosen by the client", _body(status="running"), "status"),
]


@pytest.mark.parametrize(
    ("body", "field"), [case[1:] for case in BAD_TEMPLATES], ids=[c[0] for c in BAD_TEMPLATES]
)
def test_bad_template_names_its_field_and_writes_nothing(
    pipeline: Pipeline, http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    tenant = pipeline.tenant()
    error = assert_error(
        http.post(TEMPLATES, json=body, headers=tenant.staff_headers), 422, "invalid_template"
    )
    assert field in error["message"], error
    assert all({"field", "problem"} <= set(p) for p in error["details"]["problems"])
    if field != "id":  # a bad id is refused by the path too
        assert_error(
            http.get(f"{TEMPLATES}/{body['id']}", headers=tenant.staff_headers),
            404,
            "template_not_found",
        )
    assert _ok(http.get(TEMPLATES, headers=tenant.staff_headers)) == []
    assert _ok(http.get("/v1/admin/audit", headers=tenant.staff_headers)) == []


def test_body_must_be_an_object(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    assert_error(
        http.post(TEMPLATES, json=[_body()], headers=tenant.staff_headers), 422, "invalid_request"
    )


# -- lifecycle --------------------------------------------------------------------------


def test_lifecycle_over_http(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    tid = _create(http, tenant, _body())["template"]["id"]

    for verb in ("pause", "resume"):
        assert_error(_move(http, tenant, tid, verb), 409, "invalid_transition")
    assert _ok(_move(http, tenant, tid, "start"))["template"]["status"] == "running"
    assert_error(_move(http, tenant, tid, "start"), 409, "invalid_transition")
    assert_error(_move(http, tenant, tid, "resume"), 409, "invalid_transition")
    assert _ok(_move(http, tenant, tid, "pause"))["template"]["status"] == "paused"
    assert_error(_move(http, tenant, tid, "pause"), 409, "invalid_transition")
    assert _ok(_move(http, tenant, tid, "resume"))["template"]["status"] == "running"
    view = _ok(_move(http, tenant, tid, "end"))
    assert view["template"]["status"] == "ended" and view["template"]["version"] == 5
    for verb in ("start", "pause", "resume", "end"):
        assert_error(_move(http, tenant, tid, verb), 409, "invalid_transition")

    # Nothing the refused calls tried was written.
    got = _ok(http.get(f"{TEMPLATES}/{tid}", headers=tenant.staff_headers))
    assert got["template"]["status"] == "ended" and got["template"]["version"] == 5
    assert_error(_move(http, tenant, "no-such", "start"), 404, "template_not_found")


def test_a_draft_may_end_without_running(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    tid = _create(http, tenant, _body())["template"]["id"]
    assert _ok(_move(http, tenant, tid, "end"))["template"]["status"] == "ended"


# -- editing ----------------------------------------------------------------------------


def test_edit_draft_changes_terms_and_stock(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    tid = _create(http, tenant, _body())["template"]["id"]
    url = f"{TEMPLATES}/{tid}"
    view = _ok(
        http.patch(
            url,
            json={"amount_cents": 800, "limits": {"stock": 7}, "name": "8 off"},
            headers=tenant.staff_headers,
        )
    )
    assert view["template"]["amount_cents"] == 800 and view["template"]["name"] == "8 off"
    assert view["template"]["version"] == 2
    assert view["stock_left"] == 7  # the ledger's stock follows a draft's edit
    view = _ok(http.patch(url, json={"limits": {}}, headers=tenant.staff_headers))
    assert view["stock_left"] is None

    error = assert_error(
        http.patch(url, json={"percent": 20}, headers=tenant.staff_headers),
        422,
        "invalid_template",
    )
    assert "percent" in error["message"]
    assert_error(http.patch(url, json={}, headers=tenant.staff_headers), 422, "nothing_to_change")
    assert_error(
        http.patch(url, json={"status": "running"}, headers=tenant.staff_headers),
        409,
        "field_not_editable",
    )
    got = _ok(http.get(url, headers=tenant.staff_headers))
    assert got["template"]["version"] == 3 and got["template"]["percent"] == 0


def test_live_template_keeps_its_terms(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    tid = _running(http, tenant)
    url = f"{TEMPLATES}/{tid}"
    headers = tenant.staff_headers

    for terms in ({"amount_cents": 2000}, {"name": "x", "limits": {"stock": 5}}):
        assert_error(http.patch(url, json=terms, headers=headers), 409, "template_live")
    view = _ok(
        http.patch(
            url,
            json={"name": "Renamed", "description": "now", "claim_closes_at": NOW_MS * 2},
            headers=headers,
        )
    )
    assert view["template"]["name"] == "Renamed" and view["template"]["amount_cents"] == 500
    assert view["stock_left"] == 100

    _ok(_move(http, tenant, tid, "pause"))
    assert_error(http.patch(url, json={"percent": 5}, headers=headers), 409, "template_live")
    _ok(_move(http, tenant, tid, "end"))
    assert_error(http.patch(url, json={"name": "late"}, headers=headers), 409, "template_ended")
    assert _ok(http.get(url, headers=headers))["template"]["name"] == "Renamed"


def test_stale_replace_is_a_version_conflict(pipeline: Pipeline, http: httpx.Client) -> None:
    """Two operators edit from the same read: the second write is refused."""
    tenant = pipeline.tenant()
    tid = _create(http, tenant, _body())["template"]["id"]

    async def race() -> None:
        client = aioredis.Redis.from_url(pipeline.settings.redis_url)
        try:
            store = TemplateStore(client)
            read = await store.template(tenant.tenant_id, tid)
            assert read is not None
            first = read.model_copy(update={"name": "first", "version": 2})
            await store.replace(read, first, "alice", "template.edited")
            second = read.model_copy(update={"name": "second", "version": 2})
            with pytest.raises(VersionConflict):
                await store.replace(read, second, "bob", "template.edited")
        finally:
            await client.aclose()

    asyncio.run(race())
    got = _ok(http.get(f"{TEMPLATES}/{tid}", headers=tenant.staff_headers))
    assert got["template"]["name"] == "first" and got["template"]["version"] == 2


# -- stock ------------------------------------------------------------------------------


def test_add_stock(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    tid = _running(http, tenant)
    stock = f"{TEMPLATES}/{tid}/stock"
    headers = tenant.staff_headers

    view = _ok(http.post(stock, json={"amount": 25}, headers=headers))
    assert view["stock_left"] == 125 and view["template"]["limits"]["stock"] == 125
    assert view["template"]["limits"]["per_user"] == 1

    for amount in (0, -3, 10**10):
        assert_error(
            http.post(stock, json={"amount": amount}, headers=headers), 422, "invalid_request"
        )
    unlimited = _running(http, tenant, limits={})
    assert_error(
        http.post(f"{TEMPLATES}/{unlimited}/stock", json={"amount": 1}, headers=headers),
        409,
        "unlimited_stock",
    )
    _ok(_move(http, tenant, tid, "end"))
    assert_error(http.post(stock, json={"amount": 1}, headers=headers), 409, "template_ended")
    assert _ok(http.get(f"{TEMPLATES}/{tid}", headers=headers))["stock_left"] == 125


# -- roles, tenants, audit --------------------------------------------------------------


def _changes(http: httpx.Client, headers: dict[str, str], tid: str) -> list[httpx.Response]:
    """Every write to an existing template, with ``headers``."""
    url = f"{TEMPLATES}/{tid}"
    return [
        http.patch(url, json={"name": "nope"}, headers=headers),
        *(http.post(f"{url}/{verb}", headers=headers) for verb in ("start", "pause", "end")),
        http.post(f"{url}/stock", json={"amount": 1}, headers=headers),
    ]


def test_analyst_reads_but_cannot_change(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    tid = _create(http, tenant, _body())["template"]["id"]
    analyst = {"X-Api-Key": pipeline.ledger.create_api_key(tenant.tenant_id, "analyst", "ana")}

    assert _ok(http.get(f"{TEMPLATES}/{tid}", headers=analyst))["template"]["id"] == tid
    assert len(_ok(http.get(TEMPLATES, headers=analyst))) == 1
    for reply in (
        http.post(TEMPLATES, json=_body(), headers=analyst),
        *_changes(http, analyst, tid),
    ):
        assert_error(reply, 403, "forbidden")
    got = _ok(http.get(f"{TEMPLATES}/{tid}", headers=analyst))
    assert got["template"]["version"] == 1 and got["template"]["status"] == "draft"
    assert_error(http.get(TEMPLATES), 401, "missing_api_key")


def test_other_tenant_cannot_see_or_change(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant, other = pipeline.tenant(), pipeline.tenant()
    body = _body()
    tid = _create(http, tenant, body)["template"]["id"]
    h = other.staff_headers
    for reply in (http.get(f"{TEMPLATES}/{tid}", headers=h), *_changes(http, h, tid)):
        assert_error(reply, 404, "template_not_found")
    assert _ok(http.get(TEMPLATES, headers=h)) == []

    # The same id is free in the other tenant, and stays separate.
    mine = _create(http, other, {**body, "name": "Other shop"})
    assert mine["template"]["tenant_id"] == other.tenant_id
    got = _ok(http.get(f"{TEMPLATES}/{tid}", headers=tenant.staff_headers))
    assert got["template"]["name"] == body["name"] and got["template"]["version"] == 1


@pytest.mark.parametrize("role", ["admin", "operator"])
def test_operator_roles_manage(pipeline: Pipeline, http: httpx.Client, role: str) -> None:
    tenant = pipeline.tenant(role=role)
    assert _ok(_move(http, tenant, _create(http, tenant, _body())["template"]["id"], "start"))


def test_audit_log_records_every_change(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    alice = {"X-Api-Key": pipeline.ledger.create_api_key(tenant.tenant_id, "operator", "alice")}
    tid = _create(http, tenant, _body())["template"]["id"]
    url = f"{TEMPLATES}/{tid}"
    _ok(http.patch(url, json={"name": "Renamed"}, headers=alice))
    _ok(_move(http, tenant, tid, "start"))
    _ok(http.post(f"{url}/stock", json={"amount": 5}, headers=alice))
    _ok(http.post(f"{url}/pause", headers=alice))
    _ok(http.post(f"{url}/resume", headers=alice))
    _ok(_move(http, tenant, tid, "end"))
    # Refused changes leave no trace.
    assert_error(http.patch(url, json={"name": "x"}, headers=alice), 409, "template_ended")

    log = _ok(http.get("/v1/admin/audit", headers=tenant.staff_headers))
    assert [(e["who"], e["action"], e["subject"], e["version"]) for e in log][::-1] == [
        ("test", "template.created", tid, "1"),
        ("alice", "template.edited", tid, "2"),
        ("test", "template.started", tid, "3"),
        ("alice", "template.stock_added", tid, "4"),
        ("alice", "template.paused", tid, "5"),
        ("alice", "template.resumed", tid, "6"),
        ("test", "template.ended", tid, "7"),
    ]
