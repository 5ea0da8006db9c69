"""Merchant-side endpoints: shopper tokens and live stats."""

from __future__ import annotations

import time
from typing import Any

import httpx
from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AnyStaff, Operator, Res
from api.errors import ApiError, activity_not_found
from domain.ids import ID_PATTERN, USER_ID_PATTERN
from domain.tokens import sign_shopper_token
from ledger.templates import TemplateStore

router = APIRouter(prefix="/v1", tags=["merchant"])


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(pattern=USER_ID_PATTERN)
    ttl_s: int = Field(default=86_400, ge=60, le=30 * 86_400)


class TokenOut(BaseModel):
    token: str
    user_id: str
    expires_at: int


@router.post("/shopper-tokens", response_model=TokenOut, summary="Issue a shopper token")
async def issue_shopper_token(res: Res, who: Operator, body: TokenRequest) -> TokenOut:
    secret = await res.store.shopper_secret(who.tenant_id)
    if secret is None:
        raise ApiError(409, "tenant_not_configured", "the tenant has no shopper secret")
    token = sign_shopper_token(secret, who.tenant_id, body.user_id, body.ttl_s)
    return TokenOut(token=token, user_id=body.user_id, expires_at=int(time.time()) + body.ttl_s)


@router.get("/stats/activities/{activity_id}", summary="Live figures of one activity")
async def activity_stats(
    res: Res, who: AnyStaff, activity_id: str = Path(pattern=ID_PATTERN)
) -> dict[str, Any]:
    if await res.store.activity(who.tenant_id, activity_id) is None:
        raise activity_not_found(activity_id)
    return await _stats(res, f"/internal/stats/activities/{activity_id}", who.tenant_id)


@router.get("/stats/templates/{template_id}", summary="Live claim figures of one coupon template")
async def template_stats(
    res: Res, who: AnyStaff, template_id: str = Path(pattern=ID_PATTERN)
) -> dict[str, Any]:
    if await TemplateStore(res.store.redis).template(who.tenant_id, template_id) is None:
        raise ApiError(
            404, "template_not_found", f"no coupon template '{template_id}' in your tenant"
        )
    return await _stats(res, f"/internal/stats/templates/{template_id}", who.tenant_id)


@router.get(
    "/stats/points",
    summary="Points earned, spent, expired, reversed and adjusted, by day and reason; liability",
)
async def points_stats(res: Res, who: AnyStaff) -> dict[str, Any]:
    return await _stats(res, "/internal/stats/points", who.tenant_id)


async def _stats(res: Res, path: str, tenant_id: str) -> dict[str, Any]:
    try:
        reply = await res.streams.get(path, params={"tenant_id": tenant_id})
        reply.raise_for_status()
    except httpx.HTTPError as exc:
        raise ApiError(
            503, "stats_unavailable", "the analytics store is unreachable; retry shortly"
        ) from exc
    return reply.json()
