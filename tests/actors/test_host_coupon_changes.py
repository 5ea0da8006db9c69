"""Coupon changes decided by the owner host against a real Redis ledger (Ray
not needed): changes to one coupon in one batch apply in order, a re-sent
batch is answered byte for byte, a coupon changed behind the actor's back
makes it decide again on a fresh read."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import orjson
import pytest
import redis

from actors.host import OwnerHost
from domain.claims import Coupon
from domain.coupon_changes import change_request_id
from domain.road import COUPON, RequestRecord, Row
from ledger.keys import TemplateKeys, TenantKeys
from tests.domain.test_coupons import _template

TENANT = "t-changes"


@pytest.fixture
async def host(redis_url: str) -> AsyncIterator[OwnerHost]:
    made = OwnerHost(redis_url, seed=1)
    yield made
    await made.close()


def _issue(redis_url: str, template_id: str, user: str, valid_until: int) -> Coupon:
    """A coupon as the claim commit leaves it: by id, and on the expiry schedule."""
    template = _template(id=template_id, tenant_id=TENANT, validity={"ends_at": valid_until})
    coupon = Coupon.issue(template, user, "claim", f"{user}:r", 0)
    keys = TenantKeys(TENANT)
    client = redis.Redis.from_url(redis_url)
    client.hset(keys.coupons, coupon.coupon_id, coupon.model_dump_json())
    client.zadd(keys.expiries, {coupon.coupon_id: valid_until})
    return coupon


def _record(template_id: str, changes: list[tuple[str, Coupon]]) -> bytes:
    rows: list[Row] = [
        (c.user_id, change_request_id(op, c.coupon_id), i, {"op": op, "coupon": c.coupon_id})  # type: ignore[arg-type]
        for i, (op, c) in enumerate(changes)
    ]
    return RequestRecord(COUPON.name, TENANT, template_id, "api-test", rows).dumps()


def _decided(result: object) -> list[dict]:
    return [orjson.loads(o) for events in result.outcomes.values() for o in events]  # type: ignore[attr-defined]


async def test_changes_of_one_coupon_in_one_batch_apply_in_order(
    host: OwnerHost, redis_url: str
) -> None:
    template_id = f"tpl{uuid.uuid4().hex[:8]}"
    past = _issue(redis_url, template_id, "ann", 1)  # its window passed long ago
    live = _issue(redis_url, template_id, "bob", 2**50)
    batch = [_record(template_id, [("expire", past), ("void", past), ("void", live)])]
    result = await host.decide_batch("b1", batch)
    outcomes = {(o["op"], o["coupon_id"]): o for o in _decided(result)}
    assert outcomes[("expire", past.coupon_id)]["status"] == "expired"
    assert outcomes[("void", past.coupon_id)]["reason"] == "coupon_not_available"
    assert outcomes[("void", live.coupon_id)]["status"] == "voided"
    client = redis.Redis.from_url(redis_url)
    stored = client.hmget(TenantKeys(TENANT).coupons, [past.coupon_id, live.coupon_id])
    assert [Coupon.model_validate_json(s).state for s in stored] == ["expired", "voided"]
    assert client.zmscore(TenantKeys(TENANT).expiries, [past.coupon_id, live.coupon_id]) == [
        None,
        None,
    ]

    # The dispatcher re-sends the batch (its produce failed): same answers, nothing new.
    again = await host.decide_batch("b1", batch)
    assert sorted(o for events in again.outcomes.values() for o in events) == sorted(
        o for events in result.outcomes.values() for o in events
    )
    assert client.hlen(TemplateKeys(TENANT, template_id).changes) == 3


async def test_a_coupon_changed_meanwhile_is_decided_again(
    host: OwnerHost, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    template_id = f"tpl{uuid.uuid4().hex[:8]}"
    coupon = _issue(redis_url, template_id, "ann", 2**50)
    client = redis.Redis.from_url(redis_url)
    changes = host._kinds[COUPON.name]  # type: ignore[attr-defined]
    lookup = changes._ledger.lookup

    async def used_after_read(*args: object) -> object:
        # Between the actor's read and its commit, a redemption uses the coupon.
        found = await lookup(*args)
        used = coupon.model_copy(update={"state": "used"})
        client.hset(TenantKeys(TENANT).coupons, coupon.coupon_id, used.model_dump_json())
        monkeypatch.setattr(changes._ledger, "lookup", lookup)
        return found

    monkeypatch.setattr(changes._ledger, "lookup", used_after_read)
    result = await host.decide_batch("b2", [_record(template_id, [("void", coupon)])])
    [outcome] = _decided(result)
    assert (outcome["status"], outcome["reason"]) == ("rejected", "coupon_not_available")
    stored = client.hget(TenantKeys(TENANT).coupons, coupon.coupon_id)
    assert Coupon.model_validate_json(stored).state == "used"
