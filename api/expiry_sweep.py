"""The expiry sweep: coupons whose window has passed go on the road as ``expire``
changes, so each expired coupon is decided once by its template's actor and
becomes one ``expired`` event; partners' locks that ended unconfirmed go on it
as ``release`` write-offs (TenantKeys.locks), each one ``released`` event; and
coupons whose upstream channel issuance failed go on it as ``void`` changes.

Every api instance sweeps. That is safe because the request id of an expiry is
derived from the coupon (``change_request_id``): two instances asking for the
same expiry ask the same request, decided once. The schedule (TenantKeys.expiries)
is written by the commit that issues a coupon and emptied by the commit that
changes it, so a coupon stays due until its expiry is committed, whatever
process dies meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict

import redis.asyncio as aioredis
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from redis.exceptions import RedisError

from api.road import Road
from domain.claims import Coupon
from domain.coupon_changes import EXPIRY_GRACE_MS, change_request_id
from domain.events import now_ms
from domain.points import account_shard
from domain.road import COUPON, POINTS, WRITEOFF, Row
from ledger import writes
from ledger.channels import ChannelStore
from ledger.keys import TENANTS, TenantKeys
from ledger.points import PointsStore

log = logging.getLogger("carnival.api.expiry")

# Coupons read per tenant per step: one road submission per template of them.
SWEEP_BATCH = 1000
# A coupon asked for is not asked again before this, unless still due then (its
# request lost, or the dispatcher slow): the road decides duplicates once anyway.
RESEND_AFTER_S = 30.0
# States in which a coupon can still be spent (and so must be voided).
USABLE = frozenset({"available", "locked"})
CHANNEL_FAILED_NOTE = "the upstream channel did not issue this coupon"


class ExpirySweep:
    def __init__(self, redis: aioredis.Redis, road: Road, every_s: float) -> None:
        self._redis = redis
        self._road = road
        self._every_s = every_s
        self._asked: dict[str, float] = {}  # coupon id -> when its expiry was last sent
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        await self._index_tenants()
        while True:
            try:
                await self.sweep()
            except (RedisError, KafkaError, OSError) as exc:
                log.warning("expiry sweep failed (%s); next try in %.1fs", exc, self._every_s)
            await asyncio.sleep(self._every_s)

    async def _index_tenants(self) -> None:
        """Put tenants created before the tenant index existed into it (a data
        directory of an earlier version); once per start, off the request path."""
        try:
            async for key in self._redis.scan_iter(match=TenantKeys("*").record, count=1000):
                tenant_id = key.decode().split("{t:", 1)[1].split("}", 1)[0]
                async with self._redis.pipeline(transaction=False) as pipe:
                    writes.index_tenant(pipe, tenant_id)
                    await pipe.execute()
        except RedisError as exc:
            log.warning("could not index the tenants (%s); the sweep sees new ones only", exc)

    async def sweep(self) -> int:
        """Ask for the expiry of every coupon due now; returns how many were asked."""
        monotonic = time.monotonic()
        self._asked = {k: t for k, t in self._asked.items() if monotonic - t < RESEND_AFTER_S}
        asked = 0
        for raw in await self._redis.smembers(TENANTS):
            asked += await self._sweep_tenant(raw.decode(), monotonic)
        return asked + await self._sweep_channel_failures(monotonic)

    async def _sweep_channel_failures(self, monotonic: float) -> int:
        """Void each coupon whose upstream issuance failed (ledger/channels.py): the
        shopper must not hold a coupon that does not exist where it is spent. One
        leaves the list once its coupon is no longer usable, whoever changed it."""
        channels = ChannelStore(self._redis)
        settled: list[str] = []
        rows: defaultdict[tuple[str, str], list[Row]] = defaultdict(list)
        members = await channels.to_void(SWEEP_BATCH)
        parts = [member.split("/", 2) for member in members]
        pipe = self._redis.pipeline(transaction=False)
        for tenant_id, _, coupon_id in parts:
            pipe.hget(TenantKeys(tenant_id).coupons, coupon_id)
        raws = await pipe.execute() if parts else []
        for member, (tenant_id, template_id, coupon_id), raw in zip(
            members, parts, raws, strict=True
        ):
            coupon = _coupon(raw)
            if coupon is None or coupon.state not in USABLE:
                settled.append(member)
            elif f"void:{coupon_id}" not in self._asked:
                body = {"op": "void", "coupon": coupon_id, "note": CHANNEL_FAILED_NOTE}
                request_id = change_request_id("void", coupon_id)
                rows[(tenant_id, template_id)].append((coupon.user_id, request_id, 0, body))
                self._asked[f"void:{coupon_id}"] = monotonic
        await channels.voided(settled)
        for (tenant_id, template_id), batch in rows.items():
            await self._road.submit(COUPON, tenant_id, template_id, batch)
        return sum(len(batch) for batch in rows.values())

    async def _sweep_tenant(self, tenant_id: str, monotonic: float) -> int:
        return (
            await self._sweep_expiries(tenant_id, monotonic)
            + await self._sweep_locks(tenant_id, monotonic)
            + await self._sweep_points(tenant_id, monotonic)
        )

    async def _sweep_points(self, tenant_id: str, monotonic: float) -> int:
        """Ask each account whose soonest lot expired to expire what is due. The
        request id is made of that expiry instant, so a sweep that runs twice or
        dies and runs again asks once; the account's actor writes one ``expire``
        entry per lot (domain.points.expire_due), and the commit moves the
        account's place in the schedule to its next expiry."""
        due = await PointsStore(self._redis).due(tenant_id, now_ms() - EXPIRY_GRACE_MS, SWEEP_BATCH)
        by_shard: defaultdict[str, list[Row]] = defaultdict(list)
        for user_id, expires_at in due:
            asked = f"points:{tenant_id}:{user_id}:{expires_at}"
            if asked in self._asked:
                continue
            self._asked[asked] = monotonic
            row: Row = (user_id, f"expire:{expires_at}", 0, {"op": "expire"})
            by_shard[account_shard(user_id)].append(row)
        for shard, rows in by_shard.items():
            await self._road.submit(POINTS, tenant_id, shard, rows)
        return sum(len(rows) for rows in by_shard.values())

    async def _sweep_locks(self, tenant_id: str, monotonic: float) -> int:
        """Release every lock that ended unconfirmed: its coupon and the budgets it
        reserved come back. The request id is the lock's (coupon and lock time), so
        a release asked twice is decided once, and a lock taken again since (a new
        lock time) is not released by an old one's request. Asked a grace period
        after the end, as expiries are: an actor whose clock is behind this one's
        would refuse a release it sees as early, and that refusal is final."""
        keys = TenantKeys(tenant_id)
        due = [
            i.decode()
            for i in await self._redis.zrangebyscore(
                keys.locks, 0, now_ms() - EXPIRY_GRACE_MS, start=0, num=SWEEP_BATCH
            )
        ]
        fresh = [i for i in due if f"lock:{i}" not in self._asked]
        by_template: defaultdict[str, list[Row]] = defaultdict(list)
        for raw in await self._redis.hmget(keys.coupons, fresh) if fresh else []:
            coupon = _coupon(raw)
            if coupon is None or coupon.lock is None:
                continue
            lock = coupon.lock
            body = {
                "op": "release",
                "coupon": coupon.coupon_id,
                "order_id": lock.order_id,
                "expired": True,
            }
            by_template[coupon.template_id].append(
                (lock.partner_id, f"unlock-{coupon.coupon_id}-{lock.locked_at}", 0, body)
            )
            self._asked[f"lock:{coupon.coupon_id}"] = monotonic
        for template_id, rows in by_template.items():
            await self._road.submit(WRITEOFF, tenant_id, template_id, rows)
        return sum(len(rows) for rows in by_template.values())

    async def _sweep_expiries(self, tenant_id: str, monotonic: float) -> int:
        keys = TenantKeys(tenant_id)
        due_before = now_ms() - EXPIRY_GRACE_MS
        asked, offset = 0, 0
        while True:
            ids = [
                i.decode()
                for i in await self._redis.zrangebyscore(
                    keys.expiries, 0, due_before, start=offset, num=SWEEP_BATCH
                )
            ]
            offset += len(ids)
            fresh = [i for i in ids if i not in self._asked]
            by_template: defaultdict[str, list[Coupon]] = defaultdict(list)
            for raw in await self._redis.hmget(keys.coupons, fresh) if fresh else []:
                if (coupon := _coupon(raw)) is not None:
                    by_template[coupon.template_id].append(coupon)
            for template_id, coupons in by_template.items():
                rows: list[Row] = [
                    (
                        c.user_id,
                        change_request_id("expire", c.coupon_id),
                        0,
                        {"op": "expire", "coupon": c.coupon_id},
                    )
                    for c in coupons
                ]
                await self._road.submit(COUPON, tenant_id, template_id, rows)
                self._asked.update((c.coupon_id, monotonic) for c in coupons)
                asked += len(rows)
            if len(ids) < SWEEP_BATCH:
                return asked


def _coupon(raw: bytes | None) -> Coupon | None:
    if raw is None:  # scheduled but never written: nothing to expire
        return None
    try:
        return Coupon.model_validate_json(raw)
    except ValidationError:
        log.error("coupon record unreadable; not expired: %.200r", raw)
        return None
