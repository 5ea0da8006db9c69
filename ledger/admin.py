"""The ledger for synchronous tools: the launcher's demo seed, the CLI, tests and benches.

Writes come from ``ledger.writes`` (the same the api's store runs); reads are
the figures tools check against (totals, outcomes).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import orjson
import redis
from redis.exceptions import WatchError

from domain import points
from domain.activity import Activity
from domain.claims import Coupon
from domain.coupons import CouponTemplate
from domain.events import now_ms
from domain.points import Account, Entry, PointsRules
from domain.tokens import hash_api_key, new_api_key, new_secret
from ledger import writes
from ledger.accounts import rules_of
from ledger.keys import ActivityKeys, TemplateKeys, TenantKeys, api_key_key

# A points entry seeded by a tool (`SyncLedger.grant_points`) is written straight into
# Redis: no request decided it and no event carries it, so what compares the ledger
# with the event stream (carnival reconcile) leaves it out. It is told apart by its
# key and source together: no decided request writes source "admin".
SEED_KEY_PREFIX = "seed:"
SEED_REASON = "seed"
SEED_SOURCE = "admin"


def is_seeded(entry: Mapping[str, Any]) -> bool:
    """Whether a points entry (domain.points.Entry as JSON) was seeded by a tool."""
    return entry["source_id"] == SEED_SOURCE and entry["key"].startswith(SEED_KEY_PREFIX)


class SyncLedger:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    @classmethod
    def from_url(cls, url: str) -> SyncLedger:
        return cls(redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5))

    def close(self) -> None:
        self.redis.close()

    def create_tenant(self, tenant_id: str, name: str) -> None:
        """Idempotent: an existing tenant keeps its shopper secret."""
        pipe = self.redis.pipeline(transaction=True)
        writes.create_tenant(pipe, tenant_id, name, new_secret())
        pipe.execute()

    def create_api_key(
        self, tenant_id: str, role: str, name: str, institution_id: str | None = None
    ) -> str:
        """A new key's plaintext (Redis keeps only its hash)."""
        key = new_api_key()
        pipe = self.redis.pipeline(transaction=True)
        writes.create_api_key(pipe, hash_api_key(key), tenant_id, role, name, institution_id)
        pipe.execute()
        return key

    def api_key_exists(self, key: str) -> bool:
        return bool(self.redis.exists(api_key_key(hash_api_key(key))))

    def shopper_secret(self, tenant_id: str) -> bytes | None:
        return self.redis.hget(TenantKeys(tenant_id).record, "shopper_secret")

    def install_activity(self, activity: Activity) -> None:
        """Write config and initial stock; stock already on the ledger is kept."""
        pipe = self.redis.pipeline(transaction=True)
        writes.install_activity(pipe, activity)
        pipe.execute()

    def install_template(self, template: CouponTemplate) -> None:
        """Write config and stock; stock already on the ledger is kept."""
        pipe = self.redis.pipeline(transaction=True)
        writes.install_template(pipe, template)
        pipe.execute()

    def claim_totals(self, tenant_id: str, template_id: str) -> dict[str, int | None]:
        """A template's claim figures: coupons left (None: unlimited), issued, outcomes."""
        keys = TemplateKeys(tenant_id, template_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(keys.left)
        pipe.get(keys.issued)
        pipe.hlen(keys.outcomes)
        left, issued, outcomes = pipe.execute()
        return {
            "left": int(left) if left is not None else None,
            "issued": int(issued or 0),
            "outcomes": int(outcomes),
        }

    def claim_outcomes(self, tenant_id: str, template_id: str) -> dict[str, dict]:
        """Every decided claim of a template, by request key."""
        raw = self.redis.hgetall(TemplateKeys(tenant_id, template_id).outcomes)
        return {k.decode(): orjson.loads(v) for k, v in raw.items()}

    def coupons(self, tenant_id: str) -> dict[str, Coupon]:
        raw = self.redis.hgetall(TenantKeys(tenant_id).coupons)
        return {k.decode(): Coupon.model_validate_json(v) for k, v in raw.items()}

    def wallets(self, tenant_id: str) -> dict[str, list[str]]:
        """User id -> the ids of the coupons in the user's wallet, oldest first."""
        raw = self.redis.hgetall(TenantKeys(tenant_id).wallets)
        return {k.decode(): v.decode().split("\n") for k, v in raw.items()}

    def grant_points(
        self, tenant_id: str, balances: dict[str, int], at_ms: int | None = None
    ) -> None:
        """Seed points (tools and tests): one adjustment lot per user, earned at
        ``at_ms`` (now by default; its expiry follows the tenant's rules), each
        account written under WATCH so a commit moving it meanwhile makes this retry."""
        tenant = TenantKeys(tenant_id)
        for user_id, amount in balances.items():
            with self.redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        pipe.watch(tenant.points_accounts, tenant.points)
                        raw = pipe.hget(tenant.points_accounts, user_id)
                        legacy = pipe.hget(tenant.points, user_id)
                        rules = pipe.get(tenant.points_rules)
                        at = now_ms() if at_ms is None else at_ms
                        account = Account.of(raw, int(legacy or 0))
                        account, entry = points.earn(
                            account,
                            f"{SEED_KEY_PREFIX}{at}:{secrets.token_hex(4)}",
                            amount,
                            at,
                            rules_of(rules).expiry,
                            SEED_REASON,
                            SEED_SOURCE,
                            kind="adjust",
                        )
                        pipe.multi()
                        writes.put_account(pipe, tenant_id, user_id, account, [entry])
                        pipe.execute()
                        break
                    except WatchError:
                        continue

    def points(self, tenant_id: str) -> dict[str, int]:
        raw = self.redis.hgetall(TenantKeys(tenant_id).points)
        return {k.decode(): int(v) for k, v in raw.items()}

    def points_rules(self, tenant_id: str, rules: PointsRules) -> None:
        pipe = self.redis.pipeline(transaction=True)
        writes.put_points_rules(pipe, tenant_id, rules)
        pipe.execute()

    def points_accounts(self, tenant_id: str) -> dict[str, Account]:
        raw = self.redis.hgetall(TenantKeys(tenant_id).points_accounts)
        return {k.decode(): Account.model_validate_json(v) for k, v in raw.items()}

    def points_log(self, tenant_id: str, user_id: str) -> list[Entry]:
        raws = self.redis.lrange(TenantKeys(tenant_id).points_log(user_id), 0, -1)
        return [Entry.model_validate_json(raw) for raw in raws]

    def points_outcomes(self, tenant_id: str) -> dict[str, dict]:
        raw = self.redis.hgetall(TenantKeys(tenant_id).points_outcomes)
        return {k.decode(): orjson.loads(v) for k, v in raw.items()}

    def outcomes(self, tenant_id: str, activity_id: str) -> dict[str, dict]:
        """Every decided outcome of an activity, by request key."""
        raw = self.redis.hgetall(ActivityKeys(tenant_id, activity_id).outcomes)
        return {k.decode(): orjson.loads(v) for k, v in raw.items()}

    def user_draws(self, tenant_id: str, activity_id: str) -> dict[str, int]:
        raw = self.redis.hgetall(ActivityKeys(tenant_id, activity_id).users)
        return {k.decode(): int(v) for k, v in raw.items()}

    def totals(self, tenant_id: str, activity_id: str) -> dict[str, int]:
        """Ledger figures used to reconcile with the outcome stream."""
        keys = ActivityKeys(tenant_id, activity_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(keys.stock)
        pipe.get(keys.draws)
        pipe.hlen(keys.outcomes)
        stock, draws, outcomes = pipe.execute()
        return {
            "draws": int(draws or 0),
            "outcomes": int(outcomes),
            **{f"stock:{k.decode()}": int(v) for k, v in stock.items()},
        }

    def delete_tenant_keys(self, tenant_id: str) -> int:
        """Remove every key of a tenant (benches clean up their own fresh tenant)."""
        removed = 0
        batch: list[bytes] = []
        for key in self.redis.scan_iter(match=f"{TenantKeys(tenant_id).tag}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += int(self.redis.unlink(*batch))
                batch = []
        if batch:
            removed += int(self.redis.unlink(*batch))
        return removed
