"""Coupon changes on the real pipeline: an operator voids a coupon, the sweep
expires coupons whose window passed (claimed and won in a draw), each change is
decided once and lands as one event in ClickHouse next to the claims."""

from __future__ import annotations

import time
from typing import Any

import httpx

from domain.activity import Prize
from domain.coupon_changes import NOTE_MAX_CHARS
from domain.topics import COUPON_CHANGES
from ledger.keys import TemplateKeys, TenantKeys
from tests.pipeline.conftest import (
    Pipeline,
    Tenant,
    assert_error,
    draw,
    outcome_events,
    wait_for,
)
from tests.pipeline.test_claims import claim


def _ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


def _template(http: httpx.Client, tenant: Tenant, validity: dict[str, int]) -> str:
    body = {"name": "5 off", "kind": "fixed", "amount_cents": 500, "validity": validity}
    created = http.post("/v1/admin/templates", json=body, headers=tenant.staff_headers)
    template_id = _ok(created, 201)["template"]["id"]
    _ok(http.post(f"/v1/admin/templates/{template_id}/start", headers=tenant.staff_headers))
    return template_id


def _claimed(http: httpx.Client, tenant: Tenant, template_id: str, user: str) -> str:
    return _ok(claim(http, tenant, template_id, user))["coupon"]["coupon_id"]


def _coupon(http: httpx.Client, tenant: Tenant, coupon_id: str) -> dict[str, Any]:
    return _ok(http.get(f"/v1/coupons/{coupon_id}", headers=tenant.staff_headers))


def _stats(http: httpx.Client, tenant: Tenant, template_id: str) -> dict[str, Any]:
    return _ok(http.get(f"/v1/stats/templates/{template_id}", headers=tenant.staff_headers))


