"""The actor's side of the ledger for coupon changes (void, expire): read the
coupons a batch names, commit its decisions (ledger/commit_coupon_changes.lua)
through the shared ``Committer``, in decision order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import NamedTuple

import redis.asyncio as aioredis

from ledger.committer import Committer, Script
from ledger.keys import TemplateKeys, TenantKeys

COMMIT_CHANGES = Script((Path(__file__).parent / "commit_coupon_changes.lua").read_text())


class ChangeEntry(NamedTuple):
    """One decision as the commit script needs it."""

    request_key: str
    outcome: bytes
    coupon_id: str  # "" when the request named none
    before: bytes  # the coupon's JSON the decision was made on; b"" for none
    after: bytes  # its JSON after the change; b"" when refused
    unschedule: str  # "1": take the coupon off the expiry schedule


class CouponChangeLedger:
    def __init__(self, reads: aioredis.Redis, commits: Committer) -> None:
        self._redis = reads
        self._commits = commits

    async def lookup(
        self, tenant_id: str, template_id: str, request_keys: list[str], coupon_ids: list[str]
    ) -> tuple[list[bytes | None], dict[str, bytes]]:
        """The outcomes already decided and the coupons' JSON (absent ones left
        out), in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(TemplateKeys(tenant_id, template_id).changes, request_keys)
        if coupon_ids:
            pipe.hmget(TenantKeys(tenant_id).coupons, coupon_ids)
        outcomes, *found = await pipe.execute()
        coupons = {}
        for coupon_id, raw in zip(coupon_ids, found[0] if coupon_ids else [], strict=True):
            if raw is not None:
                coupons[coupon_id] = raw
        return outcomes, coupons

    def commit(
        self, tenant_id: str, template_id: str, entries: list[ChangeEntry]
    ) -> asyncio.Future[list[bytes]]:
        """Queue the batch's commit (synchronous: decision order is commit order).
        The future's result is ``[b"ok", changed]`` or ``[b"stale", why]``."""
        tenant = TenantKeys(tenant_id)
        args: list[str | bytes | int] = [len(entries)]
        for entry in entries:
            args.extend(entry)
        return self._commits.submit(
            COMMIT_CHANGES,
            [TemplateKeys(tenant_id, template_id).changes, tenant.coupons, tenant.expiries],
            args,
        )
