"""Redis key layout of the ledger.

Every key of one tenant shares the hash tag ``{t:<tenant id>}``: the batch
commit script touches an activity's pool and the tenant's points balances in
one atomic step, so on Redis Cluster they must live in one slot. The price is
that one tenant's activities share a shard (see README, scale-out).
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "carnival"


@dataclass(frozen=True, slots=True)
class TenantKeys:
    tenant_id: str

    @property
    def tag(self) -> str:
        return f"{PREFIX}:{{t:{self.tenant_id}}}"

    @property
    def record(self) -> str:
        """Hash: name, shopper_secret."""
        return f"{self.tag}:tenant"

    @property
    def activities(self) -> str:
        return f"{self.tag}:activities"

    @property
    def points(self) -> str:
        """Hash: user id -> points balance."""
        return f"{self.tag}:points"

    @property
    def audit(self) -> str:
        """Stream of configuration changes."""
        return f"{self.tag}:audit"

    @property
    def templates(self) -> str:
        """Set of the tenant's coupon template ids."""
        return f"{self.tag}:templates"

    @property
    def coupons(self) -> str:
        """Hash: coupon id -> coupon JSON (domain.claims.Coupon), every source."""
        return f"{self.tag}:coupons"

    @property
    def wallets(self) -> str:
        """Hash: user id -> newline-separated ids of the user's coupons, oldest first."""
        return f"{self.tag}:wallets"

    def activity(self, activity_id: str) -> ActivityKeys:
        return ActivityKeys(self.tenant_id, activity_id)

    def template(self, template_id: str) -> TemplateKeys:
        return TemplateKeys(self.tenant_id, template_id)


@dataclass(frozen=True, slots=True)
class ActivityKeys:
    tenant_id: str
    activity_id: str

    @property
    def base(self) -> str:
        return f"{PREFIX}:{{t:{self.tenant_id}}}:a:{self.activity_id}"

    @property
    def config(self) -> str:
        return f"{self.base}:cfg"

    @property
    def version(self) -> str:
        """The config's version, beside it: the commit script refuses a batch decided
        under another version (an operator paused, edited or added stock)."""
        return f"{self.base}:ver"

    @property
    def head(self) -> str:
        """Token of the pool's last commit. Each commit names the head it was decided
        on and sets its own, so a batch decided on top of a refused one is refused too."""
        return f"{self.base}:head"

    @property
    def stock(self) -> str:
        """Hash: stock field -> remaining."""
        return f"{self.base}:stock"

    @property
    def users(self) -> str:
        """Hash: user id -> draws in total."""
        return f"{self.base}:users"

    def day(self, yyyymmdd: int) -> str:
        """Hash: user id -> draws on that UTC day (expires after two days)."""
        return f"{self.base}:day:{yyyymmdd}"

    @property
    def draws(self) -> str:
        return f"{self.base}:draws"

    @property
    def outcomes(self) -> str:
        """Hash: request key -> outcome event (JSON): one request, one outcome."""
        return f"{self.base}:out"

    @property
    def wins(self) -> str:
        """Hash: user id -> newline-separated request keys of the user's wins."""
        return f"{self.base}:wins"

    def pending(self, request_key: str) -> str:
        return f"{self.base}:pending:{request_key}"


@dataclass(frozen=True, slots=True)
class TemplateKeys:
    """A coupon template: its config and the counters its claims touch, which
    one actor owns (the claim kind, like an activity's pool for draws)."""

    tenant_id: str
    template_id: str

    @property
    def base(self) -> str:
        return f"{PREFIX}:{{t:{self.tenant_id}}}:ct:{self.template_id}"

    @property
    def config(self) -> str:
        return f"{self.base}:cfg"

    @property
    def version(self) -> str:
        """The config's version; the claim commit refuses a batch decided under another."""
        return f"{self.base}:ver"

    @property
    def head(self) -> str:
        """Token of the template's last claim commit (a chain, as for pools)."""
        return f"{self.base}:head"

    @property
    def left(self) -> str:
        """Coupons the template may still issue; absent = unlimited stock."""
        return f"{self.base}:left"

    @property
    def users(self) -> str:
        """Hash: user id -> coupons claimed from the template."""
        return f"{self.base}:users"

    @property
    def issued(self) -> str:
        """Coupons issued from the template by claims."""
        return f"{self.base}:issued"

    @property
    def outcomes(self) -> str:
        """Hash: request key -> claim outcome event (JSON): one request, one outcome."""
        return f"{self.base}:out"

    def pending(self, request_key: str) -> str:
        return f"{self.base}:pending:{request_key}"


def api_key_key(key_hash: str) -> str:
    return f"{PREFIX}:apikey:{key_hash}"


DISPATCHER_HEARTBEAT = f"{PREFIX}:heartbeat:dispatcher"
