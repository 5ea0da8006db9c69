"""Staff API keys: an admin creates, lists and revokes its tenant's keys.

An analyst key may be scoped to one institution (seed 002's bank branches): it
then sees only the figures of the activities and templates tagged with it
(api/visibility.py). Operator and admin keys act on the whole tenant, so they
cannot be scoped.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Res, require_role
from api.errors import ApiError
from domain.ids import ID_PATTERN
from ledger.api_keys import ApiKeyStore, KeyRecord
from ledger.store import Principal

router = APIRouter(prefix="/v1/admin/api-keys", tags=["merchant"])
Admin = Annotated[Principal, Depends(require_role("admin"))]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="who or what holds the key")
    role: Literal["admin", "operator", "analyst"]
    institution_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="analyst keys only: the institution whose figures the key sees",
    )


class KeyCreated(KeyRecord):
    api_key: str = Field(description="shown once; Carnival keeps only its hash")


@router.post("", status_code=201, response_model=KeyCreated, summary="Create a staff API key")
async def create_key(res: Res, who: Admin, body: KeyCreate) -> KeyCreated:
    if body.institution_id is not None and body.role != "analyst":
        raise ApiError(
            422,
            "scope_needs_analyst",
            "only analyst keys can be scoped to an institution; "
            "operators and admins act on the whole tenant",
        )
    if who.institution_id is not None:  # defensive: admins are never scoped
        raise ApiError(403, "forbidden", "a scoped key cannot create keys")
    key, record = await ApiKeyStore(res.store.redis).create(
        who.tenant_id, body.role, body.name, body.institution_id, who.key_name
    )
    return KeyCreated(**record.model_dump(), api_key=key)


@router.get("", response_model=list[KeyRecord], summary="The tenant's staff keys (no secrets)")
async def list_keys(res: Res, who: Admin) -> list[KeyRecord]:
    return await ApiKeyStore(res.store.redis).records(who.tenant_id)


@router.delete("/{key_id}", status_code=204, summary="Revoke a staff key at once")
async def revoke_key(res: Res, who: Admin, key_id: str = Path(pattern=r"^[0-9a-f]{12}$")) -> None:
    if not await ApiKeyStore(res.store.redis).revoke(who.tenant_id, key_id, who.key_name):
        raise ApiError(404, "api_key_not_found", f"no API key '{key_id}' in your tenant")
