"""Coupon rewards and claim conversions of referrals, on real servers: a friend
referred to a claim page converts by claiming one of its coupons (a claim of
another template does not count), the tenant's rule rewards each side with one
coupon of its template through the claim road, exactly once however often and
concurrently the referral is accepted and even after the rule changes, and the
tenant's figures reconcile."""

from __future__ import annotations

from typing import Any

import httpx

from tests.pipeline.conftest import Pipeline, Tenant, assert_error, assert_reconciled, wait_for
from tests.pipeline.test_claims import claim, install
from tests.pipeline.test_shares import accept_at_once

TIMES = 3
FRIEND_POINTS = 7


def _ok(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def _coupons(http: httpx.Client, tenant: Tenant, user: str, template_id: str) -> list[str]:
    """The ids of the user's coupons of ``template_id``, each a referral reward."""
    wallet = _ok(http.get("/v1/wallet", headers=tenant.shopper_headers(user)))
    ids = [c["coupon_id"] for c in wallet if c["template_id"] == template_id]
    for coupon_id in ids:
        coupon = _ok(http.get(f"/v1/coupons/{coupon_id}", headers=tenant.staff_headers))
        assert coupon["source"] == "referral", coupon
    return ids


def test_a_claim_converts_and_each_side_gets_one_coupon(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    tenant = pipeline.tenant()
    staff = tenant.staff_headers
    offered = install(tenant, name="Page coupon")
    elsewhere = install(tenant, name="Not on the page")
    thanks = install(tenant, name="Thanks for sharing", limits={"stock": 100})
    welcome = install(tenant, name="Welcome", limits={"stock": 100, "per_user": 1})
    page = tenant.install(kind="claim", name="Claim centre", templates=(offered.id,))

    # -- the rule: templates of the tenant only -------------------------------------------
    rule = {
        "advocate_points": 0,
        "friend_points": FRIEND_POINTS,
        "advocate_template_id": thanks.id,
        "friend_template_id": welcome.id,
    }
    assert _ok(http.put("/v1/admin/referral-rules", json=rule, headers=staff)) == rule
    assert _ok(http.get("/v1/admin/referral-rules", headers=staff)) == rule
    other = pipeline.tenant()
    foreign = install(other, name="Another tenant's")
    unknown = (("advocate_template_id", "nope"), ("friend_template_id", foreign.id))
    for field, template_id in unknown:
        refused = assert_error(
            http.put("/v1/admin/referral-rules", json={field: template_id}, headers=staff),
            404,
            "template_not_found",
        )
        assert refused["message"].startswith(f"{field}: ")
        assert refused["details"] == {"field": field, "template_id": template_id}
    assert_error(
        http.put("/v1/admin/referral-rules", json={"friend_template_id": "../x"}, headers=staff),
        422,
        "invalid_request",
    )
    assert _ok(http.get("/v1/admin/referral-rules", headers=staff)) == rule  # unchanged

    # -- bob is referred by ann; a claim of a template the page does not offer -----------
    link = _ok(
        http.post(
            "/v1/me/shares",
            json={"activity_id": page.id, "channel": "copy"},
            headers=tenant.shopper_headers("ann"),
        )
    )
    code = link["code"]
    bob = tenant.shopper_headers("bob")
    bound = _ok(http.post("/v1/me/referrals", json={"code": code}, headers=bob))
    assert (bound["advocate_id"], bound["converted"]) == ("ann", False)
    assert _ok(claim(http, tenant, elsewhere.id, "bob"))["status"] == "issued"
    answer = _ok(http.post("/v1/me/referrals", json={"code": code}, headers=bob))
    assert (answer["converted"], answer["rewards"]) == (False, [])

    # -- bob claims the page's coupon: accepted three times at once, one reward each ------
    assert _ok(claim(http, tenant, offered.id, "bob"))["status"] == "issued"
    answers = accept_at_once(pipeline, tenant, "bob", code, TIMES)
    seen: dict[tuple[str, str], set[str]] = {}
    for answer in answers:
        assert answer["converted"] is True
        for r in answer["rewards"]:
            seen.setdefault((r["side"], r["kind"]), set()).add(
                r["coupon_id"] if r["kind"] == "coupon" else str(r["points"])
            )
            assert r["status"] in ("issued", "applied"), r
        by = {(r["side"], r["kind"]): r for r in answer["rewards"]}
        assert set(by) == {("friend", "points"), ("advocate", "coupon"), ("friend", "coupon")}
        assert (by["advocate", "coupon"]["user_id"], by["advocate", "coupon"]["template_id"]) == (
            "ann",
            thanks.id,
        )
        assert (by["friend", "coupon"]["user_id"], by["friend", "coupon"]["template_id"]) == (
            "bob",
            welcome.id,
        )
    # every answer names the same coupon: one grant per side, answered again
    assert all(len(ids) == 1 for ids in seen.values()), seen
    advocate_coupon = next(iter(seen["advocate", "coupon"]))
    friend_coupon = next(iter(seen["friend", "coupon"]))

    # -- the rule changes; later acceptances still grant nothing more -----------------------
    later = install(tenant, name="Later reward", limits={"stock": 100})
    changed = {**rule, "advocate_template_id": later.id, "friend_template_id": later.id}
    _ok(http.put("/v1/admin/referral-rules", json=changed, headers=staff))
    for answer in accept_at_once(pipeline, tenant, "bob", code, TIMES):
        coupons = {r["side"]: r for r in answer["rewards"] if r["kind"] == "coupon"}
        assert coupons["advocate"]["coupon_id"] == advocate_coupon
        assert coupons["friend"]["coupon_id"] == friend_coupon
        assert coupons["advocate"]["template_id"] == thanks.id  # the first rule's, pinned

    assert _coupons(http, tenant, "ann", thanks.id) == [advocate_coupon]
    assert _coupons(http, tenant, "bob", welcome.id) == [friend_coupon]
    assert _coupons(http, tenant, "ann", later.id) == _coupons(http, tenant, "bob", later.id) == []
    points = _ok(http.get("/v1/me/points", headers=bob))["points"]
    assert points == FRIEND_POINTS

    # -- one conversion in ClickHouse; the tenant's figures agree with the ledger -----------
    path = f"/v1/stats/activities/{page.id}/shares"
    wait_for(
        lambda: _ok(http.get(path, headers=staff))["conversions"] == 1,
        30,
        "the claim's conversion in ClickHouse",
    )
    assert_reconciled(pipeline, tenant.tenant_id)
