"""Budget burn, live: what a coupon template or a partner has spent of each of
its budgets, read from the counters the write-off commit moves (so a figure is
exact the moment the redemption is answered, unlike the analytics stream)."""

from __future__ import annotations

from fastapi import APIRouter, Path
from pydantic import BaseModel

from api.deps import AnyStaff, Res
from api.errors import ApiError
from domain.draw import utc_day
from domain.events import now_ms
from domain.ids import ID_PATTERN
from domain.writeoffs import BudgetUnit
from ledger.keys import TemplateKeys, TenantKeys
from ledger.partners import PartnerStore
from ledger.templates import TemplateStore

router = APIRouter(prefix="/v1/budgets", tags=["budgets"])


class Burn(BaseModel):
    name: str  # as a budget_exhausted refusal's details.why names it
    unit: BudgetUnit
    day: int | None  # yyyymmdd (UTC) for a daily budget
    spent: int  # net of releases and reversals; locks count until released
    limit: int | None  # None: no limit set (the burn is still counted)
    left: int | None
    burnt: float | None  # spent / limit


class BurnReport(BaseModel):
    owner: str  # "template/<id>" or "partner/<id>"
    at: int
    budgets: list[Burn]
    redeemed: int | None = None  # a template's coupons redeemed, net of reversals


def _burn(name: str, unit: BudgetUnit, day: int | None, spent: int, limit: int | None) -> Burn:
    return Burn(
        name=name,
        unit=unit,
        day=day,
        spent=spent,
        limit=limit,
        left=None if limit is None else max(limit - spent, 0),
        burnt=None if not limit else round(spent / limit, 6),
    )


@router.get("/templates/{template_id}", response_model=BurnReport)
async def template_burn(
    res: Res, who: AnyStaff, template_id: str = Path(pattern=ID_PATTERN)
) -> BurnReport:
    template = await TemplateStore(res.store.redis).template(who.tenant_id, template_id)
    if template is None:
        raise ApiError(
            404, "template_not_found", f"no coupon template '{template_id}' in your tenant"
        )
    at = now_ms()
    today = utc_day(at)
    keys = TemplateKeys(who.tenant_id, template_id)
    total, day, redeemed = await res.store.redis.mget(
        [keys.spent, keys.spent_on(today), keys.redeemed]
    )
    limits = template.limits
    return BurnReport(
        owner=f"template/{template_id}",
        at=at,
        redeemed=int(redeemed or 0),
        budgets=[
            _burn("template", "cents", None, int(total or 0), limits.budget_cents),
            _burn("template_day", "cents", today, int(day or 0), limits.budget_per_day_cents),
        ],
    )


@router.get("/partners/{partner_id}", response_model=BurnReport)
async def partner_burn(
    res: Res, who: AnyStaff, partner_id: str = Path(pattern=ID_PATTERN)
) -> BurnReport:
    partner = await PartnerStore(res.store.redis).partner(who.tenant_id, partner_id)
    if partner is None:
        raise ApiError(404, "partner_not_found", f"no partner '{partner_id}' in your tenant")
    at = now_ms()
    today = utc_day(at)
    keys = TenantKeys(who.tenant_id)
    cents, cents_day, count, count_day = (
        int(v or 0)
        for v in await res.store.redis.mget(
            [
                keys.partner_spent(partner_id),
                keys.partner_spent(partner_id, today),
                keys.partner_redemptions(partner_id),
                keys.partner_redemptions(partner_id, today),
            ]
        )
    )
    return BurnReport(
        owner=f"partner/{partner_id}",
        at=at,
        budgets=[
            _burn("partner", "cents", None, cents, partner.budget_cents),
            _burn("partner_day", "cents", today, cents_day, partner.budget_per_day_cents),
            _burn("partner_redemptions", "redemptions", None, count, partner.budget_redemptions),
            _burn(
                "partner_day_redemptions",
                "redemptions",
                today,
                count_day,
                partner.budget_per_day_redemptions,
            ),
        ],
    )
