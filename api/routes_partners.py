"""Operator endpoints for partners: register one (RSA public key, or an HMAC
secret Carnival issues and shows once), list, look up, disable and enable.
Plus ``GET /v1/partner/whoami``, a signed request a partner sends to check its
signing before its first redemption."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, ValidationError

from api.deps import AnyStaff, Operator, Res
from api.errors import ApiError, validation_error
from api.partner_auth import SignedPartner
from domain.events import now_ms
from domain.ids import ID_PATTERN
from domain.partners import Partner, PartnerFields, new_partner_id, new_secret
from domain.signing import HMAC_SHA256
from ledger.partners import PartnerStore
from ledger.store import Principal

router = APIRouter(prefix="/v1", tags=["partners"])

PartnerId = Path(pattern=ID_PATTERN)


class PartnerView(BaseModel):
    partner: Partner
    secret: str | None = None  # the HMAC secret, at creation only


class WhoAmI(BaseModel):
    partner_id: str
    tenant_id: str
    store_ids: tuple[str, ...]


async def _store(res: Res) -> PartnerStore:
    return PartnerStore(res.store.redis)


Partners = Annotated[PartnerStore, Depends(_store)]


async def _found(store: PartnerStore, who: Principal, partner_id: str) -> Partner:
    partner = await store.partner(who.tenant_id, partner_id)
    if partner is None:
        raise ApiError(404, "partner_not_found", f"no partner '{partner_id}' in your tenant")
    return partner


@router.post("/admin/partners", status_code=201, response_model=PartnerView)
async def create_partner(
    store: Partners,
    who: Operator,
    body: Annotated[dict[str, Any], Body(description="fields of PartnerFields")],
) -> PartnerView:
    try:
        fields = PartnerFields.model_validate(body)
    except ValidationError as exc:
        raise validation_error("invalid_partner", exc.errors()) from exc
    partner = Partner(
        **fields.model_dump(),
        id=new_partner_id(),
        tenant_id=who.tenant_id,
        created_at=now_ms(),
    )
    secret = new_secret() if fields.algorithm == HMAC_SHA256 else None
    await store.create(partner, secret, who.key_name)
    return PartnerView(partner=partner, secret=secret)


@router.get("/admin/partners", response_model=list[Partner])
async def list_partners(store: Partners, who: AnyStaff) -> list[Partner]:
    return await store.partners(who.tenant_id)


@router.get("/admin/partners/{partner_id}", response_model=Partner)
async def get_partner(store: Partners, who: AnyStaff, partner_id: str = PartnerId) -> Partner:
    return await _found(store, who, partner_id)


async def _set_enabled(store: PartnerStore, who: Principal, partner_id: str, on: bool) -> Partner:
    partner = await _found(store, who, partner_id)
    after = partner.model_copy(update={"enabled": on})
    await store.replace(after, who.key_name, "partner.enabled" if on else "partner.disabled")
    return after


@router.post("/admin/partners/{partner_id}/disable", response_model=Partner)
async def disable_partner(store: Partners, who: Operator, partner_id: str = PartnerId) -> Partner:
    return await _set_enabled(store, who, partner_id, False)


@router.post("/admin/partners/{partner_id}/enable", response_model=Partner)
async def enable_partner(store: Partners, who: Operator, partner_id: str = PartnerId) -> Partner:
    return await _set_enabled(store, who, partner_id, True)


@router.get("/partner/whoami", response_model=WhoAmI, summary="Check your request signing")
async def whoami(caller: SignedPartner) -> WhoAmI:
    return WhoAmI(
        partner_id=caller.partner_id, tenant_id=caller.tenant_id, store_ids=caller.store_ids
    )
