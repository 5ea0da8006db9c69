"""The operator console and the shopper pages: the built web app (web/, Vue +
Vite, built by `make bootstrap` into web/dist) served by the api.

HTML at ``/console`` and ``/p/{tenant}/{activity}``, hashed assets under
``/web/``. Nothing comes from a CDN at run time: every asset is in dist/.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api.errors import ApiError
from domain.ids import ID_PATTERN

# web/ is a folder at the repo root, next to this package.
DIST = Path(__file__).resolve().parent.parent / "web" / "dist"

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    page = DIST / f"{name}.html"
    if not page.is_file():
        raise ApiError(
            503,
            "web_not_built",
            "the web pages are not built: run `make bootstrap` (it builds web/ with npm)",
        )
    # The HTML names hashed assets: never cache it, so a new build is picked up.
    return FileResponse(page, headers={"Cache-Control": "no-cache"})


@router.get("/console")
@router.get("/console/{rest:path}")
async def console(rest: str = "") -> FileResponse:
    return _page("console")


@router.get("/p/{tenant_id}/{activity_id}")
async def shopper_page(tenant_id: str, activity_id: str) -> FileResponse:
    for value, what in ((tenant_id, "tenant"), (activity_id, "activity")):
        if not re.fullmatch(ID_PATTERN, value):
            raise ApiError(404, "page_not_found", f"no such {what}: '{value}'")
    return _page("shopper")


def mount(app: FastAPI) -> None:
    app.include_router(router)
    # check_dir=False: an api started before the first build still starts (the
    # pages answer 503 web_not_built until then).
    app.mount("/web", StaticFiles(directory=DIST, check_dir=False), name="web")