def test_void_is_decided_once_and_shows_everywhere(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    template_id = _template(http, tenant, {"days_after_claim": 30})
    coupon_id = _claimed(http, tenant, template_id, "ann")
    kept_id = _claimed(http, tenant, template_id, "bob")
    assert _coupon(http, tenant, coupon_id)["state"] == "available"

    path = f"/v1/coupons/{coupon_id}/void"
    voided = _ok(http.post(path, json={"note": "fraud"}, headers=tenant.staff_headers))
    assert voided["status"] == "voided"
    assert (voided["coupon_id"], voided["user_id"], voided["note"]) == (coupon_id, "ann", "fraud")
    # Asked again, by the same or another call: the first void's answer, byte for byte.
    again = http.post(path, json={"note": "other"}, headers=tenant.staff_headers)
    assert (
        again.status_code == 200
        and again.content == http.post(path, headers=tenant.staff_headers).content
    )
    assert _ok(http.get(path, headers=tenant.staff_headers)) == voided
    assert _coupon(http, tenant, coupon_id)["state"] == "voided"
    wallet = _ok(http.get("/v1/wallet", headers=tenant.shopper_headers("ann")))
    assert [(c["coupon_id"], c["state"]) for c in wallet] == [(coupon_id, "voided")]

    # A voided coupon is not offered for a cart.
    cart = {"items": [{"sku": "a", "category": "c", "unit_cents": 5000, "qty": 1}]}
    best = http.post("/v1/wallet/best", json={"cart": cart}, headers=tenant.shopper_headers("ann"))
    assert _ok(best)["chosen"] == [] and _ok(best)["left_out"] == []

    stats = wait_for(
        lambda: (s := _stats(http, tenant, template_id))["voided"] == 1 and s["issued"] == 2 and s,
        30,
        "the void and both claims in the stats",
    )
    assert stats["expired"] == 0
    events = outcome_events(
        pipeline.settings.kafka_bootstrap,
        template_id,
        1,
        topic=COUPON_CHANGES,
        owner_field="template_id",
    )
    assert {(e["coupon_id"], e["op"], e["status"]) for e in events} == {
        (coupon_id, "void", "voided")
    }
    assert _coupon(http, tenant, kept_id)["state"] == "available"


def test_void_refusals(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant, other = pipeline.tenant(), pipeline.tenant()
    template_id = _template(http, tenant, {"days_after_claim": 30})
    coupon_id = _claimed(http, tenant, template_id, "ann")
    path = f"/v1/coupons/{coupon_id}/void"

    for body, problem in (
        ({"note": "x" * (NOTE_MAX_CHARS + 1)}, "note"),
        ({"reason": "typo"}, "reason"),
    ):
        reply = assert_error(
            http.post(path, json=body, headers=tenant.staff_headers), 422, "invalid_void"
        )
        assert problem in reply["message"]
    not_json = {**tenant.staff_headers, "Content-Type": "application/json"}
    for raw in (b"[1]", b"not json", b'"note"'):
        reply = http.post(path, content=raw, headers=not_json)
        assert reply.status_code == 422 and reply.json()["error"]["code"], reply.text
    assert_error(http.get(path, headers=tenant.staff_headers), 404, "request_not_found")
    # Another tenant's operator, a shopper, an analyst: none of them voids it.
    assert_error(http.post(path, headers=other.staff_headers), 404, "coupon_not_found")
    assert_error(
        http.get(f"/v1/coupons/{coupon_id}", headers=other.staff_headers), 404, "coupon_not_found"
    )
    assert_error(http.post(path, headers=tenant.shopper_headers("ann")), 401, "missing_api_key")
    analyst = {"X-Api-Key": pipeline.ledger.create_api_key(tenant.tenant_id, "analyst", "a")}
    assert_error(http.post(path, headers=analyst), 403, "forbidden")
    assert _ok(http.get(f"/v1/coupons/{coupon_id}", headers=analyst))["state"] == "available"
    assert_error(
        http.post("/v1/coupons/c_nosuch/void", headers=tenant.staff_headers),
        404,
        "coupon_not_found",
    )
    assert pipeline.redis.hlen(TemplateKeys(tenant.tenant_id, template_id).changes) == 0


def test_expired_coupons_become_events_once(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    ends_at = int(time.time() * 1000) + 6_000
    template_id = _template(http, tenant, {"ends_at": ends_at})
    claimed = [_claimed(http, tenant, template_id, user) for user in ("ann", "bob", "cat")]
    wheel = tenant.wheel(
        [Prize(id="c", name="5 off", kind="coupon", weight=1_000_000, coupon_template=template_id)]
    )
    won = draw(http, tenant, wheel.id, "dan").json()
    assert won["status"] == "won", won
    claimed.append(won["coupon_id"])
    keys = TenantKeys(tenant.tenant_id)
    assert pipeline.redis.zmscore(keys.expiries, claimed) == [float(ends_at)] * 4
    voided = _ok(http.post(f"/v1/coupons/{claimed[0]}/void", headers=tenant.staff_headers))
    assert voided["status"] == "voided"

    stats = wait_for(
        lambda: (
            (s := _stats(http, tenant, template_id))["expired"] == 3
            and s["issued"] + s["won_in_draws"] == 4
            and s
        ),
        60,
        "three expiries and four coupons in the stats",
    )
    assert (stats["voided"], stats["issued"], stats["won_in_draws"]) == (1, 3, 1)
    assert [_coupon(http, tenant, c)["state"] for c in claimed] == [
        "voided",
        "expired",
        "expired",
        "expired",
    ]
    assert pipeline.redis.zcard(keys.expiries) == 0
    changes = pipeline.redis.hgetall(TemplateKeys(tenant.tenant_id, template_id).changes)
    assert sorted(k.decode().split(":", 1)[1].split("-", 1)[0] for k in changes) == [
        "expire",
        "expire",
        "expire",
        "void",
    ]
    # An expired coupon cannot be voided any more.
    refused = http.post(f"/v1/coupons/{claimed[1]}/void", headers=tenant.staff_headers)
    assert_error(refused, 409, "coupon_not_available")
