"""`carnival bench claims` end to end with tiny sizes, on the session's Redis and Ray."""

from __future__ import annotations

from typing import Any

import pytest

from carnival.bench.claims import PATHS, render, run_bench
from ledger.admin import SyncLedger

CLAIMS, CLASSIC_CLAIMS, BATCH, USERS = 1000, 200, 100, 300


@pytest.fixture(scope="module")
def report(redis_url: str, ray_client: Any) -> dict[str, Any]:
    return run_bench(CLAIMS, CLASSIC_CLAIMS, BATCH, USERS, redis_url=redis_url, keep_data=True)


def test_both_paths_measured_and_compared(report: dict[str, Any]) -> None:
    assert list(report["paths"]) == list(PATHS)
    for name in PATHS:
        row = report["paths"][name]
        assert row["claims_per_s"] > 0 and row["seconds"] > 0 and row["ratio_to_classic"] > 0
    assert report["paths"]["classic"]["ratio_to_classic"] == 1.0
    assert report["machine"]["appendfsync"] == "always"
    assert render(report).row_count == len(PATHS)


def test_every_claim_issued_exactly_one_coupon(report: dict[str, Any], redis_url: str) -> None:
    ledger = SyncLedger.from_url(redis_url)
    tenant_id, template_id = report["ledger"]["tenant_id"], report["ledger"]["template_id"]
    assert ledger.claim_totals(tenant_id, template_id) == {
        "left": 0,
        "issued": CLAIMS,
        "outcomes": CLAIMS,
    }
    coupons = ledger.coupons(tenant_id)
    assert len(coupons) == CLAIMS
    assert sum(len(ids) for ids in ledger.wallets(tenant_id).values()) == CLAIMS
    durable = report["paths"]["durable"]["detail"]
    assert durable["calls"] == CLAIMS // BATCH and durable["decided"] == CLAIMS
    classic = report["paths"]["classic"]["detail"]
    assert classic["issued"] == 2 * CLASSIC_CLAIMS  # sequential and threaded variants
