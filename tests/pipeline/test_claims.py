"""Claims on the real pipeline: a coupon issued into the wallet through Kafka and
the template's actor, every rejection with its code, and a flash-sale rush
(with and without a dispatcher SIGKILL) that issues exactly the stock.

The rush runs at CI size by default; CARNIVAL_FULL_SIZE=1 runs the issue's
size (50,000 claims from 20,000 users for 1,000 coupons). The assertions are
the same at both sizes.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from domain.activity import Prize
from domain.coupons import CouponLimits, CouponTemplate, Validity
from domain.events import now_ms, request_key
from domain.topics import CLAIM_OUTCOMES
from tests.pipeline.conftest import (
    FULL_SIZE,
    Pipeline,
    Tenant,
    assert_error,
    assert_reconciled,
    outcome_events,
    send_again_on_reset,
    wait_for,
)
from tests.pipeline.test_codes_api import _export, _generate

RUSH_CLAIMS, RUSH_USERS, RUSH_STOCK = (50_000, 20_000, 1_000) if FULL_SIZE else (8_000, 3_000, 200)
DAY_MS = 86_400_000


def install(tenant: Tenant, **fields: Any) -> CouponTemplate:
    body: dict[str, Any] = {
        "id": f"ct{uuid.uuid4().hex[:8]}",
        "tenant_id": tenant.tenant_id,
        "name": "5 off",
        "kind": "fixed",
        "amount_cents": 500,
        "validity": Validity(days_after_claim=30),
        "status": "running",
    }
    body.update(fields)
    template = CouponTemplate(**body)
    tenant.pipeline.ledger.install_template(template)
    return template


def claim(
    http: httpx.Client, tenant: Tenant, template_id: str, user: str, request_id: str | None = None
) -> httpx.Response:
    """One claim; a 202 ticket is polled until the claim is decided."""
    request_id = request_id or uuid.uuid4().hex
    headers = tenant.shopper_headers(user)
    path = f"/v1/templates/{template_id}/claims"
    reply = http.post(path, json={"request_id": request_id}, headers=headers)
    if reply.status_code != 202:
        return reply
    return wait_for(
        lambda: (r := http.get(f"{path}/{request_id}", headers=headers)).status_code != 202 and r,
        30,
        f"claim {request_id}",
    )


def rush(
    pipeline: Pipeline,
    tenant: Tenant,
    template_id: str,
    jobs: list[tuple[str, str]],
    concurrency: int = 128,
) -> dict[str, httpx.Response]:
    """POST one claim per (user, request id), ``concurrency`` at a time; a 202 is
    polled to its answer. The final answers by request key."""

    async def run() -> dict[str, httpx.Response]:
        limit = asyncio.Semaphore(concurrency)
        path = f"/v1/templates/{template_id}/claims"
        async with httpx.AsyncClient(base_url=pipeline.url, timeout=60) as client:

            async def one(user: str, rid: str) -> tuple[str, httpx.Response]:
                headers = tenant.shopper_headers(user)
                async with limit:
                    reply = await send_again_on_reset(
                        lambda: client.post(path, json={"request_id": rid}, headers=headers)
                    )
                    while reply.status_code == 202:
                        await asyncio.sleep(0.2)
                        reply = await send_again_on_reset(
                            lambda: client.get(f"{path}/{rid}", headers=headers)
                        )
                return request_key(user, rid), reply

            return dict(await asyncio.gather(*(one(u, r) for u, r in jobs)))

    return asyncio.run(run())


def test_claim_puts_a_coupon_in_the_wallet(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    template = install(tenant, limits=CouponLimits(stock=10, per_user=2))
    before = now_ms()
    first = claim(http, tenant, template.id, "alice", "r1")
    assert first.status_code == 200, first.text
    body = first.json()
    coupon_id = body["coupon"]["coupon_id"]
    assert body["status"] == "issued" and coupon_id.startswith("c_") and len(coupon_id) > 20
    assert body["coupon"]["valid_until"] - body["coupon"]["valid_from"] == 30 * DAY_MS
    assert body["coupon"]["valid_from"] >= before

    again = claim(http, tenant, template.id, "alice", "r1")  # a retry: the same coupon
    assert again.json() == body
    coupons = pipeline.ledger.coupons(tenant.tenant_id)
    assert list(coupons) == [coupon_id]
    stored = coupons[coupon_id]
    assert (stored.user_id, stored.template_id, stored.source) == ("alice", template.id, "claim")
    assert stored.state == "available" and stored.source_id == request_key("alice", "r1")
    assert pipeline.ledger.wallets(tenant.tenant_id) == {"alice": [coupon_id]}

    second = claim(http, tenant, template.id, "alice", "r2")
    assert second.status_code == 200
    assert_error(claim(http, tenant, template.id, "alice", "r3"), 409, "user_limit_reached")
    wallet = pipeline.ledger.wallets(tenant.tenant_id)["alice"]
    assert wallet == [coupon_id, second.json()["coupon"]["coupon_id"]]
    totals = pipeline.ledger.claim_totals(tenant.tenant_id, template.id)
    assert totals == {"left": 8, "issued": 2, "outcomes": 3}

    page = http.get(f"/v1/templates/{template.id}", headers=tenant.shopper_headers("alice"))
    assert page.status_code == 200, page.text
    view = page.json()
    assert (view["stock_left"], view["claimed_by_me"], view["can_claim"]) == (8, 2, False)
    assert view["reason"] == "user_limit_reached" and view["face_value_cents"] == 500
    assert abs(view["server_time"] - now_ms()) < 60_000


def test_claim_rejections(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    at = now_ms()
    draft = install(tenant, status="draft")
    soon = install(tenant, claim_opens_at=at + DAY_MS)
    closed = install(tenant, claim_closes_at=at - 1)
    empty = install(tenant, limits=CouponLimits(stock=0))
    assert_error(claim(http, tenant, draft.id, "u1"), 409, "template_not_running")
    assert_error(claim(http, tenant, soon.id, "u1"), 409, "claim_not_open_yet")
    assert_error(claim(http, tenant, closed.id, "u1"), 409, "claim_closed")
    assert_error(claim(http, tenant, empty.id, "u1"), 409, "sold_out")
    assert_error(claim(http, tenant, "no-such-template", "u1"), 404, "template_not_found")

    other = pipeline.tenant()  # another tenant's template does not exist for this one
    foreign = install(other)
    assert_error(claim(http, tenant, foreign.id, "u1"), 404, "template_not_found")
    assert pipeline.ledger.coupons(tenant.tenant_id) == {}

    path = f"/v1/templates/{soon.id}/claims"
    assert_error(http.post(path, json={}), 401, "missing_token")
    headers = tenant.shopper_headers("u1")
    bad_id = http.post(path, json={"request_id": "bad id!"}, headers=headers)
    assert_error(bad_id, 422, "invalid_request")
    extra = http.post(path, json={"request_id": "r", "coupon": "x"}, headers=headers)
    assert_error(extra, 422, "invalid_request")
    assert_error(http.get(f"{path}/never-sent", headers=headers), 404, "request_not_found")
    assert_error(http.get(f"/v1/templates/{draft.id}", headers=headers), 404, "template_not_found")
    stats = http.get("/v1/stats/templates/no-such-template", headers=tenant.staff_headers)
    assert_error(stats, 404, "template_not_found")


def _check_rush(
    pipeline: Pipeline, tenant: Tenant, template: CouponTemplate, replies: dict[str, Any]
) -> Counter[str]:
    """Exactly the stock issued, nobody holds two, every request answered once,
    every acknowledged answer is the ledger's, the outcome stream equals the ledger."""
    answers: Counter[str] = Counter()
    for reply in replies.values():
        assert reply.status_code in (200, 409), reply.text
        answers["issued" if reply.status_code == 200 else reply.json()["error"]["code"]] += 1
    assert set(answers) <= {"issued", "sold_out", "user_limit_reached"}, answers
    assert answers["issued"] == RUSH_STOCK and answers["user_limit_reached"] > 0

    outcomes = pipeline.ledger.claim_outcomes(tenant.tenant_id, template.id)
    assert set(outcomes) == set(replies)  # one outcome per request, none other
    for key, reply in replies.items():
        if reply.status_code == 200:
            assert reply.json()["coupon"]["coupon_id"] == outcomes[key]["coupon_id"]
        else:
            assert outcomes[key]["status"] == "rejected"
            assert outcomes[key]["reason"] == reply.json()["error"]["code"]

    coupons = pipeline.ledger.coupons(tenant.tenant_id)
    wallets = pipeline.ledger.wallets(tenant.tenant_id)
    assert len(coupons) == RUSH_STOCK
    assert all(len(ids) == 1 for ids in wallets.values())  # limit 1: nobody holds two
    assert sorted(i for ids in wallets.values() for i in ids) == sorted(coupons)
    assert {c.user_id for c in coupons.values()} == set(wallets)
    totals = pipeline.ledger.claim_totals(tenant.tenant_id, template.id)
    assert totals == {"left": 0, "issued": RUSH_STOCK, "outcomes": len(replies)}

    events = outcome_events(
        pipeline.settings.kafka_bootstrap,
        template.id,
        expected=len(replies),
        topic=CLAIM_OUTCOMES,
        owner_field="template_id",
    )
    for event in events:  # a re-produced event is the same event, never a new decision
        assert event == outcomes[event["event_id"]]
    assert {e["event_id"] for e in events} == set(outcomes)

    # ClickHouse, through the stats API, counts exactly what the ledger holds.
    with httpx.Client(base_url=pipeline.url, timeout=30) as http:
        path = f"/v1/stats/templates/{template.id}"
        stats = wait_for(
            lambda: (
                (s := http.get(path, headers=tenant.staff_headers).json())["claims"] == len(replies)
                and s
            ),
            timeout=60,
            what="ClickHouse to hold every claim outcome",
        )
    assert stats["issued"] == stats["holders"] == RUSH_STOCK
    assert stats["rejected_by_reason"] == {k: v for k, v in answers.items() if k != "issued"}
    return answers


