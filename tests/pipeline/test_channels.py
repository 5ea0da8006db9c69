"""The upstream channel adapter against the simulated upstream (a real HTTP
service in its own process): with 20 % of its answers lost to timeouts, every
issuance ends issued or failed, none is issued twice upstream, a failed one's
coupon is voided, and the upstream's signed write-off callback redeems the
coupon in Carnival."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from carnival.embedded import free_port
from carnival.embedded.process import ManagedProcess
from domain.activity import Prize
from domain.signing import RSA_SHA256, generate_rsa_key, public_pem, sign_headers
from ledger.keys import TenantKeys
from tests.pipeline.conftest import Pipeline, Tenant, assert_error, draw, wait_for
from tests.pipeline.test_webhooks import _claimed
from tests.pipeline.test_writeoffs import ORDER_ITEMS, Partners, _ok, _template

N = 200


class UpstreamSim(ManagedProcess):
    name = "upstream-sim"

    def __init__(self, data_dir: Any) -> None:
        super().__init__(data_dir)
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "carnival", "upstream-sim", "--port", str(self.port)]

    def is_ready(self) -> bool:
        return httpx.get(f"{self.url}/sim/public-key", timeout=1).status_code == 200


def _channel(
    http: httpx.Client, tenant: Tenant, partner_id: str, sim: UpstreamSim
) -> dict[str, Any]:
    """A channel registered with Carnival, and Carnival's key given to the upstream."""
    upstream_pem = httpx.get(f"{sim.url}/sim/public-key").json()["public_key_pem"]
    channel = _ok(
        http.post(
            "/v1/admin/channels",
            json={
                "name": "WeChat Pay (simulated)",
                "base_url": sim.url,
                "merchant_id": "mch-1001",
                "upstream_public_key_pem": upstream_pem,
                "partner_id": partner_id,
                "timeout_ms": 400,
                "reconcile_after_ms": 300,
            },
            headers=tenant.staff_headers,
        ),
        201,
    )
    httpx.post(
        f"{sim.url}/sim/setup",
        json={
            "merchant_id": "mch-1001",
            "carnival_public_key_pem": channel["carnival_public_key_pem"],
            "channel_id": channel["id"],
            "carnival_url": tenant.pipeline.url,
        },
    ).raise_for_status()
    return channel


def _channel_coupons(
    pipeline: Pipeline, http: httpx.Client, tenant: Tenant, channel_id: str, n: int
) -> set[str]:
    """The coupons of ``n`` shoppers' claims from a new template linked to the channel."""
    template = _template(
        http,
        tenant,
        channel={"channel_id": channel_id, "stock_id": "stock-9"},
        limits={"stock": n, "per_user": 1},
    )
    return set(_claimed(pipeline, tenant, template.id, n))


def _issuances_when_final(
    http: httpx.Client, tenant: Tenant, channel_id: str, n: int
) -> list[dict[str, Any]]:
    base = f"/v1/admin/channels/{channel_id}/issuances"

    def all_final() -> list[dict[str, Any]] | None:
        page = _ok(http.get(base, params={"limit": 500}, headers=tenant.staff_headers))
        done = [i for i in page["issuances"] if i["state"] in ("issued", "failed")]
        return page["issuances"] if len(done) == n else None

    return wait_for(all_final, 120, f"{n} issuances issued or failed")


