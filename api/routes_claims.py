"""Shopper endpoints for coupons: a template's claim page and the claim itself
(request-reply over Kafka, decided by the template's owning actor like a draw)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import Res, Shopper
from api.errors import ApiError, activity_not_found
from api.tickets import RequestBody, Ticket
from domain import claims as rules
from domain import points
from domain.activity import CLAIM_KINDS
from domain.codes import MAX_RAW_CODE_CHARS, normalize
from domain.coupons import CouponTemplate
from domain.events import now_ms, request_key
from domain.ids import ID_PATTERN, REQUEST_ID_PATTERN
from domain.road import CLAIM
from domain.tokens import ShopperClaims
from ledger.codes import CodeStore

router = APIRouter(prefix="/v1", tags=["shopper"])

TemplateId = Path(pattern=ID_PATTERN)
ActivityId = Path(pattern=ID_PATTERN)
RequestId = Path(pattern=REQUEST_ID_PATTERN)

# Every rejection the actor can decide: HTTP status and a message a shopper can act on.
REJECTIONS: dict[str, tuple[int, str]] = {
    rules.REJECT_UNKNOWN_TEMPLATE: (404, "there is no such coupon in your tenant"),
    rules.REJECT_NOT_RUNNING: (409, "this coupon cannot be claimed now (not started or paused)"),
    rules.REJECT_NOT_OPEN: (409, "claiming has not opened yet; see claim_opens_at"),
    rules.REJECT_CLOSED: (409, "claiming has closed for this coupon"),
    rules.REJECT_SOLD_OUT: (409, "all of these coupons have been claimed"),
    rules.REJECT_USER_LIMIT: (409, "you already hold as many of these coupons as allowed"),
    rules.REJECT_CODE_NOT_FOUND: (404, "there is no such coupon code; check how it was typed"),
    rules.REJECT_CODE_NOT_AVAILABLE: (409, "this coupon code was already used or voided"),
    rules.REJECT_NOT_EXCHANGEABLE: (409, "this coupon cannot be bought with points"),
    points.INSUFFICIENT: (409, "not enough usable points for this coupon"),
    points.EXCHANGE_LIMIT: (409, "the daily limit of points exchanges is reached"),
}


class IssuedCoupon(BaseModel):
    coupon_id: str
    valid_from: int | None
    valid_until: int | None


class ClaimResult(BaseModel):
    request_id: str
    template_id: str
    status: str  # issued
    coupon: IssuedCoupon
    decided_at: int


class ClaimPage(BaseModel):
    """What a claim page or a flash-sale countdown shows; ``server_time`` is the
    clock the actor decides by, so a client can correct its own."""

    id: str
    name: str
    description: str
    kind: str
    face_value_cents: int | None
    status: str
    claim_opens_at: int | None
    claim_closes_at: int | None
    stock_left: int | None  # None = unlimited
    claimed_by_me: int
    per_user: int  # 0 = no limit
    can_claim: bool
    reason: str  # why not, when can_claim is false
    server_time: int


def result(outcome: dict[str, Any]) -> dict[str, Any]:
    """The shopper's view of a claim outcome (a rejection raises its 4xx)."""
    if outcome["status"] == "rejected":
        reason = outcome["reason"]
        status, message = REJECTIONS.get(reason, (409, "the claim was rejected"))
        raise ApiError(status, reason, message, {"request_id": outcome["request_id"]})
    return {
        "request_id": outcome["request_id"],
        "template_id": outcome["template_id"],
        "status": outcome["status"],
        "coupon": {
            "coupon_id": outcome["coupon_id"],
            "valid_from": outcome["valid_from"],
            "valid_until": outcome["valid_until"],
        },
        "decided_at": outcome["occurred_at"],
    }


def _ticket(template_id: str, request_id: str) -> JSONResponse:
    poll = f"/v1/templates/{template_id}/claims/{request_id}"
    body = Ticket(request_id=request_id, poll=poll).model_dump()
    return JSONResponse(body, status_code=202)


def _not_found(template_id: str) -> ApiError:
    return ApiError(404, "template_not_found", f"no coupon template '{template_id}' in your tenant")


class CouponPage(BaseModel):
    """A claim centre or flash sale: its window and every coupon it offers."""

    id: str
    kind: str
    name: str
    status: str
    starts_at: int | None
    ends_at: int | None
    coupons: list[ClaimPage]  # in page order; drafts are not shown
    server_time: int


async def _claim_view(res: Res, who: ShopperClaims, template_id: str, at: int) -> ClaimPage | None:
    """A template as a shopper sees it; None when there is none or it is a draft
    (not published: shoppers see nothing)."""
    config, left, mine = await res.store.claim_counters(who.tenant_id, template_id, who.user_id)
    if config is None:
        return None
    template = CouponTemplate.model_validate_json(config)
    if template.status == "draft":
        return None
    stock_left = left if template.limits.stock is not None else None
    reason = rules.claim_rejection(template, at, stock_left, mine) or ""
    return ClaimPage(
        id=template.id,
        name=template.name,
        description=template.description,
        kind=template.kind,
        face_value_cents=template.face_value_cents,
        status=template.status,
        claim_opens_at=template.claim_opens_at,
        claim_closes_at=template.claim_closes_at,
        stock_left=stock_left,
        claimed_by_me=mine,
        per_user=template.limits.per_user,
        can_claim=not reason,
        reason=reason,
        server_time=at,
    )


