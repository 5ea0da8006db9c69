"""Merchant-side endpoints: shopper tokens, and whose a staff key is (the stats are in
api/routes_stats.py)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AnyStaff, Operator, Res
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


class WhoAmI(BaseModel):
    tenant_id: str
    role: str
    key_name: str
    institution_id: str | None


@router.get("/admin/whoami", response_model=WhoAmI, summary="The tenant and role of my staff key")
async def whoami(who: AnyStaff) -> WhoAmI:
    """What the console signs in with: a valid key's tenant and role (the UI hides
    what the role may not do; the API refuses it anyway)."""
    return WhoAmI(
        tenant_id=who.tenant_id,
        role=who.role,
        key_name=who.key_name,
        institution_id=who.institution_id,
    )
