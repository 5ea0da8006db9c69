"""`carnival bench redemptions` end to end with tiny sizes, on the session's Redis and Ray."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from carnival.bench.redemptions import DISCOUNT_CENTS, PATHS, _check, render, run_bench
from domain.claims import Coupon
from ledger.keys import TemplateKeys, TenantKeys

REDEMPTIONS, CLASSIC, BATCH = 1000, 200, 100


@pytest.fixture(scope="module")
def report(redis_url: str, ray_client: Any) -> dict[str, Any]:
    return run_bench(REDEMPTIONS, CLASSIC, BATCH, redis_url=redis_url, keep_data=True)


def test_both_paths_measured_and_compared(report: dict[str, Any]) -> None:
    assert list(report["paths"]) == list(PATHS)
    for name in PATHS:
        row = report["paths"][name]
        assert row["redemptions_per_s"] > 0 and row["seconds"] > 0 and row["ratio_to_classic"] > 0
    assert report["paths"]["classic"]["ratio_to_classic"] == 1.0
    assert report["config"]["signature"] == "HMAC-SHA256"
    assert report["machine"]["appendfsync"] == "always"
    assert render(report).row_count == len(PATHS)


def test_every_coupon_redeemed_once_within_the_budget(
    report: dict[str, Any], redis_url: str
) -> None:
    tenant_id = report["ledger"]["tenant_id"]
    client = redis.Redis.from_url(redis_url)
    try:
        coupons = [
            Coupon.model_validate_json(raw) for raw in client.hvals(TenantKeys(tenant_id).coupons)
        ]
        keys = TemplateKeys(tenant_id, "bench-durable")
        redeemed, spent = (int(v) for v in client.mget([keys.redeemed, keys.spent]))
    finally:
        client.close()
    assert len(coupons) == REDEMPTIONS and {c.state for c in coupons} == {"used"}
    assert {c.redemption.discount_cents for c in coupons if c.redemption} == {DISCOUNT_CENTS}
    assert (redeemed, spent) == (REDEMPTIONS, REDEMPTIONS * DISCOUNT_CENTS)
    durable = report["paths"]["durable"]["detail"]
    assert durable["calls"] == REDEMPTIONS // BATCH and durable["decided"] == REDEMPTIONS
    classic = report["paths"]["classic"]["detail"]
    assert (classic["used"], classic["spent_cents"]) == (CLASSIC, CLASSIC * DISCOUNT_CENTS)


def test_an_inexact_run_fails_loudly() -> None:
    with pytest.raises(RuntimeError, match="not exact"):
        _check("durable", 10, 10, 9, 10 * DISCOUNT_CENTS)
