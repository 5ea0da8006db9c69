"""Share links and referral bindings in Redis (the api's async half).

Each write is one command on one key, so each is atomic on its own and none
needs a script: a link is the same value however often it is written, a
binding is HSETNX (the first referral of a friend in an activity wins), and so
is the template a coupon reward is asked from (the first rule's template wins,
so a rule edited between two acceptances cannot grant a second coupon).

Whether a friend took part in an activity (``participated``, the conversion)
is read from the counters the deciding kinds commit, never kept twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from domain.activity import CLAIM_KINDS, Activity
from domain.shares import ReferralRule, Side
from ledger import writes
from ledger.keys import ActivityKeys, TemplateKeys, TenantKeys, share_link_key


@dataclass(frozen=True, slots=True)
class ShareLink:
    code: str
    tenant_id: str
    activity_id: str
    advocate_id: str
    channel: str


class ShareStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def save_link(self, link: ShareLink) -> ShareLink:
        """Store a link; returns what the code names (the stored one if the code
        was already taken: a hash collision, which the caller refuses)."""
        value = orjson.dumps([link.tenant_id, link.activity_id, link.advocate_id, link.channel])
        key = share_link_key(link.code)
        if await self.redis.set(key, value, nx=True):
            return link
        stored = await self.link(link.code)
        return stored if stored is not None else link

    async def link(self, code: str) -> ShareLink | None:
        raw = await self.redis.get(share_link_key(code))
        if raw is None:
            return None
        tenant_id, activity_id, advocate_id, channel = orjson.loads(raw)
        return ShareLink(code, tenant_id, activity_id, advocate_id, channel)

    async def bind(self, link: ShareLink, friend_id: str) -> str:
        """Bind the friend to the link's advocate in its activity unless they are
        bound already; returns the code that holds the binding (the first one)."""
        key = ActivityKeys(link.tenant_id, link.activity_id).referrals
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(key, friend_id, link.code)
        pipe.hget(key, friend_id)
        _, code = await pipe.execute()
        return code.decode()

    async def participated(self, activity: Activity, user_id: str) -> bool:
        """Whether the shopper took part in the activity, the one definition of a
        referral's conversion: a decided draw in a lottery (the pool's commit
        counts only draws it accepted), or a coupon claimed from a template a
        claim page or flash sale offers (the claim commit counts a shopper's own
        claims, issued ones only, not an operator's grants)."""
        if activity.kind in CLAIM_KINDS:
            keys = [TemplateKeys(activity.tenant_id, t).users for t in activity.templates]
        else:
            keys = [ActivityKeys(activity.tenant_id, activity.id).users]
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, user_id)
        return any(int(n or 0) > 0 for n in await pipe.execute())

    async def reward_template(
        self, link: ShareLink, friend_id: str, side: Side, template_id: str
    ) -> str:
        """The template this side's coupon reward is asked from: ``template_id``
        the first time, the first one ever after (HSETNX)."""
        key = ActivityKeys(link.tenant_id, link.activity_id).referral_coupons
        field = f"{friend_id}\n{side}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(key, field, template_id)
        pipe.hget(key, field)
        _, pinned = await pipe.execute()
        return pinned.decode()

    async def rule(self, tenant_id: str) -> ReferralRule | None:
        raw = await self.redis.get(TenantKeys(tenant_id).referral_rule)
        return None if raw is None else ReferralRule.model_validate_json(raw)

    async def save_rule(self, tenant_id: str, rule: ReferralRule, who: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(TenantKeys(tenant_id).referral_rule, rule.model_dump_json())
        subject = ":".join(
            str(v)
            for v in (
                rule.advocate_points,
                rule.friend_points,
                rule.advocate_template_id or "",
                rule.friend_template_id or "",
            )
        )
        writes.audit(pipe, tenant_id, who, "referral_rule.saved", subject, 0)
        await pipe.execute()
