"""Operator endpoints: configure activities, drive their lifecycle, add stock, grant points."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import AnyStaff, Operator, Res
from api.errors import ApiError, activity_not_found, validation_error
from api.visibility import sees, tenant_wide
from domain import lifecycle
from domain.activity import (
    Activity,
    ActivityKind,
    ActivityStatus,
    Envelopes,
    Limits,
    Prize,
    Rules,
    Theme,
)
from domain.coupons import CouponTemplate
from domain.events import now_ms
from domain.ids import ID_PATTERN
from ledger.points import PointsStore
from ledger.store import Principal, VersionConflict
from ledger.templates import TemplateStore

router = APIRouter(prefix="/v1/admin", tags=["operator"])
ActivityId = Path(pattern=ID_PATTERN)


class ActivityCreate(BaseModel):
    """A new activity; it starts as a draft."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, pattern=ID_PATTERN, description="generated when absent")
    kind: ActivityKind
    name: str
    starts_at: int | None = None
    ends_at: int | None = None
    prizes: list[Prize] = []
    fallback_prize_id: str | None = None
    limits: Limits = Limits()
    rules: Rules = Rules()
    envelopes: Envelopes | None = None
    templates: list[str] = Field(default=[], description="claim / flash_sale: template ids")
    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="the calendar of daily and monthly limits (IANA); the tenant's "
        "(its points rules' expiry.timezone) when absent",
    )
    institution_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="the institution (branch) whose scoped analyst keys see this activity",
    )
    theme: Theme | None = Field(
        default=None, description="the shopper page's colours and banner image"
    )