@router.get("/templates/{template_id}", response_model=ClaimPage, summary="A coupon to claim")
async def claim_page(res: Res, who: Shopper, template_id: str = TemplateId) -> ClaimPage:
    view = await _claim_view(res, who, template_id, now_ms())
    if view is None:
        raise _not_found(template_id)
    return view


@router.get(
    "/activities/{activity_id}/coupons",
    response_model=CouponPage,
    summary="A claim centre or flash sale page: its coupons and whether I can claim each",
)
async def coupon_page(res: Res, who: Shopper, activity_id: str = ActivityId) -> CouponPage:
    activity = await res.store.activity(who.tenant_id, activity_id)
    if activity is None:
        raise activity_not_found(activity_id)
    if activity.kind not in CLAIM_KINDS:
        raise ApiError(
            409,
            "not_a_coupon_page",
            f"activity '{activity_id}' is a {activity.kind}: draw with POST .../draws",
        )
    at = now_ms()
    views = [await _claim_view(res, who, t, at) for t in activity.templates]
    return CouponPage(
        id=activity.id,
        kind=activity.kind,
        name=activity.name,
        status=activity.effective_status(at),
        starts_at=activity.starts_at,
        ends_at=activity.ends_at,
        coupons=[v for v in views if v is not None],
        server_time=at,
    )


@router.post(
    "/templates/{template_id}/claims",
    response_model=ClaimResult,
    responses={202: {"model": Ticket}},
    summary="Claim a coupon (waits briefly for the decision, else returns a ticket to poll)",
)
async def claim(
    res: Res, who: Shopper, template_id: str = TemplateId, body: RequestBody | None = None
) -> Any:
    # No ledger read here: the actor answers unknown templates and retries itself.
    return await _ask(res, who, template_id, body, None)


async def _ask(
    res: Res,
    who: ShopperClaims,
    template_id: str,
    body: RequestBody | None,
    road_body: dict[str, Any] | None,
) -> Any:
    """A claim of any sort on the road: its outcome, or a ticket to poll."""
    request_id = (body.request_id if body else None) or uuid.uuid4().hex
    outcome = await res.road.ask(
        CLAIM,
        who.tenant_id,
        template_id,
        who.user_id,
        request_id,
        res.settings.reply_timeout_ms / 1000,
        road_body,
    )
    if outcome is None:  # queued on Kafka, not decided yet: the client polls
        key = request_key(who.user_id, request_id)
        await res.store.mark_claim_pending(who.tenant_id, template_id, key)
        return _ticket(template_id, request_id)
    return result(outcome)


@router.post(
    "/templates/{template_id}/exchanges",
    response_model=ClaimResult,
    responses={202: {"model": Ticket}},
    summary="Buy a coupon with points (spent in the same commit as the coupon is issued)",
)
async def exchange(
    res: Res, who: Shopper, template_id: str = TemplateId, body: RequestBody | None = None
) -> Any:
    # An exchange is a claim that spends points: the claim's poll answers it.
    return await _ask(res, who, template_id, body, {"exchange": True})


@router.post(
    "/codes/{code}/claims",
    response_model=ClaimResult,
    responses={202: {"model": Ticket}},
    summary="Claim the coupon a code stands for into my wallet (the code is then assigned)",
)
async def claim_code(
    res: Res,
    who: Shopper,
    code: str = Path(min_length=1, max_length=MAX_RAW_CODE_CHARS),
    body: RequestBody | None = None,
) -> Any:
    canonical = normalize(code)
    codes = CodeStore(res.store.redis)
    record = await codes.code(who.tenant_id, canonical)
    batch = await codes.batch(who.tenant_id, record.batch_id) if record else None
    if record is None or batch is None:
        status, message = REJECTIONS[rules.REJECT_CODE_NOT_FOUND]
        raise ApiError(status, rules.REJECT_CODE_NOT_FOUND, message)
    # The template's actor decides, like any claim: its rules, then the code's
    # state as the ledger holds it (assigned in the same commit as the coupon).
    road_body = {"code": canonical, "batch": record.batch_id}
    return await _ask(res, who, batch.template_id, body, road_body)


@router.get(
    "/templates/{template_id}/claims/{request_id}",
    response_model=ClaimResult,
    responses={202: {"model": Ticket}},
    summary="The outcome of an earlier claim (202 while it is still pending)",
)
async def claim_outcome(
    res: Res, who: Shopper, template_id: str = TemplateId, request_id: str = RequestId
) -> Any:
    key = request_key(who.user_id, request_id)
    decided = await res.store.claim_outcome(who.tenant_id, template_id, key)
    if decided is not None:
        return result(decided)
    if await res.store.is_claim_pending(who.tenant_id, template_id, key):
        return _ticket(template_id, request_id)
    raise ApiError(404, "request_not_found", f"no claim with request_id '{request_id}' from you")
