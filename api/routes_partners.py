"""Operator endpoints for partners: register one (RSA public key, or an HMAC
secret Carnival issues and shows once), list, look up, disable and enable,
rotate an HMAC secret or replace an RSA key. Plus two signed endpoints a
partner calls to check its signing before its first redemption:
``GET /v1/partner/whoami`` and ``POST /v1/partner/echo``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, ValidationError

from api.deps import AnyStaff, Operator, Res
from api.errors import ApiError, validation_error
from api.partner_auth import SignedPartner
from domain.events import now_ms
from domain.ids import ID_PATTERN
from domain.partners import (
    Partner,
    PartnerError,
    PartnerFields,
    PublicKeyChange,
    check_secret_rotation,
    new_partner_id,
    new_secret,
    with_public_key,
)
from domain.signing import HMAC_SHA256
from ledger.partners import PartnerChanged, PartnerStore, PublicKeyInUse
from ledger.store import Principal

router = APIRouter(prefix="/v1", tags=["partners"])

PartnerId = Path(pattern=ID_PATTERN)


class PartnerView(BaseModel):
    partner: Partner
    secret: str | None = None  # the HMAC secret, at creation and rotation only


class WhoAmI(BaseModel):
    partner_id: str
    tenant_id: str
    store_ids: tuple[str, ...]


class Echo(WhoAmI):
    body_sha256: str  # of the body Carnival received and verified


async def _store(res: Res) -> PartnerStore:
    return PartnerStore(res.store.redis)


Partners = Annotated[PartnerStore, Depends(_store)]


def _not_found(partner_id: str) -> ApiError:
    """Also what another tenant's partner looks like."""
    return ApiError(404, "partner_not_found", f"no partner '{partner_id}' in your tenant")


async def _found(store: PartnerStore, who: Principal, partner_id: str) -> Partner:
    partner = await store.partner(who.tenant_id, partner_id)
    if partner is None:
        raise _not_found(partner_id)
    return partner


def _key_in_use() -> ApiError:
    return ApiError(
        409,
        "public_key_in_use",
        "this public key is registered for another partner; a request names its partner "
        "but is verified by the key, so each partner needs its own key pair",
    )


def _raced(partner_id: str) -> ApiError:
    return ApiError(
        409, "concurrent_change", f"partner '{partner_id}' kept changing meanwhile; retry"
    )


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
    try:
        await store.create(partner, secret, who.key_name)
    except PublicKeyInUse as exc:
        raise _key_in_use() from exc
    except PartnerChanged as exc:
        raise _raced(partner.id) from exc
    return PartnerView(partner=partner, secret=secret)


@router.get("/admin/partners", response_model=list[Partner])
async def list_partners(store: Partners, who: AnyStaff) -> list[Partner]:
    return await store.partners(who.tenant_id)


@router.get("/admin/partners/{partner_id}", response_model=Partner)
async def get_partner(store: Partners, who: AnyStaff, partner_id: str = PartnerId) -> Partner:
    return await _found(store, who, partner_id)


async def _change(
    store: PartnerStore,
    who: Principal,
    partner_id: str,
    change: Callable[[Partner], Partner],
    action: str,
) -> Partner:
    try:
        after = await store.update(who.tenant_id, partner_id, change, who.key_name, action)
    except PartnerError as exc:
        raise ApiError(409, exc.code, exc.message) from exc
    except PublicKeyInUse as exc:
        raise _key_in_use() from exc
    except PartnerChanged as exc:
        raise _raced(partner_id) from exc
    if after is None:
        raise _not_found(partner_id)
    return after


def _enabled(on: bool) -> Callable[[Partner], Partner]:
    return lambda partner: partner.model_copy(update={"enabled": on})


@router.post("/admin/partners/{partner_id}/disable", response_model=Partner)
async def disable_partner(store: Partners, who: Operator, partner_id: str = PartnerId) -> Partner:
    return await _change(store, who, partner_id, _enabled(False), "partner.disabled")


@router.post("/admin/partners/{partner_id}/enable", response_model=Partner)
async def enable_partner(store: Partners, who: Operator, partner_id: str = PartnerId) -> Partner:
    return await _change(store, who, partner_id, _enabled(True), "partner.enabled")


@router.put(
    "/admin/partners/{partner_id}/public-key",
    response_model=Partner,
    summary="Replace an RSA partner's public key (the old key stops verifying at once)",
)
async def replace_public_key(
    store: Partners,
    who: Operator,
    body: Annotated[dict[str, Any], Body(description='{"public_key_pem": "-----BEGIN …"}')],
    partner_id: str = PartnerId,
) -> Partner:
    try:
        change = PublicKeyChange.model_validate(body)
    except ValidationError as exc:
        raise validation_error("invalid_public_key", exc.errors()) from exc
    return await _change(
        store, who, partner_id, lambda p: with_public_key(p, change), "partner.key_replaced"
    )


@router.post(
    "/admin/partners/{partner_id}/rotate-secret",
    response_model=PartnerView,
    summary="Issue an HMAC partner a new secret, shown once (the old one stops at once)",
)
async def rotate_secret(store: Partners, who: Operator, partner_id: str = PartnerId) -> PartnerView:
    partner = await _found(store, who, partner_id)
    try:
        check_secret_rotation(partner)
    except PartnerError as exc:
        raise ApiError(409, exc.code, exc.message) from exc
    secret = new_secret()
    await store.set_secret(partner, secret, who.key_name)
    return PartnerView(partner=partner, secret=secret)


@router.get("/partner/whoami", response_model=WhoAmI, summary="Check your request signing")
async def whoami(caller: SignedPartner) -> WhoAmI:
    return WhoAmI(
        partner_id=caller.partner_id, tenant_id=caller.tenant_id, store_ids=caller.store_ids
    )


@router.post(
    "/partner/echo",
    response_model=Echo,
    summary="Check your signing of a request with a body: the SHA-256 Carnival verified",
)
async def echo(caller: SignedPartner) -> Echo:
    return Echo(
        partner_id=caller.partner_id,
        tenant_id=caller.tenant_id,
        store_ids=caller.store_ids,
        body_sha256=caller.body_sha256,
    )
