"""Operator endpoints for bulk distribution: a template issued to a CSV of
shoppers, once each, by a resumable job (``api/distribution_jobs.py``, started
with the router), with progress, a per-line report and a cancel."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from pydantic import BaseModel

from api.deps import AnyStaff, Operator, Res, Resources
from api.distribution_jobs import DistributionJobs
from api.errors import ApiError
from api.uploads import read_csv
from domain.distributions import Distribution, TooManyLines, parse_users
from domain.events import now_ms
from domain.ids import ID_PATTERN
from ledger.distributions import DistributionStore
from ledger.templates import TemplateStore

# ~20 bytes per line: a million shoppers and room to spare.
MAX_UPLOAD_BYTES = 64 * 2**20
REPORT_PAGE_MAX = 10_000


@asynccontextmanager
async def _job_runner(app: FastAPI) -> AsyncIterator[None]:
    resources: Resources = app.state.resources
    jobs = DistributionJobs(DistributionStore(resources.store.redis), resources.road)
    app.state.distribution_jobs = jobs
    jobs.start()
    try:
        yield
    finally:
        await jobs.stop()


router = APIRouter(prefix="/v1/admin", tags=["operator"], lifespan=_job_runner)
JobId = Path(pattern=ID_PATTERN)


class DistributionView(BaseModel):
    job: Distribution
    rejected_lines: int
    report: str  # where the per-line report is


def _view(job: Distribution) -> DistributionView:
    return DistributionView(
        job=job,
        rejected_lines=job.rejected_lines,
        report=f"/v1/admin/distributions/{job.id}/report",
    )


def _store(res: Res) -> DistributionStore:
    return DistributionStore(res.store.redis)


async def _job(res: Res, tenant_id: str, job_id: str) -> Distribution:
    job = await _store(res).job(tenant_id, job_id)
    if job is None:
        raise ApiError(404, "distribution_not_found", f"no distribution '{job_id}' in your tenant")
    return job


@router.post(
    "/templates/{template_id}/distributions",
    status_code=202,
    response_model=DistributionView,
    summary="Issue the template to every shopper of a CSV (one user id per line), once each",
)
async def create_distribution(
    request: Request, res: Res, who: Operator, template_id: str = Path(pattern=ID_PATTERN)
) -> DistributionView:
    text = await read_csv(request, MAX_UPLOAD_BYTES, "user ids")
    template = await TemplateStore(res.store.redis).template(who.tenant_id, template_id)
    if template is None:
        raise ApiError(
            404, "template_not_found", f"no coupon template '{template_id}' in your tenant"
        )
    if template.status not in ("running", "paused"):
        raise ApiError(
            409,
            "template_not_running",
            f"template '{template_id}' is {template.status}: start it before distributing",
        )
    try:
        # A million lines take seconds of CPU: off the event loop.
        parsed = await asyncio.to_thread(parse_users, io.StringIO(text, newline=""))
    except TooManyLines as exc:
        raise ApiError(413, "too_many_lines", f"{exc}; split the file") from exc
    job = Distribution(
        id=f"dist-{uuid.uuid4().hex[:16]}",
        tenant_id=who.tenant_id,
        template_id=template_id,
        lines=parsed.lines,
        accepted=len(parsed.accepted),
        created_by=who.key_name,
        created_at=now_ms(),
    )
    await _store(res).create(job, parsed)
    request.app.state.distribution_jobs.wake()
    return _view(job)


@router.get("/distributions", response_model=list[DistributionView])
async def list_distributions(res: Res, who: AnyStaff) -> list[DistributionView]:
    return [_view(j) for j in await _store(res).jobs(who.tenant_id)]


@router.get("/distributions/{job_id}", response_model=DistributionView)
async def get_distribution(res: Res, who: AnyStaff, job_id: str = JobId) -> DistributionView:
    return _view(await _job(res, who.tenant_id, job_id))


@router.get("/distributions/{job_id}/report", summary="Every rejected line and why")
async def distribution_report(
    res: Res,
    who: AnyStaff,
    job_id: str = JobId,
    offset: int = Query(0, ge=0),
    limit: int = Query(1000, ge=1, le=REPORT_PAGE_MAX),
) -> dict[str, Any]:
    job = await _job(res, who.tenant_id, job_id)
    lines = await _store(res).report(who.tenant_id, job_id, offset, limit)
    return {"job_id": job.id, "total": job.rejected_lines, "offset": offset, "lines": lines}


@router.post("/distributions/{job_id}/cancel", response_model=DistributionView)
async def cancel_distribution(res: Res, who: Operator, job_id: str = JobId) -> DistributionView:
    await _job(res, who.tenant_id, job_id)
    state = await _store(res).move(
        who.tenant_id, job_id, "cancelled", now_ms(), "queued", "running"
    )
    if state != "ok":
        raise ApiError(409, "distribution_finished", f"distribution '{job_id}' is already {state}")
    return _view(await _job(res, who.tenant_id, job_id))
