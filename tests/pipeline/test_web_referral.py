"""A share link opened by a second shopper, in a real browser: the landing page
forwards to the shopper page with the referral, the page accepts it on arrival
and after every draw, and the referral is credited exactly once however often
the friend plays and reloads."""

from __future__ import annotations

from typing import Any

import httpx

from domain.activity import Prize
from tests.pipeline.conftest import Pipeline, wait_for
from tests.pipeline.pages import SETTLE_MS, settled

ADVOCATE_POINTS, FRIEND_POINTS = 30, 10


def _points(http: httpx.Client, headers: dict[str, str]) -> int:
    return http.get("/v1/me/points", headers=headers).json()["points"]


def _referral_entries(http: httpx.Client, headers: dict[str, str]) -> int:
    statement = http.get("/v1/me/points/statement", headers=headers).json()
    return sum(e["reason"] == "referral" for e in statement["entries"])


def _spin(page: Any) -> str:
    page.wait_for_selector("[data-test=spin]:enabled", timeout=SETTLE_MS)
    page.click("[data-test=spin]")
    result = page.wait_for_selector("[data-test=result]", timeout=SETTLE_MS)
    request_id = result.get_attribute("data-request-id") or ""
    page.click("[data-test=result-close]")
    return request_id


def test_a_share_link_credits_the_referral_once(
    pipeline: Pipeline, http: httpx.Client, phones: Any, screenshots: Any
) -> None:
    tenant = pipeline.tenant()
    rule = {"advocate_points": ADVOCATE_POINTS, "friend_points": FRIEND_POINTS}
    reply = http.put("/v1/admin/referral-rules", json=rule, headers=tenant.staff_headers)
    assert reply.status_code == 200, reply.text
    # No points prize: the balances below are the referral's alone.
    wheel = tenant.wheel([Prize(id="hug", name="A hug", kind="item", weight=1)])
    ann, bob = tenant.shopper_headers("ann"), tenant.shopper_headers("bob")
    ask = {"activity_id": wheel.id, "channel": "copy"}
    link = http.post("/v1/me/shares", json=ask, headers=ann).json()

    # Bob opens the link: the landing page forwards to the activity with the referral.
    phone = phones(tenant, "bob")
    phone.page.goto(link["landing_url"])
    phone.page.wait_for_url(f"**/p/{tenant.tenant_id}/{wheel.id}?ref={link['code']}")
    phone.page.wait_for_selector("#app > *")
    screenshots(phone.page, "01-landed-without-token")
    # The merchant's app opens the page with Bob's token; the referral came along.
    page = phone.open(wheel.id)
    screenshots(settled(page), "02-wheel")
    assert _points(http, ann) == _points(http, bob) == 0  # bound, not converted yet

    first = _spin(page)
    assert first
    wait_for(
        lambda: _points(http, ann) == ADVOCATE_POINTS and _points(http, bob) == FRIEND_POINTS,
        30,
        "both rewards after Bob's first draw",
    )
    screenshots(settled(page), "03-after-first-draw")
    # More draws and a reload accept the referral again: nothing more is credited.
    _spin(page)
    page.reload()
    _spin(page)
    assert (_points(http, ann), _points(http, bob)) == (ADVOCATE_POINTS, FRIEND_POINTS)
    assert (_referral_entries(http, ann), _referral_entries(http, bob)) == (1, 1)
    # ClickHouse: Bob's click on the link and his one conversion.
    wait_for(
        lambda: (
            http.get(f"/v1/stats/activities/{wheel.id}/shares", headers=tenant.staff_headers)
            .json()
            .get("conversions")
            == 1
        ),
        30,
        "one conversion in ClickHouse",
    )
    shares = http.get(f"/v1/stats/activities/{wheel.id}/shares", headers=tenant.staff_headers)
    assert shares.json()["clicks"] == 1
