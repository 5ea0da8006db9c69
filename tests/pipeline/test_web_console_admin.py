"""The rest of the operator console (/console) in a real browser, against the
real pipeline: coupon templates' lifecycle buttons and stock, a claim centre and
a flash sale built in the activity editor with a page theme, a code batch
generated with its progress followed to the end and exported, an import whose
bad lines come back in the report, a partner and a webhook whose secrets are
shown once, a small bulk distribution, and the webhook's delivery log showing
what that distribution sent. Every step asserts the API's state, not only the
page; every screen is saved as a screenshot."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.pipeline.conftest import Pipeline, Tenant, wait_for
from tests.pipeline.pages import settled
from tests.pipeline.test_web_console import Console
from tests.pipeline.test_webhooks import Receiver

GENERATED_CODES = 500
HOUR_MS = 3_600_000
# Jobs (a batch, a distribution) and webhook deliveries through the pipeline on
# a 2-core machine: generous bounds, never a sleep.
JOB_TIMEOUT_S = 60
JOB_TIMEOUT_MS = JOB_TIMEOUT_S * 1000


@pytest.fixture
def console(browser: Any, pipeline: Pipeline) -> Iterator[Console]:
    opened = Console(browser, pipeline)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A partner's endpoint that verifies every signature and answers 204."""
    r = Receiver(fail_first=0)
    r.thread.start()
    yield r
    r.server.shutdown()


def _ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json() if reply.content else None


def _template(http: httpx.Client, tenant: Tenant, name: str, **fields: Any) -> dict[str, Any]:
    body = {
        "id": f"tpl-{uuid.uuid4().hex[:8]}",
        "name": name,
        "kind": "fixed",
        "amount_cents": 500,
        "validity": {"days_after_claim": 30},
        "limits": {"stock": 100, "per_user": 1},
        **fields,
    }
    return _ok(http.post("/v1/admin/templates", json=body, headers=tenant.staff_headers), 201)[
        "template"
    ]


def _get(http: httpx.Client, tenant: Tenant, path: str) -> Any:
    return _ok(http.get(path, headers=tenant.staff_headers))


def _operator(pipeline: Pipeline) -> Tenant:
    tenant = pipeline.tenant()
    key = pipeline.ledger.create_api_key(tenant.tenant_id, "operator", "ops")
    return Tenant(pipeline, tenant.tenant_id, key, tenant.secret)


def _upload(name: str, text: str) -> dict[str, Any]:
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode()}


