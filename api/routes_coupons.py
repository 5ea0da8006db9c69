"""Operator endpoints for coupons already issued: look one up, void it.

A void is a change on the road (kind ``coupon``), decided by the actor that
owns the coupon's template, like a claim; its request id is derived from the
coupon, so voiding twice answers with the first void. The router also runs the
expiry sweep (api/expiry_sweep.py) for as long as the app runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import AnyStaff, Operator, Res, Resources
from api.errors import ApiError, validation_error
from api.expiry_sweep import ExpirySweep
from api.tickets import Ticket
from domain import coupon_changes as changes
from domain.claims import Coupon, CouponSource, CouponState
from domain.events import now_ms, request_key
from domain.ids import ID_PATTERN
from domain.road import COUPON
from ledger import writes
from ledger.templates import TemplateStore


@asynccontextmanager
async def _sweeping(app: FastAPI) -> AsyncIterator[None]:
    resources: Resources = app.state.resources
    sweep = ExpirySweep(
        resources.store.redis, resources.road, resources.settings.expiry_sweep_ms / 1000
    )
    sweep.start()
    try:
        yield
    finally:
        await sweep.stop()


router = APIRouter(prefix="/v1/coupons", tags=["operator"], lifespan=_sweeping)

CouponId = Path(pattern=ID_PATTERN)

REJECTIONS: dict[str, tuple[int, str]] = {
    changes.REJECT_COUPON_NOT_FOUND: (404, "there is no such coupon in your tenant"),
    changes.REJECT_COUPON_NOT_AVAILABLE: (409, "the coupon was already used, voided or expired"),
    changes.REJECT_COUPON_EXPIRED: (409, "the coupon's validity window has passed: it expired"),
    changes.REJECT_COUPON_NOT_DUE: (409, "the coupon's validity window has not passed yet"),
}


class CouponView(BaseModel):
    coupon_id: str
    template_id: str
    template_version: int
    user_id: str
    source: CouponSource
    source_id: str
    claimed_at: int
    valid_from: int | None
    valid_until: int | None
    state: CouponState  # as shown: available past its window shows expired


class VoidBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=changes.NOTE_MAX_CHARS, description="why, for the audit")


class ChangeResult(BaseModel):
    coupon_id: str
    template_id: str
    user_id: str
    status: str  # voided | expired
    note: str
    decided_at: int


async def _templates(res: Res) -> TemplateStore:
    return TemplateStore(res.store.redis)


Templates = Annotated[TemplateStore, Depends(_templates)]


async def _coupon(store: TemplateStore, tenant_id: str, coupon_id: str) -> Coupon:
    coupon = await store.coupon(tenant_id, coupon_id)
    if coupon is None:
        status, message = REJECTIONS[changes.REJECT_COUPON_NOT_FOUND]
        raise ApiError(status, changes.REJECT_COUPON_NOT_FOUND, message)
    return coupon


def _result(outcome: dict[str, Any]) -> dict[str, Any]:
    """The operator's view of a change outcome (a rejection raises its 4xx)."""
    if outcome["status"] == "rejected":
        reason = outcome["reason"]
        status, message = REJECTIONS.get(reason, (409, "the change was rejected"))
        raise ApiError(status, reason, message, {"coupon_id": outcome["coupon_id"]})
    return {
        "coupon_id": outcome["coupon_id"],
        "template_id": outcome["template_id"],
        "user_id": outcome["user_id"],
        "status": outcome["status"],
        "note": outcome["note"],
        "decided_at": outcome["occurred_at"],
    }


@router.get("/{coupon_id}", response_model=CouponView, summary="A coupon and its state")
async def get_coupon(store: Templates, who: AnyStaff, coupon_id: str = CouponId) -> CouponView:
    coupon = await _coupon(store, who.tenant_id, coupon_id)
    return CouponView(
        **coupon.model_dump(exclude={"tenant_id", "state"}), state=coupon.shown_state(now_ms())
    )


@router.post(
    "/{coupon_id}/void",
    response_model=ChangeResult,
    responses={202: {"model": Ticket}},
    summary="Void a coupon: it can no longer be used (waits briefly, else a ticket)",
)
async def void_coupon(
    res: Res,
    store: Templates,
    who: Operator,
    coupon_id: str = CouponId,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> Any:
    try:
        note = VoidBody.model_validate(body or {}).note
    except ValidationError as exc:
        raise validation_error("invalid_void", exc.errors()) from exc
    coupon = await _coupon(store, who.tenant_id, coupon_id)
    request_id = changes.change_request_id("void", coupon_id)
    pipe = res.store.redis.pipeline(transaction=False)
    writes.audit(pipe, who.tenant_id, who.key_name, "coupon.void", coupon_id, 0)
    await pipe.execute()
    outcome = await res.road.ask(
        COUPON,
        who.tenant_id,
        coupon.template_id,
        coupon.user_id,
        request_id,
        res.settings.reply_timeout_ms / 1000,
        {"op": "void", "coupon": coupon_id, "note": note},
    )
    if outcome is None:  # queued, not decided yet: poll
        key = request_key(coupon.user_id, request_id)
        await res.store.mark_change_pending(who.tenant_id, coupon.template_id, key)
        ticket = Ticket(request_id=request_id, poll=f"/v1/coupons/{coupon_id}/void")
        return JSONResponse(ticket.model_dump(), status_code=202)
    return _result(outcome)


@router.get(
    "/{coupon_id}/void",
    response_model=ChangeResult,
    responses={202: {"model": Ticket}},
    summary="The outcome of voiding this coupon (202 while pending)",
)
async def void_outcome(res: Res, store: Templates, who: AnyStaff, coupon_id: str = CouponId) -> Any:
    coupon = await _coupon(store, who.tenant_id, coupon_id)
    request_id = changes.change_request_id("void", coupon_id)
    key = request_key(coupon.user_id, request_id)
    decided = await res.store.change_outcome(who.tenant_id, coupon.template_id, key)
    if decided is not None:
        return _result(decided)
    if await res.store.is_change_pending(who.tenant_id, coupon.template_id, key):
        ticket = Ticket(request_id=request_id, poll=f"/v1/coupons/{coupon_id}/void")
        return JSONResponse(ticket.model_dump(), status_code=202)
    raise ApiError(404, "request_not_found", f"coupon '{coupon_id}' was never voided")
