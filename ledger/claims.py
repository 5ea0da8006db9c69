"""The actor's side of the ledger for claims: load a template, look up a batch,
commit its decisions (ledger/commit_claims.lua). Same contract as
``ledger.pools``: reads on a connection pool, commits through the shared
``Committer`` in decision order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import NamedTuple

import redis.asyncio as aioredis

from domain.coupons import CouponTemplate
from domain.points import PointsRules
from ledger import accounts
from ledger.codes import CodeRecord
from ledger.committer import Committer
from ledger.keys import CodeKeys, TemplateKeys, TenantKeys

COMMIT_CLAIMS = accounts.script("commit_claims.lua")


class ClaimEntry(NamedTuple):
    """One decision as the commit script needs it."""

    request_key: str
    outcome: bytes
    coupon_id: str  # "" for a rejection
    coupon: bytes  # the Coupon's JSON; b"" for a rejection
    origin: str  # "c" a shopper's claim (counts toward the per-user limit), "g" a grant
    code: str = ""  # a coupon code claimed (then assigned in the same commit)
    code_batch: str = ""  # the code's batch, as the actor read it
    valid_until: int | str = ""  # the coupon's, scheduling its expiry; "" for none


@dataclass(frozen=True, slots=True)
class LoadedTemplate:
    config: bytes
    template: CouponTemplate
    left: int | None  # None: unlimited stock
    users: dict[str, int]  # user id -> coupons claimed
    head: str


@dataclass(frozen=True, slots=True)
class Lookup:
    config: bytes | None
    outcomes: list[bytes | None]
    codes: dict[str, CodeRecord]
    held: dict[str, accounts.HeldAccount]  # points accounts of the users who exchange
    rules: PointsRules


class ClaimLedger:
    def __init__(self, reads: aioredis.Redis, commits: Committer) -> None:
        self._redis = reads
        self._commits = commits

    async def load(self, tenant_id: str, template_id: str) -> LoadedTemplate | None:
        """Config, counters and chain head in one transaction; None for no such template."""
        keys = TemplateKeys(tenant_id, template_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(keys.config)
        pipe.get(keys.left)
        pipe.hgetall(keys.users)
        pipe.get(keys.head)
        config, left, users, head = await pipe.execute()
        if config is None:
            return None
        template = CouponTemplate.model_validate_json(config)
        limited = template.limits.stock is not None
        return LoadedTemplate(
            config,
            template,
            int(left or 0) if limited else None,
            {k.decode(): int(v) for k, v in users.items()},
            (head or b"").decode(),
        )

    async def lookup(
        self,
        tenant_id: str,
        template_id: str,
        request_keys: list[str],
        codes: list[str],
        users: list[str],
    ) -> Lookup:
        """The config, the outcomes already decided, the records of ``codes``
        (absent codes left out) and the points accounts of ``users`` (who
        exchange points), in one round trip."""
        keys = TemplateKeys(tenant_id, template_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(keys.config)
        pipe.hmget(keys.outcomes, request_keys)
        pipe.hmget(CodeKeys(tenant_id).codes, codes or ["-"])
        if users:
            accounts.read(pipe, tenant_id, users)
        config, outcomes, records, *points = await pipe.execute()
        found = {}
        for code, raw in zip(codes, records if codes else [], strict=True):
            if raw is not None:
                found[code] = CodeRecord.decode(code, raw)
        held, rules = {}, PointsRules()
        if users:
            raws, legacy, raw_rules = points
            held, rules = accounts.hold(users, raws, legacy), accounts.rules_of(raw_rules)
        return Lookup(config, outcomes, found, held, rules)

    def commit(
        self,
        template: CouponTemplate,
        entries: list[ClaimEntry],
        changes: list[accounts.AccountChange],
        decided_on: str,
        head: str,
    ) -> asyncio.Future[list[bytes]]:
        """Queue the batch's commit (synchronous: decision order is commit order).
        The future's result is ``[b"ok", issued]`` or ``[b"stale", why]``."""
        keys = TemplateKeys(template.tenant_id, template.id)
        tenant = TenantKeys(template.tenant_id)
        args: list[str | bytes | int] = [
            decided_on,
            head,
            template.version,
            template.limits.per_user,
            "1" if template.limits.stock is not None else "0",
            len(entries),
            len(changes),
        ]
        for entry in entries:
            args.extend(entry)
        args += accounts.args(changes)
        return self._commits.submit(
            COMMIT_CLAIMS,
            [
                keys.version,
                keys.head,
                keys.left,
                keys.users,
                keys.outcomes,
                keys.issued,
                tenant.coupons,
                tenant.wallets,
                CodeKeys(template.tenant_id).codes,
                tenant.expiries,
                *accounts.keys(template.tenant_id, changes),
            ],
            args,
        )
