"""A share link of a claim centre opened by a friend, in a real browser: the
friend's first claim on the page is the conversion (not only a draw), the page
accepts the referral after the claim, and the advocate's coupon and the
friend's points are credited once however often the friend reloads and
claims."""

from __future__ import annotations

from typing import Any

import httpx

from domain.coupons import CouponLimits
from tests.pipeline.conftest import Pipeline, wait_for
from tests.pipeline.pages import settled
from tests.pipeline.test_claims import install as template

FRIEND_POINTS = 15


def _acceptance(response: Any) -> bool:
    return response.request.method == "POST" and response.url.endswith("/v1/me/referrals")


def _wallet(http: httpx.Client, headers: dict[str, str], template_id: str) -> list[dict]:
    return [
        c for c in http.get("/v1/wallet", headers=headers).json() if c["template_id"] == template_id
    ]


def test_a_claim_on_the_page_converts_the_referral_once(
    pipeline: Pipeline, http: httpx.Client, phones: Any, screenshots: Any
) -> None:
    tenant = pipeline.tenant()
    offered = template(tenant, name="5 off", limits=CouponLimits(stock=100, per_user=3))
    thanks = template(tenant, name="Thanks for sharing", limits=CouponLimits(stock=10))
    centre = tenant.install(kind="claim", name="Coupon centre", templates=(offered.id,))
    rule = {"advocate_points": 0, "friend_points": FRIEND_POINTS, "advocate_template_id": thanks.id}
    assert (
        http.put("/v1/admin/referral-rules", json=rule, headers=tenant.staff_headers).json() == rule
    )
    ann = tenant.shopper_headers("ann")
    link = http.post(
        "/v1/me/shares", json={"activity_id": centre.id, "channel": "facebook"}, headers=ann
    ).json()

    def ann_rewards() -> list[dict]:
        return _wallet(http, ann, thanks.id)

    def points() -> int:
        return http.get("/v1/me/points", headers=bob.headers).json()["points"]

    bob = phones(tenant, "bob")
    bob.page.goto(link["landing_url"])
    bob.page.wait_for_url(f"**/p/{tenant.tenant_id}/{centre.id}?ref={link['code']}")
    with bob.page.expect_response(_acceptance) as arrived:  # on arrival: bound only
        page = bob.open(centre.id)
    assert (arrived.value.json()["advocate_id"], arrived.value.json()["converted"]) == (
        "ann",
        False,
    )
    card = f"[data-template-id='{offered.id}']"
    page.wait_for_selector(f"{card} [data-test=claim]:enabled")
    assert ann_rewards() == []  # bound on arrival, not converted: nothing claimed yet

    # The page accepts the referral after the claim is decided: watch it ask.
    with page.expect_response(_acceptance) as accepted:
        page.click(f"{card} [data-test=claim]")
    answer = accepted.value.json()
    assert (answer["advocate_id"], answer["converted"]) == ("ann", True)
    kinds = {(r["side"], r["kind"], r["status"]) for r in answer["rewards"]}
    assert kinds == {("friend", "points", "applied"), ("advocate", "coupon", "issued")}
    (coupon,) = ann_rewards()
    assert coupon["coupon_id"] == next(
        r["coupon_id"] for r in answer["rewards"] if r["kind"] == "coupon"
    )
    assert points() == FRIEND_POINTS
    page.wait_for_selector("[data-test=toast]")
    screenshots(settled(page), "01-claimed-and-converted")

    # Another claim after a reload accepts the referral again: nothing more.
    with page.expect_response(_acceptance):
        page.reload()
    page.wait_for_selector(f"{card} [data-test=claim]:enabled")
    with page.expect_response(_acceptance) as again:
        page.click(f"{card} [data-test=claim]")
    assert again.value.json()["rewards"] == answer["rewards"]
    assert len(_wallet(http, bob.headers, offered.id)) == 2
    assert ann_rewards() == [coupon] and points() == FRIEND_POINTS
    wait_for(
        lambda: (
            http.get(f"/v1/stats/activities/{centre.id}/shares", headers=tenant.staff_headers)
            .json()
            .get("conversions")
            == 1
        ),
        30,
        "one conversion in ClickHouse",
    )
