"""Partner write-off on the real pipeline: partners registered by the operator,
every request signed (RSA and HMAC), two partners racing to redeem the same
coupons, idempotent request ids, reversals, budgets, and the write-off events
in ClickHouse."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest

from domain.claims import Coupon
from domain.coupons import CouponTemplate
from domain.signing import PartnerAuth, generate_rsa_key, public_pem, sign_headers
from ledger.keys import TemplateKeys, TenantKeys
from tests.pipeline.conftest import Pipeline, Tenant, assert_error, assert_reconciled, wait_for

ORDER_ITEMS = [{"sku": "tee", "category": "clothes", "unit_cents": 2500, "qty": 2}]


def _ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


def _template(http: httpx.Client, tenant: Tenant, **fields: Any) -> CouponTemplate:
    body = {
        "name": "5 off from 20",
        "kind": "fixed",
        "amount_cents": 500,
        "threshold_cents": 2000,
        "validity": {"days_after_claim": 30},
        **fields,
    }
    created = _ok(http.post("/v1/admin/templates", json=body, headers=tenant.staff_headers), 201)
    template_id = created["template"]["id"]
    started = http.post(f"/v1/admin/templates/{template_id}/start", headers=tenant.staff_headers)
    return CouponTemplate.model_validate(_ok(started)["template"])


def _seed(pipeline: Pipeline, template: CouponTemplate, n: int) -> list[str]:
    """Coupons as the claim commit writes them (claims have their own tests)."""
    at = int(time.time() * 1000)
    coupons = [Coupon.issue(template, f"u{i}", "claim", f"u{i}:r", at) for i in range(n)]
    keys = TenantKeys(template.tenant_id)
    pipeline.redis.hset(keys.coupons, mapping={c.coupon_id: c.model_dump_json() for c in coupons})
    held = pipeline.redis.hmget(keys.wallets, [c.user_id for c in coupons])
    pipeline.redis.hset(
        keys.wallets,
        mapping={
            c.user_id: f"{h.decode()}\n{c.coupon_id}" if h else c.coupon_id
            for c, h in zip(coupons, held, strict=True)
        },
    )
    return [c.coupon_id for c in coupons]


def stats_when(
    http: httpx.Client, tenant: Tenant, template_id: str, **expected: int
) -> dict[str, Any]:
    """The template's stats once ClickHouse shows every ``expected`` figure."""
    path = f"/v1/stats/templates/{template_id}"

    def seen() -> dict[str, Any] | None:
        stats = _ok(http.get(path, headers=tenant.staff_headers))
        return stats if all(stats.get(k) == v for k, v in expected.items()) else None

    return wait_for(seen, 60, f"{expected} in the stats of {template_id}")


class Partners:
    def __init__(self, http: httpx.Client, tenant: Tenant) -> None:
        self.rsa_key = generate_rsa_key()
        rsa_body = {
            "name": "Till A",
            "algorithm": "RSA-SHA256",
            "public_key_pem": public_pem(self.rsa_key).decode(),
            "store_ids": ["store-1"],
        }
        created = http.post("/v1/admin/partners", json=rsa_body, headers=tenant.staff_headers)
        self.rsa = _ok(created, 201)["partner"]["id"]
        hmac_body = {"name": "Bank B", "algorithm": "HMAC-SHA256"}
        created = http.post("/v1/admin/partners", json=hmac_body, headers=tenant.staff_headers)
        view = _ok(created, 201)
        self.hmac, self.secret = view["partner"]["id"], view["secret"].encode()

    def auth(self, which: str) -> PartnerAuth:
        if which == "rsa":
            return PartnerAuth(self.rsa, self.rsa_key, "RSA-SHA256")
        return PartnerAuth(self.hmac, self.secret, "HMAC-SHA256")


def _redemption(coupon_id: str, request_id: str, order_id: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "coupon_id": coupon_id,
        "order": {"order_id": order_id, "items": ORDER_ITEMS, "shipping_cents": 300},
    }


