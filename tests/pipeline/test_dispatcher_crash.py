"""SIGKILL of the dispatcher mid-load loses no acknowledged outcome and duplicates none."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import httpx
import orjson

from domain.activity import Limits, Prize
from domain.events import request_key
from domain.ledger_keys import ActivityKeys
from tests.pipeline.conftest import Pipeline, outcome_events, wait_for

USERS, PER_USER, STOCK = 1000, 3, 200


async def _load(pipeline: Pipeline, tenant, activity_id: str) -> dict[str, httpx.Response]:
    limit = asyncio.Semaphore(128)
    async with httpx.AsyncClient(base_url=pipeline.url, timeout=60) as client:

        async def one(user: str, rid: str) -> tuple[str, httpx.Response]:
            async with limit:
                reply = await client.post(
                    f"/v1/activities/{activity_id}/draws",
                    json={"request_id": rid},
                    headers=tenant.shopper_headers(user),
                )
                return request_key(user, rid), reply

        jobs = [one(f"u{u}", f"r{k}") for k in range(PER_USER) for u in range(USERS)]
        return dict(await asyncio.gather(*jobs))


def test_dispatcher_sigkill_mid_load(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel(
        [Prize(id="p", name="Coupon", kind="coupon", weight=1, stock=STOCK)],
        limits=Limits(per_user_total=PER_USER),
    )
    total = USERS * PER_USER
    replies: dict[str, httpx.Response] = {}
    runner = threading.Thread(
        target=lambda: replies.update(asyncio.run(_load(pipeline, tenant, wheel.id)))
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
    wait_for(
        lambda: pipeline.ledger.totals(tenant.tenant_id, wheel.id)["outcomes"] == total,
        timeout=120,
        what="every request decided after the restart",
    )
    ledger = {
        k.decode(): orjson.loads(v)
        for k, v in pipeline.redis.hgetall(
            ActivityKeys(tenant.tenant_id, wheel.id).outcomes
        ).items()
    }
    assert len(ledger) == total
    for key, reply in replies.items():
        if reply.status_code == 200:  # acknowledged: kept exactly as answered
            assert reply.json()["prize"]["id"] == ledger[key]["prize_id"]
            assert reply.json()["decided_at"] == ledger[key]["occurred_at"]
    won = sum(1 for o in ledger.values() if o["status"] == "won")
    totals = pipeline.ledger.totals(tenant.tenant_id, wheel.id)
    assert won == STOCK - totals["stock:p"] <= STOCK
    assert totals["draws"] == total

    events = outcome_events(pipeline.settings.kafka_bootstrap, wheel.id, expected=total)
    for event in events:  # re-produced events are the same event, never a new decision
        assert event == ledger[event["event_id"]]
    assert {e["event_id"] for e in events} == set(ledger)

    stats = wait_for(
        lambda: (
            (
                s := http.get(
                    f"/v1/stats/activities/{wheel.id}", headers=tenant.staff_headers
                ).json()
            )["draws"]
            == total
            and s
        ),
        timeout=30,
        what="ClickHouse to hold every outcome",
    )
    assert stats["won"] == won
    print(
        f"killed after {killed_at} outcomes; HTTP {dict(codes)}; duplicates on Kafka: "
        f"{len(events) - total}"
    )
