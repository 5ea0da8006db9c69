"""The loop both relay workers run over their durable queue (ledger/outbox.py):
take what is due, work on it, and wait a little when nothing is."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisError

log = logging.getLogger("carnival.relay")

T = TypeVar("T")

IDLE_POLL_S = 0.2


async def work_forever(
    take: Callable[[], Awaitable[list[T]]],
    work: Callable[[list[T]], Awaitable[None]],
    what: str,
) -> None:
    """``take()`` what is due (leased), then ``work`` on it, forever. A Redis
    outage while taking is waited out; what was taken stays leased meanwhile."""
    while True:
        try:
            taken = await take()
        except RedisError as exc:
            log.warning("could not read the %s queue (%s); retrying", what, exc)
            await asyncio.sleep(IDLE_POLL_S)
            continue
        if not taken:
            await asyncio.sleep(IDLE_POLL_S)
            continue
        await work(taken)
