"""Detail records over HTTP: a page of JSON, and the whole CSV streamed.

The api validates a request and proxies it here (streams.views says why the
worker serves reads); the checks below repeat the api's cheaply, so a bad
request from any caller is a 400 with a code, never a failed query.

The CSV is an aiohttp ``StreamResponse`` (Faust's web views run on aiohttp and
return whatever the view returns): chunks of ``records.CHUNK_ROWS`` rows, each
read in a thread and written before the next is read, so the worker holds one
chunk at a time, and ``write`` waits while the client is slower than the
reads. The first chunk is read before the response starts, so a ClickHouse
that is down is a 503; a failure after that aborts the connection, so a client
sees a broken transfer, never a CSV that merely looks complete.
"""

from __future__ import annotations

import logging

import faust
from aiohttp import web
from faust.web import Request, Response, View

from domain.records import DEFAULT_LIMIT, MAX_LIMIT, Cursor, Filters, RecordsError
from domain.visibility import Visibility
from streams import records
from streams.engine import run_ch
from streams.views import respond, visibility

log = logging.getLogger("carnival.streams")


def _bad(view: View, code: str, message: str, status: int = 400) -> Response:
    return respond(view, {"error": code, "message": message}, status)


def _checked(view: View, request: Request, kind: str) -> tuple[Visibility, Filters] | Response:
    """The caller's Visibility and Filters, or the 400 that says what is wrong."""
    seen = visibility(request)
    if seen is None:
        return _bad(view, "tenant_id_required", "tenant_id is required")
    try:
        filters = Filters.from_params(list(request.query.items()))
        filters.check(kind)
    except RecordsError as exc:
        return _bad(view, exc.code, str(exc))
    if kind == "points" and seen.scoped:
        return _bad(view, "scope_is_institution", "points belong to the whole tenant", 403)
    return seen, filters


def register(app: faust.App) -> None:
    @app.page("/internal/records/{kind}")
    class Records(View):
        async def get(self, request: Request, kind: str) -> Response:
            checked = _checked(self, request, kind)
            if not isinstance(checked, tuple):
                return checked
            seen, filters = checked
            cursor = request.query.get("cursor")
            try:
                if cursor is not None:
                    Cursor.decode(cursor)
                limit = int(request.query.get("limit", DEFAULT_LIMIT))
            except RecordsError as exc:
                return _bad(self, exc.code, str(exc))
            except ValueError:
                return _bad(self, "invalid_limit", f"limit is an integer from 1 to {MAX_LIMIT}")
            if not 1 <= limit <= MAX_LIMIT:
                return _bad(self, "invalid_limit", f"limit is an integer from 1 to {MAX_LIMIT}")
            try:
                body = await run_ch(records.page, seen, kind, filters, cursor, limit)
            except Exception:
                log.exception("records query failed")
                return _bad(self, "clickhouse_unavailable", "the query failed", 503)
            return respond(self, body)

    @app.page("/internal/records/{kind}/csv")
    class RecordsCsv(View):
        async def get(self, request: Request, kind: str) -> web.StreamResponse:
            checked = _checked(self, request, kind)
            if not isinstance(checked, tuple):
                return checked
            seen, filters = checked
            try:
                chunk, after = await run_ch(records.csv_chunk, seen, kind, filters)
            except Exception:
                log.exception("records export failed before it started")
                return _bad(self, "clickhouse_unavailable", "the query failed", 503)
            response = web.StreamResponse(
                status=200, headers={"Content-Type": "text/csv; charset=utf-8"}
            )
            await response.prepare(request)  # type: ignore[arg-type]
            try:
                await response.write(records.csv_header(kind) + chunk)
                while after is not None:
                    chunk, after = await run_ch(records.csv_chunk, seen, kind, filters, after)
                    if chunk:
                        await response.write(chunk)
            except ConnectionResetError:  # the client left: nothing to finish
                log.info("records export of %s: the client went away", kind)
                return response
            await response.write_eof()
            return response
