"""Redemptions decided by the owner host against a real Redis ledger (Ray not
needed): one coupon is redeemed once however many tills race for it, budgets
are never overspent and always equal the sum of the discounts granted, and a
re-sent batch is answered byte for byte."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis

from actors.host import OwnerHost
from domain.claims import Coupon
from domain.coupons import CouponTemplate
from domain.events import now_ms
from domain.road import WRITEOFF, BatchResult, RequestRecord, Row
from ledger.admin import SyncLedger
from ledger.keys import TemplateKeys, TenantKeys
from tests.domain.test_coupons import _template

TENANT = "t-writeoffs"


@pytest.fixture
async def host(redis_url: str) -> AsyncIterator[OwnerHost]:
    made = OwnerHost(redis_url, seed=1)
    yield made
    await made.close()


def _install(redis_url: str, **limits: Any) -> CouponTemplate:
    template = _template(
        id=f"tpl{uuid.uuid4().hex[:8]}",
        tenant_id=TENANT,
        status="running",
        amount_cents=500,
        validity={"days_after_claim": 30},
        limits=limits,
    )
    SyncLedger.from_url(redis_url).install_template(template)
    return template


def _issue(redis_url: str, template: CouponTemplate, n: int) -> list[Coupon]:
    coupons = [
        Coupon.issue(
            template, f"u{i}", "claim", f"u{i}:r", now_ms(), coupon_id=f"c_{uuid.uuid4().hex}"
        )
        for i in range(n)
    ]
    client = redis.Redis.from_url(redis_url)
    client.hset(
        TenantKeys(TENANT).coupons, mapping={c.coupon_id: c.model_dump_json() for c in coupons}
    )
    return coupons


ORDER = {"order_id": "o1", "items": [{"sku": "a", "unit_cents": 2000, "qty": 1}]}


def _record(template: CouponTemplate, partner: str, coupons: list[Coupon]) -> bytes:
    rows: list[Row] = [
        (
            partner,
            f"r-{c.coupon_id}-{partner}",
            i,
            {
                "op": "redeem",
                "coupon": c.coupon_id,
                "order": {**ORDER, "order_id": f"o-{c.coupon_id}"},
                "digest": "d",
            },
        )
        for i, c in enumerate(coupons)
    ]
    return RequestRecord(WRITEOFF.name, TENANT, template.id, "api-test", rows).dumps()


def _decided(result: BatchResult) -> list[dict]:
    return [orjson.loads(o) for events in result.outcomes.values() for o in events]


async def test_two_partners_racing_for_every_coupon_redeem_each_once(
    host: OwnerHost, redis_url: str
) -> None:
    template = _install(redis_url)
    coupons = _issue(redis_url, template, 1000)
    # Each partner's requests in chunks of random size, interleaved, decided concurrently.
    batches: list[list[bytes]] = []
    for partner in ("till-a", "till-b"):
        order = coupons[:]
        random.Random(partner).shuffle(order)
        at = 0
        while at < len(order):
            size = random.Random(at).randint(1, 120)
            batches.append([_record(template, partner, order[at : at + size])])
            at += size
    random.Random(7).shuffle(batches)
    results = await asyncio.gather(
        *(host.decide_batch(f"b{i}", records) for i, records in enumerate(batches))
    )
    outcomes = [o for r in results for o in _decided(r)]
    assert len(outcomes) == 2000
    redeemed = [o for o in outcomes if o["status"] == "redeemed"]
    assert sorted(o["coupon_id"] for o in redeemed) == sorted(c.coupon_id for c in coupons)
    assert {o["reason"] for o in outcomes if o["status"] == "rejected"} == {
        "coupon_already_redeemed"
    }
    client = redis.Redis.from_url(redis_url)
    keys = TemplateKeys(TENANT, template.id)
    assert int(client.get(keys.redeemed)) == 1000
    assert int(client.get(keys.spent)) == sum(o["discount_cents"] for o in redeemed) == 500_000
    stored = client.hmget(TenantKeys(TENANT).coupons, [c.coupon_id for c in coupons])
    assert {Coupon.model_validate_json(s).state for s in stored} == {"used"}

    # The dispatcher re-sends a batch: the same answers, nothing spent twice.
    again = await host.decide_batch("b0", batches[0])
    assert sorted(o for v in again.outcomes.values() for o in v) == sorted(
        o for v in results[0].outcomes.values() for o in v
    )
    assert int(client.get(keys.spent)) == 500_000


async def test_the_budget_is_never_overspent(host: OwnerHost, redis_url: str) -> None:
    template = _install(redis_url, budget_cents=2_250)  # room for four 500-cent discounts
    coupons = _issue(redis_url, template, 10)
    results = await asyncio.gather(
        *(
            host.decide_batch(f"b{i}", [_record(template, "till", coupons[i : i + 3])])
            for i in range(0, 10, 3)
        )
    )
    outcomes = [o for r in results for o in _decided(r)]
    assert sorted(o["status"] for o in outcomes).count("redeemed") == 4
    assert {o["reason"] for o in outcomes if o["status"] == "rejected"} == {"budget_exhausted"}
    spent = redis.Redis.from_url(redis_url).get(TemplateKeys(TENANT, template.id).spent)
    assert int(spent) == 2_000


async def test_an_order_below_the_threshold_is_refused_with_the_engine_reason(
    host: OwnerHost, redis_url: str
) -> None:
    template = _install(redis_url)
    template = template.model_copy(update={"threshold_cents": 5_000})
    SyncLedger.from_url(redis_url).install_template(template)
    [coupon] = _issue(redis_url, template, 1)
    [outcome] = _decided(await host.decide_batch("b", [_record(template, "till", [coupon])]))
    assert (outcome["status"], outcome["reason"], outcome["detail"]) == (
        "rejected",
        "coupon_not_applicable",
        "below_threshold",
    )


def _reversals(template: CouponTemplate, partner: str, coupons: list[Coupon]) -> bytes:
    rows: list[Row] = [
        (
            partner,
            f"v-{c.coupon_id}",
            i,
            {"op": "reverse", "coupon": c.coupon_id, "order_id": f"o-{c.coupon_id}"},
        )
        for i, c in enumerate(coupons)
    ]
    return RequestRecord(WRITEOFF.name, TENANT, template.id, "api-test", rows).dumps()


async def test_reversals_racing_redemptions_restore_coupons_and_budget_exactly(
    host: OwnerHost, redis_url: str
) -> None:
    template = _install(redis_url, budget_cents=1_000_000)
    coupons = _issue(redis_url, template, 400)
    first, second = coupons[:200], coupons[200:]
    for i in range(0, 200, 50):
        await host.decide_batch(f"r{i}", [_record(template, "till", first[i : i + 50])])
    client = redis.Redis.from_url(redis_url)
    keys = TemplateKeys(TENANT, template.id)
    assert int(client.get(keys.spent)) == 100_000

    # Refunds of the first 200 race redemptions of the other 200, batch by batch.
    batches = [[_reversals(template, "till", first[i : i + 25])] for i in range(0, 200, 25)]
    batches += [[_record(template, "till", second[i : i + 25])] for i in range(0, 200, 25)]
    random.Random(3).shuffle(batches)
    results = await asyncio.gather(
        *(host.decide_batch(f"m{i}", records) for i, records in enumerate(batches))
    )
    outcomes = [o for r in results for o in _decided(r)]
    assert sorted({o["status"] for o in outcomes}) == ["redeemed", "reversed"]
    assert sum(o["discount_cents"] for o in outcomes) == 0
    assert int(client.get(keys.spent)) == 100_000
    assert int(client.get(keys.redeemed)) == 200
    stored = client.hmget(TenantKeys(TENANT).coupons, [c.coupon_id for c in coupons])
    states = [Coupon.model_validate_json(s) for s in stored]
    assert [c.state for c in states] == ["available"] * 200 + ["used"] * 200
    assert all(c.redemption is None for c in states[:200])
    orders = client.hmget(TenantKeys(TENANT).orders, [f"till:o-{c.coupon_id}" for c in coupons])
    assert orders == [None] * 200 + [c.coupon_id.encode() for c in second]
    # A reversed coupon is redeemable again; a reversal by another partner is refused.
    again = await host.decide_batch("x", [_record(template, "till", first[:1])])
    assert _decided(again)[0]["status"] == "redeemed"
    [other] = _decided(await host.decide_batch("y", [_reversals(template, "other", first[:1])]))
    assert (other["status"], other["reason"]) == ("rejected", "coupon_not_redeemed")
