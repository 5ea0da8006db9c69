"""The stats API (staff: admin, operator, analyst), read from ClickHouse through
the streams worker's views (streams/views.py, streams/report_views.py).

Every figure is what the caller's key sees (api/visibility.py): a key scoped to
one institution gets the figures of its activities and templates only; an
activity or template it does not see is the same 404 as a missing one (or
another tenant's); figures that belong to the whole tenant (points, a partner's
budgets) are a 403 for it.

Windows are ``since`` / ``until`` in epoch ms, half-open. A series is aligned on
its step (``since`` rounded down, ``until`` up; a day is a UTC day), defaults to
the last hour / day / 30 days for minute / hour / day steps up to now, and holds
at most MAX_POINTS steps (400 ``range_too_large`` past that).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Final, Literal

import httpx
from fastapi import APIRouter, Path, Query

from api.deps import Res
from api.errors import ApiError, activity_not_found
from api.visibility import Seen, tenant_wide
from domain.activity import Activity
from domain.coupons import CouponTemplate
from domain.events import now_ms
from domain.ids import ID_PATTERN
from domain.partners import Partner
from domain.records import RAW_RETENTION_MS
from domain.series import STEP_MS, Step
from domain.visibility import Visibility
from ledger.channels import ChannelStore
from ledger.partners import PartnerStore
from ledger.templates import TemplateStore

router = APIRouter(prefix="/v1/stats", tags=["stats"])

DEFAULT_SPAN_MS: Final[dict[str, int]] = {
    "minute": 3_600_000,
    "hour": 86_400_000,
    "day": 30 * 86_400_000,
}
# A day of minutes, 60 days of hours, ~4 years of days: what one chart can show.
MAX_POINTS: Final = 1440
# Epoch ms up to the year 2286 (DateTime64(3) holds to 2299).
MAX_MS: Final = 10**13

Since = Annotated[int | None, Query(ge=0, le=MAX_MS, description="epoch ms, inclusive")]
Until = Annotated[int | None, Query(ge=0, le=MAX_MS, description="epoch ms, exclusive")]
StepQuery = Annotated[Step, Query(description="minute, hour or day")]
Params = Sequence[tuple[str, str | int]]


def entity_id() -> Any:
    """A path id; a new one per route (FastAPI keeps the parameter's name on it)."""
    return Path(pattern=ID_PATTERN)


def template_not_found(template_id: str) -> ApiError:
    """Also what another tenant's or another institution's template looks like."""
    return ApiError(404, "template_not_found", f"no coupon template '{template_id}' in your tenant")


# -- windows --------------------------------------------------------------------


def window(since: int | None, until: int | None, now: int) -> list[tuple[str, int]]:
    """An overview's or a funnel's window. They read raw events, kept
    RAW_RETENTION_MS: an open ``since`` starts there, an earlier one is a 400
    (the series and the entity totals outlive the raw events)."""
    kept_from = now - RAW_RETENTION_MS
    if since is None:
        since = kept_from
    elif since < kept_from:
        raise ApiError(
            400,
            "before_retention",
            f"since ({since}) is before {kept_from}: raw events are kept "
            f"{RAW_RETENTION_MS // 86_400_000} days; read older figures from the series "
            "(/series, two years) or the entity totals",
            {"kept_from": kept_from},
        )
    if until is not None and until <= since:
        raise ApiError(400, "invalid_range", f"until ({until}) must be after since ({since})")
    return [(name, v) for name, v in (("since", since), ("until", until)) if v is not None]


def series_window(step: str, since: int | None, until: int | None, now: int) -> tuple[int, int]:
    """[since, until) aligned on the step, defaults filled, bounded to MAX_POINTS."""
    step_ms = STEP_MS[step]
    end = -(-(now if until is None else until) // step_ms) * step_ms
    start = ((end - DEFAULT_SPAN_MS[step]) if since is None else since) // step_ms * step_ms
    if end <= start:
        raise ApiError(400, "invalid_range", f"until ({until}) must be after since ({since})")
    points = (end - start) // step_ms
    if points > MAX_POINTS:
        raise ApiError(
            400,
            "range_too_large",
            f"{points} {step}s asked; one answer holds at most {MAX_POINTS}: "
            "narrow since/until or take a larger step",
            {"points": points, "max_points": MAX_POINTS, "step": step},
        )
    return start, end


def _series_params(step: str, since: int | None, until: int | None) -> list[tuple[str, Any]]:
    start, end = series_window(step, since, until, now_ms())
    return [("step", step), ("since", start), ("until", end)]


# -- the hop to the streams worker ------------------------------------------------


async def ask_streams(res: Res, path: str, seen: Visibility, extra: Params = ()) -> Any:
    """The streams worker's answer for the key's scope, or a 503 when it is unreachable."""
    try:
        reply = await res.streams.get(path, params=[*seen.params(), *extra])
        reply.raise_for_status()
    except httpx.HTTPError as exc:
        raise ApiError(
            503, "stats_unavailable", "the analytics store is unreachable; retry shortly"
        ) from exc
    return reply.json()


async def visible_activity(res: Res, seen: Seen, activity_id: str) -> Activity:
    activity = await res.store.activity(seen.tenant_id, activity_id)
    if activity is None or not seen.sees_activity(activity_id):
        raise activity_not_found(activity_id)
    return activity


async def visible_template(res: Res, seen: Seen, template_id: str) -> CouponTemplate:
    template = await TemplateStore(res.store.redis).template(seen.tenant_id, template_id)
    if template is None or not seen.sees_template(template_id):
        raise template_not_found(template_id)
    return template


async def visible_partner(res: Res, seen: Seen, partner_id: str) -> Partner:
    partner = await PartnerStore(res.store.redis).partner(seen.tenant_id, partner_id)
    if partner is None:
        raise ApiError(404, "partner_not_found", f"no partner '{partner_id}' in your tenant")
    return partner


# The entity of a path, or its 404 (also for one the key does not see).
_VISIBLE: Final[dict[str, Callable[[Res, Visibility, str], Awaitable[Any]]]] = {
    "activities": visible_activity,
    "templates": visible_template,
    "partners": visible_partner,
}


# -- overview and funnels -----------------------------------------------------------


@router.get("/overview", summary="Participants, draws, wins, coupons, redemptions, money, funnel")
async def overview(res: Res, seen: Seen, since: Since = None, until: Until = None) -> Any:
    """What the key sees in [since, until): see streams.report.overview for each figure.
    ``roi`` is order GMV per cent of discount (null without a discount);
    ``points_liability`` is the tenant's, now (null for an institution's key)."""
    return await ask_streams(res, "/internal/stats/overview", seen, window(since, until, now_ms()))


@router.get("/activities/{activity_id}", summary="Live figures of one activity")
async def activity_stats(res: Res, seen: Seen, activity_id: str = entity_id()) -> dict[str, Any]:
    """The activity's figures, and ``prize_stock``: each configured prize's wins
    (ClickHouse) against its configured ``stock`` (null: unlimited), what the
    ledger has ``left`` of it now and so has ``awarded``."""
    activity = await visible_activity(res, seen, activity_id)
    body = await ask_streams(res, f"/internal/stats/activities/{activity_id}", seen)
    left = await res.store.stock_left(seen.tenant_id, activity_id)
    wins = {p["prize_id"]: p["wins"] for p in body.get("prizes", [])}
    body["prize_stock"] = []
    for prize in activity.prizes:
        # A prize with stock has its count on the ledger from install on.
        remaining = None if prize.stock is None else left.get(prize.id, prize.stock)
        body["prize_stock"].append(
            {
                "prize_id": prize.id,
                "prize_name": prize.name,
                "kind": prize.kind,
                "wins": wins.get(prize.id, 0),
                "stock": prize.stock,
                "left": remaining,
                "awarded": None if prize.stock is None else prize.stock - (remaining or 0),
            }
        )
    return body


@router.get("/activities/{activity_id}/funnel", summary="One activity's funnel")
async def activity_funnel(
    res: Res, seen: Seen, since: Since = None, until: Until = None, activity_id: str = entity_id()
) -> Any:
    """participants -> draws -> wins -> coupons won -> coupons redeemed (of the
    coupons won in the window, those redeemed at any time)."""
    await visible_activity(res, seen, activity_id)
    path = f"/internal/stats/activities/{activity_id}/funnel"
    return await ask_streams(res, path, seen, window(since, until, now_ms()))


@router.get("/templates/{template_id}", summary="Live claim figures of one coupon template")
async def template_stats(res: Res, seen: Seen, template_id: str = entity_id()) -> Any:
    await visible_template(res, seen, template_id)
    return await ask_streams(res, f"/internal/stats/templates/{template_id}", seen)


@router.get(
    "/points",
    summary="Points earned, spent, expired, reversed and adjusted, by day and reason; liability",
)
async def points_stats(res: Res, seen: Seen) -> Any:
    tenant_wide(seen, "points figures")
    return await ask_streams(res, "/internal/stats/points", seen)


# -- series -------------------------------------------------------------------------


@router.get("/channels/{channel_id}/series", summary="One upstream channel per step")
async def channel_series(
    res: Res,
    seen: Seen,
    step: StepQuery = "minute",
    since: Since = None,
    until: Until = None,
    channel_id: str = entity_id(),
) -> Any:
    """The coupons of the templates linked to the channel (those the key sees):
    issued and won in draws (each is sent upstream once), and the write-offs the
    upstream reported (recorded for the channel's partner)."""
    channel = await ChannelStore(res.store.redis).channel(channel_id)
    if channel is None or channel.tenant_id != seen.tenant_id:
        raise ApiError(404, "channel_not_found", f"no channel '{channel_id}' in your tenant")
    templates = [
        t.id
        for t in await TemplateStore(res.store.redis).templates(seen.tenant_id)
        if t.channel is not None and t.channel.channel_id == channel_id and seen.sees_template(t.id)
    ]
    extra = [
        ("partner_id", channel.partner_id),
        *(("channel_template", t) for t in templates),
        *_series_params(step, since, until),
    ]
    body = await ask_streams(res, f"/internal/stats/channels/{channel_id}/series", seen, extra)
    return {"channel_id": channel_id, "partner_id": channel.partner_id, "templates": templates,
            "series": body}  # fmt: skip


# Registered after the channel's route: a path of "channels" must reach that one.
SeriesOf = Literal["activities", "templates", "partners"]


@router.get(
    "/{kind}/{entity}/series",
    summary="One activity, coupon template or partner per minute, hour or day",
)
async def entity_series(
    res: Res,
    seen: Seen,
    kind: SeriesOf,
    step: StepQuery = "minute",
    since: Since = None,
    until: Until = None,
    entity: str = entity_id(),
) -> Any:
    """streams.report's activity_series, template_series or partner_series. An
    institution's key sees a partner's write-offs of its own templates only."""
    await _VISIBLE[kind](res, seen, entity)
    path = f"/internal/stats/{kind}/{entity}/series"
    return await ask_streams(res, path, seen, _series_params(step, since, until))


# -- budget burn --------------------------------------------------------------------


async def _burn_days(
    res: Res, seen: Visibility, entity: str, since: int | None, until: int | None
) -> list[dict[str, Any]]:
    """An entity's settled burn per UTC day over the asked window, from the streams worker."""
    start, end = series_window("day", since, until, now_ms())
    path = f"/internal/stats/{entity}/burn"
    window_ = [("since", start), ("until", end)]
    days: list[dict[str, Any]] = await ask_streams(res, path, seen, window_)
    return days


def _against(days: list[dict[str, Any]], unit: str, limit: int | None, daily: int | None) -> None:
    """Each day's burn against a budget: what is left of it and the share spent
    (``spent``/``spent_total`` for cents, ``redemptions``/``redemptions_total``)."""
    day_key, total_key = ("spent", "spent_total") if unit == "cents" else (
        "redemptions",
        "redemptions_total",
    )  # fmt: skip
    for day in days:
        total = day[total_key]
        day[f"{unit}_left"] = None if limit is None else max(limit - total, 0)
        day[f"{unit}_burnt"] = None if not limit else round(total / limit, 6)
        day[f"{unit}_day_burnt"] = None if not daily else round(day[day_key] / daily, 6)


@router.get("/templates/{template_id}/burn", summary="A template's budget burn per UTC day")
async def template_burn(
    res: Res, seen: Seen, since: Since = None, until: Until = None, template_id: str = entity_id()
) -> dict[str, Any]:
    """Discount cents settled per UTC day and cumulated from the first write-off,
    against the template's budget_cents and budget_per_day_cents. Settled
    write-offs only: the live burn (/v1/budgets) also counts held locks."""
    template = await visible_template(res, seen, template_id)
    days = await _burn_days(res, seen, f"templates/{template_id}", since, until)
    limits = template.limits
    _against(days, "cents", limits.budget_cents, limits.budget_per_day_cents)
    return {
        "owner": f"template/{template_id}",
        "budget_cents": limits.budget_cents,
        "budget_per_day_cents": limits.budget_per_day_cents,
        "days": days,
    }


@router.get("/partners/{partner_id}/burn", summary="A partner's budget burn per UTC day")
async def partner_burn(
    res: Res, seen: Seen, since: Since = None, until: Until = None, partner_id: str = entity_id()
) -> dict[str, Any]:
    """Discount cents and redemptions (net of full reversals) per UTC day and
    cumulated, against the partner's budgets. A partner's budgets span every
    template of the tenant: a tenant-wide key's figures."""
    tenant_wide(seen, "a partner's budgets")
    partner = await visible_partner(res, seen, partner_id)
    days = await _burn_days(res, seen, f"partners/{partner_id}", since, until)
    _against(days, "cents", partner.budget_cents, partner.budget_per_day_cents)
    _against(days, "redemptions", partner.budget_redemptions, partner.budget_per_day_redemptions)
    return {
        "owner": f"partner/{partner_id}",
        "budget_cents": partner.budget_cents,
        "budget_per_day_cents": partner.budget_per_day_cents,
        "budget_redemptions": partner.budget_redemptions,
        "budget_per_day_redemptions": partner.budget_per_day_redemptions,
        "days": days,
    }
