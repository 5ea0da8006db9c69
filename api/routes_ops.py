"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import Res
from api.errors import error_body

router = APIRouter(tags=["operations"])
HEARTBEAT_STALE_S = 10.0


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


@router.get("/readyz", summary="Kafka, Redis, ClickHouse and Ray are reachable")
async def readyz(res: Res) -> JSONResponse:
    checks = dict(
        zip(
            ("kafka", "redis", "clickhouse", "ray"),
            await asyncio.gather(_kafka(res), _redis(res), _clickhouse(res), _ray(res)),
            strict=True,
        )
    )
    if all(c["ok"] for c in checks.values()):
        return JSONResponse({"ready": True, "checks": checks})
    failing = ", ".join(name for name, c in checks.items() if not c["ok"])
    return JSONResponse(
        error_body("not_ready", f"unavailable: {failing}", {"checks": checks}), status_code=503
    )


async def _guard(probe: Any) -> dict[str, Any]:
    try:
        detail = await asyncio.wait_for(probe, 2.0)
        return {"ok": True, **(detail if isinstance(detail, dict) else {})}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


async def _kafka(res: Res) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        await res.producer.client.fetch_all_metadata()
        return {}

    return await _guard(probe())


async def _redis(res: Res) -> dict[str, Any]:
    return await _guard(res.store.redis.ping())


async def _clickhouse(res: Res) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        reply = await res.streams.get("/internal/health")
        reply.raise_for_status()
        return {}

    return await _guard(probe())


async def _ray(res: Res) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        beat = await res.store.dispatcher_heartbeat()
        if beat is None or time.time() - beat["at"] > HEARTBEAT_STALE_S:
            raise RuntimeError("no recent heartbeat from the dispatcher's Ray actors")
        return {"actors": beat["actors"]}

    return await _guard(probe())


@router.get("/metrics", summary="Prometheus metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
