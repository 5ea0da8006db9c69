"""Request count and latency per route, as plain ASGI middleware.

Starlette's BaseHTTPMiddleware runs every request through an extra task and
stream; this wrapper only watches the response start message.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("carnival_http_requests_total", "HTTP requests", ["route", "status"])
LATENCY = Histogram("carnival_http_request_seconds", "HTTP request latency", ["route"])


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            # The router stores the matched route in the scope; unmatched paths
            # share one label so random URLs cannot blow up the series count.
            route = getattr(scope.get("route"), "path", "unmatched")
            LATENCY.labels(route).observe(time.perf_counter() - started)
            REQUESTS.labels(route, str(status["code"])).inc()
