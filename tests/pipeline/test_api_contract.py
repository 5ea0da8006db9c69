"""Every bad input gets a clear 4xx in one error shape; tenants are isolated."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from carnival.embedded import free_port
from carnival.services import ApiService
from domain.activity import Limits, Prize
from tests.pipeline.conftest import Pipeline, assert_error


@pytest.fixture
def wheel_and_tenant(pipeline: Pipeline):
    tenant = pipeline.tenant()
    wheel = tenant.wheel([Prize(id="p", name="P", kind="coupon", weight=1, stock=3)])
    return tenant, wheel


def test_auth_errors(pipeline: Pipeline, http: httpx.Client, wheel_and_tenant) -> None:
    _, wheel = wheel_and_tenant
    url = f"/v1/activities/{wheel.id}/draws"
    assert_error(http.post(url), 401, "missing_token")
    assert_error(http.post(url, headers={"Authorization": "Bearer nonsense"}), 401, "invalid_token")
    assert_error(http.get(f"/v1/stats/activities/{wheel.id}"), 401, "missing_api_key")
    assert_error(
        http.get(f"/v1/stats/activities/{wheel.id}", headers={"X-Api-Key": "ck_wrong"}),
        401,
        "invalid_api_key",
    )


def test_validation_errors(pipeline: Pipeline, http: httpx.Client, wheel_and_tenant) -> None:
    tenant, wheel = wheel_and_tenant
    headers = tenant.shopper_headers("v")
    url = f"/v1/activities/{wheel.id}/draws"
    body = assert_error(
        http.post(url, json={"request_id": "bad id!"}, headers=headers), 422, "invalid_request"
    )
    assert body["details"]["problems"][0]["field"] == "body.request_id"
    assert_error(http.post(url, json={"unknown": 1}, headers=headers), 422, "invalid_request")
    assert_error(
        http.post(
            url, content=b"{not json", headers={**headers, "content-type": "application/json"}
        ),
        422,
        "invalid_request",
    )
    assert_error(http.get("/no/such/route"), 404, "not_found")
    assert_error(http.delete(url, headers=headers), 405, "method_not_allowed")
    assert_error(http.get(f"{url}/never-sent", headers=headers), 404, "request_not_found")


def test_tenants_are_isolated(pipeline: Pipeline, http: httpx.Client, wheel_and_tenant) -> None:
    tenant, wheel = wheel_and_tenant
    other = pipeline.tenant()
    assert_error(
        http.post(f"/v1/activities/{wheel.id}/draws", headers=other.shopper_headers("x")),
        404,
        "activity_not_found",
    )
    assert_error(
        http.get(f"/v1/stats/activities/{wheel.id}", headers=other.staff_headers),
        404,
        "activity_not_found",
    )
    assert pipeline.ledger.totals(tenant.tenant_id, wheel.id)["outcomes"] == 0


def test_roles_and_shopper_tokens(pipeline: Pipeline, http: httpx.Client, wheel_and_tenant) -> None:
    tenant, wheel = wheel_and_tenant
    analyst = pipeline.tenant(role="analyst")
    assert_error(
        http.post("/v1/shopper-tokens", json={"user_id": "a"}, headers=analyst.staff_headers),
        403,
        "forbidden",
    )
    issued = http.post("/v1/shopper-tokens", json={"user_id": "dora"}, headers=tenant.staff_headers)
    assert issued.status_code == 200
    reply = http.post(
        f"/v1/activities/{wheel.id}/draws",
        headers={"Authorization": f"Bearer {issued.json()['token']}"},
    )
    assert reply.status_code == 200 and reply.json()["status"] in {"won", "lost"}


def test_paused_activity_is_rejected(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel(
        [Prize(id="p", name="P", kind="coupon", weight=1, stock=3)], status="paused"
    )
    assert_error(
        http.post(f"/v1/activities/{wheel.id}/draws", headers=tenant.shopper_headers("p")),
        409,
        "activity_not_running",
    )


def test_user_limit_is_a_clear_4xx(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    wheel = tenant.wheel(
        [Prize(id="p", name="P", kind="coupon", weight=1, stock=9)], limits=Limits(per_user_total=1)
    )
    headers = tenant.shopper_headers("limited")
    url = f"/v1/activities/{wheel.id}/draws"
    assert http.post(url, json={"request_id": "one"}, headers=headers).status_code == 200
    body = assert_error(
        http.post(url, json={"request_id": "two"}, headers=headers), 409, "user_limit_reached"
    )
    assert body["details"]["request_id"] == "two"


def test_health_readiness_and_metrics(pipeline: Pipeline, http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"ok": True}
    ready = http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"kafka", "redis", "clickhouse", "ray"}
    metrics = http.get("/metrics").text
    assert "carnival_http_requests_total" in metrics
    dispatcher = httpx.get(
        f"http://127.0.0.1:{pipeline.settings.dispatcher_metrics_port}/metrics"
    ).text
    assert "carnival_dispatch_batch_size" in dispatcher and "carnival_consumer_lag" in dispatcher


def test_a_dependency_that_is_down_is_a_503_with_a_code(
    pipeline: Pipeline, servers_dir: Path
) -> None:
    """An api whose Redis is gone answers 503 with a code, never a 500 or a traceback."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    settings = pipeline.settings.model_copy(
        update={"redis_url": dead_redis, "api_port": free_port()}
    )
    api = ApiService(settings, servers_dir / "api-without-redis")
    api.start(timeout=120)
    try:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            tenant = pipeline.tenant()
            reply = client.post(
                "/v1/activities/any/draws", headers=tenant.shopper_headers("someone")
            )
            assert_error(reply, 503, "redis_unavailable")
            ready = client.get("/readyz")
            body = assert_error(ready, 503, "not_ready")
            assert body["details"]["checks"]["redis"]["ok"] is False
            assert body["details"]["checks"]["kafka"]["ok"] is True
    finally:
        api.stop()