async def _settle(client: httpx.AsyncClient, reply: httpx.Response) -> httpx.Response:
    while reply.status_code == 202:
        await asyncio.sleep(0.05)
        reply = await client.get(reply.json()["poll"])
    return reply


@pytest.fixture
def partners(pipeline: Pipeline, http: httpx.Client) -> tuple[Tenant, Partners]:
    tenant = pipeline.tenant()
    return tenant, Partners(http, tenant)


def test_two_partners_racing_redeem_every_coupon_once(
    pipeline: Pipeline, http: httpx.Client, partners: tuple[Tenant, Partners]
) -> None:
    tenant, registered = partners
    template = _template(http, tenant)
    coupon_ids = _seed(pipeline, template, 1000)

    async def race() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=32)
        clients = [
            httpx.AsyncClient(
                base_url=pipeline.url, auth=registered.auth(which), timeout=60, limits=limits
            )
            for which in ("rsa", "hmac")
        ]
        try:

            async def one(client: httpx.AsyncClient, coupon_id: str, n: int) -> httpx.Response:
                body = _redemption(coupon_id, f"r{n}-{coupon_id[-8:]}", f"order-{n}-{coupon_id}")
                return await _settle(
                    client, await client.post("/v1/partner/redemptions", json=body)
                )

            return await asyncio.gather(
                *(
                    one(client, coupon_id, n)
                    for coupon_id in coupon_ids
                    for n, client in enumerate(clients)
                )
            )
        finally:
            for client in clients:
                await client.aclose()

    replies = asyncio.run(race())
    ok = [r.json() for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code != 200]
    assert len(ok) == 1000 and len(refused) == 1000
    assert sorted(r["coupon_id"] for r in ok) == sorted(coupon_ids)
    assert {(r.status_code, r.json()["error"]["code"]) for r in refused} == {
        (409, "coupon_already_redeemed")
    }
    assert {(r["discount_cents"], r["order_cents"], r["payable_cents"]) for r in ok} == {
        (500, 5300, 4800)
    }
    keys = TemplateKeys(tenant.tenant_id, template.id)
    assert int(pipeline.redis.get(keys.spent)) == sum(r["discount_cents"] for r in ok)
    assert int(pipeline.redis.get(keys.redeemed)) == 1000
    stats_when(http, tenant, template.id, redeemed=1000, discount_cents=500_000)
    assert stats_when(http, tenant, template.id)["order_cents"] == 5_300_000
    assert_reconciled(pipeline, tenant.tenant_id)


def test_request_ids_are_idempotent_and_reversals_restore_exactly(
    pipeline: Pipeline, http: httpx.Client, partners: tuple[Tenant, Partners]
) -> None:
    tenant, registered = partners
    template = _template(http, tenant, limits={"budget_cents": 1000})
    first, second, third = _seed(pipeline, template, 3)
    with httpx.Client(base_url=pipeline.url, auth=registered.auth("hmac"), timeout=30) as till:
        body = _redemption(first, "pay-1", "order-1")
        redeemed = till.post("/v1/partner/redemptions", json=body)
        assert _ok(redeemed)["discount_cents"] == 500
        again = till.post("/v1/partner/redemptions", json=body)
        assert again.status_code == 200 and again.content == redeemed.content
        assert _ok(till.get("/v1/partner/redemptions/pay-1")) == redeemed.json()
        other = _redemption(second, "pay-1", "order-1")
        assert_error(till.post("/v1/partner/redemptions", json=other), 409, "request_id_reused")

        # The budget has room for two 500-cent discounts.
        _ok(till.post("/v1/partner/redemptions", json=_redemption(second, "pay-2", "order-2")))
        spent = till.post("/v1/partner/redemptions", json=_redemption(third, "pay-3", "order-3"))
        assert_error(spent, 409, "budget_exhausted")

        # A refund of order-1 gives its coupon and its discount back.
        reversal = _ok(
            till.post("/v1/partner/reversals", json={"request_id": "ref-1", "order_id": "order-1"})
        )
        assert reversal["discount_cents"] == 500
        assert [(c["coupon_id"], c["status"]) for c in reversal["coupons"]] == [(first, "reversed")]
        repeat = till.post(
            "/v1/partner/reversals", json={"request_id": "ref-1", "order_id": "order-1"}
        )
        assert repeat.json() == reversal
        coupon = _ok(http.get(f"/v1/coupons/{first}", headers=tenant.staff_headers))
        assert coupon["state"] == "available"
        assert int(pipeline.redis.get(TemplateKeys(tenant.tenant_id, template.id).spent)) == 500
        _ok(till.post("/v1/partner/redemptions", json=_redemption(third, "pay-4", "order-4")))
        assert_error(
            till.post("/v1/partner/reversals", json={"request_id": "ref-2", "order_id": "nope"}),
            404,
            "order_not_found",
        )
        bad = {"request_id": "pay-5", "order": {"order_id": "o", "items": []}}
        assert_error(till.post("/v1/partner/redemptions", json=bad), 422, "invalid_redemption")
        below = {**_redemption(first, "pay-6", "order-6")}
        below["order"]["items"] = [{"sku": "gum", "unit_cents": 100, "qty": 1}]
        refused = assert_error(
            till.post("/v1/partner/redemptions", json=below), 409, "coupon_not_applicable"
        )
        assert refused["details"]["why"] == "below_threshold"


