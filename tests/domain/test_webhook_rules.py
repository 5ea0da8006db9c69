"""Webhook rules, pure: which events notify whom, and how a delivery is retried."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from domain.webhooks import (
    MAX_ATTEMPTS_KEPT,
    Attempt,
    Delivery,
    Subscription,
    SubscriptionFields,
    delivery_id,
    matches,
    notification,
    retry_delay_ms,
)


def _sub(**over: Any) -> Subscription:
    fields: dict[str, Any] = {
        "url": "https://partner.example/hooks",
        "event_types": ("coupon.claimed", "coupon.redeemed", "coupon.issued"),
        "id": "wh_1",
        "tenant_id": "t1",
        "partner_id": "p1",
        "created_at": 1000,
        "secret": "whsec_x",
    }
    return Subscription(**(fields | over))


CLAIM = {
    "type": "claim.outcome",
    "event_id": "u1:r1",
    "tenant_id": "t1",
    "template_id": "tpl",
    "user_id": "u1",
    "status": "issued",
    "coupon_id": "c_1",
    "valid_from": 1,
    "valid_until": 2,
    "occurred_at": 2000,
    "source": "claim",
}
WRITEOFF = {
    "type": "writeoff",
    "event_id": "p2:r9",
    "tenant_id": "t1",
    "template_id": "tpl",
    "coupon_id": "c_1",
    "user_id": "u1",
    "partner_id": "p2",
    "request_id": "r9",
    "op": "redeem",
    "status": "redeemed",
    "order_id": "o1",
    "order_cents": 5000,
    "discount_cents": 500,
    "occurred_at": 3000,
}


def test_each_committed_event_makes_one_notification_with_a_derived_id() -> None:
    claimed = notification(CLAIM)
    assert claimed is not None and claimed.type == "coupon.claimed"
    assert claimed.id == "coupon.claimed:u1:r1" and claimed.data["coupon_id"] == "c_1"
    granted = notification(CLAIM | {"source": "distribution"})
    assert granted is not None and granted.type == "coupon.issued"
    assert notification(CLAIM | {"status": "rejected"}) is None
    won = notification(
        {
            "type": "draw.outcome",
            "event_id": "u1:d1",
            "tenant_id": "t1",
            "activity_id": "wheel",
            "user_id": "u1",
            "status": "won",
            "coupon_id": "c_2",
            "coupon_template": "tpl",
            "occurred_at": 5,
        }
    )
    assert won is not None and won.type == "coupon.issued" and won.template_id == "tpl"
    reversed_ = notification(WRITEOFF | {"status": "partially_reversed", "op": "reverse"})
    assert reversed_ is not None and reversed_.type == "coupon.reversed"
    assert notification(WRITEOFF | {"status": "rejected"}) is None
    assert notification(WRITEOFF | {"status": "locked", "op": "lock"}) is None
    # The same event twice: the same body byte for byte, the same delivery id.
    assert notification(CLAIM) == claimed and claimed.body() == notification(CLAIM).body()  # type: ignore[union-attr]
    assert delivery_id("wh_1", claimed.id) == delivery_id("wh_1", claimed.id)
    assert delivery_id("wh_1", claimed.id) != delivery_id("wh_2", claimed.id)


def test_write_offs_reach_only_their_partner_and_filters_apply() -> None:
    redeemed = notification(WRITEOFF)
    claimed = notification(CLAIM)
    assert redeemed is not None and claimed is not None
    assert not matches(_sub(), redeemed), "p2's redemption is not p1's business"
    assert matches(_sub(partner_id="p2"), redeemed)
    assert matches(_sub(), claimed)
    assert not matches(_sub(tenant_id="t2"), claimed)
    assert not matches(_sub(event_types=("coupon.expired",)), claimed)
    assert not matches(_sub(template_ids=("other",)), claimed)
    assert matches(_sub(template_ids=("tpl",)), claimed)
    assert not matches(_sub(created_at=2001), claimed), "made before the subscription"


@pytest.mark.parametrize(
    "url",
    ["ftp://x.example/h", "https://u:p@x.example/h", "https:///nohost", "https://x.example/h#f"],
)
def test_urls_a_delivery_cannot_use_are_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        SubscriptionFields(url=url, event_types=("coupon.claimed",))


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [retry_delay_ms(n, 100, 1000) for n in range(1, 7)] == [100, 200, 400, 800, 1000, 1000]
    assert retry_delay_ms(10_000, 100, 5000) == 5000


def _failed(at: int) -> Attempt:
    return Attempt(at=at, status_code=503, error="HTTP 503", ms=10)


def test_a_delivery_is_retried_then_dead_lettered_then_redelivered() -> None:
    d = Delivery(
        id="wh_1.x",
        subscription_id="wh_1",
        tenant_id="t1",
        partner_id="p1",
        notification_id="n",
        event_type="coupon.claimed",
        url="https://x.example/h",
        body="{}",
        created_at=0,
        next_at=0,
    )
    d = d.after(_failed(0), 3, 100, 10_000)
    assert (d.state, d.next_at, d.attempt_count) == ("pending", 110, 1)
    d = d.after(_failed(110), 3, 100, 10_000)
    assert (d.state, d.next_at) == ("pending", 110 + 10 + 200)
    d = d.after(_failed(400), 3, 100, 10_000)
    assert (d.state, d.next_at, d.attempt_count) == ("dead", None, 3)
    d = d.redelivered(900)
    assert (d.state, d.next_at) == ("pending", 900)
    d = d.after(_failed(900), 3, 100, 10_000)
    assert d.state == "pending", "a redelivery starts the failures in a row again"
    d = d.after(Attempt(at=1100, status_code=200, error="", ms=5), 3, 100, 10_000)
    assert (d.state, d.next_at, d.attempt_count) == ("delivered", None, 5)


def test_a_delivery_keeps_a_bounded_history() -> None:
    d = Delivery(
        id="i",
        subscription_id="s",
        tenant_id="t",
        partner_id="p",
        notification_id="n",
        event_type="coupon.claimed",
        url="https://x.example/h",
        body="{}",
        created_at=0,
    )
    for n in range(MAX_ATTEMPTS_KEPT * 2):
        d = d.after(_failed(n), 10**6, 1, 1)
    assert len(d.attempts) == MAX_ATTEMPTS_KEPT and d.attempt_count == MAX_ATTEMPTS_KEPT * 2
    assert d.attempts[0].at == 0 and d.attempts[-1].at == MAX_ATTEMPTS_KEPT * 2 - 1
