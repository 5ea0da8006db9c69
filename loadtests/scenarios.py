"""Carnival's load scenarios for Locust: flash-sale rush, big-wheel storm,
partner write-offs and a mixed day. One file, one user class (or two) per
scenario, picked on the command line (``locust -f scenarios.py WheelStorm``).

Runs in Locust's own venv and process, never the project's: Locust patches the
standard library with gevent on import, and importing ray or clickhouse_connect
in the same process then fails. So this file imports nothing from the project;
the partner signing below is the HMAC-SHA256 rule of ``domain/signing.py``
written again with the standard library (the pipeline tests check that module,
and every signed request here that Carnival refused would count as a failure).

The entities a run uses (a fresh activity, templates, partner and coupons per
run) are made beforehand by ``carnival load``, which writes them to the JSON
file named by ``CARNIVAL_LOAD_CONFIG``:

    api                 base URL (loopback only)
    tokens              shopper tokens, one per simulated shopper
    activity_id         the wheel of WheelStorm and MixedDay
    flash_template_id   the flash-sale template of FlashRush
    claim_template_id   the claim-centre template of MixedDay
    exchange_template_id a template bought with points (MixedDay)
    partner_id, partner_secret   the HMAC partner of PartnerTill and MixedTill
    tills               how many MixedTill users the mixed day runs (at least 1)
    coupons             coupon ids the tills redeem (claimed by shoppers at set-up)
    status_file         where every response status is counted at exit (JSON)

Every answer the system gives by design counts as a success: 200, 202 (a
ticket), 409 (a business refusal: sold out, limit reached, budget exhausted,
already redeemed). Anything else (401, 404, 422, 5xx, no answer) is a failure,
and ``carnival load`` fails the run on it. Only 127.0.0.1 / localhost targets
are accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import random
import secrets
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from locust import HttpUser, between, events, task
from locust.env import Environment
from locust.exception import StopUser

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
SUCCESS = frozenset({200, 202, 409})
# A person tapping a phone, or a till between two customers: not a tight loop.
SHOPPER_WAIT = between(0.05, 0.5)
TILL_WAIT = between(0.1, 0.6)
# Seconds a request may take before Locust counts it as failed (status 0): well
# above the api's own bounded wait for a decision (it answers 202 after it).
NETWORK_TIMEOUT_S = 30.0
REVERSAL_SHARE = 0.2  # of a till's tasks: refund one of its orders
CART = {
    "items": [
        {"sku": "tee", "category": "clothes", "unit_cents": 2500, "qty": 2},
        {"sku": "cap", "category": "clothes", "unit_cents": 5000, "qty": 1},
    ],
    "shipping_cents": 500,
}
ORDER_ITEMS = [{"sku": "tee", "category": "clothes", "unit_cents": 2500, "qty": 2}]


def _load_config() -> dict[str, Any]:
    path = os.environ.get("CARNIVAL_LOAD_CONFIG")
    if not path:
        raise SystemExit("set CARNIVAL_LOAD_CONFIG to the JSON file `carnival load` writes")
    config = json.loads(Path(path).read_text())
    if not config.get("tokens"):
        raise SystemExit(f"{path} holds no shopper tokens")
    return config


CONFIG = _load_config()
# gevent greenlets never run these concurrently: plain iterators and lists are safe.
_NEXT_TOKEN = itertools.cycle(CONFIG["tokens"])
_COUPONS: list[str] = list(CONFIG.get("coupons", []))
STATUSES: Counter[str] = Counter()  # "<name> <status>" -> count


def _is_loopback(url: str | None) -> bool:
    return urlparse(url or "").hostname in LOOPBACK


@events.init.add_listener
def _refuse_remote_hosts(environment: Environment, **_kwargs: Any) -> None:
    target = environment.host or CONFIG.get("api")
    if not _is_loopback(target):
        raise SystemExit(f"refusing to load-test {target!r}: only 127.0.0.1 is allowed")


@events.request.add_listener
def _count_status(name: str, response: Any, exception: Any, **_kwargs: Any) -> None:
    # Locust's CSV keeps failures by message only; the closing check needs every
    # status, 5xx above all, so they are counted here and written at exit.
    status = getattr(response, "status_code", 0) or 0
    STATUSES[f"{name} {status}"] += 1


@events.quitting.add_listener
def _write_statuses(environment: Environment, **_kwargs: Any) -> None:
    path = CONFIG.get("status_file")
    if path:
        Path(path).write_text(json.dumps(dict(STATUSES), indent=1, sort_keys=True))


def sign(method: str, path: str, body: bytes, partner_id: str, secret: bytes) -> dict[str, str]:
    """The five X-Carnival-* headers of domain/signing.py for HMAC-SHA256, for a
    path without a query (the only kind sent here)."""
    timestamp = str(int(time.time()))
    nonce = secrets.token_urlsafe(24)
    body_sha256 = hashlib.sha256(body).hexdigest()
    canonical = "\n".join((method.upper(), path, "", timestamp, nonce, body_sha256))
    mac = hmac.new(secret, canonical.encode("ascii"), hashlib.sha256).digest()
    return {
        "X-Carnival-Partner": partner_id,
        "X-Carnival-Timestamp": timestamp,
        "X-Carnival-Nonce": nonce,
        "X-Carnival-Content-SHA256": body_sha256,
        "X-Carnival-Signature": base64.b64encode(mac).decode("ascii"),
    }


class CarnivalUser(HttpUser):
    abstract = True
    host = CONFIG.get("api", "http://127.0.0.1:8000")
    wait_time = SHOPPER_WAIT
    network_timeout = NETWORK_TIMEOUT_S
    connection_timeout = NETWORK_TIMEOUT_S

    def on_start(self) -> None:
        if not _is_loopback(self.host):
            raise StopUser()

    def send(
        self,
        method: str,
        path: str,
        name: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One request; 200/202/409 succeed, anything else fails. Returns the JSON
        of a 200, else None."""
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        sent = {**(headers or {}), **({"Content-Type": "application/json"} if data else {})}
        with self.client.request(
            method, path, data=data, headers=sent, name=name, catch_response=True
        ) as response:
            if response.status_code in SUCCESS:
                response.success()
                return response.json() if response.status_code == 200 else None
            response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
            return None


