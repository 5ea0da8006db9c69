"""Operator endpoints for coupon templates: create, read, edit, drive the
lifecycle (draft → running ⇄ paused → ended) and add stock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import AnyStaff, Operator, Res
from api.errors import ApiError, validation_error
from api.visibility import sees
from domain import template_lifecycle as lifecycle
from domain.coupons import CouponTemplate
from domain.ids import ID_PATTERN
from domain.lifecycle import LifecycleError
from ledger.channels import ChannelStore
from ledger.store import Principal, VersionConflict
from ledger.templates import TemplateStore

router = APIRouter(prefix="/v1/admin/templates", tags=["operator"])
TemplateId = Path(pattern=ID_PATTERN)

# A template's fields as in the CouponTemplate schema (a create may leave out
# ``id``; an edit sends only what changes). Taken as a plain object and
# validated as a template, so that every problem, nested or about the whole
# template, is one ``invalid_template`` naming its field.
TemplateFields = Annotated[
    dict[str, Any], Body(description="fields of CouponTemplate (see its schema)")
]
# What the server sets on a new template; a create that sends one is refused.
SERVER_SET = ("tenant_id", "status", "version")


class StockAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: int = Field(gt=0, le=1_000_000_000)


class TemplateView(BaseModel):
    template: CouponTemplate
    stock_left: int | None  # None: unlimited stock
    issued: int  # coupons issued by claims so far


async def _templates(res: Res) -> TemplateStore:
    return TemplateStore(res.store.redis)


Templates = Annotated[TemplateStore, Depends(_templates)]


def _invalid(exc: ValidationError) -> ApiError:
    return validation_error("invalid_template", exc.errors(), whole="template")


@contextmanager
def _refusals() -> Iterator[None]:
    """What the template's state forbids is a 409 with the lifecycle's own code;
    an invalid result a 422 naming the field."""
    try:
        yield
    except LifecycleError as exc:
        raise ApiError(409, exc.code, str(exc)) from exc
    except ValidationError as exc:
        raise _invalid(exc) from exc


async def _load(store: TemplateStore, who: Principal, template_id: str) -> CouponTemplate:
    template = await store.template(who.tenant_id, template_id)
    if template is None or not sees(who, template.institution_id):
        # Also what another tenant's or institution's template looks like: the same 404.
        raise ApiError(404, "template_not_found", f"no template '{template_id}' in your tenant")
    return template


async def _check_channel(store: TemplateStore, template: CouponTemplate) -> None:
    link = template.channel
    if link is None:
        return
    channel = await ChannelStore(store.redis).channel(link.channel_id)
    if channel is None or channel.tenant_id != template.tenant_id:
        raise ApiError(
            422,
            "channel_not_found",
            f"channel.channel_id: no channel '{link.channel_id}' in your tenant; "
            "register it first (POST /v1/admin/channels)",
        )


async def _views(store: TemplateStore, templates: list[CouponTemplate]) -> list[TemplateView]:
    if not templates:
        return []
    counters = await store.counters(templates[0].tenant_id, [t.id for t in templates])
    return [
        TemplateView(template=t, stock_left=c.left, issued=c.issued)
        for t, c in zip(templates, counters, strict=True)
    ]


async def _replace(
    store: TemplateStore,
    who: Principal,
    before: CouponTemplate,
    after: CouponTemplate,
    action: str,
    stock_added: int | None = None,
    stock_reset: bool = False,
) -> TemplateView:
    try:
        await store.replace(before, after, who.key_name, action, stock_added, stock_reset)
    except VersionConflict as exc:
        raise ApiError(
            409, "concurrent_change", "the template changed meanwhile; reload it and retry"
        ) from exc
    return (await _views(store, [after]))[0]


@router.post("", status_code=201, response_model=TemplateView)
async def create_template(store: Templates, who: Operator, body: TemplateFields) -> TemplateView:
    """A new template; it starts as a draft (``id`` is generated when absent)."""
    sent = [name for name in SERVER_SET if name in body]
    if sent:
        problems = [{"loc": (name,), "msg": "set by the server; leave it out"} for name in sent]
        raise validation_error("invalid_template", problems)
    fields = {**body, "id": body.get("id") or f"tpl-{uuid.uuid4().hex[:12]}"}
    try:
        template = CouponTemplate.model_validate({**fields, "tenant_id": who.tenant_id})
    except ValidationError as exc:
        raise _invalid(exc) from exc
    await _check_channel(store, template)
    if not await store.create(template, who.key_name):
        raise ApiError(409, "template_exists", f"template '{template.id}' already exists")
    return (await _views(store, [template]))[0]


@router.get("", response_model=list[TemplateView])
async def list_templates(store: Templates, who: AnyStaff) -> list[TemplateView]:
    found = await store.templates(who.tenant_id)
    return await _views(store, [t for t in found if sees(who, t.institution_id)])


@router.get("/{template_id}", response_model=TemplateView)
async def get_template(
    store: Templates, who: AnyStaff, template_id: str = TemplateId
) -> TemplateView:
    return (await _views(store, [await _load(store, who, template_id)]))[0]


@router.patch("/{template_id}", response_model=TemplateView)
async def edit_template(
    store: Templates, who: Operator, body: TemplateFields, template_id: str = TemplateId
) -> TemplateView:
    """Fields to change (each replaces its whole value); once the template has
    run, only name, description and claim_closes_at."""
    before = await _load(store, who, template_id)
    if not body:
        raise ApiError(422, "nothing_to_change", "send at least one field to change")
    with _refusals():
        after = lifecycle.edit(before, body)
    await _check_channel(store, after)
    # A draft never issued a coupon: the ledger's stock follows the edit.
    reset = lifecycle.never_ran(before)
    return await _replace(store, who, before, after, "template.edited", stock_reset=reset)


# The audit log's action of each verb.
VERB_ACTIONS: dict[lifecycle.Verb, str] = {
    "start": "template.started",
    "pause": "template.paused",
    "resume": "template.resumed",
    "end": "template.ended",
}


async def _act(
    store: TemplateStore, who: Principal, template_id: str, verb: lifecycle.Verb
) -> TemplateView:
    before = await _load(store, who, template_id)
    with _refusals():
        after = lifecycle.act(before, verb)
    return await _replace(store, who, before, after, VERB_ACTIONS[verb])


@router.post("/{template_id}/start", response_model=TemplateView)
async def start_template(
    store: Templates, who: Operator, template_id: str = TemplateId
) -> TemplateView:
    """A draft goes running: shoppers may claim from now (within its claim window)."""
    return await _act(store, who, template_id, "start")


@router.post("/{template_id}/pause", response_model=TemplateView)
async def pause_template(
    store: Templates, who: Operator, template_id: str = TemplateId
) -> TemplateView:
    """Claims are refused until resumed; coupons already held stay usable."""
    return await _act(store, who, template_id, "pause")


@router.post("/{template_id}/resume", response_model=TemplateView)
async def resume_template(
    store: Templates, who: Operator, template_id: str = TemplateId
) -> TemplateView:
    """A paused template goes running again."""
    return await _act(store, who, template_id, "resume")


@router.post("/{template_id}/end", response_model=TemplateView)
async def end_template(
    store: Templates, who: Operator, template_id: str = TemplateId
) -> TemplateView:
    """No more claims, ever; coupons already held stay usable for their window."""
    return await _act(store, who, template_id, "end")


@router.post("/{template_id}/stock", response_model=TemplateView)
async def add_stock(
    store: Templates, who: Operator, body: StockAdd, template_id: str = TemplateId
) -> TemplateView:
    """More coupons to issue (``limits.stock`` grows by ``amount``)."""
    before = await _load(store, who, template_id)
    with _refusals():
        after = lifecycle.add_stock(before, body.amount)
    return await _replace(store, who, before, after, "template.stock_added", body.amount)
