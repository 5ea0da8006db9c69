"""The api's side of the ledger for coupon templates and wallets (asynchronous).

Key names come from ``ledger.keys`` and writes from ``ledger.writes``, as in
``ledger.store``; every read is addressed through the caller's tenant, so
another tenant's template or coupon is not even looked up. Coupons get into
wallets only through the claim commit (ledger/commit_claims.lua): here they
are only read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from domain.claims import Coupon
from domain.coupons import CouponTemplate
from ledger import writes
from ledger.keys import TemplateKeys, TenantKeys
from ledger.store import VersionConflict


@dataclass(frozen=True, slots=True)
class TemplateCounters:
    left: int | None  # coupons it may still issue; None = unlimited stock
    issued: int  # coupons issued by claims so far


class TemplateStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    # -- templates ----------------------------------------------------------------
    async def template(self, tenant_id: str, template_id: str) -> CouponTemplate | None:
        raw = await self.redis.get(TemplateKeys(tenant_id, template_id).config)
        return CouponTemplate.model_validate_json(raw) if raw else None

    async def templates(self, tenant_id: str) -> list[CouponTemplate]:
        """Every template of the tenant, by id."""
        members = await self.redis.smembers(TenantKeys(tenant_id).templates)
        found = await self.templates_by_id(tenant_id, sorted(m.decode() for m in members))
        return list(found.values())

    async def templates_by_id(
        self, tenant_id: str, template_ids: Sequence[str]
    ) -> dict[str, CouponTemplate]:
        """The templates that exist among ``template_ids``, in the order given."""
        if not template_ids:
            return {}
        raws = await self.redis.mget([TemplateKeys(tenant_id, i).config for i in template_ids])
        return {
            i: CouponTemplate.model_validate_json(raw)
            for i, raw in zip(template_ids, raws, strict=True)
            if raw
        }

    async def counters(self, tenant_id: str, template_ids: Sequence[str]) -> list[TemplateCounters]:
        """Stock left and coupons issued of each template, for display (one MGET:
        the keys share the tenant's hash tag)."""
        if not template_ids:
            return []
        names = []
        for template_id in template_ids:
            keys = TemplateKeys(tenant_id, template_id)
            names += [keys.left, keys.issued]
        raws = await self.redis.mget(names)
        return [
            TemplateCounters(int(left) if left is not None else None, int(issued or 0))
            for left, issued in zip(raws[::2], raws[1::2], strict=True)
        ]

    async def create(self, template: CouponTemplate, who: str) -> bool:
        """False when the id is taken in this tenant."""
        keys = TemplateKeys(template.tenant_id, template.id)
        if not await self.redis.set(keys.config, template.model_dump_json(), nx=True):
            return False
        pipe = self.redis.pipeline(transaction=True)
        writes.install_template(pipe, template)
        writes.audit(
            pipe, template.tenant_id, who, "template.created", template.id, template.version
        )
        await pipe.execute()
        return True

    async def replace(
        self,
        before: CouponTemplate,
        after: CouponTemplate,
        who: str,
        action: str,
        stock_added: int | None = None,
        stock_reset: bool = False,
    ) -> None:
        """Write ``after`` only if the stored config is still ``before`` (same
        version); stock added, or the whole stock of a template that never ran,
        goes to the ledger in the same transaction. Raises ``VersionConflict``."""
        keys = TemplateKeys(after.tenant_id, after.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(keys.config)
                raw = await pipe.get(keys.config)
                stored = CouponTemplate.model_validate_json(raw) if raw else None
                if stored is None or stored.version != before.version:
                    raise VersionConflict(after.id)
                pipe.multi()
                writes.put_template(pipe, after)
                if stock_added is not None:
                    writes.add_template_stock(pipe, after, stock_added)
                if stock_reset:
                    writes.reset_template_stock(pipe, after)
                writes.audit(pipe, after.tenant_id, who, action, after.id, after.version)
                await pipe.execute()
            except WatchError as exc:
                raise VersionConflict(after.id) from exc

    # -- wallets --------------------------------------------------------------------
    async def coupon(self, tenant_id: str, coupon_id: str) -> Coupon | None:
        raw = await self.redis.hget(TenantKeys(tenant_id).coupons, coupon_id)
        return Coupon.model_validate_json(raw) if raw else None

    async def coupons(self, tenant_id: str, coupon_ids: list[str]) -> list[Coupon]:
        """These coupons, in this order, in one round trip; unknown ids left out."""
        if not coupon_ids:
            return []
        raws = await self.redis.hmget(TenantKeys(tenant_id).coupons, coupon_ids)
        return [Coupon.model_validate_json(raw) for raw in raws if raw]

    async def wallet(self, tenant_id: str, user_id: str) -> list[Coupon]:
        """The user's coupons, oldest first."""
        joined = await self.redis.hget(TenantKeys(tenant_id).wallets, user_id)
        return await self.coupons(tenant_id, joined.decode().split("\n")) if joined else []
