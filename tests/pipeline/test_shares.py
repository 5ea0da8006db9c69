"""Share links and referrals on real servers: a shopper's link per channel, the
landing page's cards and its way on to the shopper page, a friend accepting the
referral many times at once before and after a draw (each side rewarded exactly
once, through the points road), the refusals, and the clicks and the one
conversion in ClickHouse."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from domain.activity import Prize
from domain.shares import CHANNELS
from tests.pipeline.conftest import Pipeline, Tenant, assert_error, draw, wait_for

ADVOCATE_POINTS, FRIEND_POINTS = 30, 10
TIMES = 5


def _ok(reply: httpx.Response) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def _meta(html: str, attr: str, name: str) -> str:
    found = re.search(rf'<meta {attr}="{re.escape(name)}" content="([^"]*)"', html)
    assert found, f"no {name} in the page"
    return found.group(1)


def accept_at_once(
    pipeline: Pipeline, tenant: Tenant, user: str, code: str, times: int = TIMES
) -> list[Any]:
    """The acceptance posted ``times`` times concurrently (a page retried, reloaded)."""

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=pipeline.url, timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/v1/me/referrals",
                        json={"code": code},
                        headers=tenant.shopper_headers(user),
                    )
                    for _ in range(times)
                )
            )

    return [_ok(r) for r in asyncio.run(run())]


def _points(http: httpx.Client, tenant: Tenant, user: str) -> tuple[int, list[dict]]:
    me = tenant.shopper_headers(user)
    balance = _ok(http.get("/v1/me/points", headers=me))["points"]
    entries = _ok(http.get("/v1/me/points/statement", headers=me))["entries"]
    return balance, [e for e in entries if e["reason"] == "referral"]


def test_share_links_landing_referral_reward_once_and_stats(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    tenant = pipeline.tenant()
    # no points prize: the balances below are the referral rewards alone
    wheel = tenant.wheel(
        [Prize(id="hug", name="A hug", kind="thanks", weight=1)], name="Summer wheel"
    )
    staff = tenant.staff_headers
    rule = {"advocate_points": ADVOCATE_POINTS, "friend_points": FRIEND_POINTS}
    assert _ok(http.put("/v1/admin/referral-rules", json=rule, headers=staff)) == rule
    assert _ok(http.get("/v1/admin/referral-rules", headers=staff)) == rule
    for bad in ({"advocate_points": -1}, {"friend_points": 10**7}, {"coupon": "x"}):
        assert_error(
            http.put("/v1/admin/referral-rules", json=bad, headers=staff), 422, "invalid_request"
        )

    # -- links: one per channel, the same link when asked again ----------------------
    ann = tenant.shopper_headers("ann")
    links = {}
    for channel in CHANNELS:
        ask = {"activity_id": wheel.id, "channel": channel}
        link = links[channel] = _ok(http.post("/v1/me/shares", json=ask, headers=ann))
        assert _ok(http.post("/v1/me/shares", json=ask, headers=ann)) == link
        assert link["landing_url"] == f"{pipeline.url}/s/{link['code']}"
    assert len({link["code"] for link in links.values()}) == len(CHANNELS)
    x = urlsplit(links["x"]["share_url"])
    assert (x.netloc, x.path) == ("twitter.com", "/intent/tweet")
    assert parse_qs(x.query)["url"] == [links["x"]["landing_url"]]
    fb = urlsplit(links["facebook"]["share_url"])
    assert (fb.netloc, fb.path) == ("www.facebook.com", "/sharer/sharer.php")
    assert parse_qs(fb.query)["u"] == [links["facebook"]["landing_url"]]
    for channel in ("tiktok", "copy"):  # no web intent: the landing URL to paste
        assert links[channel]["share_url"] == links[channel]["landing_url"]
    assert_error(
        http.post("/v1/me/shares", json={"activity_id": "nope", "channel": "x"}, headers=ann),
        404,
        "activity_not_found",
    )
    assert_error(
        http.post(
            "/v1/me/shares", json={"activity_id": wheel.id, "channel": "myspace"}, headers=ann
        ),
        422,
        "invalid_request",
    )

    # -- the landing page: cards for the crawlers, then on to the shopper page ----------
    code = links["x"]["code"]
    page = http.get(f"/s/{code}", follow_redirects=False)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert _meta(page.text, "property", "og:title") == "Summer wheel"
    assert _meta(page.text, "property", "og:url") == links["x"]["landing_url"]
    assert _meta(page.text, "name", "twitter:card") == "summary"
    assert "og:image" not in page.text  # no banner: a text card
    target = f"/p/{tenant.tenant_id}/{wheel.id}?ref={code}"
    assert _meta(page.text, "http-equiv", "refresh") == f"0; url={target}"
    assert f'href="{target}"' in page.text
    http.get(f"/s/{code}")  # a second click on X
    http.get(f"/s/{links['facebook']['code']}")
    # A themed activity's banner is the card's image, as an absolute URL.
    theme = {"theme": {"banner_url": "/web/banners/festival.svg"}}
    _ok(http.patch(f"/v1/admin/activities/{wheel.id}", json=theme, headers=staff))
    themed = http.get(f"/s/{links['tiktok']['code']}").text
    banner = f"{pipeline.url}/web/banners/festival.svg"
    assert _meta(themed, "property", "og:image") == _meta(themed, "name", "twitter:image") == banner
    assert _meta(themed, "name", "twitter:card") == "summary_large_image"
    for unknown in ("abcdefghijklmnop", "not-a-code"):
        missing = http.get(f"/s/{unknown}")
        assert missing.status_code == 404 and "does not exist" in missing.text

    # -- refusals ------------------------------------------------------------------
    assert_error(
        http.post("/v1/me/referrals", json={"code": code}, headers=ann), 409, "self_referral"
    )
    bob = tenant.shopper_headers("bob")
    assert_error(
        http.post("/v1/me/referrals", json={"code": "../x"}, headers=bob), 422, "invalid_request"
    )
    assert_error(
        http.post("/v1/me/referrals", json={"code": "abcdefghijklmnop"}, headers=bob),
        404,
        "share_not_found",
    )
    other = pipeline.tenant()  # another tenant's shopper cannot use the link
    assert_error(
        http.post("/v1/me/referrals", json={"code": code}, headers=other.shopper_headers("bob")),
        404,
        "share_not_found",
    )

    # -- bob accepts before drawing: bound once, nothing to reward yet --------------------
    for answer in accept_at_once(pipeline, tenant, "bob", code):
        assert (answer["advocate_id"], answer["code"], answer["converted"]) == ("ann", code, False)
        assert answer["rewards"] == []
    carl_link = _ok(
        http.post(
            "/v1/me/shares",
            json={"activity_id": wheel.id, "channel": "copy"},
            headers=tenant.shopper_headers("carl"),
        )
    )
    refused = assert_error(
        http.post("/v1/me/referrals", json={"code": carl_link["code"]}, headers=bob),
        409,
        "already_referred",
    )
    assert refused["details"] == {"activity_id": wheel.id}
    # ann's other link is the same advocate: the binding stays on the first link
    again = _ok(http.post("/v1/me/referrals", json={"code": links["copy"]["code"]}, headers=bob))
    assert (again["code"], again["channel"], again["converted"]) == (code, "x", False)

    # -- bob draws, then the acceptance (posted many times at once) converts ---------------
    assert _ok(draw(http, tenant, wheel.id, "bob"))["status"] != "rejected"
    for answer in accept_at_once(pipeline, tenant, "bob", code):
        assert answer["converted"] is True
        rewards = {r["side"]: (r["user_id"], r["points"], r["status"]) for r in answer["rewards"]}
        assert rewards == {
            "advocate": ("ann", ADVOCATE_POINTS, "applied"),
            "friend": ("bob", FRIEND_POINTS, "applied"),
        }
    accept_at_once(pipeline, tenant, "bob", code)  # and again, later
    ann_balance, ann_rewards = _points(http, tenant, "ann")
    bob_balance, bob_rewards = _points(http, tenant, "bob")
    assert (ann_balance, [e["amount"] for e in ann_rewards]) == (ADVOCATE_POINTS, [ADVOCATE_POINTS])
    assert (bob_balance, [e["amount"] for e in bob_rewards]) == (FRIEND_POINTS, [FRIEND_POINTS])

    # -- ClickHouse: four clicks, one conversion (sent many times, one row) ----------------
    path = f"/v1/stats/activities/{wheel.id}/shares"

    def figures() -> dict[str, Any] | None:
        body = _ok(http.get(path, headers=staff))
        return body if (body["clicks"], body["conversions"]) == (4, 1) else None

    body = wait_for(figures, 30, "the share clicks and the conversion in ClickHouse")
    by_channel = {c["channel"]: (c["clicks"], c["conversions"]) for c in body["channels"]}
    assert by_channel == {"x": (2, 1), "facebook": (1, 0), "tiktok": (1, 0), "copy": (0, 0)}
    assert_error(http.get(path, headers=other.staff_headers), 404, "activity_not_found")
