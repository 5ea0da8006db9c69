"""Webhook subscriptions and their delivery logs, twice: for operators under
``/v1/admin/partners/{partner_id}/webhooks`` and, signed, for the partner
itself under ``/v1/partner/webhooks``. Both call the same handlers below.

A subscription's signing secret is shown once, in the creation answer. The
delivery log lists each delivery (newest first) with every attempt: when, the
HTTP status, the error and how long it took; a dead-lettered or delivered one
can be sent again with ``.../redeliver``.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ValidationError

from api import pages
from api.deps import AnyStaff, Operator, Res
from api.errors import ApiError, validation_error
from api.partner_auth import SignedPartner
from domain.events import now_ms
from domain.ids import ID_PATTERN
from domain.webhooks import (
    DELIVERY_STATES,
    MAX_SUBSCRIPTIONS_PER_PARTNER,
    Delivery,
    DeliveryState,
    Subscription,
    SubscriptionFields,
    new_secret,
    new_subscription_id,
)
from ledger.partners import PartnerStore
from ledger.webhooks import WebhookStore

router = APIRouter(prefix="/v1", tags=["webhooks"])

PartnerId = Path(pattern=ID_PATTERN)
WebhookId = Path(pattern=ID_PATTERN)
DeliveryId = Path(pattern=r"^[A-Za-z0-9_.-]{1,128}$")
MAX_PAGE = 200


class SubscriptionView(BaseModel):
    webhook: dict[str, Any]  # the subscription, without its secret
    secret: str | None = None  # at creation only


class DeliveryPage(BaseModel):
    deliveries: list[Delivery]
    next_cursor: str | None  # pass as ?cursor= for the next page; None: the end


async def _store(res: Res) -> WebhookStore:
    return WebhookStore(res.store.redis)


Webhooks = Annotated[WebhookStore, Depends(_store)]


async def _partner_of_tenant(res: Res, tenant_id: str, partner_id: str) -> None:
    if await PartnerStore(res.store.redis).partner(tenant_id, partner_id) is None:
        raise ApiError(404, "partner_not_found", f"no partner '{partner_id}' in your tenant")


async def _found(
    store: WebhookStore, tenant_id: str, partner_id: str, webhook_id: str
) -> Subscription:
    sub = await store.subscription(webhook_id)
    if sub is None or sub.tenant_id != tenant_id or sub.partner_id != partner_id:
        raise ApiError(404, "webhook_not_found", f"no webhook '{webhook_id}' for this partner")
    return sub


async def _create(
    store: WebhookStore, tenant_id: str, partner_id: str, body: Any, who: str
) -> SubscriptionView:
    try:
        fields = SubscriptionFields.model_validate(body)
    except ValidationError as exc:
        raise validation_error("invalid_webhook", exc.errors()) from exc
    if len(await store.of_partner(tenant_id, partner_id)) >= MAX_SUBSCRIPTIONS_PER_PARTNER:
        raise ApiError(
            409,
            "too_many_webhooks",
            f"a partner has at most {MAX_SUBSCRIPTIONS_PER_PARTNER} webhooks; delete one first",
        )
    sub = Subscription(
        **fields.model_dump(),
        id=new_subscription_id(),
        tenant_id=tenant_id,
        partner_id=partner_id,
        created_at=now_ms(),
        secret=new_secret(),
    )
    await store.add(sub, who)
    return SubscriptionView(webhook=sub.public(), secret=sub.secret)


async def _deliveries(
    store: WebhookStore,
    sub: Subscription,
    state: DeliveryState | None,
    cursor: str | None,
    limit: int,
) -> DeliveryPage:
    found, next_cursor = await pages.filtered(
        lambda at, count: store.deliveries(sub.id, at, count),
        (lambda d: d.state == state) if state else None,
        cursor,
        limit,
    )
    return DeliveryPage(deliveries=found, next_cursor=next_cursor)


async def _redeliver(store: WebhookStore, sub: Subscription, delivery_id: str) -> Delivery:
    for _ in range(5):
        found = await store.delivery(delivery_id)
        if found is None or found[1].subscription_id != sub.id:
            raise ApiError(
                404, "delivery_not_found", f"no delivery '{delivery_id}' for webhook '{sub.id}'"
            )
        read, delivery = found
        again = delivery.redelivered(now_ms())
        if await store.replace(read, again, now_ms()):
            return again
    raise ApiError(409, "delivery_busy", "the delivery kept changing while asked; ask again")


State = Annotated[DeliveryState | None, Query(description=f"one of {', '.join(DELIVERY_STATES)}")]
Cursor = Annotated[str | None, Query(max_length=9)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


# -- operators ---------------------------------------------------------------------
@router.post(
    "/admin/partners/{partner_id}/webhooks", status_code=201, response_model=SubscriptionView
)
async def create_webhook(
    res: Res, store: Webhooks, who: Operator, body: dict[str, Any], partner_id: str = PartnerId
) -> SubscriptionView:
    await _partner_of_tenant(res, who.tenant_id, partner_id)
    return await _create(store, who.tenant_id, partner_id, body, who.key_name)


@router.get("/admin/partners/{partner_id}/webhooks")
async def list_webhooks(
    res: Res, store: Webhooks, who: AnyStaff, partner_id: str = PartnerId
) -> list[dict[str, Any]]:
    await _partner_of_tenant(res, who.tenant_id, partner_id)
    return [s.public() for s in await store.of_partner(who.tenant_id, partner_id)]


@router.get("/admin/partners/{partner_id}/webhooks/{webhook_id}")
async def get_webhook(
    store: Webhooks, who: AnyStaff, partner_id: str = PartnerId, webhook_id: str = WebhookId
) -> dict[str, Any]:
    return (await _found(store, who.tenant_id, partner_id, webhook_id)).public()


@router.delete("/admin/partners/{partner_id}/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(
    store: Webhooks, who: Operator, partner_id: str = PartnerId, webhook_id: str = WebhookId
) -> Response:
    sub = await _found(store, who.tenant_id, partner_id, webhook_id)
    await store.remove(sub, who.key_name)
    return Response(status_code=204)


@router.get(
    "/admin/partners/{partner_id}/webhooks/{webhook_id}/deliveries", response_model=DeliveryPage
)
async def list_deliveries(
    store: Webhooks,
    who: AnyStaff,
    state: State = None,
    cursor: Cursor = None,
    limit: Limit = 50,
    partner_id: str = PartnerId,
    webhook_id: str = WebhookId,
) -> DeliveryPage:
    sub = await _found(store, who.tenant_id, partner_id, webhook_id)
    return await _deliveries(store, sub, state, cursor, limit)


@router.post(
    "/admin/partners/{partner_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=Delivery,
)
async def redeliver(
    store: Webhooks,
    who: Operator,
    partner_id: str = PartnerId,
    webhook_id: str = WebhookId,
    delivery_id: str = DeliveryId,
) -> Delivery:
    sub = await _found(store, who.tenant_id, partner_id, webhook_id)
    return await _redeliver(store, sub, delivery_id)


# -- the partner itself, signed -------------------------------------------------------
@router.post("/partner/webhooks", status_code=201, response_model=SubscriptionView)
async def partner_create_webhook(
    store: Webhooks, caller: SignedPartner, request: Request
) -> SubscriptionView:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not JSON: {exc}") from exc
    who = f"partner:{caller.partner_id}"
    return await _create(store, caller.tenant_id, caller.partner_id, body, who)


@router.get("/partner/webhooks")
async def partner_list_webhooks(store: Webhooks, caller: SignedPartner) -> list[dict[str, Any]]:
    return [s.public() for s in await store.of_partner(caller.tenant_id, caller.partner_id)]


@router.delete("/partner/webhooks/{webhook_id}", status_code=204)
async def partner_delete_webhook(
    store: Webhooks, caller: SignedPartner, webhook_id: str = WebhookId
) -> Response:
    sub = await _found(store, caller.tenant_id, caller.partner_id, webhook_id)
    await store.remove(sub, f"partner:{caller.partner_id}")
    return Response(status_code=204)


@router.get("/partner/webhooks/{webhook_id}/deliveries", response_model=DeliveryPage)
async def partner_list_deliveries(
    store: Webhooks,
    caller: SignedPartner,
    state: State = None,
    cursor: Cursor = None,
    limit: Limit = 50,
    webhook_id: str = WebhookId,
) -> DeliveryPage:
    sub = await _found(store, caller.tenant_id, caller.partner_id, webhook_id)
    return await _deliveries(store, sub, state, cursor, limit)


@router.post(
    "/partner/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=Delivery,
)
async def partner_redeliver(
    store: Webhooks,
    caller: SignedPartner,
    webhook_id: str = WebhookId,
    delivery_id: str = DeliveryId,
) -> Delivery:
    sub = await _found(store, caller.tenant_id, caller.partner_id, webhook_id)
    return await _redeliver(store, sub, delivery_id)
