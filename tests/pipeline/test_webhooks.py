"""Webhooks on the real pipeline: partners subscribe, a local receiver that
refuses the first attempts still gets every notification once retried, a
SIGKILL of the relay mid-way loses none, a dead-lettered delivery is sent
again on request, and every body carries a signature the receiver verifies."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest

from domain.signing import WEBHOOK_SIGNATURE_HEADER, SignatureError, verify_webhook
from tests.pipeline.conftest import Pipeline, Tenant, assert_error, wait_for
from tests.pipeline.test_claims import rush
from tests.pipeline.test_writeoffs import Partners, _ok, _redemption, _template


class Receiver:
    """A partner's endpoint: ``/flaky`` refuses each notification's first
    ``fail_first`` attempts; ``/down`` refuses everything while ``down`` is set."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.down = True
        self.secrets: dict[str, bytes] = {}  # path -> the subscription's secret
        self.attempts: Counter[str] = Counter()  # notification id -> attempts seen
        self.accepted: dict[str, dict[str, Any]] = {}  # deduplicated by notification id
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request (the SIGKILL test)
                    return
                status = receiver.handle(self.path, self.headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the relay opens up to 32 connections at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, path: str, headers: Any, body: bytes) -> int:
        try:
            verify_webhook(self.secrets[path], body, headers[WEBHOOK_SIGNATURE_HEADER], time.time())
        except (KeyError, SignatureError):
            with self.lock:
                self.bad_signatures += 1
            return 400
        note = orjson.loads(body)
        assert headers["X-Carnival-Webhook-Id"] == note["id"]
        with self.lock:
            self.attempts[note["id"]] += 1
            refuse = (path == "/down" and self.down) or (
                path == "/flaky" and self.attempts[note["id"]] <= self.fail_first
            )
            if refuse:
                return 503
            self.accepted.setdefault(note["id"], note)
        return 204

    def got(self, ids: set[str]) -> bool:
        with self.lock:
            return ids <= set(self.accepted)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=3)
    r.thread.start()
    yield r
    r.server.shutdown()


def _subscribe(
    http: httpx.Client, tenant: Tenant, partner_id: str, receiver: Receiver, path: str, **body: Any
) -> dict[str, Any]:
    body = {"url": f"{receiver.url}{path}", **body}
    created = http.post(
        f"/v1/admin/partners/{partner_id}/webhooks", json=body, headers=tenant.staff_headers
    )
    view = _ok(created, 201)
    receiver.secrets[path] = view["secret"].encode()
    return view["webhook"]


def _claimed(pipeline: Pipeline, tenant: Tenant, template_id: str, n: int) -> list[str]:
    jobs = [(f"u{i}", f"c{i}") for i in range(n)]
    replies = rush(pipeline, tenant, template_id, jobs, concurrency=64)
    coupons = [_ok(r)["coupon"]["coupon_id"] for r in replies.values()]
    assert len(coupons) == n
    return coupons


