"""SIGKILL of the dispatcher mid-load loses no acknowledged outcome and duplicates none."""

from __future__ import annotations

import threading
from collections import Counter

import httpx

from domain.activity import Limits, Prize
from tests.pipeline.conftest import Pipeline, reconcile, storm, wait_for

USERS, PER_USER, STOCK = 1000, 3, 200


def test_dispatcher_sigkill_mid_load(pipeline: Pipeline) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel(
        [Prize(id="p", name="Coupon", kind="coupon", weight=1, stock=STOCK)],
        limits=Limits(per_user_total=PER_USER),
    )
    total = USERS * PER_USER
    replies: dict[str, httpx.Response] = {}
    jobs = [(f"u{u}", f"r{k}") for k in range(PER_USER) for u in range(USERS)]
    runner = threading.Thread(
        target=lambda: replies.update(storm(pipeline, tenant, wheel.id, jobs))
    )
    runner.start()
    wait_for(
        lambda: pipeline.ledger.totals(tenant.tenant_id, wheel.id)["outcomes"] >= total // 5,
        timeout=60,
        what="load to be under way",
    )
    pipeline.dispatcher.kill()
    killed_at = pipeline.ledger.totals(tenant.tenant_id, wheel.id)["outcomes"]
    pipeline.dispatcher.start(timeout=120)
    runner.join(timeout=300)
    assert not runner.is_alive()
    assert killed_at < total, "the kill should land mid-load"

    codes = Counter(r.status_code for r in replies.values())
    assert set(codes) <= {200, 202}, codes
    ledger = reconcile(pipeline, tenant, wheel.id, total)
    for key, reply in replies.items():
        if reply.status_code == 200:  # acknowledged: kept exactly as answered
            assert reply.json()["prize"]["id"] == ledger[key]["prize_id"]
            assert reply.json()["decided_at"] == ledger[key]["occurred_at"]
    won = sum(1 for o in ledger.values() if o["status"] == "won")
    totals = pipeline.ledger.totals(tenant.tenant_id, wheel.id)
    assert won == STOCK - totals["stock:p"] <= STOCK
    assert totals["draws"] == total

    print(f"dispatcher killed after {killed_at} outcomes; HTTP {dict(codes)}")
