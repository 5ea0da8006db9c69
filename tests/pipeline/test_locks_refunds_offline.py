"""Write-off beyond a plain redemption, on the real pipeline: lock, confirm and
release (and a lock that ends by itself), partial refunds priced again,
per-partner budgets racing across templates, and offline codes no shopper
claimed, redeemed by racing tills exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from domain.signing import PartnerAuth
from ledger.keys import TemplateKeys, TenantKeys
from tests.pipeline.conftest import Pipeline, Tenant, assert_error, wait_for
from tests.pipeline.test_codes_api import _export, _generate
from tests.pipeline.test_writeoffs import _ok, _seed, _settle, _template, stats_when

TEE = {"sku": "tee", "category": "clothes", "unit_cents": 2500, "qty": 2}
CAP = {"sku": "cap", "category": "clothes", "unit_cents": 1000, "qty": 1}


def _partner(http: httpx.Client, tenant: Tenant, **budgets: int) -> tuple[str, PartnerAuth]:
    body = {"name": "Till", "algorithm": "HMAC-SHA256", **budgets}
    view = _ok(http.post("/v1/admin/partners", json=body, headers=tenant.staff_headers), 201)
    partner_id = view["partner"]["id"]
    return partner_id, PartnerAuth(partner_id, view["secret"].encode(), "HMAC-SHA256")


def _till(http: httpx.Client, tenant: Tenant) -> httpx.Client:
    _, auth = _partner(http, tenant)
    return httpx.Client(base_url=str(http.base_url), auth=auth, timeout=30)


def _order(order_id: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"order_id": order_id, "items": list(items or [TEE]), "shipping_cents": 300}


def _coupon(http: httpx.Client, tenant: Tenant, coupon_id: str) -> dict[str, Any]:
    return _ok(http.get(f"/v1/coupons/{coupon_id}", headers=tenant.staff_headers))


def _burn(http: httpx.Client, tenant: Tenant, owner: str) -> dict[str, dict[str, Any]]:
    report = _ok(http.get(f"/v1/budgets/{owner}", headers=tenant.staff_headers))
    return {b["name"]: b for b in report["budgets"]}


def test_lock_confirm_release_and_a_lock_that_ends_by_itself(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    tenant = pipeline.tenant()
    template = _template(http, tenant, limits={"budget_cents": 1500})
    first, second, third = _seed(pipeline, template, 3)
    till, other = _till(http, tenant), _till(http, tenant)
    with till, other:
        locked = _ok(
            till.post(
                "/v1/partner/locks",
                json={"request_id": "lk-1", "coupon_id": first, "order": _order("o1")},
            )
        )
        assert (locked["status"], locked["discount_cents"], locked["payable_cents"]) == (
            "locked",
            500,
            4800,
        )
        assert locked["locked_until"] == locked["decided_at"] + 900_000
        assert _coupon(http, tenant, first)["state"] == "locked"
        wallet = _ok(http.get("/v1/wallet", headers=tenant.shopper_headers("u0")))
        assert [(c["coupon_id"], c["state"]) for c in wallet] == [(first, "locked")]
        # Locked: nobody redeems or locks it, and its discount is reserved.
        taken = other.post(
            "/v1/partner/redemptions",
            json={"request_id": "x-1", "coupon_id": first, "order": _order("o9")},
        )
        assert_error(taken, 409, "coupon_locked")
        assert _burn(http, tenant, f"templates/{template.id}")["template"]["spent"] == 500
        assert_error(
            other.post("/v1/partner/confirmations", json={"request_id": "c-x", "order_id": "o1"}),
            404,
            "order_not_found",
        )
        confirmed = _ok(
            till.post("/v1/partner/confirmations", json={"request_id": "c-1", "order_id": "o1"})
        )
        assert confirmed["coupons"] == [
            {"coupon_id": first, "status": "redeemed", "reason": "", "discount_cents": 500}
        ]
        assert _coupon(http, tenant, first)["state"] == "used"
        assert _ok(till.get("/v1/partner/locks/lk-1")) == locked
        burn = _burn(http, tenant, f"templates/{template.id}")
        assert (burn["template"]["spent"], burn["template"]["left"]) == (500, 1000)

        # Released: the coupon and the reserved discount come back.
        _ok(
            till.post(
                "/v1/partner/locks",
                json={"request_id": "lk-2", "coupon_id": second, "order": _order("o2")},
            )
        )
        released = _ok(
            till.post("/v1/partner/releases", json={"request_id": "rl-2", "order_id": "o2"})
        )
        assert [(c["status"], c["discount_cents"]) for c in released["coupons"]] == [
            ("released", 500)
        ]
        assert _coupon(http, tenant, second)["state"] == "available"
        assert _burn(http, tenant, f"templates/{template.id}")["template"]["spent"] == 500

        # A lock nobody confirms ends by itself (the sweep runs every 0.3 s here);
        # a confirm after its end is refused.
        _ok(
            till.post(
                "/v1/partner/locks",
                json={"request_id": "lk-3", "coupon_id": third, "order": _order("o3"), "ttl_s": 1},
            )
        )
        wait_for(
            lambda: _coupon(http, tenant, third)["state"] == "available", 30, "the lock to end"
        )
        assert _burn(http, tenant, f"templates/{template.id}")["template"]["spent"] == 500
        tenant_keys = TenantKeys(tenant.tenant_id)
        assert pipeline.redis.zcard(tenant_keys.locks) == 0
        assert_error(
            till.post("/v1/partner/confirmations", json={"request_id": "c-3", "order_id": "o3"}),
            404,
            "order_not_found",
        )
        bad = {"request_id": "lk-4", "coupon_id": third, "order": _order("o4"), "ttl_s": 0}
        assert_error(till.post("/v1/partner/locks", json=bad), 422, "invalid_lock")

    # Every step is one write-off event in ClickHouse; only the confirm settles money.
    stats_when(http, tenant, template.id, redeemed=1, discount_cents=500, order_cents=5300)


def test_partial_refunds_price_the_coupon_again(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    percent = _template(http, tenant, kind="percent", percent=10, amount_cents=0, threshold_cents=0)
    threshold = _template(http, tenant)  # 5 off from 20
    (ten_off,) = _seed(pipeline, percent, 1)
    (five_off,) = _seed(pipeline, threshold, 1)
    with _till(http, tenant) as till:
        redeemed = till.post(
            "/v1/partner/redemptions",
            json={"request_id": "p-1", "coupon_id": ten_off, "order": _order("o1", TEE, CAP)},
        )
        assert _ok(redeemed)["discount_cents"] == 600  # 10 % of 6000
        one_tee = {"request_id": "rf-1", "order_id": "o1", "items": [{"sku": "tee", "qty": 1}]}
        part = _ok(till.post("/v1/partner/reversals", json=one_tee))
        assert [(c["status"], c["discount_cents"]) for c in part["coupons"]] == [
            ("partially_reversed", 250)
        ]
        spent = TemplateKeys(tenant.tenant_id, percent.id).spent
        assert int(pipeline.redis.get(spent)) == 350
        assert _coupon(http, tenant, ten_off)["state"] == "used"
        too_much = {"request_id": "rf-2", "order_id": "o1", "items": [{"sku": "cap", "qty": 2}]}
        refused = _ok(till.post("/v1/partner/reversals", json=too_much))
        assert [(c["status"], c["reason"]) for c in refused["coupons"]] == [
            ("rejected", "refund_exceeds_order")
        ]
        rest = {"request_id": "rf-3", "order_id": "o1"}
        whole = _ok(till.post("/v1/partner/reversals", json=rest))
        assert [(c["status"], c["discount_cents"]) for c in whole["coupons"]] == [("reversed", 350)]
        assert int(pipeline.redis.get(spent)) == 0
        assert _coupon(http, tenant, ten_off)["state"] == "available"

        # What is left no longer reaches the threshold: the coupon comes back whole.
        gum = {"sku": "gum", "unit_cents": 100, "qty": 1}
        one = {**TEE, "qty": 1}
        _ok(
            till.post(
                "/v1/partner/redemptions",
                json={"request_id": "p-2", "coupon_id": five_off, "order": _order("o2", one, gum)},
            )
        )
        drop_tee = {"request_id": "rf-4", "order_id": "o2", "items": [{"sku": "tee", "qty": 1}]}
        back = _ok(till.post("/v1/partner/reversals", json=drop_tee))
        assert [(c["status"], c["discount_cents"]) for c in back["coupons"]] == [("reversed", 500)]
        assert _coupon(http, tenant, five_off)["state"] == "available"
    # Redeemed once, then refunded in two steps: no discount left in the stats.
    stats_when(http, tenant, percent.id, redeemed=1, discount_cents=0, order_cents=0)


def test_a_partner_budget_holds_across_templates_under_concurrency(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    tenant = pipeline.tenant()
    templates = [_template(http, tenant), _template(http, tenant)]
    coupons = [c for t in templates for c in _seed(pipeline, t, 100)]
    partner_id, auth = _partner(http, tenant, budget_redemptions=60, budget_cents=100_000)

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=pipeline.url, auth=auth, timeout=60) as client:

            async def one(n: int, coupon_id: str) -> httpx.Response:
                body = {"request_id": f"b-{n}", "coupon_id": coupon_id, "order": _order(f"o{n}")}
                return await _settle(
                    client, await client.post("/v1/partner/redemptions", json=body)
                )

            return await asyncio.gather(*(one(n, c) for n, c in enumerate(coupons)))

    replies = asyncio.run(race())
    ok = [r.json() for r in replies if r.status_code == 200]
    refused = [r.json()["error"] for r in replies if r.status_code != 200]
    assert len(ok) == 60
    assert {(e["code"], e["details"]["why"]) for e in refused} == {
        ("budget_exhausted", "partner_redemptions")
    }
    burn = _burn(http, tenant, f"partners/{partner_id}")
    assert burn["partner_redemptions"]["spent"] == 60
    assert burn["partner_redemptions"]["left"] == 0
    assert burn["partner"]["spent"] == sum(r["discount_cents"] for r in ok) == 30_000
    assert (
        sum(
            int(pipeline.redis.get(TemplateKeys(tenant.tenant_id, t.id).redeemed) or 0)
            for t in templates
        )
        == 60
    )


def test_offline_codes_are_redeemed_once_by_racing_tills(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    tenant = pipeline.tenant()
    template = _template(http, tenant)
    batch = _generate(http, tenant, template.id, 40)
    codes = [row["code"] for row in _export(http, tenant, batch["id"])]
    auths = [_partner(http, tenant)[1] for _ in range(2)]

    async def race() -> list[httpx.Response]:
        clients = [httpx.AsyncClient(base_url=pipeline.url, auth=a, timeout=60) for a in auths]
        try:

            async def one(n: int, client: httpx.AsyncClient, code: str) -> httpx.Response:
                body = {"request_id": f"c{n}-{code}", "code": code, "order": _order(f"o{n}-{code}")}
                return await _settle(
                    client, await client.post("/v1/partner/redemptions", json=body)
                )

            return await asyncio.gather(
                *(one(n, c, code) for code in codes for n, c in enumerate(clients))
            )
        finally:
            for c in clients:
                await c.aclose()

    replies = asyncio.run(race())
    ok = [r.json() for r in replies if r.status_code == 200]
    refused = [r.json()["error"]["code"] for r in replies if r.status_code != 200]
    assert len(ok) == len(codes) == 40 and len({r["coupon_id"] for r in ok}) == 40
    assert set(refused) == {"coupon_already_redeemed"}
    rows = {row["code"]: row for row in _export(http, tenant, batch["id"])}
    assert {row["state"] for row in rows.values()} == {"redeemed"}
    assert {row["coupon_id"] for row in rows.values()} == {r["coupon_id"] for r in ok}
    for r in ok[:3]:
        assert _coupon(http, tenant, r["coupon_id"])["state"] == "used"
    assert int(pipeline.redis.get(TemplateKeys(tenant.tenant_id, template.id).redeemed)) == 40

    # A refund gives the coupon back and the code is its coupon's again, not redeemed.
    first = ok[0]
    code = next(c for c, row in rows.items() if row["coupon_id"] == first["coupon_id"])
    winner = auths[int(first["request_id"][1])]
    with httpx.Client(base_url=pipeline.url, auth=winner, timeout=30) as till:
        back = till.post(
            "/v1/partner/reversals", json={"request_id": "ref-1", "order_id": first["order_id"]}
        )
        assert [c["status"] for c in _ok(back)["coupons"]] == ["reversed"]
        again = {"request_id": "again-1", "code": code, "order": _order("o-again")}
        assert (
            _ok(till.post("/v1/partner/redemptions", json=again))["coupon_id"] == first["coupon_id"]
        )
    rows = {row["code"]: row for row in _export(http, tenant, batch["id"])}
    assert rows[code]["state"] == "redeemed"