def test_issuances_end_issued_or_failed_and_never_twice_under_timeouts(
    pipeline: Pipeline, http: httpx.Client, own_servers: Callable[..., Any], tmp_path: Any
) -> None:
    sim: UpstreamSim = own_servers(UpstreamSim(tmp_path / "sim"))
    tenant = pipeline.tenant()
    registered = Partners(http, tenant)
    channel = _channel(http, tenant, registered.rsa, sim)
    faults = {"timeout_rate": 0.2, "hang_ms": 800}
    httpx.post(f"{sim.url}/sim/faults", json=faults).raise_for_status()
    coupons = _channel_coupons(pipeline, http, tenant, channel["id"], N)

    issuances = _issuances_when_final(http, tenant, channel["id"], N)
    states = Counter(i["state"] for i in issuances)
    sim_state = httpx.get(f"{sim.url}/sim/state").json()
    landed: dict[str, int] = sim_state["landed"]
    assert {i["coupon_id"] for i in issuances} == coupons
    assert all(count == 1 for count in landed.values()), "an issue request sent twice"
    issued = {i["coupon_id"] for i in issuances if i["state"] == "issued"}
    assert issued == set(landed), "issued in Carnival exactly when issued upstream"
    assert sim_state["refused_signatures"] == 0
    assert states["failed"] > 0, "20 % of timeouts, half dropped: some issue requests never land"
    assert any(i["queries"] > 0 for i in issuances), "lost answers were reconciled by query"
    for i in issuances:
        if i["state"] == "failed":
            assert i["reason"] == "not_issued_upstream" and i["upstream_coupon_id"] == ""

    # A failed issuance's coupon is voided; an issued one stays in the wallet.
    failed = {i["coupon_id"] for i in issuances if i["state"] == "failed"}
    keys = TenantKeys(tenant.tenant_id)

    def voided() -> bool:
        raws = pipeline.redis.hmget(keys.coupons, sorted(failed))
        return all(orjson.loads(r)["state"] == "voided" for r in raws)

    wait_for(voided, 60, "the coupons of failed issuances voided")
    print(f"issuances: {dict(states)}; issue requests landed once each: {len(landed)}")

    # The upstream's write-off callback redeems the coupon for the channel's partner.
    httpx.post(f"{sim.url}/sim/faults", json={}).raise_for_status()
    spent = sorted(issued)[0]
    order = {"order_id": "wx-order-1", "items": ORDER_ITEMS, "shipping_cents": 0}
    callback = {"out_request_no": spent, "order": order, "writeoff_id": "wx-wo-1"}
    answer = httpx.post(f"{sim.url}/sim/writeoffs", json=callback, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "redeemed" and answer.json()["discount_cents"] == 500
    again = httpx.post(f"{sim.url}/sim/writeoffs", json=callback, timeout=30)
    assert again.content == answer.content, "the same callback, the same answer"
    coupon = orjson.loads(pipeline.redis.hget(keys.coupons, spent))
    assert coupon["state"] == "used" and coupon["redemption"]["partner_id"] == registered.rsa

    # A callback not signed by the upstream, or for a coupon it did not issue, is refused.
    path = f"/v1/channels/{channel['id']}/writeoffs"
    forged = orjson.dumps({**callback, "writeoff_id": "wx-wo-2", "coupon_id": "up_x"})
    headers = sign_headers("POST", path, forged, channel["id"], generate_rsa_key(), RSA_SHA256)
    # The forger's key is a fresh one, never registered.
    assert_error(http.post(path, content=forged, headers=headers), 401, "bad_signature")


def test_sigkill_of_the_relay_mid_issuance_never_issues_twice(
    pipeline: Pipeline, http: httpx.Client, own_servers: Callable[..., Any], tmp_path: Any
) -> None:
    sim: UpstreamSim = own_servers(UpstreamSim(tmp_path / "sim"))
    tenant = pipeline.tenant()
    registered = Partners(http, tenant)
    channel = _channel(http, tenant, registered.rsa, sim)
    # Slow answers: a kill lands while issue requests are in flight.
    httpx.post(f"{sim.url}/sim/faults", json={"latency_ms": 150}).raise_for_status()
    n = 120
    coupons = _channel_coupons(pipeline, http, tenant, channel["id"], n)

    def landed() -> dict[str, int]:
        return httpx.get(f"{sim.url}/sim/state").json()["landed"]

    wait_for(lambda: len(landed()) >= 10, 60, "issue requests under way")
    pipeline.relay.kill()
    killed_at = len(landed())
    pipeline.relay.start(timeout=120)
    issuances = _issuances_when_final(http, tenant, channel["id"], n)
    assert {i["coupon_id"] for i in issuances} == coupons
    final = landed()
    assert killed_at < n, "the kill should land mid-way"
    assert all(count == 1 for count in final.values()), "an issue request sent twice"
    issued = {i["coupon_id"] for i in issuances if i["state"] == "issued"}
    assert issued == set(final), "issued in Carnival exactly when issued upstream"
    print(f"relay killed after {killed_at} of {n} issue requests landed; {len(issued)} issued")


def test_a_wheel_prize_is_issued_upstream_too(
    pipeline: Pipeline, http: httpx.Client, own_servers: Callable[..., Any], tmp_path: Any
) -> None:
    sim: UpstreamSim = own_servers(UpstreamSim(tmp_path / "sim"))
    tenant = pipeline.tenant()
    registered = Partners(http, tenant)
    channel = _channel(http, tenant, registered.rsa, sim)
    template = _template(http, tenant, channel={"channel_id": channel["id"], "stock_id": "s1"})
    prize = Prize(
        id="wx",
        name="WeChat coupon",
        kind="coupon",
        weight=9999,
        stock=5,
        coupon_template=template.id,
    )
    wheel = tenant.wheel([prize])
    won = [_ok(draw(http, tenant, wheel.id, f"w{i}")) for i in range(8)]
    coupon_ids = {w["coupon_id"] for w in won if w["coupon_id"]}
    assert 1 <= len(coupon_ids) <= 5
    issuances = _issuances_when_final(http, tenant, channel["id"], len(coupon_ids))
    assert {i["coupon_id"] for i in issuances} == coupon_ids
    assert all(i["state"] == "issued" for i in issuances)
    landed = httpx.get(f"{sim.url}/sim/state").json()["landed"]
    assert landed == dict.fromkeys(coupon_ids, 1)


def test_bad_channels_are_refused(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    registered = Partners(http, tenant)
    pem = public_pem(generate_rsa_key()).decode()
    good = {
        "name": "Alipay",
        "base_url": "https://upstream.example",
        "merchant_id": "m1",
        "upstream_public_key_pem": pem,
        "partner_id": registered.hmac,
    }
    headers = tenant.staff_headers
    for bad in (
        {**good, "base_url": "ftp://upstream.example"},
        {**good, "upstream_public_key_pem": "not a key"},
        {**good, "timeout_ms": 5},
        {**good, "surprise": True},
    ):
        assert_error(
            http.post("/v1/admin/channels", json=bad, headers=headers), 422, "invalid_channel"
        )
    assert_error(
        http.post("/v1/admin/channels", json={**good, "partner_id": "ghost"}, headers=headers),
        422,
        "partner_not_found",
    )
    made = _ok(http.post("/v1/admin/channels", json=good, headers=headers), 201)
    assert "BEGIN PUBLIC KEY" in made["carnival_public_key_pem"]
    assert [c["id"] for c in _ok(http.get("/v1/admin/channels", headers=headers))] == [made["id"]]
    body = {
        "name": "channel coupon",
        "kind": "fixed",
        "amount_cents": 500,
        "validity": {"days_after_claim": 30},
        "channel": {"channel_id": "ch_nope", "stock_id": "s"},
    }
    created = http.post("/v1/admin/templates", json=body, headers=headers)
    assert_error(created, 422, "channel_not_found")
    assert_error(http.get("/v1/admin/channels/ch_nope", headers=headers), 404, "channel_not_found")
    # Another tenant sees none of it and cannot link its templates to it.
    other = pipeline.tenant().staff_headers
    mine = f"/v1/admin/channels/{made['id']}"
    assert_error(http.get(mine, headers=other), 404, "channel_not_found")
    assert_error(http.get(f"{mine}/issuances", headers=other), 404, "channel_not_found")
    assert _ok(http.get("/v1/admin/channels", headers=other)) == []
    linked = {**body, "channel": {"channel_id": made["id"], "stock_id": "s"}}
    assert_error(
        http.post("/v1/admin/templates", json=linked, headers=other), 422, "channel_not_found"
    )
