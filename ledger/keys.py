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
    def api_keys(self) -> str:
        """Hash: key id (a prefix of the key's hash) -> the key's record JSON (name,
        role, institution, created): what an admin lists and revokes."""
        return f"{self.tag}:apikeys"

    @property
    def points(self) -> str:
        """Hash: user id -> points balance, written with the account it is the sum of."""
        return f"{self.tag}:points"

    @property
    def referral_rule(self) -> str:
        """String: the tenant's referral reward rule (domain.shares.ReferralRule JSON)."""
        return f"{self.tag}:referral-rule"

    @property
    def points_accounts(self) -> str:
        """Hash: user id -> account JSON (domain.points.Account: lots, streak)."""
        return f"{self.tag}:points:accounts"

    def points_log(self, user_id: str) -> str:
        """List: the user's ledger entries (domain.points.Entry JSON), oldest first."""
        return f"{self.tag}:points:log:{user_id}"

    @property
    def points_outcomes(self) -> str:
        """Hash: request key -> outcome of a points request (sign-in, order, ...)."""
        return f"{self.tag}:points:outcomes"

    @property
    def points_orders(self) -> str:
        """Hash: order ref -> "<user id>|<amount cents>": who an order's rebate is for,
        so a refund finds it and an order id posted again for another shopper or
        amount is refused."""
        return f"{self.tag}:points:orders"

    def points_pending(self, request_key: str) -> str:
        return f"{self.tag}:points:pending:{request_key}"

    @property
    def points_rules(self) -> str:
        """String: the tenant's PointsRules JSON."""
        return f"{self.tag}:points:rules"

    @property
    def points_expiries(self) -> str:
        """Sorted set: user id -> when the user's soonest lot expires (the expiry job's work)."""
        return f"{self.tag}:points:expiries"

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

    @property
    def partners(self) -> str:
        """Hash: partner id -> Partner JSON (domain.partners)."""
        return f"{self.tag}:partners"

    @property
    def partner_secrets(self) -> str:
        """Hash: partner id -> HMAC secret (HMAC-SHA256 partners only)."""
        return f"{self.tag}:partner-secrets"

    def nonce(self, suffix: str) -> str:
        """A partner request's nonce, remembered for the signature window."""
        return f"{self.tag}:nonce:{suffix}"

    @property
    def partner_requests(self) -> str:
        """Hash: "<partner id>:<request id>" -> what the request stands for (JSON:
        op, digest of its body, its template or coupons): a partner's idempotency keys."""
        return f"{self.tag}:partner-requests"

    @property
    def orders(self) -> str:
        """Hash: "<partner id>:<order id>" -> newline-separated ids of the coupons
        redeemed or locked for that order, so a confirm, release or refund finds them."""
        return f"{self.tag}:orders"

    @property
    def expiries(self) -> str:
        """Sorted set: coupon id -> valid_until, for every available coupon that has
        one; the expiry sweep reads what is due, the change that ends it removes it."""
        return f"{self.tag}:expiries"

    @property
    def locks(self) -> str:
        """Sorted set: coupon id -> the end of its lock, for every locked coupon; the
        sweep releases what is due, the confirm or release that ends it removes it."""
        return f"{self.tag}:locks"

    def partner_spent(self, partner_id: str, yyyymmdd: int | None = None) -> str:
        """A partner's discount cents spent on redemptions (net of give-backs), in
        all or on one UTC day."""
        day = "" if yyyymmdd is None else f":{yyyymmdd}"
        return f"{self.tag}:partner:{partner_id}:spent{day}"

    def partner_redemptions(self, partner_id: str, yyyymmdd: int | None = None) -> str:
        """A partner's redemptions (locks count until released), in all or on one day."""
        day = "" if yyyymmdd is None else f":{yyyymmdd}"
        return f"{self.tag}:partner:{partner_id}:redemptions{day}"

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

    @property
    def referrals(self) -> str:
        """Hash: friend id -> the share code that referred them (the first one wins)."""
        return f"{self.base}:referrals"

    @property
    def referral_coupons(self) -> str:
        """Hash: "<friend>\n<side>" -> the template that side's coupon reward is
        asked from (the first rule's wins)."""
        return f"{self.referrals}:coupons"

    def day(self, yyyymmdd: int) -> str:
        """Hash: user id -> draws on that local day (expires after two days)."""
        return f"{self.base}:day:{yyyymmdd}"

    def month(self, yyyymm: int) -> str:
        """Hash: user id -> draws in that local month (expires after two months)."""
        return f"{self.base}:month:{yyyymm}"

    def bonus(self, period: int | None = None) -> str:
        """Hash: user id -> chances bought or granted (the quota account's top-ups),
        in all, or on one local day (yyyymmdd) or month (yyyymm)."""
        return f"{self.base}:bonus" if period is None else f"{self.base}:bonus:{period}"

    @property
    def quota_outcomes(self) -> str:
        """Hash: request key -> outcome of a chances top-up (bought or granted)."""
        return f"{self.base}:quota-outcomes"

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

    @property
    def writeoffs(self) -> str:
        """Hash: request key -> Writeoff event (a partner's redemption or reversal)."""
        return f"{self.base}:wo"

    @property
    def redeemed(self) -> str:
        """Coupons of this template redeemed (net of reversals)."""
        return f"{self.base}:redeemed"

    @property
    def spent(self) -> str:
        """Discount cents its redemptions granted (net of reversals): the budget's burn."""
        return f"{self.base}:spent"

    def spent_on(self, yyyymmdd: int) -> str:
        """Discount cents granted on one UTC day, for the daily budget."""
        return f"{self.base}:spent:{yyyymmdd}"

    @property
    def changes(self) -> str:
        """Hash: request key -> CouponChange event of a change to one of its coupons."""
        return f"{self.base}:chg"

    def change_pending(self, request_key: str) -> str:
        return f"{self.base}:chg-pending:{request_key}"


