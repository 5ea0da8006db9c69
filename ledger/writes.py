"""Every write to the ledger outside the commit scripts, defined once.

Each function queues commands on a pipeline the caller owns and executes: the
api's async store and the sync tools (demo seeding, tests, benches) run the
same writes on their own kind of pipeline, so a key layout change is made here.
"""

from __future__ import annotations

import time
from typing import Any

from domain.activity import Activity
from domain.code_batches import CodeBatch
from domain.coupons import CouponTemplate
from domain.draw import initial_stock
from domain.points import Account, Entry, PointsRules
from ledger.keys import (
    CODE_JOBS,
    DISPATCHER_HEARTBEAT,
    RELAY_HEARTBEAT,
    TENANTS,
    ActivityKeys,
    CodeKeys,
    TemplateKeys,
    TenantKeys,
    api_key_key,
    code_job,
)

AUDIT_MAX_LEN = 100_000
PENDING_TTL_S = 86_400

Pipe = Any  # a redis-py pipeline, sync or asyncio: both queue commands the same way


def put_config(pipe: Pipe, activity: Activity) -> None:
    """The config and its version, together: the commit script compares the version."""
    keys = ActivityKeys(activity.tenant_id, activity.id)
    pipe.set(keys.config, activity.model_dump_json())
    pipe.set(keys.version, activity.version)


def seed_stock(pipe: Pipe, activity: Activity) -> None:
    """The configured stock of a new pool; stock already on the ledger is kept."""
    keys = ActivityKeys(activity.tenant_id, activity.id)
    for field, amount in initial_stock(activity).items():
        pipe.hsetnx(keys.stock, field, amount)
    pipe.sadd(TenantKeys(activity.tenant_id).activities, activity.id)


def install_activity(pipe: Pipe, activity: Activity) -> None:
    put_config(pipe, activity)
    seed_stock(pipe, activity)


def add_stock(pipe: Pipe, activity: Activity, field: str, amount: int) -> None:
    pipe.hincrby(ActivityKeys(activity.tenant_id, activity.id).stock, field, amount)


def reset_stock(pipe: Pipe, activity: Activity) -> None:
    """Before an activity opens no draw has happened: its stock follows the edit."""
    keys = ActivityKeys(activity.tenant_id, activity.id)
    pipe.delete(keys.stock)
    stock = initial_stock(activity)
    if stock:
        pipe.hset(keys.stock, mapping=stock)


def put_template(pipe: Pipe, template: CouponTemplate) -> None:
    """The config and its version, together: the claim commit compares the version."""
    keys = TemplateKeys(template.tenant_id, template.id)
    pipe.set(keys.config, template.model_dump_json())
    pipe.set(keys.version, template.version)


def install_template(pipe: Pipe, template: CouponTemplate) -> None:
    """A new template: config, stock (kept if the ledger already has one) and the index."""
    put_template(pipe, template)
    if template.limits.stock is not None:
        pipe.setnx(TemplateKeys(template.tenant_id, template.id).left, template.limits.stock)
    pipe.sadd(TenantKeys(template.tenant_id).templates, template.id)


def add_template_stock(pipe: Pipe, template: CouponTemplate, amount: int) -> None:
    pipe.incrby(TemplateKeys(template.tenant_id, template.id).left, amount)


def reset_template_stock(pipe: Pipe, template: CouponTemplate) -> None:
    """Before a template first runs nothing was claimed: its stock follows the edit."""
    keys = TemplateKeys(template.tenant_id, template.id)
    if template.limits.stock is None:
        pipe.delete(keys.left)
    else:
        pipe.set(keys.left, template.limits.stock)


def mark_claim_pending(pipe: Pipe, tenant_id: str, template_id: str, request_key: str) -> None:
    """A claim accepted but not answered in time: its poll says 202, not 404."""
    pipe.set(TemplateKeys(tenant_id, template_id).pending(request_key), 1, ex=PENDING_TTL_S)


def audit(pipe: Pipe, tenant_id: str, who: str, action: str, subject: str, version: int) -> None:
    entry = {"at": int(time.time() * 1000), "who": who, "action": action, "subject": subject}
    entry["version"] = version
    pipe.xadd(
        TenantKeys(tenant_id).audit,
        {k: str(v) for k, v in entry.items()},
        maxlen=AUDIT_MAX_LEN,
        approximate=True,
    )


