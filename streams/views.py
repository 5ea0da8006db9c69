"""The read side over HTTP: the streams worker's web views.

The worker is the one process that opens ClickHouse (chdb allows one process
per data directory), so it serves the reads too; the api proxies to these
``/internal`` views and is the only caller (they listen on loopback).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import faust
import orjson
from faust.web import Request, Response, View

from domain.visibility import Visibility
from streams import clickhouse, stats
from streams.engine import run_ch

log = logging.getLogger("carnival.streams")


def respond(view: View, body: Any, status: int = 200) -> Response:
    return view.bytes(orjson.dumps(body), content_type="application/json", status=status)


def visibility(request: Request) -> Visibility | None:
    """The caller's Visibility from the query string, or None without a tenant."""
    try:
        return Visibility.from_params(list(request.query.items()))
    except ValueError:
        return None


async def answer(
    view: View, request: Request, what: str, fn: Callable[..., Any], *args: Any
) -> Response:
    """``fn(client, visibility, *args)`` in a thread, as JSON: 400 without a
    tenant, 503 (logged) when the query fails."""
    seen = visibility(request)
    if seen is None:
        return respond(view, {"error": "tenant_id_required"}, 400)
    try:
        body = await run_ch(fn, seen, *args)
    except Exception:
        log.exception("%s query failed", what)
        return respond(view, {"error": "clickhouse_unavailable"}, 503)
    return respond(view, body)


def register(app: faust.App) -> None:
    @app.page("/internal/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            started = time.perf_counter()
            try:
                ok = await run_ch(clickhouse.ping)
            except Exception:  # the client could not even be opened
                log.exception("cannot open ClickHouse")
                ok = False
            ms = round((time.perf_counter() - started) * 1000, 2)
            return respond(self, {"ok": ok, "ms": ms}, 200 if ok else 503)

    @app.page("/internal/stats/activities/{activity_id}")
    class ActivityStats(View):
        async def get(self, request: Request, activity_id: str) -> Response:
            return await answer(
                self, request, "activity stats", _by_tenant(stats.activity_stats), activity_id
            )

    @app.page("/internal/stats/templates/{template_id}")
    class TemplateStats(View):
        async def get(self, request: Request, template_id: str) -> Response:
            return await answer(
                self, request, "template stats", _by_tenant(stats.template_stats), template_id
            )

    @app.page("/internal/stats/partners/{partner_id}")
    class PartnerStats(View):
        async def get(self, request: Request, partner_id: str) -> Response:
            return await answer(
                self, request, "partner stats", _by_tenant(stats.partner_stats), partner_id
            )

    @app.page("/internal/stats/points")
    class PointsStats(View):
        async def get(self, request: Request) -> Response:
            return await answer(self, request, "points stats", _by_tenant(stats.points_stats))

    @app.page("/internal/count")
    class Count(View):
        async def get(self, request: Request) -> Response:
            def count(client: Any, seen: Visibility) -> dict[str, Any]:
                n = stats.tenant_event_count(client, seen.tenant_id)
                return {"tenant_id": seen.tenant_id, "count": n}

            return await answer(self, request, "count", count)


def _by_tenant(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A query of one entity of one tenant: the api checked the entity is visible."""

    def call(client: Any, seen: Visibility, *args: Any) -> Any:
        return fn(client, seen.tenant_id, *args)

    return call
