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

import orjson
import redis.asyncio as aioredis

from actors.claims import TemplateClaims
from actors.coupon_changes import CouponChanges
from actors.draws import DrawPools, QuotaTopUps
from actors.points import PointsAccounts
from actors.recent import RecentOutcomes
from actors.writeoffs import Writeoffs
from domain.events import request_key
from domain.road import (
    CLAIM,
    COUPON,
    DRAW,
    KINDS,
    POINTS,
    QUOTA,
    WRITEOFF,
    BatchResult,
    Request,
    reply_entry,
)
from ledger.claims import ClaimLedger
from ledger.committer import Committer
from ledger.coupon_changes import CouponChangeLedger
from ledger.points import PointsLedger
from ledger.pools import PoolLedger
from ledger.writeoffs import WriteoffLedger
from runtime import heap

log = logging.getLogger("carnival.actors")


class OwnerHost:
    def __init__(self, redis_url: str, seed: int | None = None) -> None:
        heap.settle()
        # One read pool and one commit connection for every kind: commits reach
        # Redis in the order they were decided, whatever their kind.
        self._reads = aioredis.Redis.from_url(
            redis_url, socket_timeout=10, socket_connect_timeout=5
        )
        self._commits = Committer(redis_url)
        rng = random.Random(seed) if seed is not None else random.SystemRandom()
        self._recent = RecentOutcomes()
        pools = DrawPools(PoolLedger(self._reads, self._commits), rng, self._recent)
        self._kinds = {
            DRAW.name: pools,
            QUOTA.name: QuotaTopUps(pools),
            CLAIM.name: TemplateClaims(ClaimLedger(self._reads, self._commits), self._recent),
            COUPON.name: CouponChanges(CouponChangeLedger(self._reads, self._commits)),
            WRITEOFF.name: Writeoffs(WriteoffLedger(self._reads, self._commits)),
            POINTS.name: PointsAccounts(PointsLedger(self._reads, self._commits)),
        }

    def pid(self) -> int:
        return os.getpid()

    def ping(self) -> bool:
        return True

    async def close(self) -> None:
        await self._commits.close()
        await self._reads.aclose()

    async def decide_batch(self, batch_id: str, records: list[bytes]) -> BatchResult:
        """Every well-formed request gets exactly one outcome (a repeated request
        key: the outcome already decided, byte for byte) and, if an api instance
        waits for it, one reply. Malformed records and rows are logged and dropped:
        the api is the only producer, so one means a bug, not a client's mistake."""
        groups: defaultdict[tuple[str, str, str], list[Request]] = defaultdict(list)
        for kind, tenant, owner, requests in _parse(batch_id, records):
            groups[(kind, tenant, owner)] += requests
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
                if request.reply_to:
                    entry = reply_entry(request.reply_id, outcomes[request.key])
                    result.replies.setdefault(request.reply_to, []).append(entry)
        return result


def _parse(batch_id: str, records: list[bytes]) -> list[tuple[str, str, str, list[Request]]]:
    parsed: list[tuple[str, str, str, list[Request]]] = []
    for raw in records:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.error("batch %s: a request record is not JSON; dropped", batch_id)
            continue
        if not (
            type(record) is dict
            and record.get("kind") in KINDS
            and type(record.get("tenant_id")) is str
            and type(record.get("owner_id")) is str
            and type(record.get("reply_to")) is str
            and type(record.get("rows")) is list
        ):
            log.error("batch %s: malformed request record dropped: %.200r", batch_id, record)
            continue
        reply_to = record["reply_to"]
        requests: list[Request] = []
        for row in record["rows"]:
            # The api built these rows from checked input; this guards the actor
            # against a bug, one cheap test per row rather than a schema.
            if (
                type(row) is list
                and len(row) == 4
                and type(row[0]) is str
                and type(row[1]) is str
                and type(row[2]) is int
            ):
                user_id, request_id = row[0], row[1]
                key = request_key(user_id, request_id)
                requests.append(Request(key, user_id, request_id, row[2], row[3], reply_to))
            else:
                log.error("batch %s: malformed request dropped: %.200r", batch_id, row)
        parsed.append((record["kind"], record["tenant_id"], record["owner_id"], requests))
    return parsed
