"""Points: a shopper's account, statement and sign-in; the merchant's earning
rules, order rebates and refunds, adjustments; a partner's signed order rebates.

Every movement takes the road (domain.road.POINTS): keyed by the account's
shard, decided in a batch by the actor that owns it, committed with the account
it changes. Exchanges of points for coupons are claims (api/routes_claims.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api import writeoff_requests as wr
from api.deps import AnyStaff, Operator, Res, Shopper
from api.errors import ApiError, activity_not_found
from api.partner_auth import SignedPartner
from api.tickets import RequestBody, Ticket
from domain import draw
from domain import points as rules
from domain.draw import MAX_CHANCES
from domain.events import now_ms, request_key
from domain.ids import ID_PATTERN, REQUEST_ID_PATTERN, USER_ID_PATTERN
from domain.points import MAX_AMOUNT, PointsRules
from domain.road import POINTS, QUOTA
from ledger.points import PointsStore

router = APIRouter(prefix="/v1", tags=["points"])

RequestId = Path(pattern=REQUEST_ID_PATTERN)
ActivityId = Path(pattern=ID_PATTERN)
UserId = Path(pattern=USER_ID_PATTERN)
OrderId = Path(pattern=REQUEST_ID_PATTERN)
DAY_MS = 86_400_000

# Every refusal the actor can decide: HTTP status and a message a person can act on.
REJECTIONS: dict[str, tuple[int, str]] = {
    rules.INSUFFICIENT: (409, "not enough usable points; pending and expired points do not count"),
    rules.OVERFLOW: (422, f"an account holds at most {rules.MAX_BALANCE} points"),
    rules.ALREADY_SIGNED_IN: (409, "already signed in today; come back tomorrow"),
    rules.NO_RULE: (409, "this tenant has no earning rule for that; ask the merchant"),
    rules.ORDER_NOT_FOUND: (404, "no points were earned for this order"),
    rules.EXCHANGE_LIMIT: (409, "the daily limit of points exchanges is reached"),
    rules.UNKNOWN_OP: (400, "unknown points operation"),
    "invalid_points_request": (422, "the points request is not valid"),
    draw.REJECT_CHANCES_NOT_SOLD: (409, "this activity does not sell chances for points"),
    draw.REJECT_NOT_RUNNING: (409, "this activity has ended"),
    draw.REJECT_NOT_DRAWABLE: (409, "a coupon page has no draws to add chances to"),
    draw.REJECT_UNKNOWN_ACTIVITY: (404, "there is no such activity in your tenant"),
    draw.REJECT_INVALID_CHANCES: (422, f"chances must be 1..{MAX_CHANCES}"),
}


class Movement(BaseModel):
    key: str
    kind: str
    amount: int
    balance: int
    at: int
    reason: str
    source_id: str


class PointsResult(BaseModel):
    request_id: str
    user_id: str
    op: str
    status: str  # applied
    amount: int  # what the balance gained (negative: lost)
    balance: int
    movements: list[Movement]
    decided_at: int


class AccountView(BaseModel):
    user_id: str
    points: int  # the balance: usable + pending
    usable: int
    pending: int  # earned, not usable yet (an order's rebate until it cannot be refunded)
    expiring_soon: int  # usable points that expire within ``within_days``
    within_days: int
    next_expiry: int | None
    streak: int  # days of the current sign-in streak
    signed_in_today: bool


class Statement(BaseModel):
    user_id: str
    entries: list[Movement]  # newest first
    next_before: int | None  # pass as ``before`` for the next (older) page


class SigninBody(RequestBody):
    pass


class OrderPost(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(pattern=USER_ID_PATTERN)
    order_id: str = Field(pattern=REQUEST_ID_PATTERN)
    amount_cents: int = Field(gt=0, le=10**12)


class PartnerOrderPost(OrderPost):
    request_id: str = Field(pattern=REQUEST_ID_PATTERN)  # the signed API's idempotency key


class RefundPost(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: str | None = Field(default=None, pattern=REQUEST_ID_PATTERN)


class Adjustment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(pattern=USER_ID_PATTERN)
    amount: int = Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT, description="signed; not 0")
    reason: str = Field(default="adjust", min_length=1, max_length=200)
    request_id: str | None = Field(default=None, pattern=REQUEST_ID_PATTERN)

    @field_validator("amount")
    @classmethod
    def _not_zero(cls, amount: int) -> int:
        if amount == 0:
            raise ValueError("must not be 0")
        return amount


def result(outcome: dict[str, Any]) -> dict[str, Any]:
    """The caller's view of a points outcome (a refusal raises its 4xx)."""
    if outcome["status"] == "rejected":
        reason = outcome["reason"]
        status, message = REJECTIONS.get(reason, (409, "the points request was refused"))
        raise ApiError(status, reason, message, {"request_id": outcome["request_id"]})
    return {
        "request_id": outcome["request_id"],
        "user_id": outcome["user_id"],
        "op": outcome["op"],
        "status": outcome["status"],
        "amount": outcome["amount"],
        "balance": outcome["balance"],
        "movements": outcome["movements"],
        "decided_at": outcome["occurred_at"],
    }


