"""The operator console (/console) in a real browser, against the real pipeline:
an operator signs in, builds a wheel in the prize editor, starts it with the
list's buttons and watches a shopper's draw reach the live dashboard; an analyst
sees the list without the buttons that change anything; a refused call shows
the API's own message in the page. Every screen is saved as a screenshot."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.pipeline.conftest import Pipeline, Tenant, wait_for
from tests.pipeline.pages import SETTLE_MS, only_outcome, settled

VIEWPORT = {"width": 1280, "height": 800}
# The dashboard refreshes its figures every second: a draw ClickHouse holds must
# show within the 2 s the issue asks for (a broken refresh fails this bound).
DASHBOARD_BOUND_MS = 2_000
# Page loads and API round trips through the pipeline on a 2-core machine.
UI_TIMEOUT_MS = 15_000

TOAST_GONE_MS = 6_000

# (id, name, kind, weight, stock, points): the third is the fallback.
PRIZES = [
    ("big", "Headphones", "item", 1, 5, 0),
    ("small", "50 points", "points", 3, 100, 50),
    ("thanks", "Thank you", "thanks", 4, None, 0),
]
KIND_LABELS = {
    "item": "Item",
    "points": "Points",
    "coupon": "Coupon",
    "thanks": "Thanks (no prize)",
}


class Console:
    """One browser context on /console, collecting page errors."""

    def __init__(self, browser: Any, pipeline: Pipeline) -> None:
        self.context = browser.new_context(viewport=VIEWPORT, locale="en-US")
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(UI_TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.url = pipeline.url

    def sign_in(self, key: str, tenant_id: str) -> None:
        self.page.goto(f"{self.url}/console")
        self.page.get_by_label("Staff API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_test_id("tenant")).to_have_text(tenant_id)

    def row(self, activity_id: str) -> Any:
        return self.page.locator(".el-table__row", has_text=activity_id)

    def choose(self, label: str, option: str) -> None:
        """An Element Plus select: open it, pick the option."""
        box = self.page.get_by_role("combobox", name=label, exact=True)
        # Its shown value lies over the input: click the select's wrapper, as a user does.
        self.page.locator(".el-select__wrapper", has=box).click()
        # Its own list: another select's may still be fading out.
        listbox = self.page.get_by_role("listbox", name=label, exact=True)
        listbox.get_by_role("option", name=option, exact=True).click()

    def pick_fallback(self, n: int) -> None:
        radio = self.page.get_by_label(f"Prize {n} Fallback prize", exact=True)
        # The styled circle lies over the radio: click its label, as a user does.
        self.page.locator("label.el-radio", has=radio).click()
        expect(radio).to_be_checked()

    def fill_prize(self, n: int, prize: tuple) -> None:
        pid, name, kind, weight, stock, points = prize
        page = self.page
        page.get_by_test_id("add-prize").click()
        page.get_by_label(f"Prize {n} ID", exact=True).fill(pid)
        page.get_by_label(f"Prize {n} Name", exact=True).fill(name)
        if kind != "item":
            self.choose(f"Prize {n} Kind", KIND_LABELS[kind])
        # Typed, then Tab: an input-number takes its value when it loses focus.
        page.get_by_label(f"Prize {n} Weight", exact=True).fill(str(weight))
        page.keyboard.press("Tab")
        if kind == "points":
            page.get_by_label(f"Prize {n} Points", exact=True).fill(str(points))
            page.keyboard.press("Tab")
        if stock is None:
            self.pick_fallback(n)
        else:
            page.get_by_label(f"Prize {n} Stock", exact=True).fill(str(stock))
            page.keyboard.press("Tab")

    def quiet(self) -> None:
        """No toast left over a screenshot (each lasts 3 s)."""
        expect(self.page.locator(".el-message")).to_have_count(0, timeout=TOAST_GONE_MS)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def console(browser: Any, pipeline: Pipeline) -> Iterator[Console]:
    opened = Console(browser, pipeline)
    try:
        yield opened
    finally:
        opened.close()


def _operator(pipeline: Pipeline) -> Tenant:
    tenant = pipeline.tenant()
    operator_key = pipeline.ledger.create_api_key(tenant.tenant_id, "operator", "ops")
    return Tenant(pipeline, tenant.tenant_id, operator_key, tenant.secret)


def test_operator_builds_starts_and_watches_a_wheel(
    pipeline: Pipeline, http: httpx.Client, console: Console, phones: Any, screenshots: Any
) -> None:
    tenant = _operator(pipeline)
    page = console.page
    page.goto(f"{pipeline.url}/console")
    expect(page.get_by_label("Staff API key")).to_be_visible()
    screenshots(page, "01-sign-in")
    console.sign_in(tenant.api_key, tenant.tenant_id)
    expect(page.get_by_test_id("role")).to_have_text("operator")
    screenshots(page, "02-activities-empty")

    # The wheel, typed into the form and the prize editor.
    activity_id = f"wheel-{uuid.uuid4().hex[:8]}"
    page.get_by_role("button", name="New activity").click()
    page.get_by_label("Name", exact=True).fill("Spring wheel")
    page.get_by_label("ID", exact=True).fill(activity_id)
    page.get_by_label("Per user, per day").fill("3")
    page.keyboard.press("Tab")
    for n, prize in enumerate(PRIZES, 1):
        console.fill_prize(n, prize)
    total = sum(p[3] for p in PRIZES)
    for n, prize in enumerate(PRIZES, 1):
        expect(page.get_by_test_id(f"probability-{n}")).to_have_text(
            f"{100 * prize[3] / total:.2f}%"
        )
    screenshots(page, "03-new-wheel-prize-editor")
    page.get_by_test_id("save-activity").click()

    # The list: a draft, then schedule and start with its buttons.
    row = console.row(activity_id)
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "draft")
    created = http.get(f"/v1/admin/activities/{activity_id}", headers=tenant.staff_headers).json()
    prizes = created["activity"]["prizes"]
    assert [
        (p["id"], p["name"], p["kind"], p["weight"], p["stock"], p["points"]) for p in prizes
    ] == [tuple(p) for p in PRIZES]
    assert created["activity"]["fallback_prize_id"] == "thanks"
    assert created["activity"]["limits"]["per_user_daily"] == 3
    screenshots(page, "04-activities-draft")
    row.get_by_role("button", name="Schedule").click()
    # Scheduled without a start time, the clock opens it at once: Start records it.
    row.get_by_role("button", name="Start").click()
    expect(row.get_by_role("button", name="Start")).to_have_count(0)
    expect(row.get_by_role("button", name="Pause")).to_be_visible()
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "running")
    view = http.get(f"/v1/admin/activities/{activity_id}", headers=tenant.staff_headers).json()
    assert view["activity"]["status"] == "running"
    console.quiet()
    screenshots(page, "05-activities-running")

    # A running activity's form: only the name, end and institution can change.
    row.get_by_role("button", name="Edit").click()
    expect(page.get_by_text("only its name, end and institution can change")).to_be_visible()
    expect(page.get_by_label("Prize 1 Weight", exact=True)).to_be_disabled()
    page.get_by_label("Name", exact=True).fill("Spring wheel 2026")
    screenshots(page, "06-edit-running-wheel")
    page.get_by_test_id("save-activity").click()
    expect(row).to_contain_text("Spring wheel 2026")

    # The live dashboard, then one shopper's draw through the API.
    row.get_by_role("button", name="Live").click()
    draws = page.get_by_test_id("figure-draws")
    expect(draws).to_have_text("0")
    expect(page.get_by_test_id("last-updated")).to_contain_text("Last updated")
    # A shopper spins on a phone-sized page and sees the prize the API recorded.
    phone = phones(tenant, "shopper-1")
    spin = phone.open(activity_id)
    spin.click("[data-test=spin]")
    result = spin.wait_for_selector("[data-test=result]", timeout=SETTLE_MS)
    recorded = only_outcome(pipeline, tenant, activity_id, "shopper-1")
    assert recorded["prize_id"] == result.get_attribute("data-prize-id")
    assert recorded["request_id"] == result.get_attribute("data-request-id")
    screenshots(settled(spin), "07a-shopper-spun")
    wait_for(
        lambda: (
            http.get(f"/v1/stats/activities/{activity_id}", headers=tenant.staff_headers)
            .json()
            .get("draws")
            == 1
        ),
        30,
        "ClickHouse to hold the draw",
        every=0.02,
    )
    expect(draws).to_have_text("1", timeout=DASHBOARD_BOUND_MS)
    expect(page.get_by_test_id("figure-participants")).to_have_text("1")
    expect(page.get_by_test_id("prize-stock")).to_contain_text("Headphones")
    # The charts refresh every other second: their figures as text say when they have.
    expect(page.get_by_test_id("funnel-data")).to_contain_text("Draws1")
    expect(page.get_by_test_id("per-minute-data")).to_contain_text("Draws 1")
    console.quiet()
    screenshots(page, "07-live-dashboard")

    # More headphones while it runs.
    page.get_by_role("button", name="Add stock to Headphones").click()
    page.get_by_role("dialog").get_by_role("textbox").fill("5")
    page.get_by_role("dialog").get_by_role("button", name="Add stock").click()
    stock_row = page.get_by_test_id("prize-stock").locator("tr", has_text="Headphones")
    expect(stock_row).to_contain_text("0 / 10")
    view = http.get(f"/v1/admin/activities/{activity_id}", headers=tenant.staff_headers).json()
    assert view["activity"]["prizes"][0]["stock"] == 10

    # The other screens, and the console in Simplified Chinese.
    page.get_by_role("menuitem", name="Coupon templates").click()
    expect(page.get_by_role("heading", name="Coupon templates")).to_be_visible()
    screenshots(page, "08-templates")
    page.get_by_role("menuitem", name="Audit log").click()
    expect(page.get_by_test_id("audit")).to_contain_text("activity.running")
    screenshots(page, "09-audit")
    page.get_by_role("menuitem", name="Points rules").click()
    expect(page.get_by_role("textbox", name="Points rules")).to_have_value(re.compile("expiry"))
    screenshots(page, "10-points-rules")
    page.get_by_role("menuitem", name="Activities").click()
    console.choose("Language", "简体中文")
    expect(page.get_by_role("heading", name="活动管理")).to_be_visible()
    console.quiet()
    screenshots(page, "11-activities-zh-CN")
    assert console.errors == []


def test_analyst_sees_the_list_without_actions(
    pipeline: Pipeline, http: httpx.Client, console: Console, screenshots: Any
) -> None:
    tenant = pipeline.tenant()
    thanks = {"id": "thanks", "name": "Thanks", "kind": "thanks", "weight": 1}
    prize = {"id": "cap", "name": "Cap", "kind": "item", "weight": 1, "stock": 3}
    activity_id = f"wheel-{uuid.uuid4().hex[:8]}"
    body = {"id": activity_id, "kind": "wheel", "name": "Analysts' wheel",
            "prizes": [prize, thanks], "fallback_prize_id": "thanks"}  # fmt: skip
    assert (
        http.post("/v1/admin/activities", json=body, headers=tenant.staff_headers).status_code
        == 201
    )

    analyst_key = pipeline.ledger.create_api_key(tenant.tenant_id, "analyst", "ana")
    me = http.get("/v1/admin/whoami", headers={"X-Api-Key": analyst_key}).json()
    assert me == {"tenant_id": tenant.tenant_id, "role": "analyst", "key_name": "ana",
                  "institution_id": None}  # fmt: skip
    console.sign_in(analyst_key, tenant.tenant_id)
    page = console.page
    expect(page.get_by_test_id("role")).to_have_text("analyst (read only)")
    row = console.row(activity_id)
    expect(row).to_contain_text("Analysts' wheel")
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "draft")
    assert row.get_by_role("button").all_inner_texts() == ["Live"]
    expect(page.get_by_role("button", name="New activity")).to_have_count(0)
    screenshots(page, "analyst-activities")
    row.get_by_role("button", name="Live").click()
    expect(page.get_by_test_id("figure-draws")).to_have_text("0")
    screenshots(page, "analyst-live")
    assert console.errors == []


def test_refused_calls_show_the_api_message(
    pipeline: Pipeline, http: httpx.Client, console: Console, screenshots: Any
) -> None:
    tenant = _operator(pipeline)
    page = console.page

    # A wrong key: the API's 401 message on the sign-in page.
    page.goto(f"{pipeline.url}/console")
    page.get_by_label("Staff API key").fill("not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("api-error")).to_contain_text("the API key is unknown or revoked")
    screenshots(page, "bad-key")

    taken = f"taken-{uuid.uuid4().hex[:8]}"
    body = {"id": taken, "kind": "red_envelope", "name": "First",
            "envelopes": {"budget_cents": 1000, "count": 10}}  # fmt: skip
    assert (
        http.post("/v1/admin/activities", json=body, headers=tenant.staff_headers).status_code
        == 201
    )
    console.sign_in(tenant.api_key, tenant.tenant_id)

    # A duplicate id: the 409's message next to the form.
    page.get_by_role("button", name="New activity").click()
    console.choose("Kind", "Red envelope")
    page.get_by_label("Name", exact=True).fill("Second")
    page.get_by_label("ID", exact=True).fill(taken)
    page.get_by_test_id("save-activity").click()
    expect(page.get_by_test_id("api-error")).to_contain_text(f"activity '{taken}' already exists")
    screenshots(page, "duplicate-id")

    # A wheel whose weights are all 0: the 422 names the problem.
    page.get_by_role("button", name="Back").click()
    page.get_by_role("button", name="New activity").click()
    page.get_by_label("Name", exact=True).fill("No odds")
    for n, pid in enumerate(["a", "z"], 1):
        page.get_by_test_id("add-prize").click()
        page.get_by_label(f"Prize {n} ID", exact=True).fill(pid)
        page.get_by_label(f"Prize {n} Name", exact=True).fill(pid.upper())
        page.get_by_label(f"Prize {n} Weight", exact=True).fill("0")
        page.keyboard.press("Tab")
    console.pick_fallback(2)
    expect(page.get_by_test_id("probability-1")).to_have_text("—")
    page.get_by_test_id("save-activity").click()
    expect(page.get_by_test_id("api-error")).to_contain_text(
        "at least one prize needs a positive weight"
    )
    screenshots(page, "zero-weights")
    names = [
        v["activity"]["id"]
        for v in http.get("/v1/admin/activities", headers=tenant.staff_headers).json()
    ]
    assert names == [taken]
    assert console.errors == []