class Shopper(CarnivalUser):
    """A shopper whose every request carries the next token of the file: a crowd
    of many shoppers, each tapping a few times (the rush and the storm)."""

    abstract = True

    def shopper(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {next(_NEXT_TOKEN)}"}


class FlashRush(Shopper):
    """Many shoppers, little stock: claims of one flash-sale template (the page
    is read now and then, as a phone refreshes the countdown)."""

    @task(8)
    def claim(self) -> None:
        template_id = CONFIG["flash_template_id"]
        self.send(
            "POST",
            f"/v1/templates/{template_id}/claims",
            "POST claims (flash)",
            {"request_id": uuid.uuid4().hex},
            self.shopper(),
        )

    @task(1)
    def page(self) -> None:
        page = CONFIG["flash_page_id"]
        self.send("GET", f"/v1/activities/{page}/coupons", "GET flash page", None, self.shopper())


class WheelStorm(Shopper):
    """A storm of draws on one big wheel with stock-limited prizes and a per-user limit."""

    @task
    def draw(self) -> None:
        activity_id = CONFIG["activity_id"]
        self.send(
            "POST",
            f"/v1/activities/{activity_id}/draws",
            "POST draws",
            {"request_id": uuid.uuid4().hex},
            self.shopper(),
        )


class PartnerTill(CarnivalUser):
    """A till redeeming coupons shoppers hold, signed with HMAC-SHA256; now and
    then it refunds one of its orders (the coupon comes back, the budget too).
    Tills pick coupons at random, so two tills often race for one coupon."""

    wait_time = TILL_WAIT

    def on_start(self) -> None:
        super().on_start()
        self.partner_id = CONFIG["partner_id"]
        self.secret = CONFIG["partner_secret"].encode()
        self.orders: list[str] = []  # redeemed by this till, not refunded yet

    def signed(self, path: str, body: dict[str, Any], name: str) -> Any:
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = sign("POST", path, raw, self.partner_id, self.secret)
        headers["Content-Type"] = "application/json"
        with self.client.post(
            path, data=raw, headers=headers, name=name, catch_response=True
        ) as response:
            if response.status_code in SUCCESS:
                response.success()
                return response.json() if response.status_code == 200 else None
            response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
            return None

    @task
    def till(self) -> None:
        if self.orders and random.random() < REVERSAL_SHARE:
            order_id = self.orders.pop(random.randrange(len(self.orders)))
            body = {"request_id": uuid.uuid4().hex, "order_id": order_id}
            self.signed("/v1/partner/reversals", body, "POST partner reversals")
            return
        if not _COUPONS:
            return
        order_id = f"o-{uuid.uuid4().hex}"
        body = {
            "request_id": uuid.uuid4().hex,
            "coupon_id": random.choice(_COUPONS),
            "order": {"order_id": order_id, "items": ORDER_ITEMS, "shipping_cents": 300},
        }
        answer = self.signed("/v1/partner/redemptions", body, "POST partner redemptions")
        if answer is not None and answer.get("status") == "redeemed":
            self.orders.append(order_id)


class MixedDay(CarnivalUser):
    """A shopper's day: draws, claims, points (sign-in, balance, exchanges) and
    wallet reads, in the proportions of a busy promotion. One shopper per
    simulated user, so the wallet and points reads show their own coupons."""

    def on_start(self) -> None:
        super().on_start()
        self.auth = {"Authorization": f"Bearer {next(_NEXT_TOKEN)}"}

    @task(30)
    def draw(self) -> None:
        activity_id = CONFIG["activity_id"]
        body = {"request_id": uuid.uuid4().hex}
        self.send("POST", f"/v1/activities/{activity_id}/draws", "POST draws", body, self.auth)

    @task(8)
    def claim(self) -> None:
        template_id = CONFIG["claim_template_id"]
        body = {"request_id": uuid.uuid4().hex}
        self.send("POST", f"/v1/templates/{template_id}/claims", "POST claims", body, self.auth)

    @task(3)
    def exchange(self) -> None:
        template_id = CONFIG["exchange_template_id"]
        body = {"request_id": uuid.uuid4().hex}
        path = f"/v1/templates/{template_id}/exchanges"
        self.send("POST", path, "POST exchanges", body, self.auth)

    @task(4)
    def sign_in(self) -> None:
        self.send("POST", "/v1/me/points/signins", "POST signins", {}, self.auth)

    @task(10)
    def points(self) -> None:
        self.send("GET", "/v1/me/points", "GET points", None, self.auth)

    @task(15)
    def wallet(self) -> None:
        self.send("GET", "/v1/wallet?state=available", "GET wallet", None, self.auth)

    @task(5)
    def best(self) -> None:
        self.send("POST", "/v1/wallet/best", "POST wallet best", {"cart": CART}, self.auth)


class MixedTill(PartnerTill):
    """The tills of the mixed day: a fixed number of them (Locust starts them
    first), so even a run of a few users has one; the rest are shoppers."""

    fixed_count = int(CONFIG.get("tills", 1))