def test_operator_runs_coupons_partners_and_webhooks(
    pipeline: Pipeline,
    http: httpx.Client,
    console: Console,
    receiver: Receiver,
    screenshots: Any,
) -> None:
    tenant = _operator(pipeline)
    page = console.page
    claim_tpl = _template(http, tenant, "5 off")
    opens_at = (int(time.time() * 1000) // 1000) * 1000 + HOUR_MS
    flash_tpl = _template(http, tenant, "Flash 5 off", claim_opens_at=opens_at)
    console.sign_in(tenant.api_key, tenant.tenant_id)

    # Templates: start, pause and resume from the list, only the allowed verbs shown.
    page.get_by_role("menuitem", name="Coupon templates").click()
    row = page.locator(".el-table__row", has_text=claim_tpl["id"])
    assert row.get_by_test_id("template-resume").count() == 0
    row.get_by_test_id("template-start").click()
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "running")
    path = f"/v1/admin/templates/{claim_tpl['id']}"
    assert _get(http, tenant, path)["template"]["status"] == "running"
    row.get_by_test_id("template-pause").click()
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "paused")
    assert _get(http, tenant, path)["template"]["status"] == "paused"
    expect(row.get_by_test_id("template-start")).to_have_count(0)
    console.quiet()
    screenshots(page, "01-templates-paused")
    row.get_by_test_id("template-resume").click()
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "running")
    assert _get(http, tenant, path)["template"]["status"] == "running"

    # Its detail page: add stock, and a live edit limited to the live fields.
    row.get_by_role("button", name="Details").click()
    expect(page.get_by_test_id("template-stock")).to_have_text("100 / 100")
    page.get_by_label("Add stock", exact=True).fill("50")
    page.keyboard.press("Tab")
    page.get_by_test_id("add-template-stock").click()
    expect(page.get_by_test_id("template-stock")).to_have_text("150 / 150")
    assert _get(http, tenant, path)["template"]["limits"]["stock"] == 150
    expect(page.get_by_label("Stock (empty: unlimited)")).to_be_disabled()
    page.get_by_label("Name", exact=True).fill("5 off, spring")
    page.get_by_test_id("save-template").click()
    expect(page.get_by_role("heading", name="5 off, spring")).to_be_visible()
    assert _get(http, tenant, path)["template"]["name"] == "5 off, spring"
    console.quiet()
    screenshots(page, "02-template-detail")
    # The flash sale's template starts too: a page only sells what runs.
    _ok(http.post(f"/v1/admin/templates/{flash_tpl['id']}/start", headers=tenant.staff_headers))

    # A claim centre offering the first template.
    page.get_by_role("menuitem", name="Activities").click()
    claim_id = f"claim-{uuid.uuid4().hex[:8]}"
    page.get_by_role("button", name="New activity").click()
    console.choose("Kind", "Claim centre")
    page.get_by_label("Name", exact=True).fill("Spring coupons")
    page.get_by_label("ID", exact=True).fill(claim_id)
    console.choose("Add a coupon template", f"5 off, spring ({claim_tpl['id']})")
    expect(page.get_by_test_id("page-template-1")).to_contain_text(claim_tpl["id"])
    screenshots(page, "03-new-claim-centre")
    page.get_by_test_id("save-activity").click()
    expect(console.row(claim_id).locator("[data-status]")).to_have_attribute("data-status", "draft")
    claim = _get(http, tenant, f"/v1/admin/activities/{claim_id}")["activity"]
    assert (claim["kind"], claim["templates"], claim["prizes"]) == (
        "claim",
        [claim_tpl["id"]],
        [],
    )

    # A flash sale: its start taken from its template's claim opening.
    sale_id = f"sale-{uuid.uuid4().hex[:8]}"
    page.get_by_role("button", name="New activity").click()
    console.choose("Kind", "Flash sale")
    page.get_by_label("Name", exact=True).fill("Noon flash sale")
    page.get_by_label("ID", exact=True).fill(sale_id)
    expect(page.get_by_text("A flash sale needs a start")).to_be_visible()
    console.choose("Add a coupon template", f"Flash 5 off ({flash_tpl['id']})")
    page.get_by_test_id("start-at-opening").click()
    expect(page.get_by_text("A flash sale needs a start")).to_have_count(0)
    screenshots(page, "04-new-flash-sale")
    page.get_by_test_id("save-activity").click()
    expect(console.row(sale_id).locator("[data-status]")).to_have_attribute("data-status", "draft")
    sale = _get(http, tenant, f"/v1/admin/activities/{sale_id}")["activity"]
    assert (sale["kind"], sale["templates"], sale["starts_at"]) == (
        "flash_sale",
        [flash_tpl["id"]],
        opens_at,
    )
    console.quiet()
    screenshots(page, "05-activities-with-pages")

    # The page's theme: sent only as set, read back on edit.
    assert claim["theme"] is None  # nothing was set: no theme was sent
    console.row(claim_id).get_by_role("button", name="Edit").click()
    page.get_by_label("Primary colour", exact=True).fill("#112233")
    page.get_by_label("Background colour", exact=True).fill("#FFF7F0")
    page.get_by_label("Banner image URL", exact=True).fill("/static/spring.png")
    screenshots(page, "05b-claim-theme")
    page.get_by_test_id("save-activity").click()
    expect(console.row(claim_id)).to_be_visible()
    theme = _get(http, tenant, f"/v1/admin/activities/{claim_id}")["activity"]["theme"]
    assert (theme["primary"], theme["background"], theme["banner_url"]) == (
        "#112233",
        "#fff7f0",
        "/static/spring.png",
    )
    # Reopened, the form shows it; an emptied banner is left out, not sent empty.
    console.row(claim_id).get_by_role("button", name="Edit").click()
    expect(page.get_by_label("Primary colour", exact=True)).to_have_value("#112233")
    page.get_by_label("Banner image URL", exact=True).fill("")
    page.get_by_label("Text colour", exact=True).fill("#2b1b17")
    page.get_by_test_id("save-activity").click()
    expect(console.row(claim_id)).to_be_visible()
    theme = _get(http, tenant, f"/v1/admin/activities/{claim_id}")["activity"]["theme"]
    assert (theme["primary"], theme["text"], theme["banner_url"]) == (
        "#112233",
        "#2b1b17",
        None,
    )

    # Code batches: generate, follow the progress to done, export.
    page.get_by_role("menuitem", name="Code batches").click()
    console.choose("Coupon template", f"5 off, spring ({claim_tpl['id']})")
    page.get_by_label("How many").fill(str(GENERATED_CODES))
    page.keyboard.press("Tab")
    # A prefix the API refuses: its message in the page, no batch made.
    page.get_by_label("Prefix").fill("spr ")
    page.get_by_test_id("generate").click()
    expect(page.get_by_test_id("generate-form").get_by_test_id("api-error")).to_contain_text(
        "may only use upper-case letters"
    )
    assert _get(http, tenant, "/v1/admin/code-batches") == []
    page.get_by_label("Prefix").fill("SPR-")
    page.get_by_test_id("generate").click()
    expect(page.get_by_test_id("generate-form").get_by_test_id("api-error")).to_have_count(0)
    batches = page.get_by_test_id("code-batches")
    expect(batches.locator("[data-state=done]")).to_have_count(1, timeout=JOB_TIMEOUT_MS)
    expect(batches.get_by_test_id("job-progress")).to_have_text(
        f"{GENERATED_CODES} / {GENERATED_CODES}"
    )
    (batch,) = _get(http, tenant, "/v1/admin/code-batches")
    assert (batch["state"], batch["done"]) == ("done", GENERATED_CODES)
    assert batch["source"] == "generated"
    console.quiet()
    screenshots(page, "06-code-batch-done")
    with page.expect_download() as download:
        page.get_by_role("button", name=f"Export batch {batch['id']} as CSV").click()
    saved = Path(download.value.path()).read_text()
    exported = http.get(batch["export_url"], headers=tenant.staff_headers)
    assert saved == exported.text
    lines = saved.splitlines()
    assert lines[0] == "code,state,user_id,coupon_id" and len(lines) == GENERATED_CODES + 1
    assert all(line.startswith("SPR-") for line in lines[1:])

    # An import with bad lines: the report names each one and why.
    tag = uuid.uuid4().hex[:8].upper()
    codes = f"code\nALPHA-{tag}\nbad code!\nBETA-{tag}\nalpha-{tag}\n"
    console.choose("Coupon template of the imported codes", f"5 off, spring ({claim_tpl['id']})")
    page.set_input_files("#import-file", files=[_upload("codes.csv", codes)])
    page.get_by_test_id("import").click()
    report = page.get_by_test_id("import-report")
    expect(report).to_contain_text("Imported 2 codes")
    # The file is cleared once imported: a second click cannot import it twice.
    expect(page.get_by_test_id("import")).to_be_disabled()
    expect(report).to_contain_text("The header line was skipped.")
    rejected = report.get_by_test_id("rejected-lines")
    expect(rejected.locator(".el-table__row")).to_have_count(2)
    expect(rejected).to_contain_text("bad_characters")
    expect(rejected).to_contain_text("duplicate_in_file")
    listed = _get(http, tenant, "/v1/admin/code-batches")
    imported = [b for b in listed if b["source"] == "imported"]
    assert [(b["count"], b["state"], b["rejected"]) for b in imported] == [(2, "done", 2)]
    assert _get(http, tenant, f"/v1/admin/codes/BETA-{tag}")["state"] == "available"
    screenshots(page, "07-code-import-report")

    # A partner: its HMAC secret shown once; disabled and enabled again.
    page.get_by_role("menuitem", name="Partners").click()
    page.get_by_role("button", name="New partner").click()
    page.get_by_label("Name", exact=True).fill("Harbour Bank")
    page.get_by_test_id("create-partner").click()
    secret = page.get_by_test_id("shown-secret")
    expect(secret).not_to_have_value("")
    screenshots(settled(page), "08-partner-secret-once")
    page.get_by_role("button", name="I have kept it").click()
    (partner,) = _get(http, tenant, "/v1/admin/partners")
    assert (partner["name"], partner["algorithm"], partner["enabled"]) == (
        "Harbour Bank",
        "HMAC-SHA256",
        True,
    )
    prow = page.locator(".el-table__row", has_text=partner["id"])
    prow.get_by_role("button", name="Disable").click()
    expect(prow.locator("[data-enabled]")).to_have_attribute("data-enabled", "false")
    assert _get(http, tenant, f"/v1/admin/partners/{partner['id']}")["enabled"] is False
    prow.get_by_role("button", name="Enable").click()
    expect(prow.locator("[data-enabled]")).to_have_attribute("data-enabled", "true")
    assert _get(http, tenant, f"/v1/admin/partners/{partner['id']}")["enabled"] is True
    console.quiet()
    screenshots(page, "09-partners")

    # Its webhook: a refused URL shows the API's message; then a good one, secret once.
    prow.get_by_role("button", name="Webhooks").click()
    page.get_by_label("URL", exact=True).fill("ftp://nowhere.example")
    page.get_by_test_id("create-webhook").click()
    expect(page.get_by_test_id("api-error")).to_contain_text("http:// or https://")
    page.get_by_label("URL", exact=True).fill(f"{receiver.url}/hook")
    page.get_by_test_id("create-webhook").click()
    expect(page.get_by_test_id("shown-secret")).not_to_have_value("")
    receiver.secrets["/hook"] = page.get_by_test_id("shown-secret").input_value().encode()
    page.get_by_role("button", name="I have kept it").click()
    hooks = _get(http, tenant, f"/v1/admin/partners/{partner['id']}/webhooks")
    assert [(h["url"], h["event_types"]) for h in hooks] == [
        (f"{receiver.url}/hook", ["coupon.issued", "coupon.claimed"])
    ]
    hook = hooks[0]
    expect(page.get_by_test_id("webhooks").locator(".el-table__row")).to_have_count(1)
    screenshots(page, "10-partner-webhooks")

    # A small distribution: three shoppers, two bad lines in the report.
    page.get_by_role("menuitem", name="Distributions").click()
    console.choose("Coupon template to distribute", f"5 off, spring ({claim_tpl['id']})")
    users = "user_id\nshopper-1\nshopper-2\nshopper-3\nnot a user!\nshopper-2\n"
    page.set_input_files("#dist-file", files=[_upload("users.csv", users)])
    page.get_by_test_id("distribute").click()
    expect(page.get_by_test_id("distribute")).to_be_disabled()
    jobs = page.get_by_test_id("distributions")
    expect(jobs.locator("[data-state=done]")).to_have_count(1, timeout=JOB_TIMEOUT_MS)
    expect(jobs.get_by_test_id("distribution-outcome")).to_have_text(
        "5 lines · 3 issued · 0 refused · 2 rejected"
    )
    (job,) = _get(http, tenant, "/v1/admin/distributions")
    assert (job["job"]["state"], job["job"]["issued"], job["rejected_lines"]) == ("done", 3, 2)
    for user in ("shopper-1", "shopper-2", "shopper-3"):
        wallet = _ok(http.get("/v1/wallet", headers=tenant.shopper_headers(user)))
        assert [c["template_id"] for c in wallet] == [claim_tpl["id"]], wallet
    console.quiet()
    screenshots(page, "11-distribution-done")
    jobs.get_by_role("button", name=f"Report of distribution {job['job']['id']}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator(".el-table__row")).to_have_count(2)
    expect(dialog).to_contain_text("invalid_user_id")
    expect(dialog).to_contain_text("duplicate_user")
    screenshots(settled(page), "12-distribution-report")
    page.keyboard.press("Escape")

    # The webhook's delivery log: the three coupons the distribution issued.
    deliveries = f"/v1/admin/partners/{partner['id']}/webhooks/{hook['id']}/deliveries"
    wait_for(
        lambda: (
            [d["state"] for d in _get(http, tenant, deliveries)["deliveries"]] == ["delivered"] * 3
        ),
        JOB_TIMEOUT_S,
        "three deliveries delivered",
    )
    assert len(receiver.accepted) == 3 and receiver.bad_signatures == 0
    page.get_by_role("menuitem", name="Partners").click()
    prow.get_by_role("button", name="Webhooks").click()
    page.get_by_test_id("webhooks").get_by_role("button", name="Delivery log").click()
    log = page.get_by_test_id("deliveries")
    expect(log.locator("[data-state=delivered]")).to_have_count(3)
    log.get_by_role("button", name="Show the 1 attempt(s)").first.click()
    expect(log.locator("[data-testid^=attempts-]").first).to_contain_text("204")
    screenshots(page, "13-delivery-log")
    first = _get(http, tenant, deliveries)["deliveries"][0]
    log.locator(".el-table__row", has_text="coupon.issued").first.get_by_role(
        "button", name="Redeliver"
    ).click()
    wait_for(
        lambda: any(
            d["id"] == first["id"] and d["state"] == "delivered" and d["attempt_count"] == 2
            for d in _get(http, tenant, deliveries)["deliveries"]
        ),
        JOB_TIMEOUT_S,
        "the redelivery",
    )
    expect(log.get_by_test_id("attempt-count").filter(has_text="2")).to_have_count(1)

    # The webhook deleted, asked first: nothing more is sent to it.
    page.get_by_role("button", name="Back", exact=True).click()
    page.get_by_role("button", name=f"Delete webhook {receiver.url}/hook").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_test_id("webhooks").locator(".el-table__row")).to_have_count(0)
    assert _get(http, tenant, f"/v1/admin/partners/{partner['id']}/webhooks") == []

    # The same screens in Simplified Chinese.
    console.choose("Language", "简体中文")
    expect(page.get_by_role("button", name="创建 Webhook")).to_be_visible()
    page.get_by_role("menuitem", name="券码批次").click()
    expect(page.get_by_role("heading", name="券码批次")).to_be_visible()
    console.quiet()
    screenshots(page, "14-code-batches-zh-CN")
    assert console.errors == []