async def _ask(
    res: Res, tenant_id: str, user_id: str, request_id: str, body: dict[str, Any], poll: str
) -> Any:
    outcome = await res.road.ask(
        POINTS,
        tenant_id,
        rules.account_shard(user_id),
        user_id,
        request_id,
        res.settings.reply_timeout_ms / 1000,
        body,
    )
    if outcome is None:  # queued, not decided yet: the client polls
        await PointsStore(res.store.redis).mark_pending(tenant_id, request_key(user_id, request_id))
        return JSONResponse(Ticket(request_id=request_id, poll=poll).model_dump(), 202)
    return result(outcome)


async def _poll(res: Res, tenant_id: str, user_id: str, request_id: str, poll: str) -> Any:
    store = PointsStore(res.store.redis)
    key = request_key(user_id, request_id)
    decided = await store.outcome(tenant_id, key)
    if decided is not None:
        return result(decided)
    if await store.is_pending(tenant_id, key):
        return JSONResponse(Ticket(request_id=request_id, poll=poll).model_dump(), 202)
    raise ApiError(404, "request_not_found", f"no points request '{request_id}' for that shopper")


async def _account(res: Res, tenant_id: str, user_id: str, within_days: int) -> AccountView:
    store = PointsStore(res.store.redis)
    at = now_ms()
    account, policy = await store.account(tenant_id, user_id), await store.rules(tenant_id)
    return AccountView(
        user_id=user_id,
        points=account.balance,
        usable=account.spendable(at),
        pending=account.pending(at),
        expiring_soon=account.expiring(at, within_days * DAY_MS),
        within_days=within_days,
        next_expiry=account.next_expiry(),
        streak=account.streak,
        signed_in_today=account.signin_day == policy.day(at),
    )


async def _statement(
    res: Res, tenant_id: str, user_id: str, before: int | None, limit: int
) -> Statement:
    page = await PointsStore(res.store.redis).statement(tenant_id, user_id, before, limit)
    return Statement(
        user_id=user_id,
        entries=[Movement(**e.model_dump(exclude={"moves"})) for e in page.entries],
        next_before=page.next_before,
    )


async def _order(res: Res, tenant_id: str, order_ref: str, body: OrderPost) -> Any:
    store = PointsStore(res.store.redis)
    known = await store.remember_order(tenant_id, order_ref, body.user_id, body.amount_cents)
    if known != f"{body.user_id}|{body.amount_cents}":
        raise ApiError(
            409,
            "duplicate_order",
            f"order '{body.order_id}' was already posted for another shopper or amount",
        )
    request_id = rules.order_request_id(order_ref)
    road_body = {"op": "order", "order_id": order_ref, "amount_cents": body.amount_cents}
    poll = _admin_poll(body.user_id, request_id)
    return await _ask(res, tenant_id, body.user_id, request_id, road_body, poll)


async def _refund(res: Res, tenant_id: str, order_ref: str, order_id: str) -> Any:
    order = await PointsStore(res.store.redis).order(tenant_id, order_ref)
    if order is None:
        status, message = REJECTIONS[rules.ORDER_NOT_FOUND]
        raise ApiError(status, rules.ORDER_NOT_FOUND, f"{message}: '{order_id}'")
    user_id, _ = order
    request_id = rules.refund_request_id(order_ref)
    body = {"op": "refund", "order_id": order_ref}
    return await _ask(res, tenant_id, user_id, request_id, body, _admin_poll(user_id, request_id))


def _admin_poll(user_id: str, request_id: str) -> str:
    return f"/v1/admin/points/accounts/{user_id}/requests/{request_id}"


# -- shoppers -------------------------------------------------------------------


@router.get(
    "/me/points", response_model=AccountView, summary="My points: usable, pending, expiring"
)
async def my_points(
    res: Res, who: Shopper, within_days: int = Query(30, ge=1, le=3650)
) -> AccountView:
    return await _account(res, who.tenant_id, who.user_id, within_days)