@pytest.mark.parametrize("which", ["rsa", "hmac"])
def test_every_bad_signature_has_its_own_code(
    pipeline: Pipeline, http: httpx.Client, partners: tuple[Tenant, Partners], which: str
) -> None:
    tenant, registered = partners
    partner_id = registered.rsa if which == "rsa" else registered.hmac
    key: Any = registered.rsa_key if which == "rsa" else registered.secret
    algorithm: Any = "RSA-SHA256" if which == "rsa" else "HMAC-SHA256"
    path = "/v1/partner/redemptions"
    body = orjson.dumps(_redemption("c_missing", "sig-1", "o1"))

    def post(headers: dict[str, str], content: bytes = body) -> httpx.Response:
        return http.post(
            path, content=content, headers={**headers, "Content-Type": "application/json"}
        )

    good = sign_headers("POST", path, body, partner_id, key, algorithm)
    # A well-signed request reaches the route (this coupon does not exist).
    assert_error(post(good), 404, "coupon_not_found")
    assert_error(post(good), 401, "nonce_replayed")
    fresh = sign_headers("POST", path, body, partner_id, key, algorithm)
    assert_error(post(fresh, body + b" "), 401, "body_hash_mismatch")
    forged = {**sign_headers("POST", path, body, partner_id, key, algorithm)}
    forged["X-Carnival-Signature"] = sign_headers("POST", path, b"{}", partner_id, key, algorithm)[
        "X-Carnival-Signature"
    ]
    assert_error(post(forged), 401, "bad_signature")
    old = sign_headers("POST", path, body, partner_id, key, algorithm, now=time.time() - 3600)
    assert_error(post(old), 401, "request_expired")
    missing = sign_headers("POST", path, body, partner_id, key, algorithm)
    del missing["X-Carnival-Nonce"]
    assert_error(post(missing), 401, "missing_signature_header")
    stranger = sign_headers("POST", path, body, "p_nobody", key, algorithm)
    assert_error(post(stranger), 401, "unknown_partner")

    whoami = http.get(
        "/v1/partner/whoami",
        headers=sign_headers("GET", "/v1/partner/whoami", None, partner_id, key, algorithm),
    )
    assert _ok(whoami)["partner_id"] == partner_id
    _ok(http.post(f"/v1/admin/partners/{partner_id}/disable", headers=tenant.staff_headers))
    refused = http.get(
        "/v1/partner/whoami",
        headers=sign_headers("GET", "/v1/partner/whoami", None, partner_id, key, algorithm),
    )
    assert_error(refused, 403, "partner_disabled")
