"""Shopper draws: submit (request-reply over Kafka) and poll a ticket."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Res, Shopper
from api.errors import ApiError
from domain.activity import Activity
from domain.events import DrawRequested, now_ms, request_key
from domain.topics import DRAW_REQUESTS, message_key

router = APIRouter(prefix="/v1/activities", tags=["draws"])

ActivityId = Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
RequestId = Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")

# Rejections decided by the actor, as the HTTP status a client should see.
_REJECTION_STATUS = {
    "activity_not_running": 409,
    "user_limit_reached": 409,
    "activity_not_found": 404,
}


class DrawBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Idempotency key: a retry with the same id returns the same outcome.",
    )


class PrizeOut(BaseModel):
    id: str
    name: str
    kind: str


class DrawResult(BaseModel):
    request_id: str
    activity_id: str
    status: str
    prize: PrizeOut | None
    decided_at: int


class Ticket(BaseModel):
    request_id: str
    status: str = "pending"
    poll: str


async def _activity_for(res: Res, activity_id: str, tenant_id: str) -> Activity:
    activity = await res.store.activity(activity_id)
    if activity is None or activity.tenant_id != tenant_id:
        raise ApiError(404, "activity_not_found", f"no activity '{activity_id}' in your tenant")
    return activity


def _answer(outcome: dict[str, Any]) -> DrawResult:
    if outcome["status"] == "rejected":
        reason = outcome["reason"]
        raise ApiError(
            _REJECTION_STATUS.get(reason, 409),
            reason,
            _rejection_message(reason),
            {"request_id": outcome["request_id"]},
        )
    return DrawResult(
        request_id=outcome["request_id"],
        activity_id=outcome["activity_id"],
        status=outcome["status"],
        prize=PrizeOut(
            id=outcome["prize_id"], name=outcome["prize_name"], kind=outcome["prize_kind"]
        ),
        decided_at=outcome["occurred_at"],
    )


def _ticket(activity_id: str, request_id: str) -> JSONResponse:
    poll = f"/v1/activities/{activity_id}/draws/{request_id}"
    return JSONResponse(Ticket(request_id=request_id, poll=poll).model_dump(), status_code=202)


def _rejection_message(reason: str) -> str:
    return {
        "activity_not_running": "the activity is not running now (paused, ended or not started)",
        "user_limit_reached": "you have used all your draws for this activity",
        "activity_not_found": "the activity no longer exists",
    }.get(reason, "the draw was rejected")


@router.post(
    "/{activity_id}/draws",
    response_model=DrawResult,
    responses={202: {"model": Ticket}},
    summary="Draw once (waits briefly for the outcome, else returns a ticket to poll)",
)
async def draw(
    res: Res, who: Shopper, body: DrawBody | None = None, activity_id: str = ActivityId
) -> DrawResult | JSONResponse:
    activity = await _activity_for(res, activity_id, who.tenant_id)
    request_id = (body.request_id if body else None) or uuid.uuid4().hex
    key = request_key(who.user_id, request_id)
    decided = await res.store.outcome(activity_id, key)
    if decided is not None:
        return _answer(decided)
    if not activity.is_open(now_ms()):
        raise ApiError(409, "activity_not_running", _rejection_message("activity_not_running"))
    waiter = res.replies.expect(key)
    event = DrawRequested(
        event_id=key,
        tenant_id=who.tenant_id,
        activity_id=activity_id,
        user_id=who.user_id,
        request_id=request_id,
        reply_to=res.instance_id,
    )
    try:
        await res.producer.send_and_wait(
            DRAW_REQUESTS.name, event.dumps(), key=message_key(activity_id)
        )
        outcome = await asyncio.wait_for(
            asyncio.shield(waiter), res.settings.reply_timeout_ms / 1000
        )
    except TimeoutError:
        res.replies.forget(key)
        await res.store.mark_pending(activity_id, key)
        return _ticket(activity_id, request_id)
    except BaseException:
        res.replies.forget(key)
        raise
    return _answer(outcome)


@router.get(
    "/{activity_id}/draws/{request_id}",
    response_model=DrawResult,
    responses={202: {"model": Ticket}},
    summary="The outcome of an earlier draw (202 while it is still pending)",
)
async def draw_outcome(
    res: Res, who: Shopper, activity_id: str = ActivityId, request_id: str = RequestId
) -> DrawResult | JSONResponse:
    await _activity_for(res, activity_id, who.tenant_id)
    key = request_key(who.user_id, request_id)
    decided = await res.store.outcome(activity_id, key)
    if decided is not None:
        return _answer(decided)
    if await res.store.is_pending(activity_id, key):
        return _ticket(activity_id, request_id)
    raise ApiError(404, "request_not_found", f"no draw with request_id '{request_id}' from you")
