"""The draw, answered as plain ASGI ahead of FastAPI's router.

Profiled under load (py-spy on the live api, wrk -c64), three quarters of the
api's CPU per draw went to FastAPI and Starlette: route matching over every
route, dependency and parameter solving, request and response wrappers, the
exception middleware. The draw is the one hot path, so it is served here by
``serve_draw``, the same function the documented route calls, with the same
checks, errors and bodies; every other request goes on to FastAPI. It sits
inside the metrics middleware, so draws are counted like any route.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import ApiError, as_api_error, error_body
from api.routes_draws import serve_draw

_PATH = re.compile(r"^/v1/activities/([^/]+)/draws$")
_JSON = [(b"content-type", b"application/json")]
# Larger bodies are refused before they are read: a draw's body is a request id.
MAX_BODY_BYTES = 4096


class _Route:
    """What the metrics middleware reads from ``scope["route"]``."""

    path = "/v1/activities/{activity_id}/draws"


class DrawPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = scope["type"] == "http" and scope["method"] == "POST" and _PATH.match(scope["path"])
        if not match:
            await self.app(scope, receive, send)
            return
        scope["route"] = _Route
        try:
            raw = await _body(receive)
            authorization = _header(scope, b"authorization")
            resources = scope["app"].state.resources
            status, payload = await serve_draw(resources, match.group(1), authorization, raw)
        except Exception as exc:  # every failure is the one error shape, never a traceback
            error = as_api_error(exc)
            status = error.status
            payload = orjson.dumps(error_body(error.code, error.message, error.details))
        headers = [*_JSON, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message: dict[str, Any] = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(
                413, "body_too_large", f"a draw's body is at most {MAX_BODY_BYTES} bytes"
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
