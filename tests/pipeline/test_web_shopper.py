"""The shopper pages (/p/{tenant}/{activity}) in a real browser on a phone-sized
viewport, against the whole pipeline: what a page shows is what the api
recorded (the ledger's outcome, the wallet, the points account).

Each test saves a screenshot of every page state it goes through under
test-artifacts/<test>/ and fails on any uncaught page error.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from domain.activity import Envelopes, Limits, Prize
from domain.coupons import CouponLimits
from domain.events import now_ms
from domain.tokens import sign_shopper_token
from tests.pipeline.conftest import Pipeline
from tests.pipeline.pages import SETTLE_MS, only_outcome, settled
from tests.pipeline.test_claims import install as template

USER_LIMIT_EN = "You have used all your chances for this activity."
USER_LIMIT_ZH = "您在本活动中的抽奖次数已用完。"


def test_wheel_spins_to_the_prize_the_api_recorded(
    pipeline: Pipeline, http: httpx.Client, phones: Any, screenshots: Any
) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel(
        [
            Prize(id="points-50", name="50 points", kind="points", weight=3, points=50),
            Prize(id="mug", name="Mug", kind="item", weight=1),
            Prize(id="tote", name="Tote bag", kind="item", weight=1),
        ],
        name="Spring wheel",
    )
    alice = phones(tenant, "alice")
    page = alice.open(wheel.id)
    page.wait_for_selector("[data-test=spin]:enabled")
    # The token left the address bar, and the page still knows the shopper.
    assert "token" not in page.url
    assert page.locator("[data-sector]").count() == 4
    screenshots(settled(page), "01-wheel-ready")

    page.click("[data-test=spin]")
    page.wait_for_selector("[data-test=wheel][data-spinning=true]", timeout=SETTLE_MS)
    screenshots(page, "02-wheel-spinning")
    result = page.wait_for_selector("[data-test=result]", timeout=SETTLE_MS)
    shown = result.get_attribute("data-prize-id")
    request_id = result.get_attribute("data-request-id")
    screenshots(settled(page), "03-wheel-result")

    recorded = only_outcome(pipeline, tenant, wheel.id, "alice")
    assert (recorded["request_id"], recorded["prize_id"]) == (request_id, shown)
    # The wheel stopped with that prize's sector under the pointer.
    landed = page.get_attribute("[data-test=wheel]", "data-landed-prize-id")
    assert landed == shown
    answer = http.get(f"/v1/activities/{wheel.id}/draws/{request_id}", headers=alice.headers)
    assert answer.json()["prize"]["id"] == shown

    page.click("[data-test=result-close]")
    page.click("[data-tab=prizes]")
    if recorded["status"] == "won":
        page.wait_for_selector(f"[data-test=my-prizes] li[data-request-id='{request_id}']")
        assert page.get_attribute(f"li[data-request-id='{request_id}']", "data-prize-id") == shown
    else:  # the fallback (1 in 6): a draw, not a prize
        page.wait_for_selector("[data-test=my-prizes] .empty")
    screenshots(settled(page), "04-my-prizes")

    page.click("[data-tab=points]")
    balance = page.wait_for_selector("[data-test=points-balance]")
    points = http.get("/v1/me/points", headers=alice.headers).json()["points"]
    assert int(balance.get_attribute("data-points") or -1) == points
    assert points == (50 if shown == "points-50" else 0)
    screenshots(settled(page), "05-my-points")

    # A reload keeps the shopper (the token is in this tab's sessionStorage).
    page.reload()
    page.wait_for_selector("[data-test=spin]:enabled")
    assert page.locator("[data-test=chances]").is_visible()


def test_a_refusal_shows_its_human_message(
    pipeline: Pipeline, phones: Any, screenshots: Any
) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel(
        [Prize(id="mug", name="Mug", kind="item", weight=1)],
        limits=Limits(per_user_total=1),
    )
    bob = phones(tenant, "bob")
    page = bob.open(wheel.id)
    page.click("[data-test=spin]")
    page.wait_for_selector("[data-test=result]", timeout=SETTLE_MS)
    page.click("[data-test=result-close]")
    page.wait_for_selector("[data-test=spin]:enabled")

    page.click("[data-test=spin]")
    note = page.wait_for_selector("[data-error-code=user_limit_reached]", timeout=SETTLE_MS)
    assert USER_LIMIT_EN in note.inner_text()
    assert page.locator("[data-test=result]").count() == 0
    assert page.is_enabled("[data-test=spin]")
    screenshots(settled(page), "01-refused-en")
    # The same refusal in Simplified Chinese, after the language switch.
    page.select_option("[data-test=language]", "zh-CN")
    page.wait_for_selector(f"text={USER_LIMIT_ZH}")
    screenshots(settled(page), "02-refused-zh")
    # Exactly one draw decided a prize, the second one was refused, both recorded.
    outcomes = list(pipeline.ledger.outcomes(tenant.tenant_id, wheel.id).values())
    refused = [o["reason"] for o in outcomes if o["status"] == "rejected"]
    assert (len(outcomes), refused) == (2, ["user_limit_reached"])


def test_nine_grid_and_red_envelope(pipeline: Pipeline, phones: Any, screenshots: Any) -> None:
    tenant = pipeline.tenant()
    cells = [Prize(id=f"cell-{i}", name=f"Gift {i}", kind="item", weight=1) for i in range(7)]
    grid = tenant.wheel(cells, kind="grid", name="Lucky grid")
    carol = phones(tenant, "carol")
    page = carol.open(grid.id)
    page.wait_for_selector("[data-test=grid-start]:enabled")
    assert page.locator("[data-test=grid] .grid-cell").count() == 8
    screenshots(settled(page), "01-grid-ready")
    page.click("[data-test=grid-start]")
    result = page.wait_for_selector("[data-test=result]", timeout=SETTLE_MS)
    shown = result.get_attribute("data-prize-id")
    assert only_outcome(pipeline, tenant, grid.id, "carol")["prize_id"] == shown
    # The light stopped on the decided cell.
    assert page.get_attribute("[data-lit=true]", "data-prize-id") == shown
    screenshots(settled(page), "02-grid-result")

    envelopes = tenant.install(
        kind="red_envelope",
        name="New year envelopes",
        envelopes=Envelopes(budget_cents=1000, count=3),
    )
    page = carol.open(envelopes.id)
    page.wait_for_selector("[data-test=envelope-open]:enabled")
    assert "3" in page.inner_text("[data-test=envelopes-left]")
    screenshots(settled(page), "03-envelope-ready")
    page.click("[data-test=envelope-open]")
    result = page.wait_for_selector("[data-test=result]", timeout=SETTLE_MS)
    recorded = only_outcome(pipeline, tenant, envelopes.id, "carol")
    assert int(result.get_attribute("data-amount") or -1) == recorded["amount"] > 0
    screenshots(settled(page), "04-envelope-opened")
    page.click("[data-test=result-close]")
    page.wait_for_function(
        "document.querySelector('[data-test=envelopes-left]').innerText.includes('2')"
    )


def test_claim_centre_coupon_lands_in_my_coupons(
    pipeline: Pipeline, http: httpx.Client, phones: Any, screenshots: Any
) -> None:
    tenant = pipeline.tenant()
    five = template(
        tenant,
        name="5 off from 20",
        threshold_cents=2000,
        limits=CouponLimits(stock=100, per_user=1),
    )
    ten = template(
        tenant, name="10 % off", kind="percent", percent=10, amount_cents=0, cap_cents=2000
    )
    centre = tenant.install(kind="claim", name="Coupon centre", templates=(five.id, ten.id))
    dave = phones(tenant, "dave")
    page = dave.open(centre.id)
    card = f"[data-template-id='{five.id}']"
    page.wait_for_selector(f"{card} [data-test=claim]:enabled")
    assert "100 left" in page.inner_text(f"{card} [data-test=stock]")
    screenshots(settled(page), "01-claim-centre")

    page.click(f"{card} [data-test=claim]")
    page.wait_for_selector("[data-test=toast]")
    page.wait_for_selector(f"{card}[data-state=held]")
    assert "99 left" in page.inner_text(f"{card} [data-test=stock]")
    screenshots(settled(page), "02-claimed")

    page.click("[data-tab=coupons]")
    held = page.wait_for_selector(f"[data-test=my-coupons] [data-template-id='{five.id}']")
    wallet = http.get("/v1/wallet", headers=dave.headers).json()
    assert [c["coupon_id"] for c in wallet] == [held.get_attribute("data-coupon-id")]
    assert held.get_attribute("data-state") == "available"
    screenshots(settled(page), "03-my-coupons")
    page.select_option("[data-test=language]", "zh-CN")
    page.wait_for_selector("text=可使用")
    screenshots(settled(page), "04-my-coupons-zh")


def test_flash_sale_counts_down_on_the_server_clock_then_sells_out(
    pipeline: Pipeline, http: httpx.Client, phones: Any, screenshots: Any
) -> None:
    tenant = pipeline.tenant()
    opens = now_ms() + 6_000
    one = template(
        tenant,
        name="Half-price tea",
        claim_opens_at=opens,
        limits=CouponLimits(stock=1, per_user=1),
    )
    sale = tenant.install(
        kind="flash_sale",
        name="Midnight sale",
        status="scheduled",
        starts_at=opens,
        templates=(one.id,),
    )
    erin, frank = phones(tenant, "erin"), phones(tenant, "frank")
    # Frank's phone runs an hour slow: his countdown must still follow the server.
    frank.skew_clock(-3600)
    pages = {}
    for shopper in (erin, frank):
        page = shopper.open(sale.id)
        countdown = page.wait_for_selector("[data-test=countdown]")
        assert 0 < int(countdown.get_attribute("data-seconds-left") or 0) <= 7
        assert page.is_disabled("[data-test=claim]")
        pages[shopper.user] = page
    screenshots(settled(pages["frank"]), "01-countdown")

    claim = "[data-test=claim]:enabled"
    pages["erin"].wait_for_selector(claim, timeout=SETTLE_MS)
    pages["frank"].wait_for_selector(claim, timeout=SETTLE_MS)
    screenshots(settled(pages["erin"]), "02-open")
    pages["erin"].click(claim)
    pages["erin"].wait_for_selector("[data-test=toast]", timeout=SETTLE_MS)
    screenshots(settled(pages["erin"]), "03-first-claimed")

    # Frank's page still showed one left: his claim is refused and the page says sold out.
    if pages["frank"].is_enabled("[data-test=claim]"):
        pages["frank"].click("[data-test=claim]")
        pages["frank"].wait_for_selector("[data-refused=sold_out]", timeout=SETTLE_MS)
    pages["frank"].wait_for_selector("[data-test=sold-out]", timeout=SETTLE_MS)
    assert (
        pages["frank"].get_attribute(f"[data-template-id='{one.id}']", "data-state") == "sold_out"
    )
    assert pages["frank"].is_disabled("[data-test=claim]")
    screenshots(settled(pages["frank"]), "04-sold-out")

    held = {
        u: http.get("/v1/wallet", headers=tenant.shopper_headers(u)).json()
        for u in ("erin", "frank")
    }
    assert [len(held["erin"]), len(held["frank"])] == [1, 0]


def test_without_a_token_the_page_says_where_to_open_it(
    pipeline: Pipeline, phones: Any, screenshots: Any
) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel([Prize(id="mug", name="Mug", kind="item", weight=1)])
    guest = phones(tenant, "guest")
    page = guest.open(wheel.id, token=None)
    note = page.wait_for_selector("[data-error-code=missing_token]")
    text = note.inner_text()
    assert "Open this page from the merchant's app" in text and "请从商家 App 打开本页面" in text
    assert page.locator("[data-test=spin]").count() == 0
    screenshots(settled(page), "01-no-token")

    other = pipeline.tenant()
    page = guest.open(wheel.id, token=sign_shopper_token(other.secret, other.tenant_id, "guest"))
    page.wait_for_selector("[data-error-code=tenant_mismatch]")
    screenshots(settled(page), "02-other-merchants-token")

    # A token that does not verify: the api's 401 as a human message.
    forged = sign_shopper_token(b"not the secret", tenant.tenant_id, "guest")
    page = guest.open(wheel.id, token=forged)
    note = page.wait_for_selector("[data-error-code=invalid_token]")
    assert "not valid" in note.inner_text()
    assert re.search(r"Try again", note.inner_text())
    screenshots(settled(page), "03-invalid-token")
