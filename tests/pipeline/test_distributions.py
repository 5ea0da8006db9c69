"""Bulk distribution on the real pipeline: a CSV of shoppers issued a template once
each through the road, every bad line reported, and a 100,000-shopper job whose
api (the job's process) is SIGKILLed mid-way and restarted: everyone holds
exactly one coupon."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx

from domain.coupons import CouponLimits, Validity
from tests.pipeline.conftest import Pipeline, Tenant, assert_error, wait_for
from tests.pipeline.test_claims import install

CSV = {"Content-Type": "text/csv"}


def _start(http: httpx.Client, tenant: Tenant, template_id: str, body: str) -> dict[str, Any]:
    reply = http.post(
        f"/v1/admin/templates/{template_id}/distributions",
        content=body.encode(),
        headers={**tenant.staff_headers, **CSV},
    )
    assert reply.status_code == 202, reply.text
    return reply.json()["job"]


def _finished(http: httpx.Client, tenant: Tenant, job_id: str, timeout: float) -> dict[str, Any]:
    path = f"/v1/admin/distributions/{job_id}"
    return wait_for(
        lambda: (
            (j := http.get(path, headers=tenant.staff_headers).json()["job"])["state"]
            in ("done", "failed", "cancelled")
            and j
        ),
        timeout,
        f"distribution {job_id} to finish",
    )


def _holdings(pipeline: Pipeline, tenant: Tenant, template_id: str) -> Counter[str]:
    coupons = pipeline.ledger.coupons(tenant.tenant_id)
    held: Counter[str] = Counter()
    for user, ids in pipeline.ledger.wallets(tenant.tenant_id).items():
        for coupon_id in ids:
            coupon = coupons[coupon_id]
            assert coupon.user_id == user and coupon.template_id == template_id
            assert coupon.source == "distribution"
            held[user] += 1
    return held


def test_distribution_issues_once_each_and_reports_every_line(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    tenant = pipeline.tenant()
    template = install(tenant, limits=CouponLimits(stock=5, per_user=1))
    users = [f"s{i}" for i in range(7)]
    body = "user_id\n" + "\n".join(users[:3]) + "\ns1\nbad id!\n\n" + "\n".join(users[3:]) + "\n"
    job = _start(http, tenant, template.id, body)
    assert (job["lines"], job["accepted"]) == (10, 7)
    done = _finished(http, tenant, job["id"], 60)
    assert done["state"] == "done"
    assert (done["done"], done["issued"], done["refused"]) == (7, 5, 2)

    report = http.get(
        f"/v1/admin/distributions/{job['id']}/report", headers=tenant.staff_headers
    ).json()
    assert report["total"] == 5
    reasons = sorted((line["line"], line["reason"]) for line in report["lines"])
    # Lines count the header: users s0-s2 on 2-4, s1 again on 5, "bad id!" 6, empty 7.
    assert reasons[:3] == [(5, "duplicate_user"), (6, "invalid_user_id"), (7, "empty_line")]
    assert [r for _, r in reasons[3:]] == ["sold_out", "sold_out"]
    assert all(line["message"] for line in report["lines"])

    held = _holdings(pipeline, tenant, template.id)
    assert sum(held.values()) == 5 and set(held.values()) == {1}
    assert pipeline.ledger.claim_totals(tenant.tenant_id, template.id)["left"] == 0

    again = http.post(f"/v1/admin/distributions/{job['id']}/cancel", headers=tenant.staff_headers)
    assert_error(again, 409, "distribution_finished")


def test_distribution_refusals(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    draft = install(tenant, status="draft")
    path = f"/v1/admin/templates/{draft.id}/distributions"
    staff = tenant.staff_headers
    assert_error(
        http.post(path, content=b"u1\n", headers={**staff, **CSV}), 409, "template_not_running"
    )
    missing = "/v1/admin/templates/nope/distributions"
    assert_error(
        http.post(missing, content=b"u1\n", headers={**staff, **CSV}), 404, "template_not_found"
    )
    json_body = http.post(path, json={"users": ["u1"]}, headers=staff)
    assert_error(json_body, 415, "unsupported_media_type")
    assert_error(http.post(path, content=b"  \n", headers={**staff, **CSV}), 422, "invalid_csv")
    latin = http.post(path, content="é\n".encode("latin-1"), headers={**staff, **CSV})
    assert_error(latin, 422, "invalid_csv")
    assert_error(
        http.get("/v1/admin/distributions/nope", headers=staff), 404, "distribution_not_found"
    )
    analyst = pipeline.tenant(role="analyst")
    refused = http.post(path, content=b"u1\n", headers={**analyst.staff_headers, **CSV})
    assert_error(refused, 403, "forbidden")


def test_api_sigkill_mid_distribution_then_resumed(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    shoppers = 100_000
    template = install(
        tenant,
        validity=Validity(days_after_claim=30),
        limits=CouponLimits(stock=shoppers, per_user=1),
    )
    tag = uuid.uuid4().hex[:6]
    body = "user_id\n" + "".join(f"{tag}-{i}\n" for i in range(shoppers))
    job = _start(http, tenant, template.id, body)
    path = f"/v1/admin/distributions/{job['id']}"
    wait_for(
        lambda: http.get(path, headers=tenant.staff_headers).json()["job"]["done"] >= shoppers // 5,
        timeout=120,
        what="the job to be under way",
    )
    pipeline.api.kill()
    killed_at = pipeline.ledger.claim_totals(tenant.tenant_id, template.id)["issued"]
    assert killed_at < shoppers, "the kill should land mid-job"
    pipeline.api.start(timeout=120)

    done = _finished(http, tenant, job["id"], timeout=300)
    assert done["state"] == "done"
    assert (done["done"], done["issued"], done["refused"]) == (shoppers, shoppers, 0)
    held = _holdings(pipeline, tenant, template.id)
    assert len(held) == shoppers and set(held.values()) == {1}  # nobody skipped, none twice
    totals = pipeline.ledger.claim_totals(tenant.tenant_id, template.id)
    assert totals == {"left": 0, "issued": shoppers, "outcomes": shoppers}
    print(f"api killed with {killed_at:,} of {shoppers:,} issued; resumed to every shopper once")