def test_analyst_sees_the_new_screens_without_actions(
    pipeline: Pipeline, http: httpx.Client, console: Console, screenshots: Any
) -> None:
    tenant = pipeline.tenant()
    tpl = _template(http, tenant, "Read-only coupon")
    created = http.post(
        "/v1/admin/partners",
        json={"name": "Till", "algorithm": "HMAC-SHA256"},
        headers=tenant.staff_headers,
    )
    partner = _ok(created, 201)["partner"]
    analyst_key = pipeline.ledger.create_api_key(tenant.tenant_id, "analyst", "ana")
    console.sign_in(analyst_key, tenant.tenant_id)
    page = console.page

    page.get_by_role("menuitem", name="Coupon templates").click()
    row = page.locator(".el-table__row", has_text=tpl["id"])
    assert row.get_by_role("button").all_inner_texts() == ["Details"]
    row.get_by_role("button", name="Details").click()
    expect(page.get_by_test_id("template-terms")).to_contain_text(tpl["id"])
    expect(page.get_by_test_id("template-form")).to_have_count(0)
    expect(page.get_by_test_id("add-template-stock")).to_have_count(0)

    page.get_by_role("menuitem", name="Code batches").click()
    expect(page.get_by_role("heading", name="Code batches")).to_be_visible()
    expect(page.get_by_test_id("generate-form")).to_have_count(0)
    expect(page.get_by_test_id("import-form")).to_have_count(0)
    page.get_by_role("menuitem", name="Distributions").click()
    expect(page.get_by_role("heading", name="Bulk distributions")).to_be_visible()
    expect(page.get_by_test_id("distribution-form")).to_have_count(0)

    page.get_by_role("menuitem", name="Partners").click()
    prow = page.locator(".el-table__row", has_text=partner["id"])
    expect(prow).to_contain_text("Till")
    assert prow.get_by_role("button").all_inner_texts() == ["Webhooks"]
    expect(page.get_by_role("button", name="New partner")).to_have_count(0)
    prow.get_by_role("button", name="Webhooks").click()
    expect(page.get_by_test_id("webhooks")).to_be_visible()
    expect(page.get_by_test_id("webhook-form")).to_have_count(0)
    screenshots(page, "analyst-partner")
    assert console.errors == []
