"""Merchant-side endpoints: shopper tokens (the stats are in api/routes_stats.py)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Operator, Res
from api.errors import ApiError
from domain.ids import USER_ID_PATTERN
from domain.tokens import sign_shopper_token

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