def _rush_jobs() -> list[tuple[str, str]]:
    # Each user's claims come in pairs, as from a shopper hammering the button,
    # so pairs land in the same batch and the per-user limit is decided under load.
    return [(f"u{(i // 2) % RUSH_USERS}", f"r{i}") for i in range(RUSH_CLAIMS)]


@pytest.mark.parametrize("kill_dispatcher", [False, True], ids=["steady", "dispatcher-sigkill"])
def test_flash_sale_rush(pipeline: Pipeline, kill_dispatcher: bool) -> None:
    tenant = pipeline.tenant()
    template = install(
        tenant,
        kind="flash_price",
        amount_cents=0,
        flash={"sku": "phone", "price_cents": 99_00},
        validity=Validity(ends_at=now_ms() + DAY_MS),
        limits=CouponLimits(stock=RUSH_STOCK, per_user=1),
        claim_opens_at=now_ms(),
    )
    jobs = _rush_jobs()
    replies: dict[str, httpx.Response] = {}
    runner = threading.Thread(
        target=lambda: replies.update(rush(pipeline, tenant, template.id, jobs))
    )
    runner.start()
    if kill_dispatcher:
        wait_for(
            lambda: (
                pipeline.ledger.claim_totals(tenant.tenant_id, template.id)["outcomes"]
                >= RUSH_CLAIMS // 5
            ),
            timeout=120,
            what="the rush to be under way",
        )
        pipeline.dispatcher.kill()
        killed_at = pipeline.ledger.claim_totals(tenant.tenant_id, template.id)["outcomes"]
        assert killed_at < RUSH_CLAIMS, "the kill should land mid-rush"
        pipeline.dispatcher.start(timeout=120)
    runner.join(timeout=900)
    assert not runner.is_alive()
    answers = _check_rush(pipeline, tenant, template, replies)
    print(f"flash sale {RUSH_CLAIMS} claims / {RUSH_USERS} users: {dict(answers)}")
    assert_reconciled(pipeline, tenant.tenant_id)