# Set of every tenant id: the expiry sweep visits each tenant's expiries.
TENANTS = f"{PREFIX}:tenants"
# Hash: partner id -> tenant id. A signed request names only its partner.
PARTNER_TENANTS = f"{PREFIX}:partner-tenants"


def api_key_key(key_hash: str) -> str:
    return f"{PREFIX}:apikey:{key_hash}"


def share_link_key(code: str) -> str:
    """String: what a share code names (JSON: tenant, activity, advocate, channel).
    Not under a tenant's tag: the landing page knows only the code."""
    return f"{PREFIX}:share:{code}"


DISPATCHER_HEARTBEAT = f"{PREFIX}:heartbeat:dispatcher"
RELAY_HEARTBEAT = f"{PREFIX}:heartbeat:relay"


@dataclass(frozen=True, slots=True)
class CodeKeys:
    """A tenant's coupon codes and code batches.

    One hash holds every code of the tenant, whatever its batch: a code is
    unique in the tenant because it is a field of that hash (``HSETNX``), and a
    till's lookup is one ``HGET``.
    """

    tenant_id: str

    @property
    def base(self) -> str:
        return f"{PREFIX}:{{t:{self.tenant_id}}}"

    @property
    def codes(self) -> str:
        """Hash: code (canonical) -> ``<batch id>|<state>|<user id>|<coupon id>``."""
        return f"{self.base}:codes"

    @property
    def batches(self) -> str:
        """Sorted set: batch id, scored by its creation time (epoch ms)."""
        return f"{self.base}:code-batches"

    def batch(self, batch_id: str) -> str:
        """Hash: the batch's fields (domain.code_batches.CodeBatch), the pattern as JSON."""
        return f"{self.base}:cb:{batch_id}"

    def batch_codes(self, batch_id: str) -> str:
        """List: the batch's codes in the order they were stored; its length is the
        batch's progress, which is what a resumed job counts."""
        return f"{self.base}:cb:{batch_id}:codes"

    def lease(self, batch_id: str) -> str:
        """String: the token of the job runner working on the batch, with a TTL."""
        return f"{self.base}:cb:{batch_id}:lease"


# Set of "<tenant id>/<batch id>" whose job has not finished, of every tenant: what
# each api's job runner scans for work (a batch left running by a dead process).
CODE_JOBS = f"{PREFIX}:code-jobs"


def code_job(tenant_id: str, batch_id: str) -> str:
    """A member of `CODE_JOBS` (ids never contain '/': domain.ids.ID_PATTERN)."""
    return f"{tenant_id}/{batch_id}"


@dataclass(frozen=True, slots=True)
class DistributionKeys:
    """A bulk distribution: a template issued to a list of shoppers by a job."""

    tenant_id: str
    job_id: str

    @property
    def base(self) -> str:
        return f"{PREFIX}:{{t:{self.tenant_id}}}:dist:{self.job_id}"

    @property
    def meta(self) -> str:
        """The job: domain.distributions.Distribution as JSON."""
        return f"{self.base}:meta"

    @property
    def lines(self) -> str:
        """List: "<line number>\\t<user id>" of every accepted line, in file order."""
        return f"{self.base}:lines"

    @property
    def report(self) -> str:
        """List: JSON of every rejected line (bad input, or refused when issued)."""
        return f"{self.base}:report"

    @property
    def lease(self) -> str:
        """The runner working on the job (a token, expiring when it stops renewing)."""
        return f"{self.base}:lease"


def distributions_key(tenant_id: str) -> str:
    """Set: the tenant's distribution job ids."""
    return f"{PREFIX}:{{t:{tenant_id}}}:distributions"


UNFINISHED_DISTRIBUTIONS = f"{PREFIX}:distributions:unfinished"

# Hash: SHA-256 of an RSA partner's public key (domain.partners.key_fingerprint) ->
# partner id. The partner id is not signed (domain/signing.py), so one key must never
# verify for two partners: registration claims the key here first.
PARTNER_KEYS = f"{PREFIX}:partner-keys"
