"""The FastAPI ingress: validate, authenticate, push to Kafka, wait for the outcome."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from api import (
    routes_activities,
    routes_admin,
    routes_budgets,
    routes_channels,
    routes_claims,
    routes_codes,
    routes_coupons,
    routes_distributions,
    routes_draws,
    routes_keys,
    routes_ops,
    routes_orders,
    routes_partners,
    routes_points,
    routes_records,
    routes_share_stats,
    routes_shares,
    routes_stats,
    routes_templates,
    routes_wallet,
    routes_webhooks,
    routes_writeoffs,
    web,
)
from api.deps import Resources
from api.draw_path import DrawPath
from api.errors import install_error_handlers
from api.metrics import MetricsMiddleware
from api.road import Road
from domain.topics import REPLIES
from ledger.store import Store
from runtime import heap
from runtime.settings import Settings, get_settings

log = logging.getLogger("carnival.api")
# The api's Redis connections, and how long a request waits for one under a burst.
REDIS_CONNECTIONS = 256
REDIS_WAIT_S = 5.0

STARTUP_WAIT_S = 60.0


async def _start_with_retry(start: Callable[[], Awaitable[None]], what: str) -> None:
    """Kafka may still be coming up when the api starts under the launcher."""
    deadline = time.monotonic() + STARTUP_WAIT_S
    while True:
        try:
            await start()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("%s not reachable yet (%s); retrying", what, exc)
            await asyncio.sleep(1.0)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=0
        )
        road = Road(producer, settings.kafka_bootstrap)
        await _start_with_retry(producer.start, "kafka")

        async def start_replies() -> None:
            partitions = await producer.partitions_for(REPLIES.name)
            if not partitions:
                raise RuntimeError(f"topic {REPLIES.name} is missing: run init-topics")
            await road.start(partitions)

        await _start_with_retry(start_replies, "kafka replies topic")
        # A pool that waits for a free connection: redis-py's default fails at once
        # past 100 in use, which a flash sale's burst of polls and reads exceeds
        # (a 503 to shoppers); waiting a little is the right answer under a burst.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=REDIS_CONNECTIONS,
            timeout=REDIS_WAIT_S,
            socket_timeout=5,
        )
        redis = aioredis.Redis(connection_pool=pool)
        streams = httpx.AsyncClient(base_url=settings.streams_base_url, timeout=5.0)
        app.state.resources = Resources(
            settings=settings,
            store=Store(redis),
            producer=producer,
            road=road,
            streams=streams,
        )
        heap.settle()
        try:
            yield
        finally:
            await road.stop()
            await producer.stop()
            await streams.aclose()
            await redis.aclose()
            await pool.disconnect()

    app = base_app(
        "Carnival",
        "Real-time marketing platform: draws decided by in-memory actors.",
        lifespan=lifespan,
        fast_paths=(DrawPath,),
    )
    app.include_router(routes_draws.router)
    app.include_router(routes_claims.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_stats.router)
    app.include_router(routes_activities.router)
    app.include_router(routes_codes.router)
    app.include_router(routes_coupons.router)
    app.include_router(routes_distributions.router)
    app.include_router(routes_templates.router)
    app.include_router(routes_wallet.router)
    app.include_router(routes_ops.router)
    app.include_router(routes_partners.router)
    app.include_router(routes_writeoffs.router)
    app.include_router(routes_orders.router)
    app.include_router(routes_budgets.router)
    app.include_router(routes_webhooks.router)
    app.include_router(routes_channels.router)
    app.include_router(routes_points.router)
    app.include_router(routes_records.router)
    app.include_router(routes_keys.router)
    app.include_router(routes_shares.router)
    app.include_router(routes_share_stats.router)
    web.mount(app)
    return app


def base_app(
    title: str,
    description: str = "",
    lifespan: Any = None,
    fast_paths: tuple[type, ...] = (),
) -> FastAPI:
    """A FastAPI app as every Carnival HTTP server is built (benches compare against it):
    the one error shape, Prometheus metrics outermost, ``fast_paths`` inside them."""
    # FastAPI's own OpenTelemetry hooks read the environment on every request when
    # left on; metrics are exported by our middleware instead.
    off: Any = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        title=title, version="0.1.0", description=description, lifespan=lifespan, telemetry=off
    )
    install_error_handlers(app)
    for middleware in fast_paths:  # the last added is the outermost
        app.add_middleware(middleware)
    app.add_middleware(MetricsMiddleware)
    return app


KEEP_ALIVE_S = 75


def serve(factory: str, host: str, port: int, workers: int = 1) -> None:
    """uvicorn as it serves the api: uvloop, httptools, no access log (JSON logs instead)."""
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        workers=workers,
        # Longer than the idle time of clients' pools and load balancers (60 s is
        # common): with uvicorn's 5 s, a client reusing a connection just as the
        # server closes it gets a reset (seen once in a test storm).
        timeout_keep_alive=KEEP_ALIVE_S,
    )


def main(settings: Settings) -> None:
    from runtime import logs

    logs.configure(settings.log_level)
    # Each worker is its own instance on the road: own producer, own replies.
    serve("api.app:create_app", settings.api_host, settings.api_port, settings.api_workers)
