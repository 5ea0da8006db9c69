"""A staff key's Visibility: the whole tenant, or the entities of its institution."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.deps import AnyStaff, Res
from api.errors import ApiError
from domain.visibility import Visibility
from ledger.store import Principal
from ledger.templates import TemplateStore


async def visibility(res: Res, who: AnyStaff) -> Visibility:
    if who.institution_id is None:
        return Visibility(who.tenant_id)
    # Read per request, not cached: re-tagging an entity takes effect at once.
    activities = await res.store.activities(who.tenant_id)
    templates = await TemplateStore(res.store.redis).templates(who.tenant_id)
    return Visibility(
        who.tenant_id,
        who.institution_id,
        frozenset(a.id for a in activities if a.institution_id == who.institution_id),
        frozenset(t.id for t in templates if t.institution_id == who.institution_id),
    )


Seen = Annotated[Visibility, Depends(visibility)]


def sees(who: Principal, institution_id: str | None) -> bool:
    """Whether a key sees an entity tagged with ``institution_id`` (None: untagged)."""
    return who.institution_id is None or who.institution_id == institution_id


def tenant_wide(scope: Visibility | Principal, what: str) -> None:
    """Refuse what belongs to the whole tenant (points: accounts are the tenant's,
    not a branch's; the audit log) to a key scoped to one institution."""
    if scope.institution_id is not None:
        raise ApiError(
            403,
            "scope_is_institution",
            f"{what}: the whole tenant's, and this key sees institution "
            f"'{scope.institution_id}' only; use a tenant-wide key",
        )