def index_tenant(pipe: Pipe, tenant_id: str) -> None:
    """Put a tenant in the index the sweeps walk (create_tenant does it for new ones)."""
    pipe.sadd(TENANTS, tenant_id)


def create_tenant(pipe: Pipe, tenant_id: str, name: str, shopper_secret: str) -> None:
    """Idempotent: an existing tenant keeps its name and shopper secret."""
    record = TenantKeys(tenant_id).record
    index_tenant(pipe, tenant_id)
    pipe.hsetnx(record, "name", name)
    pipe.hsetnx(record, "shopper_secret", shopper_secret)


def create_api_key(
    pipe: Pipe,
    key_hash: str,
    tenant_id: str,
    role: str,
    name: str,
    institution_id: str | None = None,
) -> None:
    mapping = {"tenant_id": tenant_id, "role": role, "name": name}
    if institution_id is not None:
        mapping["institution_id"] = institution_id
    pipe.hset(api_key_key(key_hash), mapping=mapping)


def put_points_rules(pipe: Pipe, tenant_id: str, rules: PointsRules) -> None:
    pipe.set(TenantKeys(tenant_id).points_rules, rules.model_dump_json())


def mark_points_pending(pipe: Pipe, tenant_id: str, request_key: str) -> None:
    pipe.set(TenantKeys(tenant_id).points_pending(request_key), 1, ex=PENDING_TTL_S)


def put_account(
    pipe: Pipe, tenant_id: str, user_id: str, account: Account, entries: list[Entry]
) -> None:
    """An account written outside the commit scripts (seeding by tools, under
    WATCH of the account): the layout ledger/accounts.lua writes."""
    tenant = TenantKeys(tenant_id)
    pipe.hset(tenant.points_accounts, user_id, account.model_dump_json())
    pipe.hset(tenant.points, user_id, account.balance)
    expiry = account.next_expiry()
    if expiry is None:
        pipe.zrem(tenant.points_expiries, user_id)
    else:
        pipe.zadd(tenant.points_expiries, {user_id: expiry})
    if entries:
        pipe.rpush(tenant.points_log(user_id), *(e.model_dump_json() for e in entries))


def mark_pending(pipe: Pipe, tenant_id: str, activity_id: str, request_key: str) -> None:
    """A request accepted but not answered in time: its poll says 202, not 404."""
    pipe.set(ActivityKeys(tenant_id, activity_id).pending(request_key), 1, ex=PENDING_TTL_S)


def dispatcher_heartbeat(pipe: Pipe, body: bytes, ttl_s: int) -> None:
    """The dispatcher's proof of life (its actors answered a ping); readiness reads it."""
    pipe.set(DISPATCHER_HEARTBEAT, body, ex=ttl_s)


def relay_heartbeat(pipe: Pipe, body: bytes, ttl_s: int) -> None:
    """The relay's proof of life (its consumer is running); readiness reads it."""
    pipe.set(RELAY_HEARTBEAT, body, ex=ttl_s)


def code_batch_fields(batch: CodeBatch) -> dict[str, str]:
    """A batch as its ledger hash holds it: every field a string, the pattern as
    JSON, an unset one empty (ledger.codes reads it back)."""
    fields = batch.model_dump(mode="json", exclude={"pattern"})
    row = {k: "" if v is None else str(v) for k, v in fields.items()}
    row["pattern"] = batch.pattern.model_dump_json() if batch.pattern is not None else ""
    return row


def add_code_job(pipe: Pipe, tenant_id: str, batch_id: str) -> None:
    """Before the batch exists: a crash in between leaves a job entry the runners
    drop, never a batch no runner knows of."""
    pipe.sadd(CODE_JOBS, code_job(tenant_id, batch_id))


def create_code_batch(pipe: Pipe, batch: CodeBatch) -> None:
    keys = CodeKeys(batch.tenant_id)
    pipe.hset(keys.batch(batch.id), mapping=code_batch_fields(batch))
    pipe.zadd(keys.batches, {batch.id: batch.created_at})


def remove_code_job(pipe: Pipe, tenant_id: str, batch_id: str) -> None:
    pipe.srem(CODE_JOBS, code_job(tenant_id, batch_id))
