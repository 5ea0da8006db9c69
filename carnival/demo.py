"""The seeded demo tenant: one running big wheel, an admin key and a shopper secret."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import redis

from actors.ledger import Ledger
from domain.activity import Activity, Limits, Prize
from domain.tokens import hash_api_key, new_api_key, new_secret, sign_shopper_token
from ledger.keys import TenantKeys, api_key_key

DEMO_TENANT = "demo"
DEMO_ACTIVITY = "demo-wheel"


def demo_activity() -> Activity:
    return Activity(
        id=DEMO_ACTIVITY,
        tenant_id=DEMO_TENANT,
        kind="wheel",
        name="Demo big wheel",
        status="running",
        prizes=(
            Prize(id="coupon-50", name="50 off coupon", kind="coupon", weight=2, stock=20),
            Prize(id="coupon-10", name="10 off coupon", kind="coupon", weight=10, stock=200),
            Prize(
                id="points-100", name="100 points", kind="points", weight=30, stock=5000, points=100
            ),
            Prize(id="thanks", name="Thanks for playing", kind="thanks", weight=58),
        ),
        fallback_prize_id="thanks",
        limits=Limits(per_user_total=10),
    )


def create_tenant(client: redis.Redis, tenant_id: str, name: str) -> None:
    """Idempotent: an existing tenant keeps its shopper secret."""
    record = TenantKeys(tenant_id).record
    client.hsetnx(record, "name", name)
    client.hsetnx(record, "shopper_secret", new_secret())


def create_api_key(client: redis.Redis, tenant_id: str, role: str, name: str) -> str:
    key = new_api_key()
    client.hset(
        api_key_key(hash_api_key(key)), mapping={"tenant_id": tenant_id, "role": role, "name": name}
    )
    return key


def credentials_path(data_dir: Path) -> Path:
    return data_dir / "demo-credentials.json"


def seed_demo(redis_url: str, data_dir: Path) -> dict[str, str]:
    """Create the demo tenant and activity; the admin key's plaintext is kept
    only in the data directory (0600), Redis holds its hash."""
    client = redis.Redis.from_url(redis_url)
    try:
        create_tenant(client, DEMO_TENANT, "Demo shop")
        Ledger(client).install_activity(demo_activity())
        path = credentials_path(data_dir)
        if path.exists():
            creds = orjson.loads(path.read_bytes())
            if client.exists(api_key_key(hash_api_key(creds["admin_api_key"]))):
                return creds
        creds = {
            "tenant_id": DEMO_TENANT,
            "activity_id": DEMO_ACTIVITY,
            "admin_api_key": create_api_key(client, DEMO_TENANT, "admin", "demo admin"),
        }
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(creds, option=orjson.OPT_INDENT_2))
        os.chmod(path, 0o600)
        return creds
    finally:
        client.close()


def shopper_token(redis_url: str, tenant_id: str, user_id: str, ttl_s: int = 86_400) -> str:
    client = redis.Redis.from_url(redis_url)
    try:
        secret = client.hget(TenantKeys(tenant_id).record, "shopper_secret")
    finally:
        client.close()
    if secret is None:
        raise LookupError(f"tenant '{tenant_id}' does not exist: run `carnival seed-demo`")
    return sign_shopper_token(secret, tenant_id, user_id, ttl_s)
