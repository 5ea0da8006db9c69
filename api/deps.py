"""Per-process resources shared by the routes, and the auth dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import Depends, Header, Request

from api.errors import ApiError
from api.road import Road
from domain.tokens import (
    ShopperClaims,
    TokenError,
    read_unverified_tenant,
    verify_shopper_token,
)
from ledger.store import Principal, Store
from runtime.settings import Settings


@dataclass
class Resources:
    settings: Settings
    store: Store
    producer: AIOKafkaProducer
    road: Road
    streams: httpx.AsyncClient


async def resources(request: Request) -> Resources:
    # async: a sync dependency would cost a thread-pool hop on every request
    return request.app.state.resources


Res = Annotated[Resources, Depends(resources)]


async def shopper(
    res: Res,
    authorization: Annotated[str | None, Header()] = None,
) -> ShopperClaims:
    return await authenticate_shopper(res, authorization)


async def authenticate_shopper(res: Resources, authorization: str | None) -> ShopperClaims:
    """The shopper a Bearer token names, or a 401 saying what is wrong with it."""
    if not authorization or not authorization.startswith("Bearer "):
        raise ApiError(
            401,
            "missing_token",
            "send the shopper token as 'Authorization: Bearer <token>' "
            "(obtained by the merchant via POST /v1/shopper-tokens)",
        )
    token = authorization.removeprefix("Bearer ").strip()
    try:
        tenant_id = read_unverified_tenant(token)
        secret = await res.store.shopper_secret(tenant_id)
        if secret is None:
            raise TokenError("invalid_token", "the shopper token names an unknown tenant")
        return verify_shopper_token(secret, token)
    except TokenError as exc:
        raise ApiError(401, exc.code, str(exc)) from exc


def require_role(*roles: str):
    async def _principal(res: Res, x_api_key: Annotated[str | None, Header()] = None) -> Principal:
        if not x_api_key:
            raise ApiError(
                401, "missing_api_key", "send the tenant API key in the X-Api-Key header"
            )
        principal = await res.store.principal(x_api_key)
        if principal is None:
            raise ApiError(401, "invalid_api_key", "the API key is unknown or revoked")
        if principal.role not in roles:
            raise ApiError(
                403,
                "forbidden",
                f"role '{principal.role}' may not do this; needs one of {', '.join(roles)}",
            )
        return principal

    return _principal


Shopper = Annotated[ShopperClaims, Depends(shopper)]
AnyStaff = Annotated[Principal, Depends(require_role("admin", "operator", "analyst"))]
Operator = Annotated[Principal, Depends(require_role("admin", "operator"))]
