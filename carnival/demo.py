"""The seeded demo tenant: one running big wheel, an admin key and a shopper secret."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from domain.activity import Activity, Limits, Prize
from domain.tokens import sign_shopper_token
from ledger.admin import SyncLedger

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


def credentials_path(data_dir: Path) -> Path:
    return data_dir / "demo-credentials.json"


def seed_demo(redis_url: str, data_dir: Path) -> dict[str, str]:
    """Create the demo tenant and activity; the admin key's plaintext is kept
    only in the data directory (0600), Redis holds its hash."""
    ledger = SyncLedger.from_url(redis_url)
    try:
        ledger.create_tenant(DEMO_TENANT, "Demo shop")
        ledger.install_activity(demo_activity())
        path = credentials_path(data_dir)
        if path.exists():
            creds = orjson.loads(path.read_bytes())
            if ledger.api_key_exists(creds["admin_api_key"]):
                return creds
        creds = {
            "tenant_id": DEMO_TENANT,
            "activity_id": DEMO_ACTIVITY,
            "admin_api_key": ledger.create_api_key(DEMO_TENANT, "admin", "demo admin"),
        }
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(creds, option=orjson.OPT_INDENT_2))
        os.chmod(path, 0o600)
        return creds
    finally:
        ledger.close()


def shopper_token(redis_url: str, tenant_id: str, user_id: str, ttl_s: int = 86_400) -> str:
    ledger = SyncLedger.from_url(redis_url)
    try:
        secret = ledger.shopper_secret(tenant_id)
    finally:
        ledger.close()
    if secret is None:
        raise LookupError(f"tenant '{tenant_id}' does not exist: run `carnival seed-demo`")
    return sign_shopper_token(secret, tenant_id, user_id, ttl_s)
