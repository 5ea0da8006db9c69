"""The actor's side of the ledger for write-offs: read what a batch of
redemptions is decided on (the template, its coupons, the budgets' counters),
commit its decisions (ledger/commit_writeoffs.lua) through the shared
``Committer``, in decision order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import NamedTuple

import redis.asyncio as aioredis

from ledger.committer import Committer, Script
from ledger.keys import TemplateKeys, TenantKeys

COMMIT_WRITEOFFS = Script((Path(__file__).parent / "commit_writeoffs.lua").read_text())


class WriteoffEntry(NamedTuple):
    """One decision as the commit script needs it."""

    request_key: str
    outcome: bytes
    coupon_id: str  # "" when the request named none
    before: bytes  # the coupon's JSON the decision was made on; b"" for none
    after: bytes  # its JSON after the write-off; b"" when refused
    order_key: str  # "<partner>:<order id>"
    way: str  # "+" a redemption, "-" a reversal, "" refused
    valid_until: int | str  # the coupon's, to schedule its expiry again on a reversal
    discount: int  # negative for a reversal: the budgets get it back
    budgets: str  # 1-based indexes of the budgets it spends from, comma separated


class WriteoffLookup(NamedTuple):
    config: bytes | None
    outcomes: list[bytes | None]
    coupons: dict[str, bytes]
    spent: list[int]  # per budget counter asked for


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
        budget_keys: list[str],
    ) -> WriteoffLookup:
        keys = TemplateKeys(tenant_id, template_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(keys.config)
        pipe.hmget(keys.writeoffs, request_keys)
        pipe.hmget(TenantKeys(tenant_id).coupons, coupon_ids or [""])
        pipe.mget(budget_keys or [keys.spent])
        config, outcomes, found, spent = await pipe.execute()
        coupons = {c: raw for c, raw in zip(coupon_ids, found, strict=False) if raw is not None}
        return WriteoffLookup(
            config, outcomes, coupons, [int(s or 0) for s in spent][: len(budget_keys)]
        )

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
                *(key for key, _ in budgets),
            ],
            args,
        )
