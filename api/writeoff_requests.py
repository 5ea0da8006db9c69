"""What every partner write-off endpoint shares: request ids as idempotency
keys, the answers' bytes, the refusal codes, and finding the coupon a request
names (by id, by the code a shopper claimed, or by an offline code no one
claimed yet).

A partner's request id is its idempotency key: the api records it with the
digest of the request's body before asking (``TenantKeys.partner_requests``),
so the same id with the same body is answered with the same outcome, byte for
byte, and with another body is a 409, whichever coupon or order it names.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from api.deps import Res
from api.errors import ApiError, validation_error
from api.partner_auth import Caller
from api.tickets import Ticket
from domain import writeoffs as rules
from domain.claims import REJECT_CODE_NOT_AVAILABLE, Coupon
from domain.codes import normalize
from domain.discount import REASON_MESSAGES
from domain.road import CLAIM
from ledger.codes import CodeStore
from ledger.keys import TemplateKeys
from ledger.partners import PartnerStore
from ledger.templates import TemplateStore

REJECTIONS: dict[str, tuple[int, str]] = {
    rules.REJECT_COUPON_NOT_FOUND: (404, "there is no such coupon in this tenant"),
    rules.REJECT_ALREADY_REDEEMED: (409, "the coupon was already redeemed"),
    rules.REJECT_LOCKED: (409, "the coupon is locked for another order until its lock ends"),
    rules.REJECT_VOIDED: (409, "the coupon was voided by the merchant"),
    rules.REJECT_EXPIRED: (409, "the coupon's validity window has passed"),
    rules.REJECT_NOT_YET_VALID: (409, "the coupon cannot be used yet (see its valid_from)"),
    rules.REJECT_NOT_APPLICABLE: (409, "the order does not qualify for this coupon"),
    rules.REJECT_BUDGET: (409, "a discount budget this redemption spends from is used up"),
    rules.REJECT_NOT_REDEEMED: (409, "this coupon was not redeemed by you for this order"),
    rules.REJECT_NOT_LOCKED: (409, "this coupon is not locked by you for this order"),
    rules.REJECT_LOCK_EXPIRED: (409, "the lock ended before the confirm: lock the coupon again"),
    rules.REJECT_REFUND_EXCEEDS_ORDER: (
        409,
        "the refund names more of an item (or more shipping) than the order has left",
    ),
    rules.REJECT_ORDER_UNKNOWN: (
        409,
        "this coupon was redeemed before order lines were kept: refund the whole order",
    ),
}

BUDGET_NAMES: dict[str, str] = {
    "template": "the coupon's total discount budget",
    "template_day": "the coupon's discount budget for today (UTC)",
    "partner": "your total discount budget",
    "partner_day": "your discount budget for today (UTC)",
    "partner_redemptions": "your total number of redemptions",
    "partner_day_redemptions": "your number of redemptions for today (UTC)",
}

# The claim of an offline code a till presents: one request per code and till, so
# a retry asks the same claim (decided once) and two tills race fairly.
OFFLINE_HOLDER = "offline-{partner_id}"


def dumps(body: Any, status: int = 200) -> Response:
    # orjson, sorted keys: the same outcome gives the same bytes every time.
    return Response(
        orjson.dumps(body, option=orjson.OPT_SORT_KEYS),
        status_code=status,
        media_type="application/json",
    )


def ticket(request_id: str, poll: str) -> JSONResponse:
    return JSONResponse(Ticket(request_id=request_id, poll=poll).model_dump(), 202)


def refusal(outcome: dict[str, Any]) -> ApiError:
    """A refused write-off's 4xx, its detail (the discount engine's reason or the
    budget that is spent) spelled out."""
    reason, detail = outcome["reason"], outcome["detail"]
    status, message = REJECTIONS.get(reason, (409, "the write-off was refused"))
    details: dict[str, Any] = {"request_id": outcome["request_id"]}
    if detail:
        details["why"] = detail
        why = BUDGET_NAMES.get(detail) or REASON_MESSAGES.get(detail, detail)
        message = f"{message}: {why}"
    return ApiError(status, reason, message, details)


def reused(request_id: str) -> ApiError:
    return ApiError(
        409,
        "request_id_reused",
        f"request_id '{request_id}' was already used with another body; "
        "a retry must send the same body, a new request a new request_id",
    )


async def parse(request: Request, model: type[BaseModel], code: str) -> Any:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise validation_error(code, exc.errors()) from exc


async def remember(
    res: Res, partner: Caller, request_id: str, entry: dict[str, Any]
) -> dict[str, Any]:
    """Record what a request id stands for, unless it already stands for
    something: then that (the caller compares ops and digests)."""
    store = PartnerStore(res.store.redis)
    raw = orjson.dumps(entry)
    known = await store.remember_request(partner.tenant_id, partner.partner_id, request_id, raw)
    return entry if known == raw else orjson.loads(known)


async def recalled(res: Res, partner: Caller, request_id: str) -> dict[str, Any] | None:
    store = PartnerStore(res.store.redis)
    raw = await store.recalled_request(partner.tenant_id, partner.partner_id, request_id)
    return orjson.loads(raw) if raw else None


async def decided(res: Res, tenant_id: str, template_id: str, key: str) -> dict | None:
    raw = await res.store.redis.hget(TemplateKeys(tenant_id, template_id).writeoffs, key)
    return orjson.loads(raw) if raw else None


def _not_found() -> ApiError:
    status, message = REJECTIONS[rules.REJECT_COUPON_NOT_FOUND]
    return ApiError(status, rules.REJECT_COUPON_NOT_FOUND, message)


async def find_coupon(res: Res, partner: Caller, coupon_id: str | None, code: str | None) -> Coupon:
    """The coupon a request names. A code no shopper claimed (an offline code on a
    receipt or voucher) is bound to a coupon first, on the claim road like any
    code claim, held by the till's partner (``OFFLINE_HOLDER``): the template's
    rules and stock apply, and a code is bound once however many tills race."""
    tenant_id = partner.tenant_id
    if code is not None:
        codes = CodeStore(res.store.redis)
        canonical = normalize(code)
        record = await codes.code(tenant_id, canonical)
        if record is None:
            raise ApiError(404, "code_not_found", "there is no such coupon code in this tenant")
        if record.state == "available":
            await _bind_offline(res, partner, canonical, record.batch_id)
            record = await codes.code(tenant_id, canonical)
        if record is None or record.state not in ("assigned", "redeemed") or not record.coupon_id:
            state = record.state if record else "gone"
            raise ApiError(
                409,
                "code_not_available",
                f"code '{code}' is {state}: it stands for no coupon that can be redeemed",
            )
        coupon_id = record.coupon_id
    coupon = await TemplateStore(res.store.redis).coupon(tenant_id, coupon_id or "")
    if coupon is None:
        raise _not_found()
    return coupon


async def _bind_offline(res: Res, partner: Caller, code: str, batch_id: str) -> None:
    batch = await CodeStore(res.store.redis).batch(partner.tenant_id, batch_id)
    if batch is None:
        raise ApiError(404, "code_not_found", "there is no such coupon code in this tenant")
    holder = OFFLINE_HOLDER.format(partner_id=partner.partner_id)
    request_id = "offline-" + hashlib.sha256(code.encode()).hexdigest()[:40]
    outcome = await res.road.ask(
        CLAIM,
        partner.tenant_id,
        batch.template_id,
        holder,
        request_id,
        res.settings.reply_timeout_ms / 1000,
        {"code": code, "batch": batch_id, "grant": "offline"},
    )
    if outcome is None:
        raise ApiError(
            409,
            "code_binding_pending",
            "the code is being bound to its coupon; send the same request again",
        )
    # Refused because another till or a shopper bound it first: the caller reads
    # the code again and redeems that coupon. Any other refusal is the template's.
    if outcome["status"] == "rejected" and outcome["reason"] != REJECT_CODE_NOT_AVAILABLE:
        raise ApiError(
            409,
            "code_not_redeemable",
            f"this code's coupon cannot be issued now ({outcome['reason']})",
            {"why": outcome["reason"]},
        )
