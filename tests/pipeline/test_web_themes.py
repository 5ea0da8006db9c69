"""Activity page themes (seed 000) in a real browser on a phone: the page takes
the activity's colours and banner image, keeps text readable on a pale primary,
and shows a theme an operator changed on a running activity after a reload.
The banner is the stock one the api serves (/web/banners/festival.svg): no
internet."""

from __future__ import annotations

from typing import Any

import httpx

from domain.activity import Prize, Theme
from tests.pipeline.conftest import Pipeline, assert_error
from tests.pipeline.pages import settled

BANNER = "/web/banners/festival.svg"
PALE = Theme(
    primary="#ffe066", accent="#3b5bdb", background="#f1f8ff", text="#102a43", banner_url=BANNER
)
DARK = {"primary": "#0a5c36", "accent": "#ffd400", "background": "#eef7f1", "text": "#0b2e1f"}


def _rgb(hex_colour: str) -> str:
    n = int(hex_colour[1:], 16)
    return f"rgb({n >> 16}, {(n >> 8) & 255}, {n & 255})"


def _contrast(css_rgb: str, hex_colour: str) -> float:
    """WCAG contrast of a computed ``rgb(r, g, b)`` against ``#rrggbb``."""

    def luminance(channels: list[int]) -> float:
        lin = [c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    a = luminance([int(c) for c in css_rgb[4:-1].split(",")])
    n = int(hex_colour[1:], 16)
    b = luminance([n >> 16, (n >> 8) & 255, n & 255])
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def _style(page: Any, selector: str, prop: str) -> str:
    return page.eval_on_selector(selector, f"e => getComputedStyle(e).{prop}")


def test_a_theme_colours_the_page_shows_its_banner_and_follows_an_edit(
    pipeline: Pipeline, http: httpx.Client, phones: Any, screenshots: Any
) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel(
        [Prize(id="mug", name="Mug", kind="item", weight=1)], name="Themed wheel", theme=PALE
    )
    staff = tenant.staff_headers
    phone = phones(tenant, "tess")
    page = phone.open(wheel.id)
    page.wait_for_selector("[data-test=spin]:enabled")

    # the colours, as the browser computed them
    assert _style(page, ".topbar", "backgroundColor") == _rgb("#ffe066")
    assert _style(page, ".shell", "backgroundColor") == _rgb("#f1f8ff")
    assert _style(page, ".shell", "color") == _rgb("#102a43")
    # white on a pale yellow would not be read: the page writes dark text on it
    assert _style(page, ".topbar", "color") == _rgb("#1f1f1f")
    assert _style(page, "[data-test=spin]", "color") == _rgb("#1f1f1f")
    # and the primary as a text colour (the active tab) is darkened until it reads
    assert _contrast(_style(page, ".bottom-nav button.active", "color"), "#ffffff") >= 3
    # the banner image really loaded (an <img>, not a background that may 404
    # unseen), under a shade that keeps the white title readable
    banner = page.wait_for_selector("[data-test=banner].has-image [data-test=banner-image]")
    page.wait_for_function(
        "e => e.complete && e.naturalWidth > 0", arg=banner, timeout=10_000, polling=100
    )
    assert banner.get_attribute("src") == BANNER
    box = banner.bounding_box()
    assert box is not None and box["width"] >= 380 and box["height"] >= 140
    assert _style(page, ".banner-title", "color") == _rgb("#ffffff")
    shade = page.eval_on_selector(
        "[data-test=banner]", "e => getComputedStyle(e, '::before').backgroundImage"
    )
    assert "linear-gradient" in shade
    screenshots(settled(page), "01-pale-theme-with-banner")

    # -- the operator changes the theme of the running activity ---------------------------
    path = f"/v1/admin/activities/{wheel.id}"
    create = {"kind": "wheel", "name": "Bad theme", "theme": {"text": "#12345"}}
    refused = assert_error(
        http.post("/v1/admin/activities", json=create, headers=staff), 422, "invalid_request"
    )
    assert refused["message"].startswith("body.theme.text: ")
    for bad, field in (
        ({"primary": "red"}, "body.theme.primary"),
        ({"banner_url": "javascript:alert(1)"}, "body.theme.banner_url"),
        ({"banner_url": "http://example.com/b.png"}, "body.theme.banner_url"),
    ):
        refused = assert_error(
            http.patch(path, json={"theme": bad}, headers=staff), 422, "invalid_request"
        )
        assert refused["message"].startswith(f"{field}: ")
    live = assert_error(
        http.patch(path, json={"theme": DARK, "limits": {"per_user_total": 1}}, headers=staff),
        409,
        "activity_live",
    )
    assert "theme" in live["message"]
    edited = http.patch(path, json={"theme": DARK}, headers=staff)
    assert edited.status_code == 200, edited.text
    assert edited.json()["activity"]["theme"] == {**DARK, "banner_url": None}
    assert http.get(path, headers=staff).json()["activity"]["theme"]["primary"] == DARK["primary"]
    audit = http.get("/v1/admin/audit", headers=staff).json()
    assert (audit[0]["action"], audit[0]["subject"]) == ("activity.edited", wheel.id)
    shopper_view = http.get(f"/v1/activities/{wheel.id}", headers=phone.headers).json()
    assert shopper_view["theme"]["background"] == DARK["background"]

    page.reload()
    page.wait_for_selector("[data-test=spin]:enabled")
    assert _style(page, ".topbar", "backgroundColor") == _rgb(DARK["primary"])
    assert _style(page, ".topbar", "color") == _rgb("#ffffff")  # white reads on dark green
    assert _style(page, ".shell", "backgroundColor") == _rgb(DARK["background"])
    assert page.locator("[data-test=banner-image]").count() == 0  # the gradient again
    assert page.locator("[data-test=banner].has-image").count() == 0
    screenshots(settled(page), "02-edited-theme")
