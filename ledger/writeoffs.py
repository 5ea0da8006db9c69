"""The actor's side of the ledger for write-offs: read what a batch of
write-offs is decided on (the template, its coupons, the partners' budgets and
the budgets' counters),
commit its decisions (ledger/commit_writeoffs.lua) through the shared
``Committer``, in decision order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import NamedTuple

import redis.asyncio as aioredis

from ledger.committer import Committer, Script
from ledger.keys import CodeKeys, TemplateKeys, TenantKeys

COMMIT_WRITEOFFS = Script((Path(__file__).parent / "commit_writeoffs.lua").read_text())


class WriteoffEntry(NamedTuple):
    """One decision as the commit script needs it."""

    request_key: str
    outcome: bytes
    coupon_id: str  # "" when the request named none
    before: bytes  # the coupon's JSON the decision was made on; b"" for none
    after: bytes  # its JSON after the write-off; b"" when refused
    order_key: str  # "<partner>:<order id>"
    order: str  # "+" the coupon joins the order, "-" it leaves, "" neither
    expiry: str  # "+" back on the expiry schedule, "-" off it, "" neither
    valid_until: int | str  # the coupon's ("" for none), where "+" schedules it
    lock: str  # "+" on the lock schedule, "-" off it, "" neither
    lock_until: int | str  # where "+" schedules it
    redeemed: int  # the template's redeemed count changes by this
    spends: str  # "<1-based budget index>:<signed amount>,..."
    code: str = ""  # the code the coupon stands for, when its state changes
    code_before: str = ""  # its record as read
    code_after: str = ""  # its record after


class WriteoffLookup(NamedTuple):
    config: bytes | None
    outcomes: list[bytes | None]
    coupons: dict[str, bytes]
    partners: dict[str, bytes]  # partner id -> Partner JSON, for their budgets
    spent: dict[str, int]  # per budget counter asked for


class WriteoffLedger:
    def __init__(self, reads: aioredis.Redis, commits: Committer) -> None:
        self._redis = reads
        self._commits = commits

    async def lookup(
        self,
        tenant_id: str,
        template_id: str,
        request_keys: list[str],
        coupon_ids: list[str],
        partner_ids: list[str],
        budget_keys: list[str],
    ) -> WriteoffLookup:
        keys = TemplateKeys(tenant_id, template_id)
        tenant = TenantKeys(tenant_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(keys.config)
        pipe.hmget(keys.writeoffs, request_keys)
        pipe.hmget(tenant.coupons, coupon_ids or [""])
        pipe.hmget(tenant.partners, partner_ids or [""])
        pipe.mget(budget_keys or [keys.spent])
        config, outcomes, found, partners, spent = await pipe.execute()
        return WriteoffLookup(
            config,
            outcomes,
            {c: raw for c, raw in zip(coupon_ids, found, strict=False) if raw is not None},
            {p: raw for p, raw in zip(partner_ids, partners, strict=False) if raw is not None},
            {k: int(v or 0) for k, v in zip(budget_keys, spent, strict=False)},
        )

    async def codes(self, tenant_id: str, codes: list[str]) -> dict[str, bytes]:
        """The records of the codes some coupons of a batch stand for."""
        if not codes:
            return {}
        found = await self._redis.hmget(CodeKeys(tenant_id).codes, codes)
        return {c: raw for c, raw in zip(codes, found, strict=True) if raw is not None}

    def commit(
        self,
        tenant_id: str,
        template_id: str,
        entries: list[WriteoffEntry],
        budgets: list[tuple[str, int]],
    ) -> asyncio.Future[list[bytes]]:
        """Queue the batch's commit; ``budgets``: (counter key, limit) in the order
        the entries' indexes name them. Result ``[b"ok", redeemed]`` or ``[b"stale", why]``."""
        keys = TemplateKeys(tenant_id, template_id)
        tenant = TenantKeys(tenant_id)
        args: list[str | bytes | int] = [len(entries), len(budgets)]
        args += [limit for _, limit in budgets]
        for entry in entries:
            args.extend(entry)
        return self._commits.submit(
            COMMIT_WRITEOFFS,
            [
                keys.writeoffs,
                tenant.coupons,
                tenant.expiries,
                tenant.orders,
                keys.redeemed,
                tenant.locks,
                CodeKeys(tenant_id).codes,
                *(key for key, _ in budgets),
            ],
            args,
        )
