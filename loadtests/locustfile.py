"""Shoppers drawing on the demo wheel over HTTP (Locust scenario).

Runs in its own venv and process, never inside the project's: Locust patches
the standard library with gevent on import, and importing ray or
clickhouse_connect in the same process then fails. So this file imports
nothing from the project. See loadtests/README.md.

Environment:
    CARNIVAL_TOKENS_FILE  shopper tokens, one per line (`carnival token <user>`); required
    CARNIVAL_ACTIVITY     activity to draw on (default: demo-wheel)

Only 127.0.0.1 / localhost targets are accepted: this is a local load test.
"""

from __future__ import annotations

import itertools
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from locust import HttpUser, between, events, task
from locust.env import Environment
from locust.exception import StopUser

ACTIVITY = os.environ.get("CARNIVAL_ACTIVITY", "demo-wheel")
DRAWS_PATH = f"/v1/activities/{ACTIVITY}/draws"
# 200 decided, 202 accepted (ticket to poll), 409 a business rejection such as
# user_limit_reached (the demo wheel allows 10 draws per shopper): all are the
# system working as designed. Anything else (4xx auth errors, 5xx) is a failure.
SUCCESS = frozenset({200, 202, 409})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _load_tokens() -> list[str]:
    path = os.environ.get("CARNIVAL_TOKENS_FILE")
    if not path:
        raise SystemExit("set CARNIVAL_TOKENS_FILE to a file of shopper tokens (one per line)")
    tokens = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if not tokens:
        raise SystemExit(f"{path} holds no tokens")
    return tokens


TOKENS = _load_tokens()
# Round-robin so N simulated users spread over the N shoppers of the file; gevent
# greenlets never run this concurrently, so a plain iterator is safe.
_NEXT_TOKEN = itertools.cycle(TOKENS)


def _is_loopback(url: str | None) -> bool:
    return urlparse(url or "").hostname in LOOPBACK


@events.init.add_listener
def _refuse_remote_hosts(environment: Environment, **_kwargs: Any) -> None:
    # Checked once at start-up (covers --host and the web UI's default) and again
    # per simulated user below (the web UI lets one type another host later).
    target = environment.host or Shopper.host
    if not _is_loopback(target):
        raise SystemExit(f"refusing to load-test {target!r}: only 127.0.0.1 is allowed")


class Shopper(HttpUser):
    """One shopper with one token, drawing with a fresh request id every time."""

    host = os.environ.get("CARNIVAL_API", "http://127.0.0.1:8000")
    wait_time = between(0.05, 0.5)  # a person tapping the wheel, not a tight loop

    def on_start(self) -> None:
        if not _is_loopback(self.host):
            raise StopUser()
        self.client.headers["Authorization"] = f"Bearer {next(_NEXT_TOKEN)}"

    @task
    def draw(self) -> None:
        # A unique request id per request: each POST is a new draw, never a retry.
        body = {"request_id": uuid.uuid4().hex}
        with self.client.post(
            DRAWS_PATH, json=body, name="POST draws", catch_response=True
        ) as response:
            if response.status_code in SUCCESS:
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