def test_claim_centre_and_flash_sale_pages(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    staff = tenant.staff_headers
    five, ten = install(tenant), install(tenant, name="10 off", amount_cents=1000)
    hidden = install(tenant, status="draft")
    at = now_ms()
    soon = install(tenant, claim_opens_at=at + DAY_MS, limits=CouponLimits(stock=10, per_user=1))
    centre = {
        "id": f"centre-{uuid.uuid4().hex[:6]}",
        "kind": "claim",
        "name": "Coupon centre",
        "templates": [five.id, ten.id, hidden.id],
    }
    created = http.post("/v1/admin/activities", json=centre, headers=staff)
    assert created.status_code == 201, created.text
    http.post(
        f"/v1/admin/activities/{centre['id']}/transitions", json={"to": "scheduled"}, headers=staff
    )
    alice = tenant.shopper_headers("alice")
    page = http.get(f"/v1/activities/{centre['id']}/coupons", headers=alice).json()
    assert (page["kind"], page["status"]) == ("claim", "running")
    assert [c["id"] for c in page["coupons"]] == [five.id, ten.id]  # the draft is not shown
    assert all(c["can_claim"] for c in page["coupons"])
    assert claim(http, tenant, ten.id, "alice").status_code == 200
    drawn = http.post(f"/v1/activities/{centre['id']}/draws", json={}, headers=alice)
    assert_error(drawn, 409, "activity_not_drawable")

    sale = {
        "id": f"sale-{uuid.uuid4().hex[:6]}",
        "kind": "flash_sale",
        "name": "Midnight sale",
        "starts_at": at + DAY_MS,
        "templates": [soon.id],
    }
    assert http.post("/v1/admin/activities", json=sale, headers=staff).status_code == 201
    view = http.get(f"/v1/activities/{sale['id']}/coupons", headers=alice).json()
    coupon = view["coupons"][0]
    assert (coupon["can_claim"], coupon["reason"]) == (False, "claim_not_open_yet")
    assert coupon["claim_opens_at"] == at + DAY_MS and coupon["stock_left"] == 10

    early = install(tenant)  # claims open as soon as it runs: before the sale
    bad = [
        ({**sale, "id": "s2", "starts_at": None}, "invalid_activity"),  # a sale opens at a second
        ({**sale, "id": "s3", "templates": [soon.id, early.id]}, "claims_open_before_sale"),
        ({**centre, "id": "c2", "templates": []}, "invalid_activity"),
        ({**centre, "id": "c3", "templates": ["no-such"]}, "unknown_coupon_template"),
        ({**centre, "id": "c4", "kind": "wheel"}, "invalid_activity"),  # a wheel has prizes
    ]
    for body, code in bad:
        assert_error(http.post("/v1/admin/activities", json=body, headers=staff), 422, code)
    wheel = tenant.wheel([Prize(id="p", name="P", kind="item", weight=1)])  # not a coupon page
    assert_error(
        http.get(f"/v1/activities/{wheel.id}/coupons", headers=alice), 409, "not_a_coupon_page"
    )


def test_claim_a_code_into_the_wallet(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    template = install(tenant, limits=CouponLimits(stock=10, per_user=5))
    batch = _generate(http, tenant, template.id, 4, prefix="SPRING-", length=10)
    assert batch["state"] == "done"
    codes = [row["code"] for row in _export(http, tenant, batch["id"])]
    alice, bob = tenant.shopper_headers("alice"), tenant.shopper_headers("bob")

    typed = " " + codes[0].lower() + " "  # as typed at a till: case and spaces do not matter
    won = http.post(f"/v1/codes/{typed}/claims", json={"request_id": "c1"}, headers=alice)
    assert won.status_code == 200, won.text
    coupon_id = won.json()["coupon"]["coupon_id"]
    again = http.post(f"/v1/codes/{codes[0]}/claims", json={"request_id": "c1"}, headers=alice)
    assert again.json() == won.json()  # a retry: the same coupon
    coupon = pipeline.ledger.coupons(tenant.tenant_id)[coupon_id]
    assert (coupon.user_id, coupon.source, coupon.source_id) == ("alice", "code", codes[0])
    record = http.get(f"/v1/admin/codes/{codes[0]}", headers=tenant.staff_headers).json()
    assert (record["state"], record["user_id"], record["coupon_id"]) == (
        "assigned",
        "alice",
        coupon_id,
    )

    taken = http.post(f"/v1/codes/{codes[0]}/claims", json={"request_id": "b1"}, headers=bob)
    assert_error(taken, 409, "code_not_available")
    http.post(f"/v1/admin/codes/{codes[1]}/void", headers=tenant.staff_headers)
    voided = http.post(f"/v1/codes/{codes[1]}/claims", json={}, headers=bob)
    assert_error(voided, 409, "code_not_available")
    assert_error(
        http.post("/v1/codes/NOPE-123/claims", json={}, headers=bob), 404, "code_not_found"
    )
    assert pipeline.ledger.wallets(tenant.tenant_id) == {"alice": [coupon_id]}
    assert pipeline.ledger.claim_totals(tenant.tenant_id, template.id)["left"] == 9
