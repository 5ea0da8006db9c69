"""`carnival reconcile` on the real pipeline: after draws (with a coupon prize,
a points prize and a limit), claims, redemptions by a partner, a reversal and a
void, the ledger and ClickHouse agree on every activity, template, partner and
the points totals (points seeded by a tool are left out, and said so); an
outcome removed, a write-off altered and a points entry removed behind their
owners' backs are each reported with the figure that differs, and the command
fails."""

from __future__ import annotations

import time

import httpx
import orjson

from domain.activity import Limits, Prize
from ledger.admin import is_seeded
from ledger.keys import ActivityKeys, TemplateKeys, TenantKeys
from tests.pipeline.conftest import Pipeline, run_reconcile, storm
from tests.pipeline.test_claims import rush
from tests.pipeline.test_writeoffs import Partners, _ok, _redemption, _template


def test_ledger_and_clickhouse_agree_and_a_lost_event_is_caught(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    tenant = pipeline.tenant()
    registered = Partners(http, tenant)
    template = _template(http, tenant)
    wheel = tenant.wheel(
        [
            Prize(
                id="cp",
                name="Coupon",
                kind="coupon",
                weight=5,
                stock=20,
                coupon_template=template.id,
            ),
            Prize(id="pts", name="Points", kind="points", weight=5, points=10),
        ],
        limits=Limits(per_user_total=2),
    )
    pipeline.ledger.grant_points(tenant.tenant_id, {"u0": 25})  # a tool's: never an event
    jobs = [(f"u{i % 100}", f"d{i}") for i in range(300)]  # 100 over the limit
    replies = storm(pipeline, tenant, wheel.id, jobs)
    assert {r.status_code for r in replies.values()} <= {200, 202, 409}  # 409: over the limit
    claims = rush(pipeline, tenant, template.id, [(f"s{i}", f"c{i}") for i in range(30)])
    coupons = [_ok(r)["coupon"]["coupon_id"] for r in claims.values()]
    with httpx.Client(base_url=pipeline.url, auth=registered.auth("hmac"), timeout=30) as bank:
        for n, coupon_id in enumerate(coupons[:6]):
            body = _redemption(coupon_id, f"r{n}", f"o{n}")
            assert _ok(bank.post("/v1/partner/redemptions", json=body))["status"] == "redeemed"
        assert _ok(bank.post("/v1/partner/reversals", json={"request_id": "b0", "order_id": "o0"}))
    void = http.post(f"/v1/coupons/{coupons[-1]}/void", json={}, headers=tenant.staff_headers)
    assert void.status_code in (200, 202), void.text

    clean = run_reconcile(pipeline, tenant.tenant_id, 60, "--topics")
    assert clean.returncode == 0, clean.stdout
    # An activity, a template, two partners (one never redeemed) and the points.
    assert "agree on 5 entities" in clean.stdout
    # The wheel's draws; the template's claims, changes and write-offs.
    assert "ledger and the outcome topics agree on 4 entities" in clean.stdout
    assert "left out: 1 points entries (25 points)" in clean.stdout

    outcomes = ActivityKeys(tenant.tenant_id, wheel.id).outcomes
    lost = next(iter(pipeline.redis.hkeys(outcomes)))
    pipeline.redis.hdel(outcomes, lost)
    # A redemption's discount changed in the ledger: its template and its partner differ.
    writeoffs = TemplateKeys(tenant.tenant_id, template.id).writeoffs
    request, raw = next(
        (k, v)
        for k, v in pipeline.redis.hgetall(writeoffs).items()
        if orjson.loads(v)["status"] == "redeemed"
    )
    altered = {**orjson.loads(raw), "discount_cents": orjson.loads(raw)["discount_cents"] + 1}
    pipeline.redis.hset(writeoffs, request, orjson.dumps(altered))
    # A points entry (an event's, not the seeded one) removed from a shopper's log.
    keys = TenantKeys(tenant.tenant_id)
    log, entry = next(
        (keys.points_log(user.decode()), e)
        for user in sorted(pipeline.redis.hkeys(keys.points_accounts))
        for e in pipeline.redis.lrange(keys.points_log(user.decode()), 0, -1)
        if not is_seeded(orjson.loads(e))
    )
    assert pipeline.redis.lrem(log, 1, entry) == 1

    started = time.monotonic()
    broken = run_reconcile(pipeline, tenant.tenant_id, wait=1)
    assert time.monotonic() - started >= 1  # --wait kept asking before it gave up
    assert broken.returncode == 1, broken.stdout
    assert "outcomes" in broken.stdout and "299" in broken.stdout and "300" in broken.stdout
    rows = [line for line in broken.stdout.splitlines() if tenant.tenant_id in line]
    by_kind = {kind: [r for r in rows if f" {kind} " in r] for kind in ("partner", "points")}
    assert any(registered.hmac in r and "discount_cents" in r for r in by_kind["partner"]), (
        broken.stdout
    )
    assert not any(registered.rsa in r for r in rows), broken.stdout  # it never redeemed
    assert any("movements" in r for r in by_kind["points"]), broken.stdout
    assert any("liability" in r for r in by_kind["points"]), broken.stdout
    print(broken.stdout)
    # Against the topics: the draw removed from the ledger is still on Kafka.
    audited = run_reconcile(pipeline, tenant.tenant_id, 0, "--topics")
    assert audited.returncode == 1, audited.stdout
    gaps = [line for line in audited.stdout.splitlines() if "carnival." in line]
    assert len(gaps) == 1 and "carnival.draw.outcomes" in gaps[0], audited.stdout
    counts = [c.strip() for c in gaps[0].split("│")[-5:-1]]
    assert counts == ["299", "300", "0", "1"], audited.stdout  # ledger, on topic, missing, unknown