@router.get("/me/points/statement", response_model=Statement, summary="My points statement")
async def my_statement(
    res: Res,
    who: Shopper,
    before: int | None = Query(None, ge=0),
    limit: int = Query(50, ge=1, le=500),
) -> Statement:
    return await _statement(res, who.tenant_id, who.user_id, before, limit)


@router.post(
    "/me/points/signins",
    response_model=PointsResult,
    responses={202: {"model": Ticket}},
    summary="Sign in for today's points (a streak earns more)",
)
async def sign_in(res: Res, who: Shopper, body: SigninBody | None = None) -> Any:
    request_id = (body.request_id if body else None) or f"signin:{uuid.uuid4().hex}"
    poll = f"/v1/me/points/requests/{request_id}"
    return await _ask(res, who.tenant_id, who.user_id, request_id, {"op": "signin"}, poll)


@router.get(
    "/me/points/requests/{request_id}",
    response_model=PointsResult,
    responses={202: {"model": Ticket}},
    summary="The outcome of an earlier points request of mine",
)
async def my_request(res: Res, who: Shopper, request_id: str = RequestId) -> Any:
    poll = f"/v1/me/points/requests/{request_id}"
    return await _poll(res, who.tenant_id, who.user_id, request_id, poll)


# -- the merchant ---------------------------------------------------------------


@router.get("/admin/points/rules", response_model=PointsRules, summary="The earning rules")
async def get_rules(res: Res, who: AnyStaff) -> PointsRules:
    return await PointsStore(res.store.redis).rules(who.tenant_id)


@router.put("/admin/points/rules", response_model=PointsRules, summary="Replace the earning rules")
async def put_rules(res: Res, who: Operator, body: PointsRules) -> PointsRules:
    return await PointsStore(res.store.redis).put_rules(who.tenant_id, body, who.key_name)


@router.get("/admin/points/accounts/{user_id}", response_model=AccountView)
async def account(
    res: Res, who: AnyStaff, user_id: str = UserId, within_days: int = Query(30, ge=1, le=3650)
) -> AccountView:
    if not await PointsStore(res.store.redis).known(who.tenant_id, user_id):
        raise ApiError(404, "shopper_not_found", f"shopper '{user_id}' has no points account")
    return await _account(res, who.tenant_id, user_id, within_days)


@router.get("/admin/points/accounts/{user_id}/statement", response_model=Statement)
async def statement(
    res: Res,
    who: AnyStaff,
    user_id: str = UserId,
    before: int | None = Query(None, ge=0),
    limit: int = Query(50, ge=1, le=500),
) -> Statement:
    if not await PointsStore(res.store.redis).known(who.tenant_id, user_id):
        raise ApiError(404, "shopper_not_found", f"shopper '{user_id}' has no points account")
    return await _statement(res, who.tenant_id, user_id, before, limit)


@router.post(
    "/admin/points/grants",
    response_model=PointsResult,
    responses={202: {"model": Ticket}},
    summary="Adjust a shopper's points (positive credits a lot, negative takes usable points)",
)
async def adjust(res: Res, who: Operator, body: Adjustment) -> Any:
    request_id = body.request_id or f"adjust:{uuid.uuid4().hex}"
    road_body = {"op": "adjust", "amount": body.amount, "reason": body.reason}
    poll = _admin_poll(body.user_id, request_id)
    answer = await _ask(res, who.tenant_id, body.user_id, request_id, road_body, poll)
    subject = f"{body.user_id}:{body.amount}"
    await PointsStore(res.store.redis).audit(
        who.tenant_id, who.key_name, "points.adjusted", subject
    )
    return answer


@router.get(
    "/admin/points/accounts/{user_id}/requests/{request_id}",
    response_model=PointsResult,
    responses={202: {"model": Ticket}},
)
async def shopper_request(
    res: Res, who: AnyStaff, user_id: str = UserId, request_id: str = RequestId
) -> Any:
    return await _poll(res, who.tenant_id, user_id, request_id, _admin_poll(user_id, request_id))


@router.post(
    "/admin/points/orders",
    response_model=PointsResult,
    responses={202: {"model": Ticket}},
    summary="An order completed: its rebate (pending for the rules' days; idempotent by order)",
)
async def post_order(res: Res, who: Operator, body: OrderPost) -> Any:
    return await _order(res, who.tenant_id, f"m/{body.order_id}", body)


@router.post(
    "/admin/points/orders/{order_id}/refund",
    response_model=PointsResult,
    responses={202: {"model": Ticket}},
    summary="An order refunded: its rebate reversed (a pending one never becomes usable)",
)
async def refund_order(res: Res, who: Operator, order_id: str = OrderId) -> Any:
    return await _refund(res, who.tenant_id, f"m/{order_id}", order_id)


