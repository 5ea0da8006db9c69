"""The stats API's reports as the streams worker's web views (the api proxies them).

The api authenticated the caller, checked the entity is visible to it and
aligned the windows; these views only parse what it sends: the Visibility
(streams/views.py), ``since`` / ``until`` in epoch ms, ``step``, and for a
channel its ``partner_id`` and ``channel_template`` ids. A parameter that does
not parse is a 400 ``invalid_report_params``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
from faust.web import Request, Response, View

from streams import report
from streams.views import answer, respond

_BAD = "invalid_report_params"


class _BadParams(ValueError):
    pass


def _ms(request: Request, name: str, required: bool) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        if required:
            raise _BadParams(f"{name} is required")
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise _BadParams(f"{name} must be epoch ms") from exc


def _window(request: Request, required: bool) -> tuple[Any, ...]:
    return _ms(request, "since", required), _ms(request, "until", required)


def _step(request: Request) -> str:
    step = request.query.get("step", "")
    if step not in report.STEP_MS:
        raise _BadParams(f"step must be one of {', '.join(report.STEP_MS)}")
    return step


async def _reply(
    view: View, request: Request, what: str, fn: Callable[..., Any], args: Callable[[], tuple]
) -> Response:
    try:
        parsed = args()
    except _BadParams as exc:
        return respond(view, {"error": _BAD, "message": str(exc)}, 400)
    return await answer(view, request, what, fn, *parsed)


def register(app: faust.App) -> None:
    @app.page("/internal/stats/overview")
    class Overview(View):
        async def get(self, request: Request) -> Response:
            return await _reply(
                self, request, "overview", report.overview, lambda: _window(request, False)
            )

    @app.page("/internal/stats/activities/{activity_id}/funnel")
    class ActivityFunnel(View):
        async def get(self, request: Request, activity_id: str) -> Response:
            return await _reply(
                self,
                request,
                "activity funnel",
                report.activity_funnel,
                lambda: (activity_id, *_window(request, False)),
            )

    def by_entity(fn: Callable[..., Any], what: str, stepped: bool) -> Callable[..., Any]:
        """A view of ``fn(client, seen, entity_id, [step,] since, until)``."""

        async def get(self: View, request: Request, entity_id: str) -> Response:
            def args() -> tuple[Any, ...]:
                step = (_step(request),) if stepped else ()
                return (entity_id, *step, *_window(request, True))

            return await _reply(self, request, what, fn, args)

        return get

    def series(fn: Callable[..., Any], what: str) -> Callable[..., Any]:
        return by_entity(fn, what, stepped=True)

    def burn(fn: Callable[..., Any], what: str) -> Callable[..., Any]:
        return by_entity(fn, what, stepped=False)

    @app.page("/internal/stats/activities/{entity_id}/series")
    class ActivitySeries(View):
        get = series(report.activity_series, "activity series")

    @app.page("/internal/stats/templates/{entity_id}/series")
    class TemplateSeries(View):
        get = series(report.template_series, "template series")

    @app.page("/internal/stats/partners/{entity_id}/series")
    class PartnerSeries(View):
        get = series(report.partner_series, "partner series")

    @app.page("/internal/stats/channels/{channel_id}/series")
    class ChannelSeries(View):
        async def get(self, request: Request, channel_id: str) -> Response:
            def args() -> tuple[Any, ...]:
                partner = request.query.get("partner_id", "")
                if not partner:
                    raise _BadParams("partner_id is required")
                templates = [v for k, v in request.query.items() if k == "channel_template"]
                return (partner, templates, _step(request), *_window(request, True))

            return await _reply(self, request, "channel series", report.channel_series, args)

    @app.page("/internal/stats/templates/{entity_id}/burn")
    class TemplateBurn(View):
        get = burn(report.template_burn, "template burn")

    @app.page("/internal/stats/partners/{entity_id}/burn")
    class PartnerBurn(View):
        get = burn(report.partner_burn, "partner burn")