def test_a_failing_receiver_gets_every_notification_after_retries(
    pipeline: Pipeline, http: httpx.Client, receiver: Receiver
) -> None:
    tenant = pipeline.tenant()
    registered = Partners(http, tenant)
    template = _template(http, tenant)
    hook = _subscribe(
        http,
        tenant,
        registered.hmac,
        receiver,
        "/flaky",
        event_types=["coupon.claimed", "coupon.redeemed", "coupon.reversed"],
    )
    assert "secret" not in hook and hook["event_types"] == [
        "coupon.claimed",
        "coupon.redeemed",
        "coupon.reversed",
    ]
    coupons = _claimed(pipeline, tenant, template.id, 20)
    bank = httpx.Client(base_url=pipeline.url, auth=registered.auth("hmac"), timeout=30)
    till = httpx.Client(base_url=pipeline.url, auth=registered.auth("rsa"), timeout=30)
    with bank, till:
        for n, coupon_id in enumerate(coupons[:10]):
            # The till's redemptions are not the bank's business: not sent to it.
            client = bank if n < 5 else till
            body = _redemption(coupon_id, f"r{n}", f"o{n}")
            assert _ok(client.post("/v1/partner/redemptions", json=body))["status"] == "redeemed"
        reversal = {"request_id": "back0", "order_id": "o0"}
        assert _ok(bank.post("/v1/partner/reversals", json=reversal))

    wait_for(lambda: len(receiver.accepted) >= 26, 30, "20 claims, 5 redemptions, 1 reversal")
    kinds = Counter(n["type"] for n in receiver.accepted.values())
    assert kinds == {"coupon.claimed": 20, "coupon.redeemed": 5, "coupon.reversed": 1}
    assert receiver.bad_signatures == 0
    assert set(receiver.attempts.values()) == {4}, "each accepted at its 4th attempt"
    by_coupon = {n["data"]["coupon_id"] for n in receiver.accepted.values()}
    assert by_coupon == set(coupons)

    # The delivery log: every attempt, newest delivery first, paged.
    path = f"/v1/admin/partners/{registered.hmac}/webhooks/{hook['id']}/deliveries"
    page = _ok(http.get(path, params={"limit": 10}, headers=tenant.staff_headers))
    seen = list(page["deliveries"])
    while page["next_cursor"]:
        page = _ok(
            http.get(path, params={"cursor": page["next_cursor"]}, headers=tenant.staff_headers)
        )
        seen += page["deliveries"]
    assert len(seen) == 26 and len({d["id"] for d in seen}) == 26
    for delivery in seen:
        assert delivery["state"] == "delivered"
        answered = [a["status_code"] for a in delivery["attempts"] if a["status_code"]]
        assert answered == [503, 503, 503, 204], delivery["attempts"]
    # The partner sees the same log through the signed API.
    with httpx.Client(base_url=pipeline.url, auth=registered.auth("hmac"), timeout=30) as bank:
        own = _ok(bank.get(f"/v1/partner/webhooks/{hook['id']}/deliveries"))
        assert {d["id"] for d in own["deliveries"]} == {d["id"] for d in seen}
        assert [w["id"] for w in _ok(bank.get("/v1/partner/webhooks"))] == [hook["id"]]


def test_sigkill_of_the_relay_loses_no_notification(
    pipeline: Pipeline, http: httpx.Client, receiver: Receiver
) -> None:
    tenant = pipeline.tenant()
    registered = Partners(http, tenant)
    template = _template(http, tenant, limits={"stock": 600, "per_user": 1})
    _subscribe(http, tenant, registered.hmac, receiver, "/flaky", event_types=["coupon.claimed"])
    n = 600
    runner = threading.Thread(target=lambda: _claimed(pipeline, tenant, template.id, n))
    runner.start()
    wait_for(lambda: len(receiver.accepted) >= 50, 60, "deliveries under way")
    pipeline.relay.kill()
    killed_at = len(receiver.accepted)
    pipeline.relay.start(timeout=120)
    runner.join(timeout=300)
    assert not runner.is_alive()
    claimed_ids = _claim_notification_ids(pipeline, tenant, template.id)
    assert len(claimed_ids) == n
    wait_for(lambda: receiver.got(claimed_ids), 90, "every claim notified after the kill")
    assert set(receiver.accepted) == claimed_ids
    assert killed_at < n, "the kill should land mid-way"
    assert receiver.bad_signatures == 0
    print(f"relay killed after {killed_at} of {n} notifications; all {n} received")


def _claim_notification_ids(pipeline: Pipeline, tenant: Tenant, template_id: str) -> set[str]:
    """What the ledger says was claimed, as notification ids (type + event id)."""
    from ledger.keys import TenantKeys

    coupons = pipeline.redis.hvals(TenantKeys(tenant.tenant_id).coupons)
    return {
        f"coupon.claimed:{c['source_id']}"
        for c in map(orjson.loads, coupons)
        if c["template_id"] == template_id
    }


