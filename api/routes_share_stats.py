"""Share figures of one activity (staff), read from ClickHouse through the
streams worker's view (streams/share_views.py), scoped like every stats route."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Res
from api.routes_stats import ask_streams, entity_id, visible_activity
from api.visibility import Seen

router = APIRouter(prefix="/v1/stats", tags=["stats"])


@router.get("/activities/{activity_id}/shares", summary="Share clicks and conversions")
async def share_stats(res: Res, seen: Seen, activity_id: str = entity_id()) -> Any:
    """``clicks`` (landing-page opens) and ``conversions`` (referred friends who
    drew), in all and per ``channels`` (x, facebook, tiktok, copy)."""
    await visible_activity(res, seen, activity_id)
    return await ask_streams(res, f"/internal/stats/activities/{activity_id}/shares", seen)
