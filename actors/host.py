"""The in-memory owner of many entities' state: one per Ray actor, one event loop.

``decide_batch`` takes the REQUESTS records of one poll that route to this
actor, groups their requests by kind and owner, lets each kind decide its
groups (concurrently: a group's commit in flight never holds up another
group's decisions) and returns the outcomes and replies grouped for the
dispatcher to produce. A plain class, so the decision path is testable
without Ray; ``actors/owner_actor.py`` wraps it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections import defaultdict
from typing import Any

import orjson

from actors.draws import DrawPools
from actors.recent import RecentOutcomes
from domain.road import DRAW, KINDS, BatchResult, reply_entry
from ledger.pools import PoolLedger

log = logging.getLogger("carnival.actors")

Request = dict[str, Any]
_ENVELOPE = ("kind", "event_id", "tenant_id", "owner_id", "user_id", "request_id")


class OwnerHost:
    def __init__(self, redis_url: str, seed: int | None = None) -> None:
        self._ledger = PoolLedger.from_url(redis_url)
        rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self._recent = RecentOutcomes()
        self._kinds = {DRAW.name: DrawPools(self._ledger, rng, self._recent)}

    def pid(self) -> int:
        return os.getpid()

    def ping(self) -> bool:
        return True

    async def close(self) -> None:
        await self._ledger.close()

    async def decide_batch(self, batch_id: str, records: list[bytes]) -> BatchResult:
        """Every well-formed request gets exactly one outcome (a repeated request
        key: the outcome already decided, byte for byte) and, if an api instance
        waits for it, one reply. Malformed requests are logged and dropped: the
        api is the only producer, so one means a bug, not a client's mistake."""
        groups: defaultdict[tuple[str, str, str], list[Request]] = defaultdict(list)
        for request in _parse(batch_id, records):
            groups[(request["kind"], request["tenant_id"], request["owner_id"])].append(request)
        keys = list(groups)
        decided = await asyncio.gather(
            *(
                self._kinds[kind].decide(batch_id, tenant, owner, groups[(kind, tenant, owner)])
                for kind, tenant, owner in keys
            )
        )
        result = BatchResult()
        for (kind, tenant, owner), outcomes in zip(keys, decided, strict=True):
            result.outcomes.setdefault((kind, owner), []).extend(outcomes.values())
            for request in groups[(kind, tenant, owner)]:
                result.decided += 1
                if request.get("reply_to"):
                    entry = reply_entry(request["reply_id"], outcomes[request["event_id"]])
                    result.replies.setdefault(request["reply_to"], []).append(entry)
        return result


def _parse(batch_id: str, records: list[bytes]) -> list[Request]:
    requests: list[Request] = []
    for raw in records:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.error("batch %s: a request record is not JSON; dropped", batch_id)
            continue
        if not isinstance(parsed, list):
            log.error("batch %s: a request record is not a JSON array; dropped", batch_id)
            continue
        for request in parsed:
            if (
                isinstance(request, dict)
                and request.get("kind") in KINDS
                and all(isinstance(request.get(f), str) for f in _ENVELOPE)
                and isinstance(request.get("reply_id", 0), int)
            ):
                requests.append(request)
            else:
                log.error("batch %s: malformed request dropped: %.200r", batch_id, request)
    return requests