class ActivityPatch(BaseModel):
    """Fields to change; a live activity only allows name, ends_at, institution_id
    and theme (null: back to the kind's default look)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    starts_at: int | None = None
    ends_at: int | None = None
    prizes: list[Prize] | None = None
    fallback_prize_id: str | None = None
    limits: Limits | None = None
    rules: Rules | None = None
    envelopes: Envelopes | None = None
    templates: list[str] | None = None
    timezone: str | None = Field(default=None, max_length=64)
    institution_id: str | None = Field(default=None, pattern=ID_PATTERN)
    theme: Theme | None = None


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: ActivityStatus


class StockAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prize_id: str = Field(pattern=ID_PATTERN)
    add: int = Field(gt=0, le=1_000_000_000)


class ActivityAdminView(BaseModel):
    activity: Activity
    effective_status: str
    stock_left: dict[str, int]


def _invalid(exc: ValidationError) -> ApiError:
    return validation_error("invalid_activity", exc.errors(), whole="activity")


@contextmanager
def _lifecycle_conflicts() -> Iterator[None]:
    """What the activity's state forbids is a 409 with the lifecycle's own code."""
    try:
        yield
    except lifecycle.LifecycleError as exc:
        raise ApiError(409, exc.code, str(exc)) from exc


async def _check_templates(res: Res, activity: Activity) -> None:
    """A coupon prize issues from, and a coupon page offers, templates of the
    tenant: they must exist (a misspelt id would otherwise win or offer shoppers
    nothing, silently)."""
    named = [
        (("body", "prizes", i, "coupon_template"), p.coupon_template)
        for i, p in enumerate(activity.prizes)
        if p.coupon_template
    ] + [(("body", "templates", i), t) for i, t in enumerate(activity.templates)]
    if not named:
        return
    found = await TemplateStore(res.store.redis).templates_by_id(
        activity.tenant_id, sorted({t for _, t in named})
    )
    problems = [
        {"loc": loc, "msg": f"no coupon template '{t}' in your tenant; create it first"}
        for loc, t in named
        if t not in found
    ]
    if problems:
        raise validation_error("unknown_coupon_template", problems)
    if activity.kind == "flash_sale":
        _check_sale_opening(activity, found)


def _check_sale_opening(sale: Activity, templates: dict[str, CouponTemplate]) -> None:
    """A flash sale opens at its second: the actor enforces each template's
    claim_opens_at, so none may open before the sale does."""
    problems = [
        {
            "loc": ("body", "templates", i),
            "msg": f"template '{t}' opens claims before the sale (claim_opens_at "
            f"{templates[t].claim_opens_at}, starts_at {sale.starts_at}); set its "
            "claim_opens_at to the sale's starts_at or later",
        }
        for i, t in enumerate(sale.templates)
        if (templates[t].claim_opens_at or 0) < (sale.starts_at or 0)
    ]
    if problems:
        raise validation_error("claims_open_before_sale", problems)


async def _load(res: Res, who: Principal, activity_id: str) -> Activity:
    activity = await res.store.activity(who.tenant_id, activity_id)
    # Another institution's activity is as absent as a missing one to a scoped key.
    if activity is None or not sees(who, activity.institution_id):
        raise activity_not_found(activity_id)
    return activity


async def _view(res: Res, activity: Activity) -> ActivityAdminView:
    return ActivityAdminView(
        activity=activity,
        effective_status=activity.effective_status(now_ms()),
        stock_left=await res.store.stock_left(activity.tenant_id, activity.id),
    )


async def _replace(
    res: Res,
    who: Principal,
    before: Activity,
    after: Activity,
    action: str,
    stock_added: tuple[str, int] | None = None,
    stock_reset: bool = False,
) -> ActivityAdminView:
    try:
        await res.store.replace_activity(
            before, after, who.key_name, action, stock_added, stock_reset
        )
    except VersionConflict as exc:
        raise ApiError(
            409, "concurrent_change", "the activity changed meanwhile; reload and retry"
        ) from exc
    return await _view(res, after)


@router.post("/activities", status_code=201, response_model=ActivityAdminView)
async def create_activity(res: Res, who: Operator, body: ActivityCreate) -> ActivityAdminView:
    fields: dict[str, Any] = body.model_dump()
    fields["id"] = body.id or f"act-{uuid.uuid4().hex[:12]}"
    if body.timezone is None:  # the tenant's calendar, as its points rules keep it
        fields["timezone"] = (
            await PointsStore(res.store.redis).rules(who.tenant_id)
        ).expiry.timezone
    try:
        activity = Activity(**fields, tenant_id=who.tenant_id, status="draft")
    except ValidationError as exc:
        raise _invalid(exc) from exc
    await _check_templates(res, activity)
    if not await res.store.create_activity(activity, who.key_name):
        raise ApiError(409, "activity_exists", f"activity '{activity.id}' already exists")
    return await _view(res, activity)


@router.get("/activities", response_model=list[ActivityAdminView])
async def list_activities(res: Res, who: AnyStaff) -> list[ActivityAdminView]:
    found = await res.store.activities(who.tenant_id)
    return [await _view(res, a) for a in found if sees(who, a.institution_id)]


@router.get("/activities/{activity_id}", response_model=ActivityAdminView)
async def get_activity(res: Res, who: AnyStaff, activity_id: str = ActivityId) -> ActivityAdminView:
    return await _view(res, await _load(res, who, activity_id))


@router.patch("/activities/{activity_id}", response_model=ActivityAdminView)
async def edit_activity(
    res: Res, who: Operator, body: ActivityPatch, activity_id: str = ActivityId
) -> ActivityAdminView:
    before = await _load(res, who, activity_id)
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise ApiError(422, "nothing_to_change", "send at least one field to change")
    try:
        with _lifecycle_conflicts():
            after = lifecycle.edit(before, changes, now_ms())
    except ValidationError as exc:
        raise _invalid(exc) from exc
    await _check_templates(res, after)
    # Before the activity opens no draw has happened: the ledger's stock follows the edit.
    reset = lifecycle.not_started(before, now_ms())
    return await _replace(res, who, before, after, "activity.edited", stock_reset=reset)


@router.post("/activities/{activity_id}/transitions", response_model=ActivityAdminView)
async def change_status(
    res: Res, who: Operator, body: Transition, activity_id: str = ActivityId
) -> ActivityAdminView:
    before = await _load(res, who, activity_id)
    with _lifecycle_conflicts():
        after = lifecycle.transition(before, body.to, now_ms())
    return await _replace(res, who, before, after, f"activity.{body.to}")


@router.post("/activities/{activity_id}/stock", response_model=ActivityAdminView)
async def add_stock(
    res: Res, who: Operator, body: StockAdd, activity_id: str = ActivityId
) -> ActivityAdminView:
    before = await _load(res, who, activity_id)
    with _lifecycle_conflicts():
        after = lifecycle.add_stock(before, body.prize_id, body.add, now_ms())
    return await _replace(
        res, who, before, after, "activity.stock_added", (body.prize_id, body.add)
    )


@router.get("/audit", summary="Latest configuration changes of my tenant")
async def audit(
    res: Res, who: AnyStaff, limit: int = Query(50, ge=1, le=1000)
) -> list[dict[str, str]]:
    tenant_wide(who, "the audit log")
    return await res.store.audit_log(who.tenant_id, limit)
