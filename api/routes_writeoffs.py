"""Partner endpoints for write-off: redeem a coupon against an order, reverse
the order's redemptions on a refund. Every request is signed (api/partner_auth.py).

Each redemption or reversal takes the road (kind ``writeoff``, keyed by the
coupon's template) and is decided by the template's actor. A partner's request
id is its idempotency key: the api records it with the digest of the request's
body before asking (``TenantKeys.partner_requests``), so the same id with the
same body is answered with the same outcome, byte for byte, and with another
body is a 409, whichever template or coupon the other body names.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from api.deps import Res
from api.errors import ApiError, validation_error
from api.partner_auth import SignedPartner
from api.tickets import Ticket
from domain import writeoffs as rules
from domain.claims import Coupon
from domain.codes import normalize
from domain.discount import REASON_MESSAGES
from domain.events import request_key
from domain.ids import REQUEST_ID_PATTERN
from domain.road import WRITEOFF
from ledger.codes import CodeStore
from ledger.keys import TemplateKeys, TenantKeys
from ledger.templates import TemplateStore

router = APIRouter(prefix="/v1/partner", tags=["partner"])

RequestId = Path(pattern=REQUEST_ID_PATTERN)

REJECTIONS: dict[str, tuple[int, str]] = {
    rules.REJECT_COUPON_NOT_FOUND: (404, "there is no such coupon in this tenant"),
    rules.REJECT_ALREADY_REDEEMED: (409, "the coupon was already redeemed"),
    rules.REJECT_VOIDED: (409, "the coupon was voided by the merchant"),
    rules.REJECT_EXPIRED: (409, "the coupon's validity window has passed"),
    rules.REJECT_NOT_YET_VALID: (409, "the coupon cannot be used yet (see its valid_from)"),
    rules.REJECT_NOT_APPLICABLE: (409, "the order does not qualify for this coupon"),
    rules.REJECT_BUDGET: (409, "the coupon's discount budget is spent"),
    rules.REJECT_NOT_REDEEMED: (409, "this coupon was not redeemed by you for this order"),
}


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


class ReversedCoupon(BaseModel):
    coupon_id: str
    status: str  # reversed | rejected
    reason: str
    discount_cents: int  # the discount given back to the budgets (0 when refused)


class ReversalResult(BaseModel):
    request_id: str
    order_id: str
    coupons: list[ReversedCoupon]
    discount_cents: int  # total given back


def _dumps(body: Any, status: int = 200) -> Response:
    # orjson, sorted keys: the same outcome gives the same bytes every time.
    return Response(
        orjson.dumps(body, option=orjson.OPT_SORT_KEYS),
        status_code=status,
        media_type="application/json",
    )


def _redeemed(outcome: dict[str, Any]) -> Response:
    """The partner's view of a redemption outcome (a refusal raises its 4xx)."""
    if outcome["status"] == "rejected":
        reason = outcome["reason"]
        status, message = REJECTIONS.get(reason, (409, "the redemption was refused"))
        details: dict[str, Any] = {"request_id": outcome["request_id"]}
        if outcome["detail"]:
            details["why"] = outcome["detail"]
            message = f"{message}: {REASON_MESSAGES.get(outcome['detail'], outcome['detail'])}"
        raise ApiError(status, reason, message, details)
    result = RedemptionResult(
        request_id=outcome["request_id"],
        coupon_id=outcome["coupon_id"],
        template_id=outcome["template_id"],
        status=outcome["status"],
        order_id=outcome["order_id"],
        order_cents=outcome["order_cents"],
        discount_cents=outcome["discount_cents"],
        payable_cents=outcome["order_cents"] - outcome["discount_cents"],
        decided_at=outcome["occurred_at"],
    )
    return _dumps(result.model_dump())


def _reused(request_id: str) -> ApiError:
    return ApiError(
        409,
        "request_id_reused",
        f"request_id '{request_id}' was already used with another body; "
        "a retry must send the same body, a new request a new request_id",
    )


async def _parse(request: Request, model: type[BaseModel], code: str) -> Any:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise validation_error(code, exc.errors()) from exc


