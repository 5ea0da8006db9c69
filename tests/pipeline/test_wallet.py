"""Shopper wallet over HTTP on the real pipeline: coupons listed by state with
what each is worth, the best combination for a cart with the reasons for the
others, bad carts, authentication and tenant isolation."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from domain.claims import Coupon
from domain.coupons import DAY_MS, CouponTemplate
from domain.discount import REASON_MESSAGES
from ledger.keys import TenantKeys
from tests.pipeline.conftest import Pipeline, Tenant, assert_error
from tests.pipeline.test_claims import claim

WALLET = "/v1/wallet"
CART = {
    "items": [
        {"sku": "tee", "category": "clothes", "unit_cents": 2500, "qty": 2},
        {"sku": "cap", "category": "clothes", "unit_cents": 5000, "qty": 1},
    ],
    "shipping_cents": 500,
}  # 10,000 cents of items


def _ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _template(http: httpx.Client, tenant: Tenant, kind: str, **fields: Any) -> CouponTemplate:
    """A running template made through the operator API."""
    body = {"name": f"{kind} coupon", "kind": kind, "validity": {"days_after_claim": 30}}
    created = http.post(
        "/v1/admin/templates", json={**body, **fields}, headers=tenant.staff_headers
    )
    template_id = _ok(created, 201)["template"]["id"]
    started = http.post(f"/v1/admin/templates/{template_id}/start", headers=tenant.staff_headers)
    return CouponTemplate.model_validate(_ok(started)["template"])


def _seed(
    pipeline: Pipeline,
    tenant: Tenant,
    user: str,
    template: CouponTemplate,
    claimed_at: int | None = None,
    **changes: Any,
) -> Coupon:
    """A coupon put in the wallet as the claim commit puts it, for states and
    windows a claim cannot make now (expired, used, voided, not yet valid): its
    JSON by id, its id appended to the user's wallet."""
    at = _now_ms() if claimed_at is None else claimed_at
    coupon = Coupon.issue(template, user, "claim", uuid.uuid4().hex, at).model_copy(update=changes)
    keys = TenantKeys(tenant.tenant_id)
    held = pipeline.redis.hget(keys.wallets, user)
    ids = [*held.decode().split("\n"), coupon.coupon_id] if held else [coupon.coupon_id]
    pipe = pipeline.redis.pipeline(transaction=True)
    pipe.hset(keys.coupons, coupon.coupon_id, coupon.model_dump_json())
    pipe.hset(keys.wallets, user, "\n".join(ids))
    pipe.execute()
    return coupon


def _wallet(http: httpx.Client, tenant: Tenant, user: str, state: str | None = None) -> Any:
    params = {"state": state} if state else {}
    return _ok(http.get(WALLET, params=params, headers=tenant.shopper_headers(user)))


def _best(http: httpx.Client, tenant: Tenant, user: str, body: Any) -> httpx.Response:
    return http.post(f"{WALLET}/best", json=body, headers=tenant.shopper_headers(user))


# -- listing ----------------------------------------------------------------------------


