"""Partner endpoints that act on an order's coupons: confirm the coupons locked
for it (payment went through), release them (checkout abandoned), or reverse
the coupons redeemed for it on a full or partial refund. Every request is
signed (api/partner_auth.py).

One partner request acts on every coupon of the order it found then (a retry
acts on the same ones): each coupon is its own request on its template's road
(``per_coupon_id``), so coupons of several templates are decided by their own
actors, each exactly once.
"""

from __future__ import annotations

import asyncio
import hashlib
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
from domain.claims import Coupon
from domain.events import request_key
from domain.ids import REQUEST_ID_PATTERN
from domain.road import WRITEOFF
from ledger.keys import TenantKeys
from ledger.templates import TemplateStore

router = APIRouter(prefix="/v1/partner", tags=["partner"])

RequestId = Path(pattern=REQUEST_ID_PATTERN)

# op -> (the request model, its error code, the path, the coupon state it acts on,
# what "none found" says, the sign that turns an event's discount into the answer's)
_OPS: dict[str, tuple[type[rules.OrderRequest], str, str, str, str, int]] = {
    "confirm": (
        rules.OrderRequest,
        "invalid_confirmation",
        "confirmations",
        "locked",
        "you hold no lock on a coupon for order",
        1,
    ),
    "release": (
        rules.OrderRequest,
        "invalid_release",
        "releases",
        "locked",
        "you hold no lock on a coupon for order",
        -1,
    ),
    "reverse": (
        rules.ReversalRequest,
        "invalid_reversal",
        "reversals",
        "used",
        "you redeemed no coupon for order",
        -1,
    ),
}


class OrderCoupon(BaseModel):
    coupon_id: str
    status: str  # redeemed | released | reversed | partially_reversed | rejected
    reason: str
    # confirm: the discount granted; release and reversal: the discount given back
    # to the budgets (0 when refused)
    discount_cents: int


class OrderResult(BaseModel):
    request_id: str
    order_id: str
    coupons: list[OrderCoupon]
    discount_cents: int  # the coupons' total


def per_coupon_id(op: str, request_id: str, coupon_id: str) -> str:
    """The request id of one coupon's part of an order request."""
    prefix = {"reverse": "v", "confirm": "c", "release": "r"}[op]
    return f"{prefix}-" + hashlib.sha256(f"{request_id}\n{coupon_id}".encode()).hexdigest()[:40]


async def _act(res: Res, partner: SignedPartner, request: Request, op: str) -> Response:
    model, code, _, state, none, _ = _OPS[op]
    body = await wr.parse(request, model, code)
    digest = rules.body_digest(rules.canonical(body))
    orders = TenantKeys(partner.tenant_id).orders
    ids = await res.store.redis.hget(orders, f"{partner.partner_id}:{body.order_id}")
    store = TemplateStore(res.store.redis)
    found = await store.coupons(partner.tenant_id, ids.decode().split("\n") if ids else [])
    coupon_ids = [c.coupon_id for c in found if c.state == state]
    entry = {"op": op, "digest": digest, "order": body.order_id, "coupons": coupon_ids}
    if op == "reverse":
        entry["refund"] = body.model_dump(mode="json", include={"items", "shipping_cents"})
    known = await wr.remember(res, partner, body.request_id, entry)
    if known["digest"] != digest or known["op"] != op:
        raise wr.reused(body.request_id)
    if not known["coupons"]:  # a retry acts on what the first request found
        raise ApiError(404, "order_not_found", f"{none} '{body.order_id}'")
    return await _answer(res, partner, body.request_id, known, ask=True)


async def _answer(
    res: Res, partner: SignedPartner, request_id: str, known: dict[str, Any], ask: bool
) -> Response:
    op, order_id = known["op"], known["order"]
    coupons = await TemplateStore(res.store.redis).coupons(partner.tenant_id, known["coupons"])
    timeout_s = res.settings.reply_timeout_ms / 1000

    async def one(coupon: Coupon) -> dict[str, Any] | None:
        rid = per_coupon_id(op, request_id, coupon.coupon_id)
        key = request_key(partner.partner_id, rid)
        done = await wr.decided(res, partner.tenant_id, coupon.template_id, key)
        if done is not None or not ask:
            return done
        body = {
            "op": op,
            "coupon": coupon.coupon_id,
            "order_id": order_id,
            **known.get("refund", {}),
        }
        return await res.road.ask(
            WRITEOFF,
            partner.tenant_id,
            coupon.template_id,
            partner.partner_id,
            rid,
            timeout_s,
            body,
        )

    outcomes = await asyncio.gather(*(one(c) for c in coupons))
    if any(o is None for o in outcomes):
        return wr.ticket(request_id, f"/v1/partner/{_OPS[op][2]}/{request_id}")
    sign = _OPS[op][5]
    items = [
        OrderCoupon(
            coupon_id=o["coupon_id"],
            status=o["status"],
            reason=o["reason"],
            discount_cents=sign * o["discount_cents"],
        )
        for o in outcomes
        if o is not None
    ]
    result = OrderResult(
        request_id=request_id,
        order_id=order_id,
        coupons=sorted(items, key=lambda i: i.coupon_id),
        discount_cents=sum(i.discount_cents for i in items),
    )
    return wr.dumps(result.model_dump())


async def _outcome(res: Res, partner: SignedPartner, request_id: str, op: str) -> Response:
    known = await wr.recalled(res, partner, request_id)
    if known is None or known["op"] != op or not known["coupons"]:
        raise ApiError(404, "request_not_found", f"no {op} with request_id '{request_id}'")
    return await _answer(res, partner, request_id, known, ask=False)


_SUMMARIES = {
    "confirm": "The order is paid: redeem every coupon you locked for it",
    "release": "The checkout was abandoned: release every coupon you locked for the order",
    "reverse": "The order was refunded (all of it, or the lines named): its coupons come back",
}


def _routes(op: str) -> None:
    """``POST /v1/partner/<path>`` and its poll ``GET …/<path>/{request_id}``."""
    path = _OPS[op][2]

    async def act(res: Res, partner: SignedPartner, request: Request) -> Response:
        return await _act(res, partner, request, op)

    async def poll(res: Res, partner: SignedPartner, request_id: str = RequestId) -> Response:
        return await _outcome(res, partner, request_id, op)

    responses: dict[int | str, dict[str, Any]] = {202: {"model": Ticket}}
    router.add_api_route(
        f"/{path}",
        act,
        methods=["POST"],
        response_model=OrderResult,
        responses=responses,
        summary=_SUMMARIES[op],
        name=op,
    )
    router.add_api_route(
        f"/{path}/{{request_id}}",
        poll,
        methods=["GET"],
        response_model=OrderResult,
        responses=responses,
        summary=f"The outcome of an earlier {path[:-1]} (202 while pending)",
        name=f"{op}_outcome",
    )


for _op in _OPS:
    _routes(_op)
