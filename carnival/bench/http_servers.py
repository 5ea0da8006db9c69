"""The two servers `carnival bench http` sets beside Carnival's api, as uvicorn app factories.

- ``noop_app``: one POST ``/v1/activities/{activity_id}/draws`` that answers a small
  JSON without reading the body or doing any I/O: the ceiling of FastAPI on one
  uvicorn worker for this route shape.
- ``classic_app``: the per-request design of big-market / seckill systems. The same
  route verifies the shopper token (HMAC, the tenant's shopper secret), draws the
  prize in the app (``WeightTable``) and runs ONE Lua script in Redis
  (``CLASSIC_LUA``: idempotent by request key, per-user limit, stock ``DECR`` else
  the fallback prize, outcome recorded), then answers 200 with the outcome.

Both are built and served like the api (``api.app``): its error handlers and
metrics middleware, the draw endpoint's body and response models, one uvicorn
worker with uvloop and httptools, no access log. Configuration comes from the
environment when the factory runs (never at import):

    CARNIVAL_BENCH_REDIS_URL        classic: the Redis the ledger uses
    CARNIVAL_BENCH_SHOPPER_SECRET   classic: the tenant's shopper secret
    CARNIVAL_BENCH_ACTIVITY         classic: the activity (JSON) to draw from

Run one with ``python -m carnival.bench.http_servers {noop|classic} --port N``, or
``uvicorn --factory carnival.bench.http_servers:noop_app``.
"""

from __future__ import annotations

import argparse
import os
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, Header, Path, Request

from api.app import base_app
from api.app import serve as api_serve
from api.errors import ApiError, activity_not_found
from api.routes_draws import DrawResult, PrizeOut
from api.tickets import RequestBody
from carnival.bench.classic import CLASSIC_LUA, ClassicKeys
from domain.activity import Activity, Prize
from domain.draw import WeightTable
from domain.events import now_ms, request_key
from domain.ids import ID_PATTERN
from domain.tokens import TokenError, verify_shopper_token
from ledger.keys import ActivityKeys

ENV_REDIS_URL = "CARNIVAL_BENCH_REDIS_URL"
ENV_SHOPPER_SECRET = "CARNIVAL_BENCH_SHOPPER_SECRET"
ENV_ACTIVITY = "CARNIVAL_BENCH_ACTIVITY"

DRAW_ROUTE = "/v1/activities/{activity_id}/draws"
FACTORIES = ("noop", "classic")
REDIS_SOCKET_TIMEOUT_S = 5.0  # as the api's client
REJECTED_PREFIX = "rejected:"  # CLASSIC_LUA's answer when the per-user limit is reached

ActivityId = Path(pattern=ID_PATTERN)


def noop_app() -> FastAPI:
    app = base_app("Carnival bench: no-op")

    @app.post(DRAW_ROUTE)
    async def draw(activity_id: str = ActivityId) -> dict[str, Any]:
        return {"activity_id": activity_id, "status": "ok"}

    return app


def classic_keys(activity: Activity) -> ClassicKeys:
    """The classic design's keys for one activity: beside its ledger keys, same hash tag."""
    return ClassicKeys(ActivityKeys(activity.tenant_id, activity.id).base)


@dataclass
class ClassicDraws:
    """What the classic app needs per request, built once when the factory runs."""

    activity: Activity
    secret: bytes
    keys: ClassicKeys
    fallback: Prize
    prizes: dict[str, Prize]
    table: WeightTable
    rng: random.Random
    redis: aioredis.Redis | None = None
    sha: str = ""

    @classmethod
    def from_env(cls) -> ClassicDraws:
        activity = Activity.model_validate_json(os.environ[ENV_ACTIVITY])
        fallback = activity.prize(activity.fallback_prize_id or "")
        if fallback is None:
            raise ValueError(f"activity '{activity.id}' has no fallback prize")
        return cls(
            activity=activity,
            secret=os.environ[ENV_SHOPPER_SECRET].encode(),
            keys=classic_keys(activity),
            fallback=fallback,
            prizes={p.id: p for p in activity.prizes},
            table=WeightTable(list(activity.prizes), [p.weight for p in activity.prizes]),
            rng=random.Random(),
        )


async def classic_draws(request: Request) -> ClassicDraws:
    # async: a sync dependency would cost a thread-pool hop per request (as in api.deps)
    return request.app.state.classic


Classic = Annotated[ClassicDraws, Depends(classic_draws)]


async def classic_shopper(
    classic: Classic, authorization: Annotated[str | None, Header()] = None
) -> str:
    """The user id of a valid shopper token of the activity's tenant."""
    if not authorization or not authorization.startswith("Bearer "):
        raise ApiError(401, "missing_token", "send 'Authorization: Bearer <token>'")
    try:
        claims = verify_shopper_token(classic.secret, authorization.removeprefix("Bearer ").strip())
    except TokenError as exc:
        raise ApiError(401, exc.code, str(exc)) from exc
    if claims.tenant_id != classic.activity.tenant_id:
        raise activity_not_found(classic.activity.id)
    return claims.user_id


ClassicShopper = Annotated[str, Depends(classic_shopper)]


def classic_app() -> FastAPI:
    redis_url = os.environ[ENV_REDIS_URL]
    classic = ClassicDraws.from_env()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        classic.redis = aioredis.Redis.from_url(redis_url, socket_timeout=REDIS_SOCKET_TIMEOUT_S)
        classic.sha = await classic.redis.script_load(CLASSIC_LUA)
        try:
            yield
        finally:
            await classic.redis.aclose()

    app = base_app("Carnival bench: classic", lifespan=lifespan)
    app.state.classic = classic
    app.post(DRAW_ROUTE, response_model=DrawResult)(classic_draw)
    return app


async def classic_draw(
    classic: Classic,
    user_id: ClassicShopper,
    body: RequestBody | None = None,
    activity_id: str = ActivityId,
) -> DrawResult:
    activity = classic.activity
    if activity_id != activity.id:
        raise activity_not_found(activity_id)
    assert classic.redis is not None  # set by the lifespan
    request_id = (body.request_id if body else None) or uuid.uuid4().hex
    drawn = classic.table.pick(classic.rng)  # in the app, before the call, as those systems do
    keys = classic.keys
    given = await classic.redis.evalsha(
        classic.sha,
        3,
        keys.stock(drawn.id),
        keys.users,
        keys.outcomes,
        drawn.id,
        classic.fallback.id,
        user_id,
        activity.limits.per_user_total,
        request_key(user_id, request_id),
        "1" if drawn.stock is not None else "0",
    )
    answer = given.decode()
    if answer.startswith(REJECTED_PREFIX):
        reason = answer.removeprefix(REJECTED_PREFIX)
        raise ApiError(409, reason, "the draw was rejected", {"request_id": request_id})
    prize = classic.prizes[answer]
    return DrawResult(
        request_id=request_id,
        activity_id=activity.id,
        status="lost" if prize.kind == "thanks" else "won",
        prize=PrizeOut(id=prize.id, name=prize.name, kind=prize.kind),
        amount=prize.points,
        reason="",
        decided_at=now_ms(),
    )


def serve(factory: str, host: str, port: int) -> None:
    """Serve one factory with the api's uvicorn settings (see ``api.app.main``)."""
    from runtime import logs

    if factory not in FACTORIES:
        raise ValueError(f"unknown bench server '{factory}' (one of {', '.join(FACTORIES)})")
    logs.configure("INFO")
    api_serve(f"carnival.bench.http_servers:{factory}_app", host, port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("factory", choices=FACTORIES)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.factory, args.host, args.port)