def test_wallet_lists_coupons_by_state(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    fixed = _template(http, tenant, "fixed", amount_cents=500, threshold_cents=2000)
    percent = _template(
        http, tenant, "percent", percent=10, cap_cents=2000, scope={"categories": ["clothes"]}
    )
    available = _seed(pipeline, tenant, "ann", fixed)
    expired = _seed(pipeline, tenant, "ann", fixed, claimed_at=_now_ms() - 31 * DAY_MS)
    used = _seed(pipeline, tenant, "ann", percent, state="used")
    voided = _seed(pipeline, tenant, "ann", percent, state="voided")

    everything = _wallet(http, tenant, "ann")
    assert [c["coupon_id"] for c in everything] == [
        c.coupon_id for c in (available, expired, used, voided)
    ]
    assert [c["state"] for c in everything] == ["available", "expired", "used", "voided"]
    assert _wallet(http, tenant, "ann", "all") == everything
    for state, coupon in (
        ("available", available),
        ("expired", expired),
        ("used", used),
        ("voided", voided),
    ):
        assert [c["coupon_id"] for c in _wallet(http, tenant, "ann", state)] == [coupon.coupon_id]

    first = everything[0]
    assert first == {
        "coupon_id": available.coupon_id,
        "template_id": fixed.id,
        "name": "fixed coupon",
        "description": "",
        "kind": "fixed",
        "face_value_cents": 500,
        "threshold_cents": 2000,
        "percent": 0,
        "cap_cents": None,
        "flash": None,
        "scope": fixed.scope.model_dump(mode="json"),
        "claimed_at": available.claimed_at,
        "valid_from": available.claimed_at,
        "valid_until": available.claimed_at + 30 * DAY_MS,
        "state": "available",
    }
    third = everything[2]
    assert (third["kind"], third["percent"], third["cap_cents"]) == ("percent", 10, 2000)
    assert third["face_value_cents"] == 2000 and third["scope"]["categories"] == ["clothes"]

    assert _wallet(http, tenant, "bob") == []
    assert_error(
        http.get(WALLET, params={"state": "lost"}, headers=tenant.shopper_headers("ann")),
        422,
        "invalid_request",
    )


def test_a_claimed_coupon_is_in_the_wallet(pipeline: Pipeline, http: httpx.Client) -> None:
    """The whole way: a template made and started through the operator API,
    claimed through the actor, then in the wallet and usable on a cart."""
    tenant = pipeline.tenant()
    template = _template(http, tenant, "fixed", amount_cents=500, limits={"stock": 1})
    issued = _ok(claim(http, tenant, template.id, "ann"))["coupon"]
    held = _wallet(http, tenant, "ann")
    assert [(c["coupon_id"], c["template_id"], c["state"]) for c in held] == [
        (issued["coupon_id"], template.id, "available")
    ]
    assert held[0]["valid_until"] == issued["valid_until"]
    view = _ok(http.get(f"/v1/admin/templates/{template.id}", headers=tenant.staff_headers))
    assert (view["stock_left"], view["issued"]) == (0, 1)
    best = _ok(_best(http, tenant, "ann", {"cart": CART}))
    assert [(c["coupon_id"], c["discount_cents"]) for c in best["chosen"]] == [
        (issued["coupon_id"], 500)
    ]


def test_wallet_is_per_tenant_and_user(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant, other = pipeline.tenant(), pipeline.tenant()
    _seed(pipeline, tenant, "ann", _template(http, tenant, "fixed", amount_cents=500))
    assert len(_wallet(http, tenant, "ann")) == 1
    assert _wallet(http, other, "ann") == []  # the same user id in another tenant
    assert _ok(_best(http, other, "ann", {"cart": CART}))["chosen"] == []


# -- best combination -------------------------------------------------------------------


def test_best_picks_the_larger_and_explains_the_others(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    tenant = pipeline.tenant()
    fixed = _seed(pipeline, tenant, "ann", _template(http, tenant, "fixed", amount_cents=500))
    percent_template = _template(http, tenant, "percent", percent=10, cap_cents=2000)
    percent = _seed(pipeline, tenant, "ann", percent_template)
    shoes = _template(http, tenant, "fixed", amount_cents=900, scope={"categories": ["shoes"]})
    out_of_scope = _seed(pipeline, tenant, "ann", shoes)
    later = _template(
        http,
        tenant,
        "fixed",
        amount_cents=5000,
        validity={"starts_at": _now_ms() + DAY_MS, "ends_at": _now_ms() + 2 * DAY_MS},
    )
    not_yet = _seed(pipeline, tenant, "ann", later)
    # Neither an expired nor a used coupon is a candidate, however much it is worth.
    _seed(pipeline, tenant, "ann", later, claimed_at=0, valid_from=0, valid_until=1)
    _seed(pipeline, tenant, "ann", percent_template, state="used")

    best = _ok(_best(http, tenant, "ann", {"cart": CART}))
    assert best["chosen"] == [
        {
            "coupon_id": percent.coupon_id,
            "template_id": percent_template.id,
            "name": "percent coupon",
            "discount_cents": 1000,  # 10 % of 10,000, under the 2,000 cap; never shipping
        }
    ]
    assert (best["cart_total_cents"], best["total_discount_cents"], best["payable_cents"]) == (
        10_500,
        1000,
        9500,
    )
    reasons = {c["coupon_id"]: (c["reason"], c["message"]) for c in best["left_out"]}
    expected = {
        fixed.coupon_id: "not_combinable",
        out_of_scope.coupon_id: "no_eligible_items",
        not_yet.coupon_id: "not_yet_valid",
    }
    assert reasons == {cid: (why, REASON_MESSAGES[why]) for cid, why in expected.items()}
    assert [c["coupon_id"] for c in best["left_out"]] == sorted(expected)


def test_best_stacks_coupons_of_one_group(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    stacking = {"exclusive": False, "group": "spring", "max_per_order": 2}
    small = _template(http, tenant, "fixed", amount_cents=300, stacking=stacking)
    big = _template(http, tenant, "fixed", amount_cents=700, stacking=stacking)
    held = [_seed(pipeline, tenant, "ann", t) for t in (small, big, big)]

    best = _ok(_best(http, tenant, "ann", {"cart": CART}))
    assert best["total_discount_cents"] == 1400 and best["payable_cents"] == 9100
    assert sorted(c["coupon_id"] for c in best["chosen"]) == sorted(c.coupon_id for c in held[1:])
    assert best["left_out"] == [
        {
            "coupon_id": held[0].coupon_id,
            "template_id": small.id,
            "name": "fixed coupon",
            "reason": "not_combinable",
            "message": REASON_MESSAGES["not_combinable"],
        }
    ]


def test_best_with_an_empty_wallet(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    assert _ok(_best(http, tenant, "nobody", {"cart": CART})) == {
        "chosen": [],
        "left_out": [],
        "cart_total_cents": 10_500,
        "total_discount_cents": 0,
        "payable_cents": 10_500,
    }


BAD_CARTS: list[tuple[str, Any, str]] = [
    ("no cart", {}, "cart"),
    ("no items", {"cart": {"items": []}}, "cart.items"),
    ("zero quantity", {"cart": {"items": [{**CART["items"][0], "qty": 0}]}}, "cart.items.0.qty"),
    (
        "negative price",
        {"cart": {"items": [{**CART["items"][0], "unit_cents": -1}]}},
        "cart.items.0.unit_cents",
    ),
    ("no sku", {"cart": {"items": [{"unit_cents": 1, "qty": 1}]}}, "cart.items.0.sku"),
    ("negative shipping", {"cart": {**CART, "shipping_cents": -5}}, "cart.shipping_cents"),
    ("unknown field", {"cart": CART, "coupons": ["c_1"]}, "coupons"),
]


@pytest.mark.parametrize(
    ("body", "field"), [case[1:] for case in BAD_CARTS], ids=[c[0] for c in BAD_CARTS]
)
def test_invalid_cart_names_the_field(
    pipeline: Pipeline, http: httpx.Client, body: Any, field: str
) -> None:
    tenant = pipeline.tenant()
    error = assert_error(_best(http, tenant, "ann", body), 422, "invalid_cart")
    assert field in error["message"], error
    assert field in {p["field"] for p in error["details"]["problems"]}


def test_wallet_needs_a_shopper_token(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    assert_error(http.get(WALLET), 401, "missing_token")
    assert_error(http.post(f"{WALLET}/best", json={"cart": CART}), 401, "missing_token")
    bad = {"Authorization": "Bearer not-a-token"}
    assert_error(http.get(WALLET, headers=bad), 401, "invalid_token")
    # A staff key is not a shopper.
    assert_error(http.get(WALLET, headers=tenant.staff_headers), 401, "missing_token")
