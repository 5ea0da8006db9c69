"""Shopper endpoints: activity info, draw (request-reply over Kafka), poll, my prizes."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from api.deps import Res, Resources, Shopper, authenticate_shopper
from api.errors import ApiError, activity_not_found, validation_error
from api.tickets import RequestBody, Ticket
from domain import draw as rules
from domain.activity import Activity, Theme
from domain.draw import ENVELOPES_LEFT, period, rejection
from domain.events import now_ms, request_key
from domain.ids import ID_PATTERN, REQUEST_ID_PATTERN
from domain.road import DRAW

router = APIRouter(prefix="/v1", tags=["shopper"])

ActivityId = Path(pattern=ID_PATTERN)
RequestId = Path(pattern=REQUEST_ID_PATTERN)

# Every rejection the actor can decide: HTTP status and a message a shopper can act on.
REJECTIONS: dict[str, tuple[int, str]] = {
    rules.REJECT_NOT_RUNNING: (
        409,
        "the activity is not running now (paused, ended or not started)",
    ),
    rules.REJECT_BLACKLISTED: (403, "this account may not take part in the activity"),
    rules.REJECT_USER_LIMIT: (409, "you have used all your draws for this activity"),
    rules.REJECT_DAILY_LIMIT: (409, "you have used all your draws for today; come back tomorrow"),
    rules.REJECT_ACTIVITY_EXHAUSTED: (409, "the activity has reached its maximum number of draws"),
    rules.REJECT_NO_POINTS: (409, "not enough points for a draw; earn points and try again"),
    rules.REJECT_SOLD_OUT: (409, "all red envelopes have been opened"),
    rules.REJECT_UNKNOWN_ACTIVITY: (404, "there is no such activity in your tenant"),
    rules.REJECT_NOT_DRAWABLE: (
        409,
        "this activity is a coupon page: claim its coupons (GET .../coupons) instead of drawing",
    ),
}


class PrizeOut(BaseModel):
    id: str
    name: str
    kind: str


class DrawResult(BaseModel):
    request_id: str
    activity_id: str
    status: str  # won | lost
    prize: PrizeOut | None  # None for a red envelope
    amount: int  # cents of a red envelope, points of a points prize
    reason: str  # "" or "prize_locked" (the fallback was given)
    decided_at: int
    coupon_id: str = ""  # a won coupon prize: the coupon now in my wallet


class CellOut(PrizeOut):
    position: int


class MyProgress(BaseModel):
    draws: int
    draws_today: int | None  # counted only when the activity has a daily limit
    remaining_total: int | None  # None = unlimited
    remaining_today: int | None
    remaining_month: int | None
    chances: int  # bought or granted in all (each raises every limit of its span)
    points: int
    can_draw: bool


class ActivityView(BaseModel):
    id: str
    kind: str
    name: str
    status: str
    starts_at: int | None
    ends_at: int | None
    points_cost: int
    chance_points: int  # the price of one more chance; 0: chances are not sold
    prizes: list[CellOut]
    envelopes_left: int | None
    me: MyProgress
    theme: Theme | None = None  # the page's colours and banner; None: the kind's look


async def activity_for(res: Res, tenant_id: str, activity_id: str) -> Activity:
    activity = await res.store.activity(tenant_id, activity_id)
    if activity is None:
        raise activity_not_found(activity_id)
    return activity


def result(outcome: dict[str, Any]) -> dict[str, Any]:
    """The shopper's view of an outcome event (a rejection raises its 4xx)."""
    if outcome["status"] == "rejected":
        reason = outcome["reason"]
        status, message = REJECTIONS.get(reason, (409, "the draw was rejected"))
        raise ApiError(status, reason, message, {"request_id": outcome["request_id"]})
    prize = None
    if outcome["prize_id"]:
        prize = {
            "id": outcome["prize_id"],
            "name": outcome["prize_name"],
            "kind": outcome["prize_kind"],
        }
    return {
        "request_id": outcome["request_id"],
        "activity_id": outcome["activity_id"],
        "status": outcome["status"],
        "prize": prize,
        "amount": outcome.get("amount", 0),
        "reason": outcome["reason"],
        "decided_at": outcome["occurred_at"],
        "coupon_id": outcome.get("coupon_id", ""),
    }


def answer(outcome: dict[str, Any]) -> Response:
    # Serialised here, not through the response model: the draw is the hot path,
    # and the body is the documented DrawResult.
    return Response(orjson.dumps(result(outcome)), media_type="application/json")


def _ticket_body(activity_id: str, request_id: str) -> dict[str, Any]:
    poll = f"/v1/activities/{activity_id}/draws/{request_id}"
    return Ticket(request_id=request_id, poll=poll).model_dump()


def _ticket(activity_id: str, request_id: str) -> JSONResponse:
    return JSONResponse(_ticket_body(activity_id, request_id), status_code=202)


