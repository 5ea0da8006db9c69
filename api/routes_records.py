"""Detail records (seed 002's issuance and write-off 明细): a page of JSON with a
cursor, or the whole result as a CSV download, proxied from the streams worker.

``GET /v1/stats/records/{kind}`` and ``GET /v1/stats/records/{kind}.csv``, for
staff keys. A key sees what its Visibility allows: a filter on an activity or
template it cannot see is the same 404 as one that does not exist, and points
records (the tenant's accounts) need a tenant-wide key. The CSV is streamed
through: the api holds one chunk of the worker's response at a time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from api.deps import Res
from api.errors import ApiError, activity_not_found
from api.visibility import Seen, tenant_wide
from domain.ids import ID_PATTERN, USER_ID_PATTERN
from domain.records import (
    DEFAULT_LIMIT,
    KINDS,
    MAX_CURSOR_CHARS,
    MAX_LIMIT,
    MAX_MS,
    Cursor,
    Filters,
    RecordsError,
)
from domain.visibility import Visibility
from ledger.partners import PartnerStore
from ledger.templates import TemplateStore

log = logging.getLogger("carnival.api")
router = APIRouter(prefix="/v1", tags=["stats"])

# A chunk of the export takes the worker ~0.05 s; a read waits far longer than
# that before the download is given up (a slow chunk under load, a merge).
EXPORT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
_FILTERS = ("since", "until", "activity_id", "template_id", "partner_id", "user_id", "status")
_PAGE_PARAMS = frozenset((*_FILTERS, "cursor", "limit"))
_CSV_PARAMS = frozenset(_FILTERS)

Kind = Path(description=f"one of {', '.join(KINDS)}")
Since = Query(None, ge=0, le=MAX_MS, description="occurred at or after (epoch ms)")
Until = Query(None, ge=0, le=MAX_MS, description="occurred before (epoch ms)")
ActivityId = Query(None, pattern=ID_PATTERN)
TemplateId = Query(None, pattern=ID_PATTERN)
PartnerId = Query(None, pattern=ID_PATTERN)
UserId = Query(None, pattern=USER_ID_PATTERN)
Status = Query(None, min_length=1, max_length=32)


async def wanted(
    since: int | None = Since,
    until: int | None = Until,
    activity_id: str | None = ActivityId,
    template_id: str | None = TemplateId,
    partner_id: str | None = PartnerId,
    user_id: str | None = UserId,
    status: str | None = Status,
) -> Filters:
    """The filters of the query string, each checked against its pattern (422)."""
    return Filters(since, until, activity_id, template_id, partner_id, user_id, status)


Wanted = Annotated[Filters, Depends(wanted)]


@router.get(
    "/stats/records/{kind}.csv",
    summary="Every detail record matching the filters, as a CSV download (streamed)",
    response_class=StreamingResponse,
)
async def export_records(
    request: Request,
    res: Res,
    seen: Seen,
    filters: Wanted,
    kind: str = Kind,
) -> StreamingResponse:
    await _check(request, res, seen, kind, filters, _CSV_PARAMS)
    upstream = res.streams.build_request(
        "GET",
        f"/internal/records/{kind}/csv",
        params=[*seen.params(), *filters.params()],
        timeout=EXPORT_TIMEOUT,
    )
    try:
        reply = await res.streams.send(upstream, stream=True)
    except httpx.HTTPError as exc:
        raise _unavailable() from exc
    if reply.status_code != 200:
        try:
            await reply.aread()
        except httpx.HTTPError as exc:
            raise _unavailable() from exc
        finally:
            await reply.aclose()
        raise _upstream_error(reply)
    return StreamingResponse(
        _relay(reply, kind),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kind}-{seen.tenant_id}.csv"'},
        background=BackgroundTask(reply.aclose),
    )


@router.get("/stats/records/{kind}", summary="A page of detail records, newest first")
async def list_records(
    request: Request,
    res: Res,
    seen: Seen,
    filters: Wanted,
    kind: str = Kind,
    cursor: str | None = Query(None, min_length=1, max_length=MAX_CURSOR_CHARS),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, Any]:
    """``rows`` newest first by (occurred_at, event_id), each event once, times
    in epoch ms; pass ``next_cursor`` back as ``cursor`` for the next page (None:
    this was the last)."""
    await _check(request, res, seen, kind, filters, _PAGE_PARAMS)
    if cursor is not None:
        try:
            Cursor.decode(cursor)
        except RecordsError as exc:
            raise ApiError(400, exc.code, str(exc)) from exc
    params = [*seen.params(), *filters.params(), ("limit", str(limit))]
    if cursor is not None:
        params.append(("cursor", cursor))
    try:
        reply = await res.streams.get(f"/internal/records/{kind}", params=params)
    except httpx.HTTPError as exc:
        raise _unavailable() from exc
    if reply.status_code != 200:
        raise _upstream_error(reply)
    return reply.json()


async def _check(
    request: Request,
    res: Res,
    seen: Visibility,
    kind: str,
    filters: Filters,
    allowed: frozenset[str],
) -> None:
    """Every parameter known, every filter applicable to the kind, every entity
    named visible to the key (else the 404 of a missing one)."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ApiError(
            400,
            "unknown_parameter",
            f"unknown query parameter(s) {', '.join(unknown)}; "
            f"this endpoint takes {', '.join(sorted(allowed))}",
        )
    try:
        filters.check(kind)
    except RecordsError as exc:
        status = 404 if exc.code == "unknown_record_kind" else 400
        raise ApiError(status, exc.code, str(exc)) from exc
    if kind == "points":
        tenant_wide(seen, "points records")
    tenant = seen.tenant_id
    if filters.activity_id is not None and (
        not seen.sees_activity(filters.activity_id)
        or await res.store.activity(tenant, filters.activity_id) is None
    ):
        raise activity_not_found(filters.activity_id)
    if filters.template_id is not None and (
        not seen.sees_template(filters.template_id)
        or await TemplateStore(res.store.redis).template(tenant, filters.template_id) is None
    ):
        raise ApiError(
            404, "template_not_found", f"no coupon template '{filters.template_id}' in your tenant"
        )
    if (
        filters.partner_id is not None
        and await PartnerStore(res.store.redis).partner(tenant, filters.partner_id) is None
    ):
        raise ApiError(
            404, "partner_not_found", f"no partner '{filters.partner_id}' in your tenant"
        )


async def _relay(reply: httpx.Response, kind: str) -> AsyncIterator[bytes]:
    """The worker's CSV as it arrives. A failure mid-way can no longer change the
    status: it is logged and re-raised, which aborts the connection, so the
    client sees a broken download rather than a short file."""
    try:
        async for chunk in reply.aiter_raw():
            yield chunk
    except httpx.HTTPError:
        log.warning("records export of %s broke off upstream", kind, exc_info=True)
        raise


def _unavailable() -> ApiError:
    return ApiError(503, "stats_unavailable", "the analytics store is unreachable; retry shortly")


def _upstream_error(reply: httpx.Response) -> ApiError:
    """The worker's 4xx with its code (it checks what the api checks), else a 503."""
    try:
        body = reply.json()
    except ValueError:
        body = None
    if 400 <= reply.status_code < 500 and isinstance(body, dict) and "error" in body:
        return ApiError(reply.status_code, str(body["error"]), str(body.get("message", "")))
    log.warning("records query failed upstream: %s", reply.status_code)
    return _unavailable()
