"""Partner endpoints that write off one coupon against an order: redeem it at
once, or lock it at checkout (confirmed or released later by order, see
api/routes_orders.py). Every request is signed (api/partner_auth.py).

Each takes the road (kind ``writeoff``, keyed by the coupon's template) and is
decided by the template's actor; a request id is the partner's idempotency key
(api/writeoff_requests.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel

from api import writeoff_requests as wr
from api.deps import Res
from api.errors import ApiError
from api.partner_auth import SignedPartner
from api.tickets import Ticket
from domain import writeoffs as rules
from domain.events import request_key
from domain.ids import REQUEST_ID_PATTERN
from domain.road import WRITEOFF

router = APIRouter(prefix="/v1/partner", tags=["partner"])

RequestId = Path(pattern=REQUEST_ID_PATTERN)


class RedemptionResult(BaseModel):
    request_id: str
    coupon_id: str
    template_id: str
    status: str  # redeemed
    order_id: str
    order_cents: int
    discount_cents: int
    payable_cents: int
    decided_at: int


class LockResult(RedemptionResult):
    status: str  # locked
    locked_until: int  # confirm before this (epoch ms), else the lock releases itself


def _answer(outcome: dict[str, Any], ttl_s: int | None) -> Response:
    """The partner's view of a redemption or lock outcome (a refusal raises its 4xx)."""
    if outcome["status"] == "rejected":
        raise wr.refusal(outcome)
    fields = {
        "request_id": outcome["request_id"],
        "coupon_id": outcome["coupon_id"],
        "template_id": outcome["template_id"],
        "status": outcome["status"],
        "order_id": outcome["order_id"],
        "order_cents": outcome["order_cents"],
        "discount_cents": outcome["discount_cents"],
        "payable_cents": outcome["order_cents"] - outcome["discount_cents"],
        "decided_at": outcome["occurred_at"],
    }
    if ttl_s is None:
        return wr.dumps(RedemptionResult(**fields).model_dump())
    locked_until = outcome["occurred_at"] + 1000 * ttl_s  # as domain.writeoffs.decide sets it
    return wr.dumps(LockResult(**fields, locked_until=locked_until).model_dump())


async def write_off(
    res: Res, partner: SignedPartner, body: rules.RedemptionRequest, op: str, poll: str
) -> Response:
    digest = rules.body_digest(rules.canonical(body))
    coupon = await wr.find_coupon(res, partner, body.coupon_id, body.code)
    ttl_s = body.ttl_s if isinstance(body, rules.LockRequest) else None
    entry = {"op": op, "digest": digest, "template": coupon.template_id, "ttl_s": ttl_s}
    known = await wr.remember(res, partner, body.request_id, entry)
    if known["digest"] != digest or known["op"] != op:
        raise wr.reused(body.request_id)
    road_body: dict[str, Any] = {
        "op": op,
        "coupon": coupon.coupon_id,
        "order": body.order.model_dump(mode="json"),
        "digest": digest,
    }
    if ttl_s is not None:
        road_body["ttl_s"] = ttl_s
    outcome = await res.road.ask(
        WRITEOFF,
        partner.tenant_id,
        coupon.template_id,
        partner.partner_id,
        body.request_id,
        res.settings.reply_timeout_ms / 1000,
        road_body,
    )
    if outcome is None:
        return wr.ticket(body.request_id, f"{poll}/{body.request_id}")
    if outcome["digest"] != digest:
        raise wr.reused(body.request_id)
    return _answer(outcome, ttl_s)


async def outcome(res: Res, partner: SignedPartner, request_id: str, op: str, poll: str) -> Any:
    known = await wr.recalled(res, partner, request_id)
    if known is None or known["op"] != op:
        raise ApiError(404, "request_not_found", f"no {op} with request_id '{request_id}'")
    key = request_key(partner.partner_id, request_id)
    outcome = await wr.decided(res, partner.tenant_id, known["template"], key)
    if outcome is None:
        return wr.ticket(request_id, f"{poll}/{request_id}")
    return _answer(outcome, known.get("ttl_s"))


@router.post(
    "/redemptions",
    response_model=RedemptionResult,
    responses={202: {"model": Ticket}},
    summary="Redeem a coupon (by id or code) against an order; the discount is returned",
)
async def redeem(res: Res, partner: SignedPartner, request: Request) -> Response:
    body = await wr.parse(request, rules.RedemptionRequest, "invalid_redemption")
    return await write_off(res, partner, body, "redeem", "/v1/partner/redemptions")


@router.get(
    "/redemptions/{request_id}",
    response_model=RedemptionResult,
    responses={202: {"model": Ticket}},
    summary="The outcome of an earlier redemption (202 while pending)",
)
async def redemption_outcome(
    res: Res, partner: SignedPartner, request_id: str = RequestId
) -> Response:
    return await outcome(res, partner, request_id, "redeem", "/v1/partner/redemptions")


@router.post(
    "/locks",
    response_model=LockResult,
    responses={202: {"model": Ticket}},
    summary="Lock a coupon for an order at checkout (priced, budgets reserved) for ttl_s",
)
async def lock(res: Res, partner: SignedPartner, request: Request) -> Response:
    body = await wr.parse(request, rules.LockRequest, "invalid_lock")
    return await write_off(res, partner, body, "lock", "/v1/partner/locks")


@router.get(
    "/locks/{request_id}",
    response_model=LockResult,
    responses={202: {"model": Ticket}},
    summary="The outcome of an earlier lock (202 while pending)",
)
async def lock_outcome(res: Res, partner: SignedPartner, request_id: str = RequestId) -> Response:
    return await outcome(res, partner, request_id, "lock", "/v1/partner/locks")