@router.get(
    "/activities/{activity_id}", response_model=ActivityView, summary="Activity and my chances"
)
async def activity_info(res: Res, who: Shopper, activity_id: str = ActivityId) -> ActivityView:
    activity = await activity_for(res, who.tenant_id, activity_id)
    at = now_ms()
    now = period(at, activity.timezone)
    mine = await res.store.progress(who.tenant_id, activity_id, who.user_id, now.day, now.month)
    limits = activity.limits
    bonus, bonus_today, bonus_month = mine.bonus
    remaining_total = (
        max(0, limits.per_user_total + bonus - mine.draws) if limits.per_user_total else None
    )
    remaining_today = (
        max(0, limits.per_user_daily + bonus_today - mine.draws_today)
        if limits.per_user_daily
        else None
    )
    remaining_month = (
        max(0, limits.per_user_monthly + bonus_month - mine.draws_month)
        if limits.per_user_monthly
        else None
    )
    envelopes_left = mine.stock.get(ENVELOPES_LEFT, 0) if activity.envelopes else None
    can_draw = not rejection(
        activity,
        activity.is_open(at),
        activity.rules.blacklist,
        who.user_id,
        mine.draws,
        mine.draws_today,
        mine.total_draws,
        mine.points,
        envelopes_left,
        mine.draws_month,
        mine.bonus,
    )
    return ActivityView(
        id=activity.id,
        kind=activity.kind,
        name=activity.name,
        status=activity.effective_status(at),
        starts_at=activity.starts_at,
        ends_at=activity.ends_at,
        points_cost=limits.points_cost,
        chance_points=limits.chance_points,
        prizes=[
            CellOut(id=p.id, name=p.name, kind=p.kind, position=i)
            for i, p in enumerate(activity.prizes)
        ],
        envelopes_left=envelopes_left,
        theme=activity.theme,
        me=MyProgress(
            draws=mine.draws,
            draws_today=mine.draws_today if limits.per_user_daily else None,
            remaining_total=remaining_total,
            remaining_today=remaining_today,
            remaining_month=remaining_month,
            chances=bonus,
            points=mine.points,
            can_draw=can_draw,
        ),
    )


_ACTIVITY_ID = re.compile(ID_PATTERN)


async def serve_draw(
    res: Resources, activity_id: str, authorization: str | None, raw_body: bytes
) -> tuple[int, bytes]:
    """One draw, from the raw request to the status and JSON body of the answer.

    The hot path: ``api/draw_path.py`` serves it ahead of FastAPI's router, and the
    route below (what OpenAPI documents) calls the same function. Raises ApiError.
    """
    if not _ACTIVITY_ID.match(activity_id):
        raise validation_error(
            "invalid_request",
            [{"loc": ("path", "activity_id"), "msg": f"must match {ID_PATTERN}"}],
        )
    who = await authenticate_shopper(res, authorization)
    request_id = _request_id(raw_body)
    timeout_s = res.settings.reply_timeout_ms / 1000
    # No ledger read here: the actor answers unknown activities and retries itself.
    outcome = await res.road.ask(
        DRAW, who.tenant_id, activity_id, who.user_id, request_id, timeout_s
    )
    if outcome is None:  # queued on Kafka, not decided yet: the client polls
        key = request_key(who.user_id, request_id)
        await res.store.mark_pending(who.tenant_id, activity_id, key)
        return 202, orjson.dumps(_ticket_body(activity_id, request_id))
    return 200, orjson.dumps(result(outcome))


def _request_id(raw: bytes) -> str:
    """The body's request id, or a fresh one when there is no body or no id."""
    if not raw.strip():
        return uuid.uuid4().hex
    try:
        body = RequestBody.model_validate_json(raw)
    except ValidationError as exc:
        problems = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise validation_error("invalid_request", problems) from exc
    return body.request_id or uuid.uuid4().hex


@router.post(
    "/activities/{activity_id}/draws",
    response_model=DrawResult,
    responses={202: {"model": Ticket}},
    summary="Draw once (waits briefly for the outcome, else returns a ticket to poll)",
)
async def draw(
    request: Request,
    activity_id: str = ActivityId,
    authorization: Annotated[str | None, Header()] = None,
    body: RequestBody | None = None,
) -> Response:
    # Documents the draw; under uvicorn api/draw_path.py answers this path first.
    status, payload = await serve_draw(
        request.app.state.resources, activity_id, authorization, await request.body()
    )
    return Response(payload, status_code=status, media_type="application/json")


@router.get(
    "/activities/{activity_id}/draws/{request_id}",
    response_model=DrawResult,
    responses={202: {"model": Ticket}},
    summary="The outcome of an earlier draw (202 while it is still pending)",
)
async def draw_outcome(
    res: Res, who: Shopper, activity_id: str = ActivityId, request_id: str = RequestId
) -> Response:
    await activity_for(res, who.tenant_id, activity_id)
    key = request_key(who.user_id, request_id)
    decided = await res.store.outcome(who.tenant_id, activity_id, key)
    if decided is not None:
        return answer(decided)
    if await res.store.is_pending(who.tenant_id, activity_id, key):
        return _ticket(activity_id, request_id)
    raise ApiError(404, "request_not_found", f"no draw with request_id '{request_id}' from you")


@router.get(
    "/activities/{activity_id}/prizes/mine",
    response_model=list[DrawResult],
    summary="What I have won in this activity",
)
async def my_prizes(res: Res, who: Shopper, activity_id: str = ActivityId) -> list[DrawResult]:
    await activity_for(res, who.tenant_id, activity_id)
    return [
        DrawResult(**result(o))
        for o in await res.store.wins(who.tenant_id, activity_id, who.user_id)
    ]