def test_a_dead_letter_is_delivered_on_redelivery(
    pipeline: Pipeline, http: httpx.Client, receiver: Receiver
) -> None:
    tenant = pipeline.tenant()
    registered = Partners(http, tenant)
    template = _template(http, tenant)
    hook = _subscribe(
        http, tenant, registered.rsa, receiver, "/down", event_types=["coupon.claimed"]
    )
    _claimed(pipeline, tenant, template.id, 1)
    base = f"/v1/admin/partners/{registered.rsa}/webhooks/{hook['id']}/deliveries"
    max_attempts = pipeline.settings.webhook_max_attempts

    def dead() -> dict[str, Any] | None:
        page = _ok(http.get(base, params={"state": "dead"}, headers=tenant.staff_headers))
        return page["deliveries"][0] if page["deliveries"] else None

    letter = wait_for(dead, 60, "the delivery dead-lettered")
    assert letter["attempt_count"] == max_attempts
    assert all(a["status_code"] == 503 for a in letter["attempts"])
    receiver.down = False
    again = http.post(f"{base}/{letter['id']}/redeliver", headers=tenant.staff_headers)
    assert _ok(again, 202)["state"] == "pending"
    wait_for(lambda: len(receiver.accepted) == 1, 30, "the redelivery")
    delivered = wait_for(
        lambda: (
            (d := _ok(http.get(base, headers=tenant.staff_headers))["deliveries"][0])["state"]
            == "delivered"
            and d
        ),
        30,
        "the delivery recorded as delivered",
    )
    assert delivered["attempt_count"] == max_attempts + 1
    unknown = http.post(f"{base}/nope.123/redeliver", headers=tenant.staff_headers)
    assert_error(unknown, 404, "delivery_not_found")


def test_bad_subscriptions_are_refused(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    registered = Partners(http, tenant)
    path = f"/v1/admin/partners/{registered.hmac}/webhooks"
    headers = tenant.staff_headers
    for body in (
        {"url": "ftp://example.com/x", "event_types": ["coupon.claimed"]},
        {"url": "https://user:pw@example.com/x", "event_types": ["coupon.claimed"]},
        {"url": "https://example.com/x", "event_types": []},
        {"url": "https://example.com/x", "event_types": ["coupon.eaten"]},
        {"url": "https://example.com/x", "event_types": ["coupon.claimed"], "extra": 1},
    ):
        assert_error(http.post(path, json=body, headers=headers), 422, "invalid_webhook")
    assert_error(
        http.post(
            "/v1/admin/partners/nobody/webhooks",
            json={"url": "https://example.com/x", "event_types": ["coupon.claimed"]},
            headers=headers,
        ),
        404,
        "partner_not_found",
    )
    assert_error(
        http.get(f"{path}/wh_{uuid.uuid4().hex[:16]}", headers=headers), 404, "webhook_not_found"
    )
    made = defaultdict(int)
    for _ in range(20):
        body = {"url": "https://example.com/x", "event_types": ["coupon.expired"]}
        made[_ok(http.post(path, json=body, headers=headers), 201)["webhook"]["id"]] += 1
    over = {"url": "https://example.com/x", "event_types": ["coupon.expired"]}
    assert_error(http.post(path, json=over, headers=headers), 409, "too_many_webhooks")
    assert_error(
        http.get(f"{path}/{next(iter(made))}/deliveries?cursor=x", headers=headers),
        400,
        "bad_cursor",
    )
    first = next(iter(made))
    # Another tenant, or another partner of this one, sees none of it.
    other = pipeline.tenant().staff_headers
    assert_error(http.get(path, headers=other), 404, "partner_not_found")
    assert_error(http.get(f"{path}/{first}", headers=other), 404, "webhook_not_found")
    assert_error(http.delete(f"{path}/{first}", headers=other), 404, "webhook_not_found")
    with httpx.Client(base_url=pipeline.url, auth=registered.auth("rsa"), timeout=30) as till:
        assert _ok(till.get("/v1/partner/webhooks")) == []
        theirs = till.get(f"/v1/partner/webhooks/{first}/deliveries")
        assert_error(theirs, 404, "webhook_not_found")
    assert http.delete(f"{path}/{first}", headers=headers).status_code == 204
    assert_error(http.get(f"{path}/{first}", headers=headers), 404, "webhook_not_found")
