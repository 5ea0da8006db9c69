"""The share figures over HTTP, for the api to proxy (streams.views says why
the worker serves reads)."""

from __future__ import annotations

import faust
from faust.web import Request, Response, View

from streams.shares_stats import share_stats
from streams.views import _by_tenant, answer


def register(app: faust.App) -> None:
    @app.page("/internal/stats/activities/{activity_id}/shares")
    class ShareStats(View):
        async def get(self, request: Request, activity_id: str) -> Response:
            return await answer(self, request, "share stats", _by_tenant(share_stats), activity_id)
