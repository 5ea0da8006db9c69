"""Coupon code batches over HTTP on the real api: a generated batch polled to done and
exported; a code looked up as typed and voided; the import report names every bad
line and why; an export imports back; a cancel stops a million-code job; every bad
input has its error code; roles and tenants; the `carnival codes` CLI end to end."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import uuid
from typing import Any

import httpx
import redis.asyncio as aioredis
from typer.testing import CliRunner

from carnival.cli import app as cli
from domain.codes import CodePattern, parse_code
from domain.coupons import CouponTemplate, Validity
from ledger.codes import CodeStore
from ledger.keys import CODE_JOBS, code_job
from tests.pipeline.conftest import Pipeline, Tenant, assert_error, wait_for

BATCHES = "/v1/admin/code-batches"
CODES = "/v1/admin/codes"
MILLION = 1_000_000
JOB_TIMEOUT_S = 120


def _template(pipeline: Pipeline, tenant: Tenant) -> str:
    """A template written through the ledger (its API has its own tests)."""
    template_id = f"tpl-{uuid.uuid4().hex[:8]}"
    pipeline.ledger.install_template(
        CouponTemplate(
            id=template_id,
            tenant_id=tenant.tenant_id,
            name="Five off",
            kind="fixed",
            amount_cents=500,
            validity=Validity(days_after_claim=30),
        )
    )
    return template_id


def _ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


def _generate(
    http: httpx.Client, tenant: Tenant, template_id: str, count: int, **pattern: Any
) -> dict[str, Any]:
    """A generated batch, polled until its job finished."""
    body = {"template_id": template_id, "count": count, "pattern": pattern}
    reply = http.post(BATCHES, json=body, headers=tenant.staff_headers)
    batch = _ok(reply, 202)
    assert reply.headers["location"] == batch["status_url"] == f"{BATCHES}/{batch['id']}"
    return wait_for(
        lambda: (
            (b := _ok(http.get(batch["status_url"], headers=tenant.staff_headers)))["state"]
            in ("done", "failed", "cancelled")
            and b
        ),
        JOB_TIMEOUT_S,
        f"batch {batch['id']}",
    )


def _export(http: httpx.Client, tenant: Tenant, batch_id: str) -> list[dict[str, str]]:
    reply = http.get(f"{BATCHES}/{batch_id}/export", headers=tenant.staff_headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/csv")
    assert reply.text.startswith("code,state,user_id,coupon_id\n")
    return list(csv.DictReader(io.StringIO(reply.text)))


def _import(
    http: httpx.Client, tenant: Tenant, template_id: str, body: str | bytes, status: int = 201
) -> Any:
    reply = http.post(
        f"{BATCHES}/import",
        params={"template_id": template_id},
        content=body,
        headers={**tenant.staff_headers, "Content-Type": "text/csv"},
    )
    return reply if status != 201 else _ok(reply, 201)


def _set_code(pipeline: Pipeline, tenant: Tenant, code: str, **changes: str) -> None:
    """Change a code as the claim and write-off paths will (they are built elsewhere)."""

    async def run() -> None:
        client = aioredis.Redis.from_url(pipeline.settings.redis_url)
        store = CodeStore(client)
        before = await store.code(tenant.tenant_id, code)
        assert before is not None
        after = dataclasses.replace(before, **changes)
        assert await store.replace_code(tenant.tenant_id, before, after)
        await client.aclose()

    asyncio.run(run())


def test_generate_poll_export_and_look_up(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    template_id = _template(pipeline, tenant)
    pattern = CodePattern(prefix="SUMMER-", length=10, charset="alphanumeric")
    batch = _generate(http, tenant, template_id, 20_000, **pattern.model_dump())
    assert (batch["state"], batch["done"], batch["count"]) == ("done", 20_000, 20_000)
    assert batch["pattern"] == pattern.model_dump() and batch["source"] == "generated"
    assert batch["finished_at"] >= batch["created_at"]

    rows = _export(http, tenant, batch["id"])
    codes = [r["code"] for r in rows]
    assert len(codes) == len(set(codes)) == 20_000
    assert {(r["state"], r["user_id"], r["coupon_id"]) for r in rows} == {("available", "", "")}
    assert all(parse_code(code, pattern) == code for code in codes)

    listed = _ok(http.get(BATCHES, headers=tenant.staff_headers))
    assert [b["id"] for b in listed] == [batch["id"]]

    typed = " " + codes[7].lower()[:9] + " " + codes[7].lower()[9:]  # as a till types it
    assert _ok(http.get(f"{CODES}/{typed}", headers=tenant.staff_headers)) == {
        "code": codes[7],
        "state": "available",
        "batch_id": batch["id"],
        "template_id": template_id,
        "user_id": "",
        "coupon_id": "",
    }


def test_void_a_code_once_and_never_a_redeemed_one(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    batch = _generate(http, tenant, _template(pipeline, tenant), 10)
    available, assigned, redeemed = (r["code"] for r in _export(http, tenant, batch["id"])[:3])

    for _ in range(2):  # voiding a voided code changes nothing
        voided = _ok(http.post(f"{CODES}/{available}/void", headers=tenant.staff_headers))
        assert voided["state"] == "voided"
    _set_code(pipeline, tenant, assigned, state="assigned", user_id="alice", coupon_id="c_x")
    voided = _ok(http.post(f"{CODES}/{assigned}/void", headers=tenant.staff_headers))
    assert (voided["state"], voided["user_id"], voided["coupon_id"]) == ("voided", "alice", "c_x")
    _set_code(pipeline, tenant, redeemed, state="redeemed")
    error = assert_error(
        http.post(f"{CODES}/{redeemed}/void", headers=tenant.staff_headers),
        409,
        "invalid_code_transition",
    )
    assert "'redeemed'" in error["message"]

    states = {r["code"]: r["state"] for r in _export(http, tenant, batch["id"])}
    assert (states[available], states[assigned], states[redeemed]) == (
        "voided",
        "voided",
        "redeemed",
    )
    assert sum(s == "available" for s in states.values()) == 7


def test_import_report_lists_every_bad_line_with_its_reason(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    tenant = pipeline.tenant()
    template_id = _template(pipeline, tenant)
    existing = _export(http, tenant, _generate(http, tenant, template_id, 5)["id"])[0]["code"]
    upload = "\n".join(
        [
            "code,note",  # 1: a header
            "abcd-1234,first",  # 2
            "",  # 3
            "AB CD!",  # 4
            "XYZ",  # 5
            "A" * 65,  # 6
            " ABCD-1234 ",  # 7
            existing.lower(),  # 8
            '"Q,RST",comma in the code',  # 9
            "good_code_2,last",  # 10
        ]
    )
    report = _import(http, tenant, template_id, upload)
    assert [(r["line"], r["reason"]) for r in report["rejected"]] == [
        (3, "empty_line"),
        (4, "bad_characters"),
        (5, "too_short"),
        (6, "too_long"),
        (7, "duplicate_in_file"),
        (8, "duplicate_in_tenant"),
        (9, "bad_characters"),
    ]
    assert all(r["message"] for r in report["rejected"])
    assert report["rejected"][5]["raw"] == existing
    assert "line 2" in report["rejected"][4]["message"]
    assert (report["accepted"], report["header_skipped"]) == (2, True)
    batch = report["batch"]
    assert (batch["source"], batch["state"], batch["count"], batch["done"], batch["rejected"]) == (
        "imported",
        "done",
        2,
        2,
        7,
    )
    assert [r["code"] for r in _export(http, tenant, batch["id"])] == ["ABCD-1234", "GOOD_CODE_2"]
    assert (
        _ok(http.get(f"{CODES}/{existing}", headers=tenant.staff_headers))["batch_id"]
        != (batch["id"])
    )


def test_an_export_imports_back_and_only_once_per_tenant(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    source, other = pipeline.tenant(), pipeline.tenant()
    batch = _generate(http, source, _template(pipeline, source), 5_000)
    exported = http.get(f"{BATCHES}/{batch['id']}/export", headers=source.staff_headers).text
    codes = [r["code"] for r in csv.DictReader(io.StringIO(exported))]

    into_other = _import(http, other, _template(pipeline, other), exported)
    assert (into_other["accepted"], into_other["rejected"]) == (5_000, [])
    assert [r["code"] for r in _export(http, other, into_other["batch"]["id"])] == codes

    again = _import(http, source, _template(pipeline, source), exported)
    assert again["accepted"] == 0 and again["batch"]["count"] == 0
    assert {r["reason"] for r in again["rejected"]} == {"duplicate_in_tenant"}
    assert [r["line"] for r in again["rejected"]] == list(range(2, 5_002))


def test_cancel_stops_a_million_code_job(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    body = {"template_id": _template(pipeline, tenant), "count": MILLION}
    batch = _ok(http.post(BATCHES, json=body, headers=tenant.staff_headers), 202)
    cancelled = _ok(http.post(f"{BATCHES}/{batch['id']}/cancel", headers=tenant.staff_headers))
    assert cancelled["state"] == "cancelled" and cancelled["finished_at"]
    wait_for(
        lambda: not pipeline.redis.sismember(CODE_JOBS, code_job(tenant.tenant_id, batch["id"])),
        JOB_TIMEOUT_S,
        "the job to stop",
    )
    stopped = _ok(http.get(batch["status_url"], headers=tenant.staff_headers))
    assert stopped["state"] == "cancelled" and stopped["done"] < MILLION
    assert len(_export(http, tenant, batch["id"])) == stopped["done"]
    assert_error(
        http.post(f"{BATCHES}/{batch['id']}/cancel", headers=tenant.staff_headers),
        409,
        "batch_finished",
    )


def test_bad_input_has_its_error_code(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    headers = tenant.staff_headers
    template_id = _template(pipeline, tenant)

    def create(**body: Any) -> httpx.Response:
        return http.post(
            BATCHES, json={"template_id": template_id, "count": 10, **body}, headers=headers
        )

    for count in (0, -1, MILLION + 1):
        assert_error(create(count=count), 422, "count_out_of_range")
    for pattern, field in (
        ({"prefix": "summer"}, "pattern.prefix"),
        ({"length": 6}, "pattern:"),  # too few bits of entropy: the pattern as a whole
        ({"charset": "hex"}, "pattern.charset"),
        ({"suffix": "X"}, "pattern.suffix"),
    ):
        error = assert_error(create(pattern=pattern), 422, "invalid_pattern")
        assert field in error["message"], error
    assert_error(create(template_id="nope"), 404, "template_not_found")
    assert_error(create(colour="red"), 422, "invalid_request")

    for reply in (
        http.get(f"{BATCHES}/cb-missing", headers=headers),
        http.post(f"{BATCHES}/cb-missing/cancel", headers=headers),
        http.get(f"{BATCHES}/cb-missing/export", headers=headers),
    ):
        assert_error(reply, 404, "batch_not_found")
    for reply in (
        http.get(f"{CODES}/NOPE-NOPE", headers=headers),
        http.post(f"{CODES}/NOPE-NOPE/void", headers=headers),
    ):
        assert_error(reply, 404, "code_not_found")

    assert_error(_import(http, tenant, "nope", "ABCD\n", 404), 404, "template_not_found")
    assert_error(_import(http, tenant, template_id, b"AB\xff\xfeCD\n", 422), 422, "invalid_csv")
    assert_error(_import(http, tenant, template_id, " \n", 422), 422, "invalid_csv")
    error = assert_error(
        _import(http, tenant, template_id, "AB\n!!!!\n", 422), 422, "no_valid_codes"
    )
    assert [(r["line"], r["reason"]) for r in error["details"]["rejected"]] == [
        (1, "too_short"),
        (2, "bad_characters"),
    ]
    too_many = "".join(f"X{i:07d}\n" for i in range(MILLION + 1))
    assert_error(_import(http, tenant, template_id, too_many, 413), 413, "too_many_lines")
    as_json = http.post(
        f"{BATCHES}/import", params={"template_id": template_id}, json=["ABCD"], headers=headers
    )
    assert_error(as_json, 415, "unsupported_media_type")
    no_template = http.post(
        f"{BATCHES}/import", content="ABCD", headers={**headers, "Content-Type": "text/csv"}
    )
    assert_error(no_template, 422, "invalid_request")
    assert _ok(http.get(BATCHES, headers=headers)) == []  # nothing above made a batch


def test_roles_and_tenants(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant, stranger = pipeline.tenant(), pipeline.tenant()
    template_id = _template(pipeline, tenant)
    batch = _generate(http, tenant, template_id, 10)
    code = _export(http, tenant, batch["id"])[0]["code"]

    analyst = {"X-Api-Key": pipeline.ledger.create_api_key(tenant.tenant_id, "analyst", "ana")}
    assert _ok(http.get(f"{BATCHES}/{batch['id']}", headers=analyst))["done"] == 10
    assert _ok(http.get(f"{CODES}/{code}", headers=analyst))["state"] == "available"
    for reply in (
        http.post(BATCHES, json={"template_id": template_id, "count": 10}, headers=analyst),
        http.post(f"{BATCHES}/{batch['id']}/cancel", headers=analyst),
        http.get(f"{BATCHES}/{batch['id']}/export", headers=analyst),  # codes are bearer secrets
        http.post(f"{CODES}/{code}/void", headers=analyst),
    ):
        assert_error(reply, 403, "forbidden")
    assert_error(http.get(BATCHES), 401, "missing_api_key")

    theirs = stranger.staff_headers
    assert_error(http.get(f"{BATCHES}/{batch['id']}", headers=theirs), 404, "batch_not_found")
    assert_error(
        http.get(f"{BATCHES}/{batch['id']}/export", headers=theirs), 404, "batch_not_found"
    )
    assert_error(http.get(f"{CODES}/{code}", headers=theirs), 404, "code_not_found")
    assert_error(http.post(f"{CODES}/{code}/void", headers=theirs), 404, "code_not_found")
    body = {"template_id": template_id, "count": 10}
    assert_error(http.post(BATCHES, json=body, headers=theirs), 404, "template_not_found")
    assert _ok(http.get(BATCHES, headers=theirs)) == []


def test_cli_generates_with_progress_exports_and_imports(
    pipeline: Pipeline, http: httpx.Client, tmp_path: Any
) -> None:
    tenant, other = pipeline.tenant(), pipeline.tenant()
    template_id = _template(pipeline, tenant)
    runner = CliRunner()
    api = ["--api", pipeline.url, "--api-key", tenant.api_key]

    generated = runner.invoke(
        cli,
        ["codes", "generate", "--template", template_id, "--count", "3000", "--prefix", "X-", *api],
    )
    assert generated.exit_code == 0, generated.output
    batch_id = generated.stdout.strip().splitlines()[-1]
    assert "3000/3000" in generated.stderr

    exported = runner.invoke(cli, ["codes", "export", batch_id, *api])
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len({r["code"] for r in rows}) == 3000 and all(r["code"].startswith("X-") for r in rows)

    upload = tmp_path / "codes.csv"
    upload.write_text(exported.stdout + "bad!\n")
    imported = runner.invoke(
        cli,
        [
            "codes",
            "import",
            str(upload),
            "--template",
            _template(pipeline, other),
            "--api",
            pipeline.url,
            "--api-key",
            other.api_key,
        ],
    )
    assert imported.exit_code == 0, imported.output
    assert "3,000 imported, 1 rejected" in imported.stderr
    assert "bad_characters" in imported.stdout and "3002" in imported.stdout

    missing = runner.invoke(cli, ["codes", "status", "cb-missing", *api])
    assert missing.exit_code == 1 and "batch_not_found" in missing.stderr
