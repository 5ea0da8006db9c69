"""One phase's tenant: a big wheel, a flash-sale template, an exchange template,
a signing partner, shoppers with points and a probe wheel, made through the
ledger (as the tests do) and the admin API (the partner's secret)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

from domain.activity import Activity, Limits, Prize
from domain.coupons import CouponLimits, CouponTemplate, Validity
from domain.signing import PartnerAuth
from ledger.admin import SyncLedger

# The flash-sale coupon: 5.00 off an order of 53.00 (see ORDER_ITEMS).
FACE_VALUE_CENTS = 500
ORDER_ITEMS = [{"sku": "tee", "category": "clothes", "unit_cents": 2500, "qty": 2}]
SHIPPING_CENTS = 300
WHEEL_PER_USER = 2
CLAIM_PER_USER = 1
POINTS_PRICE = 10
# Each shopper can afford two exchanges and no third: "insufficient_points" happens.
POINTS_GRANTED = 25
PRIZE_ID = "gold"


@dataclass(frozen=True, slots=True)
class Shop:
    tenant_id: str
    api_key: str
    secret: bytes
    users: tuple[str, ...]
    wheel_id: str
    prize_stock: int
    template_id: str  # the flash sale: small stock, one per shopper, a write-off budget
    template_stock: int
    budget_cents: int
    exchange_id: str  # bought with points
    exchange_stock: int
    partner_id: str
    partner_secret: bytes
    probe_id: str  # a wheel nobody else draws: asks whether the stack answers

    @property
    def staff_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}

    def partner_auth(self) -> PartnerAuth:
        return PartnerAuth(self.partner_id, self.partner_secret, "HMAC-SHA256")


def _id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def open_shop(ledger: SyncLedger, api_url: str, requests: int, users: int) -> Shop:
    """A fresh tenant sized for ``requests`` mixed requests from ``users`` shoppers:
    every stock small enough to sell out, the budget smaller than the stock's face value."""
    tenant_id = _id("chaos")
    ledger.create_tenant(tenant_id, f"Chaos {tenant_id}")
    api_key = ledger.create_api_key(tenant_id, "admin", "chaos")
    secret = ledger.shopper_secret(tenant_id)
    assert secret is not None, "a new tenant has a shopper secret"
    prize_stock = max(3, requests // 25)
    template_stock = max(4, requests // 20)
    exchange_stock = max(3, requests // 30)
    budget = FACE_VALUE_CENTS * max(2, template_stock * 2 // 3)
    thanks = Prize(id="thanks", name="Thanks", kind="thanks", weight=1)
    wheel = Activity(
        id=_id("w"),
        tenant_id=tenant_id,
        name="Chaos wheel",
        status="running",
        prizes=(
            Prize(id=PRIZE_ID, name="Gold", kind="coupon", weight=3, stock=prize_stock),
            thanks,
        ),
        fallback_prize_id="thanks",
        limits=Limits(per_user_total=WHEEL_PER_USER),
    )
    probe = Activity(
        id=_id("p"),
        tenant_id=tenant_id,
        name="Chaos probe",
        status="running",
        prizes=(Prize(id="sticker", name="Sticker", kind="item", weight=1), thanks),
        fallback_prize_id="thanks",
    )
    flash = CouponTemplate(
        id=_id("ct"),
        tenant_id=tenant_id,
        name="5 off",
        kind="fixed",
        amount_cents=FACE_VALUE_CENTS,
        validity=Validity(days_after_claim=30),
        status="running",
        limits=CouponLimits(stock=template_stock, per_user=CLAIM_PER_USER, budget_cents=budget),
    )
    exchange = CouponTemplate(
        id=_id("cx"),
        tenant_id=tenant_id,
        name="Points coupon",
        kind="fixed",
        amount_cents=FACE_VALUE_CENTS,
        validity=Validity(days_after_claim=30),
        status="running",
        points_price=POINTS_PRICE,
        limits=CouponLimits(stock=exchange_stock),
    )
    for activity in (wheel, probe):
        ledger.install_activity(activity)
    for template in (flash, exchange):
        ledger.install_template(template)
    shoppers = tuple(f"u{i}" for i in range(users))
    ledger.grant_points(tenant_id, dict.fromkeys(shoppers, POINTS_GRANTED))
    created = httpx.post(
        f"{api_url}/v1/admin/partners",
        json={"name": "Chaos till", "algorithm": "HMAC-SHA256"},
        headers={"X-Api-Key": api_key},
        timeout=30,
    )
    created.raise_for_status()
    view = created.json()
    return Shop(
        tenant_id=tenant_id,
        api_key=api_key,
        secret=secret,
        users=shoppers,
        wheel_id=wheel.id,
        prize_stock=prize_stock,
        template_id=flash.id,
        template_stock=template_stock,
        budget_cents=budget,
        exchange_id=exchange.id,
        exchange_stock=exchange_stock,
        partner_id=view["partner"]["id"],
        partner_secret=view["secret"].encode(),
        probe_id=probe.id,
    )