async def _remember(
    res: Res, partner: SignedPartner, request_id: str, entry: dict[str, Any]
) -> dict[str, Any]:
    """Record what a request id stands for, unless it already stands for
    something: then that (the caller compares digests)."""
    index = TenantKeys(partner.tenant_id).partner_requests
    field = f"{partner.partner_id}:{request_id}"
    redis = res.store.redis
    if await redis.hsetnx(index, field, orjson.dumps(entry)):
        return entry
    return orjson.loads(await redis.hget(index, field))


async def _recalled(res: Res, partner: SignedPartner, request_id: str) -> dict[str, Any] | None:
    index = TenantKeys(partner.tenant_id).partner_requests
    raw = await res.store.redis.hget(index, f"{partner.partner_id}:{request_id}")
    return orjson.loads(raw) if raw else None


async def _find_coupon(res: Res, tenant_id: str, body: rules.RedemptionRequest) -> Coupon:
    coupon_id = body.coupon_id
    if body.code is not None:
        record = await CodeStore(res.store.redis).code(tenant_id, normalize(body.code))
        if record is None:
            raise ApiError(404, "code_not_found", "there is no such coupon code in this tenant")
        if record.state != "assigned" or not record.coupon_id:
            raise ApiError(
                409,
                "code_not_claimed",
                f"code '{body.code}' is {record.state}: only a code claimed into a "
                "wallet can be redeemed here",
            )
        coupon_id = record.coupon_id
    coupon = await TemplateStore(res.store.redis).coupon(tenant_id, coupon_id or "")
    if coupon is None:
        status, message = REJECTIONS[rules.REJECT_COUPON_NOT_FOUND]
        raise ApiError(status, rules.REJECT_COUPON_NOT_FOUND, message)
    return coupon


async def _decided(res: Res, tenant_id: str, template_id: str, key: str) -> dict | None:
    raw = await res.store.redis.hget(TemplateKeys(tenant_id, template_id).writeoffs, key)
    return orjson.loads(raw) if raw else None


@router.post(
    "/redemptions",
    response_model=RedemptionResult,
    responses={202: {"model": Ticket}},
    summary="Redeem a coupon (by id or code) against an order; the discount is returned",
)
async def redeem(res: Res, partner: SignedPartner, request: Request) -> Response:
    body: rules.RedemptionRequest = await _parse(
        request, rules.RedemptionRequest, "invalid_redemption"
    )
    digest = rules.body_digest(rules.canonical(body))
    coupon = await _find_coupon(res, partner.tenant_id, body)
    entry = {"op": "redeem", "digest": digest, "template": coupon.template_id}
    known = await _remember(res, partner, body.request_id, entry)
    if known["digest"] != digest:
        raise _reused(body.request_id)
    outcome = await res.road.ask(
        WRITEOFF,
        partner.tenant_id,
        coupon.template_id,
        partner.partner_id,
        body.request_id,
        res.settings.reply_timeout_ms / 1000,
        {
            "op": "redeem",
            "coupon": coupon.coupon_id,
            "order": body.order.model_dump(mode="json"),
            "digest": digest,
        },
    )
    if outcome is None:
        poll = f"/v1/partner/redemptions/{body.request_id}"
        return JSONResponse(Ticket(request_id=body.request_id, poll=poll).model_dump(), 202)
    if outcome["digest"] != digest:
        raise _reused(body.request_id)
    return _redeemed(outcome)


@router.get(
    "/redemptions/{request_id}",
    response_model=RedemptionResult,
    responses={202: {"model": Ticket}},
    summary="The outcome of an earlier redemption (202 while pending)",
)
async def redemption_outcome(
    res: Res, partner: SignedPartner, request_id: str = RequestId
) -> Response:
    known = await _recalled(res, partner, request_id)
    if known is None or known["op"] != "redeem":
        raise ApiError(404, "request_not_found", f"no redemption with request_id '{request_id}'")
    key = request_key(partner.partner_id, request_id)
    outcome = await _decided(res, partner.tenant_id, known["template"], key)
    if outcome is None:
        poll = f"/v1/partner/redemptions/{request_id}"
        return JSONResponse(Ticket(request_id=request_id, poll=poll).model_dump(), 202)
    return _redeemed(outcome)