# -- chances: a shopper's quota account in an activity ------------------------------


class ChancesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chances: int = Field(ge=1, le=MAX_CHANCES)
    request_id: str | None = Field(default=None, pattern=REQUEST_ID_PATTERN)


class ChancesGrant(ChancesBody):
    user_id: str = Field(pattern=USER_ID_PATTERN)


async def _top_up(
    res: Res, tenant_id: str, activity_id: str, user_id: str, request_id: str, body: dict
) -> Any:
    outcome = await res.road.ask(
        QUOTA,
        tenant_id,
        activity_id,
        user_id,
        request_id,
        res.settings.reply_timeout_ms / 1000,
        body,
    )
    if outcome is None:
        key = request_key(user_id, request_id)
        await res.store.mark_pending(tenant_id, activity_id, f"quota:{key}")
        poll = f"/v1/activities/{activity_id}/chances/{request_id}"
        return JSONResponse(Ticket(request_id=request_id, poll=poll).model_dump(), 202)
    return result(outcome)


@router.post(
    "/activities/{activity_id}/chances",
    response_model=PointsResult,
    responses={202: {"model": Ticket}},
    summary="Buy more chances to draw with points (each raises my total, daily and monthly limits)",
)
async def buy_chances(
    res: Res, who: Shopper, body: ChancesBody, activity_id: str = ActivityId
) -> Any:
    request_id = body.request_id or uuid.uuid4().hex
    road_body = {"op": "buy", "chances": body.chances}
    return await _top_up(res, who.tenant_id, activity_id, who.user_id, request_id, road_body)


@router.get(
    "/activities/{activity_id}/chances/{request_id}",
    response_model=PointsResult,
    responses={202: {"model": Ticket}},
    summary="The outcome of an earlier purchase of chances",
)
async def chances_outcome(
    res: Res, who: Shopper, activity_id: str = ActivityId, request_id: str = RequestId
) -> Any:
    key = request_key(who.user_id, request_id)
    decided = await res.store.top_up_outcome(who.tenant_id, activity_id, key)
    if decided is not None:
        return result(decided)
    if await res.store.is_pending(who.tenant_id, activity_id, f"quota:{key}"):
        poll = f"/v1/activities/{activity_id}/chances/{request_id}"
        return JSONResponse(Ticket(request_id=request_id, poll=poll).model_dump(), 202)
    raise ApiError(404, "request_not_found", f"no chances request '{request_id}' from you")


@router.post(
    "/admin/activities/{activity_id}/chances",
    response_model=PointsResult,
    responses={202: {"model": Ticket}},
    summary="Grant a shopper chances (a rebate: raises their limits in the activity)",
)
async def grant_chances(
    res: Res, who: Operator, body: ChancesGrant, activity_id: str = ActivityId
) -> Any:
    if await res.store.activity(who.tenant_id, activity_id) is None:
        raise activity_not_found(activity_id)
    request_id = body.request_id or f"grant:{uuid.uuid4().hex}"
    road_body = {"op": "grant", "chances": body.chances}
    answer = await _top_up(res, who.tenant_id, activity_id, body.user_id, request_id, road_body)
    subject = f"{activity_id}:{body.user_id}:{body.chances}"
    await PointsStore(res.store.redis).audit(
        who.tenant_id, who.key_name, "chances.granted", subject
    )
    return answer


# -- partners (signed) ----------------------------------------------------------


@router.post(
    "/partner/points/orders",
    response_model=PointsResult,
    responses={202: {"model": Ticket}},
    summary="A partner's completed order: the shopper's rebate (signed; idempotent by order)",
)
async def partner_order(res: Res, partner: SignedPartner, request: Request) -> Any:
    body = await wr.parse(request, PartnerOrderPost, "invalid_order")
    ref = f"p/{partner.partner_id}/{body.order_id}"
    return await _order(res, partner.tenant_id, ref, body)


@router.post(
    "/partner/points/orders/{order_id}/refund",
    response_model=PointsResult,
    responses={202: {"model": Ticket}},
    summary="A partner's refunded order: the rebate reversed (signed)",
)
async def partner_refund(
    res: Res, partner: SignedPartner, request: Request, order_id: str = OrderId
) -> Any:
    await wr.parse(request, RefundPost, "invalid_refund")
    ref = f"p/{partner.partner_id}/{order_id}"
    return await _refund(res, partner.tenant_id, ref, order_id)