def _reversal_id(request_id: str, coupon_id: str) -> str:
    """The request id of one coupon's reversal: one partner request reverses every
    coupon of the order, each its own request on its template's road."""
    return "v-" + hashlib.sha256(f"{request_id}\n{coupon_id}".encode()).hexdigest()[:40]


@router.post(
    "/reversals",
    response_model=ReversalResult,
    responses={202: {"model": Ticket}},
    summary="The order was refunded: give back every coupon you redeemed for it",
)
async def reverse(res: Res, partner: SignedPartner, request: Request) -> Response:
    body: rules.ReversalRequest = await _parse(request, rules.ReversalRequest, "invalid_reversal")
    digest = rules.body_digest(rules.canonical(body))
    orders = TenantKeys(partner.tenant_id).orders
    ids = await res.store.redis.hget(orders, f"{partner.partner_id}:{body.order_id}")
    coupon_ids = ids.decode().split("\n") if ids else []
    entry = {"op": "reverse", "digest": digest, "order": body.order_id, "coupons": coupon_ids}
    known = await _remember(res, partner, body.request_id, entry)
    if known["digest"] != digest or known["op"] != "reverse":
        raise _reused(body.request_id)
    coupon_ids = known["coupons"]  # a retry reverses what the first request found
    if not coupon_ids:
        raise ApiError(
            404, "order_not_found", f"you redeemed no coupon for order '{body.order_id}'"
        )
    return await _reversal_answer(res, partner, body.request_id, body.order_id, coupon_ids, True)


async def _reversal_answer(
    res: Res,
    partner: SignedPartner,
    request_id: str,
    order_id: str,
    coupon_ids: list[str],
    ask: bool,
) -> Response:
    store = TemplateStore(res.store.redis)
    coupons = [await store.coupon(partner.tenant_id, c) for c in coupon_ids]
    timeout_s = res.settings.reply_timeout_ms / 1000

    async def one(coupon: Coupon) -> dict[str, Any] | None:
        rid = _reversal_id(request_id, coupon.coupon_id)
        key = request_key(partner.partner_id, rid)
        decided = await _decided(res, partner.tenant_id, coupon.template_id, key)
        if decided is not None or not ask:
            return decided
        body = {"op": "reverse", "coupon": coupon.coupon_id, "order_id": order_id}
        return await res.road.ask(
            WRITEOFF,
            partner.tenant_id,
            coupon.template_id,
            partner.partner_id,
            rid,
            timeout_s,
            body,
        )

    outcomes = await asyncio.gather(*(one(c) for c in coupons if c is not None))
    if any(o is None for o in outcomes):
        poll = f"/v1/partner/reversals/{request_id}"
        return JSONResponse(Ticket(request_id=request_id, poll=poll).model_dump(), 202)
    items = [
        ReversedCoupon(
            coupon_id=o["coupon_id"],
            status=o["status"],
            reason=o["reason"],
            discount_cents=-o["discount_cents"],
        )
        for o in outcomes
        if o is not None
    ]
    result = ReversalResult(
        request_id=request_id,
        order_id=order_id,
        coupons=sorted(items, key=lambda i: i.coupon_id),
        discount_cents=sum(i.discount_cents for i in items),
    )
    return _dumps(result.model_dump())


@router.get(
    "/reversals/{request_id}",
    response_model=ReversalResult,
    responses={202: {"model": Ticket}},
    summary="The outcome of an earlier reversal (202 while pending)",
)
async def reversal_outcome(
    res: Res, partner: SignedPartner, request_id: str = RequestId
) -> Response:
    known = await _recalled(res, partner, request_id)
    if known is None or known["op"] != "reverse" or not known["coupons"]:
        raise ApiError(404, "request_not_found", f"no reversal with request_id '{request_id}'")
    return await _reversal_answer(res, partner, request_id, known["order"], known["coupons"], False)
