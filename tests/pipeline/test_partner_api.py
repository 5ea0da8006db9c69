"""Partners and signed partner requests over HTTP on the real pipeline: the
operator API (registration checked and nothing written when refused, tenant
isolation, roles, disable / enable, secret rotation and key replacement, the
audit log) and the signed-request dependency on ``/v1/partner/whoami`` and
``/v1/partner/echo`` (each refusal its own code, for RSA and HMAC partners).
Write-offs through the same dependency: tests/pipeline/test_writeoffs.py."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric import rsa

from api.partner_auth import MAX_BODY_BYTES
from domain.partners import Partner, PublicKeyChange, with_public_key
from domain.signing import (
    SIGNED_REQUEST_HEADERS,
    PartnerAuth,
    generate_rsa_key,
    public_pem,
    sign_headers,
)
from ledger.keys import TenantKeys
from ledger.partners import PartnerStore
from tests.pipeline.conftest import Pipeline, Tenant, assert_error

PARTNERS = "/v1/admin/partners"
WHOAMI = "/v1/partner/whoami"
ECHO = "/v1/partner/echo"
WINDOW_S = 300


def _ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


@dataclass
class Signer:
    """One registered partner and what it signs with."""

    partner_id: str
    key: Any  # the RSA private key, or the HMAC secret as bytes
    algorithm: Any

    def headers(
        self, method: str, target: str, body: bytes | None = None, **kw: Any
    ) -> dict[str, str]:
        return sign_headers(method, target, body, self.partner_id, self.key, self.algorithm, **kw)

    def client(self, pipeline: Pipeline) -> httpx.Client:
        auth = PartnerAuth(self.partner_id, self.key, self.algorithm)
        return httpx.Client(base_url=pipeline.url, auth=auth, timeout=30)


def _register(http: httpx.Client, tenant: Tenant, algorithm: str, **fields: Any) -> Signer:
    if algorithm == "RSA-SHA256":
        key = generate_rsa_key()
        body = {"name": "Till", "algorithm": algorithm, "public_key_pem": public_pem(key).decode()}
        view = _ok(http.post(PARTNERS, json={**body, **fields}, headers=tenant.staff_headers), 201)
        assert view["secret"] is None
        return Signer(view["partner"]["id"], key, algorithm)
    body = {"name": "Bank", "algorithm": algorithm, **fields}
    view = _ok(http.post(PARTNERS, json=body, headers=tenant.staff_headers), 201)
    return Signer(view["partner"]["id"], view["secret"].encode(), algorithm)


def _audit(http: httpx.Client, tenant: Tenant) -> list[tuple[str, str]]:
    rows = _ok(http.get("/v1/admin/audit", headers=tenant.staff_headers))
    return [(row["action"], row["subject"]) for row in reversed(rows)]


ALGORITHMS = ["RSA-SHA256", "HMAC-SHA256"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_signed_get_and_post_are_answered_for_the_partner(
    pipeline: Pipeline, http: httpx.Client, algorithm: str
) -> None:
    tenant = pipeline.tenant()
    signer = _register(http, tenant, algorithm, store_ids=["store-1", "store-2"])
    me = {"partner_id": signer.partner_id, "tenant_id": tenant.tenant_id}
    with signer.client(pipeline) as till:
        assert _ok(till.get(WHOAMI)) == {**me, "store_ids": ["store-1", "store-2"]}
        # A query is signed in canonical form: order, '+' and escapes do not matter.
        assert _ok(till.get(f"{WHOAMI}?z=1&a=x+y&b=%7Esale&flag"))["partner_id"] == me["partner_id"]
        for body in ({"amount": 1250, "currency": "CHF", "note": "Zürich"}, {}):
            reply = till.post(f"{ECHO}?store=store-1", json=body)
            sent = reply.request.content
            assert _ok(reply) == {
                **me,
                "store_ids": ["store-1", "store-2"],
                "body_sha256": hashlib.sha256(sent).hexdigest(),
            }
        empty = till.post(ECHO)
        assert _ok(empty)["body_sha256"] == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_refusal_has_its_own_code(
    pipeline: Pipeline, http: httpx.Client, algorithm: str
) -> None:
    tenant = pipeline.tenant()
    signer = _register(http, tenant, algorithm)
    body = orjson.dumps({"order_id": "o-1", "amount_cents": 5300})

    def post(headers: dict[str, str], content: bytes = body, target: str = ECHO) -> httpx.Response:
        return http.post(target, content=content, headers=headers)

    good = signer.headers("POST", ECHO, body)
    assert _ok(post(good))["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert_error(post(good), 401, "nonce_replayed")  # the same headers sent twice

    tampered = signer.headers("POST", ECHO, body)
    assert_error(post(tampered, body.replace(b"5300", b"5") + b" "), 401, "body_hash_mismatch")
    # A body changed and its hash header recomputed: the signature covers the hash.
    rehashed = {**signer.headers("POST", ECHO, body)}
    rehashed["X-Carnival-Content-SHA256"] = hashlib.sha256(b"{}").hexdigest()
    assert_error(post(rehashed, b"{}"), 401, "bad_signature")

    forged = signer.headers("POST", ECHO, body)
    forged["X-Carnival-Signature"] = signer.headers("POST", ECHO, b"{}")["X-Carnival-Signature"]
    assert_error(post(forged), 401, "bad_signature")
    other_path = signer.headers("POST", WHOAMI, body)
    assert_error(post(other_path), 401, "bad_signature")
    other_query = signer.headers("POST", f"{ECHO}?store=store-1", body)
    assert_error(post(other_query, target=f"{ECHO}?store=store-9"), 401, "bad_signature")
    stranger = Signer(signer.partner_id, *_other_key(algorithm))
    assert_error(post(stranger.headers("POST", ECHO, body)), 401, "bad_signature")

    now = time.time()
    for skew in (-WINDOW_S - 60, WINDOW_S + 60):
        late = signer.headers("POST", ECHO, body, now=now + skew)
        assert_error(post(late), 401, "request_expired")
    bad_time = {**signer.headers("POST", ECHO, body), "X-Carnival-Timestamp": "12.5"}
    assert_error(post(bad_time), 401, "bad_timestamp")
    bad_nonce = {**signer.headers("POST", ECHO, body), "X-Carnival-Nonce": "short"}
    assert_error(post(bad_nonce), 401, "bad_nonce")

    for name in SIGNED_REQUEST_HEADERS:
        missing = signer.headers("POST", ECHO, body)
        del missing[name]
        assert_error(post(missing), 401, "missing_signature_header")
    twice = [*signer.headers("POST", ECHO, body).items(), ("X-Carnival-Nonce", "n" * 20)]
    assert_error(http.post(ECHO, content=body, headers=twice), 401, "duplicate_signature_header")
    nobody = Signer("p_0000000000000000", signer.key, signer.algorithm)
    assert_error(post(nobody.headers("POST", ECHO, body)), 401, "unknown_partner")
    assert_error(http.get(WHOAMI), 401, "missing_signature_header")

    # A forgery does not burn the nonce a genuine request then uses (verify, then SET NX).
    nonce = "genuine-nonce-0001"
    forged_first = signer.headers("POST", ECHO, body, nonce=nonce)
    forged_first["X-Carnival-Signature"] = forged["X-Carnival-Signature"]
    assert_error(post(forged_first), 401, "bad_signature")
    _ok(post(signer.headers("POST", ECHO, body, nonce=nonce)))
    assert_error(post(signer.headers("POST", ECHO, body, nonce=nonce)), 401, "nonce_replayed")
    # Remembered under the partner's tenant, for no longer than the window allows.
    ttl = pipeline.redis.ttl(TenantKeys(tenant.tenant_id).nonce(f"{signer.partner_id}:{nonce}"))
    assert 0 < ttl <= 2 * WINDOW_S + 1


def _other_key(algorithm: str) -> tuple[Any, str]:
    if algorithm == "RSA-SHA256":
        return generate_rsa_key(), algorithm
    return b"a-secret-carnival-never-issued", algorithm


def test_a_body_too_large_is_refused_before_it_is_read(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    tenant = pipeline.tenant()
    signer = _register(http, tenant, "HMAC-SHA256")
    big = b"x" * (MAX_BODY_BYTES + 1)
    reply = http.post(ECHO, content=big, headers=signer.headers("POST", ECHO, big))
    assert_error(reply, 413, "body_too_large")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_disabled_partner_is_refused_until_enabled(
    pipeline: Pipeline, http: httpx.Client, algorithm: str
) -> None:
    tenant = pipeline.tenant()
    signer = _register(http, tenant, algorithm)
    url = f"{PARTNERS}/{signer.partner_id}"
    assert _ok(http.post(f"{url}/disable", headers=tenant.staff_headers))["enabled"] is False
    with signer.client(pipeline) as till:
        assert_error(till.get(WHOAMI), 403, "partner_disabled")
        assert_error(till.post(ECHO, json={"a": 1}), 403, "partner_disabled")
        # Only a verified request learns that the partner is disabled.
        forged = signer.headers("GET", WHOAMI)
        forged["X-Carnival-Signature"] = signer.headers("GET", ECHO)["X-Carnival-Signature"]
        assert_error(http.get(WHOAMI, headers=forged), 401, "bad_signature")
        assert _ok(http.post(f"{url}/enable", headers=tenant.staff_headers))["enabled"] is True
        assert _ok(till.get(WHOAMI))["partner_id"] == signer.partner_id
    assert _audit(http, tenant) == [
        ("partner.created", signer.partner_id),
        ("partner.disabled", signer.partner_id),
        ("partner.enabled", signer.partner_id),
    ]


def test_rotating_a_secret_and_replacing_a_key(pipeline: Pipeline, http: httpx.Client) -> None:
    tenant = pipeline.tenant()
    staff = tenant.staff_headers
    bank = _register(http, tenant, "HMAC-SHA256")
    till = _register(http, tenant, "RSA-SHA256")

    rotated = _ok(http.post(f"{PARTNERS}/{bank.partner_id}/rotate-secret", headers=staff))
    new_secret = rotated["secret"].encode()
    assert rotated["partner"]["id"] == bank.partner_id and new_secret != bank.key
    assert_error(http.get(WHOAMI, headers=bank.headers("GET", WHOAMI)), 401, "bad_signature")
    bank = Signer(bank.partner_id, new_secret, bank.algorithm)
    assert (
        _ok(http.get(WHOAMI, headers=bank.headers("GET", WHOAMI)))["partner_id"] == bank.partner_id
    )
    assert "secret" not in _ok(http.get(f"{PARTNERS}/{bank.partner_id}", headers=staff))

    old_key = till.key
    new_key = generate_rsa_key()
    url = f"{PARTNERS}/{till.partner_id}/public-key"
    short = public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)).decode()
    for bad in ({"public_key_pem": short}, {"public_key_pem": "nope"}, {}, {"pem": "x"}):
        refused = assert_error(http.put(url, json=bad, headers=staff), 422, "invalid_public_key")
        assert "public_key_pem" in [p["field"] for p in refused["details"]["problems"]]
    assert _ok(http.get(WHOAMI, headers=till.headers("GET", WHOAMI)))  # still the old key
    replaced = _ok(
        http.put(url, json={"public_key_pem": public_pem(new_key).decode()}, headers=staff)
    )
    assert replaced["public_key_pem"] == public_pem(new_key).decode()
    assert_error(http.get(WHOAMI, headers=till.headers("GET", WHOAMI)), 401, "bad_signature")
    till = Signer(till.partner_id, new_key, till.algorithm)
    assert (
        _ok(http.get(WHOAMI, headers=till.headers("GET", WHOAMI)))["partner_id"] == till.partner_id
    )

    assert_error(
        http.post(f"{PARTNERS}/{till.partner_id}/rotate-secret", headers=staff),
        409,
        "partner_not_hmac",
    )
    assert_error(
        http.put(
            f"{PARTNERS}/{bank.partner_id}/public-key",
            json={"public_key_pem": public_pem(generate_rsa_key()).decode()},
            headers=staff,
        ),
        409,
        "partner_not_rsa",
    )
    for verb in ("rotate-secret", "disable"):
        assert_error(
            http.post(f"{PARTNERS}/p_unknown/{verb}", headers=staff), 404, "partner_not_found"
        )
    assert _audit(http, tenant)[2:] == [
        ("partner.secret_rotated", bank.partner_id),
        ("partner.key_replaced", till.partner_id),
    ]

    # One key, one partner, across tenants: the key in use is refused, the replaced one free.
    other = pipeline.tenant()
    in_use = {
        "name": "Copy",
        "algorithm": "RSA-SHA256",
        "public_key_pem": public_pem(new_key).decode(),
    }
    assert_error(
        http.post(PARTNERS, json=in_use, headers=other.staff_headers), 409, "public_key_in_use"
    )
    assert _ok(http.get(PARTNERS, headers=other.staff_headers)) == []
    freed = {**in_use, "public_key_pem": public_pem(old_key).decode()}
    _ok(http.post(PARTNERS, json=freed, headers=other.staff_headers), 201)
    back = http.put(url, json={"public_key_pem": public_pem(old_key).decode()}, headers=staff)
    assert_error(back, 409, "public_key_in_use")


def test_one_key_registered_at_once_by_many_is_kept_by_one(pipeline: Pipeline) -> None:
    tenants = [pipeline.tenant() for _ in range(4)]
    pem = public_pem(generate_rsa_key()).decode()

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=pipeline.url, timeout=30) as client:
            body = {"name": "Same key", "algorithm": "RSA-SHA256", "public_key_pem": pem}
            return await asyncio.gather(
                *(
                    client.post(PARTNERS, json=body, headers=t.staff_headers)
                    for t in tenants
                    for _ in range(3)
                )
            )

    replies = asyncio.run(race())
    assert sorted(r.status_code for r in replies) == [201] + [409] * 11
    for reply in replies:
        if reply.status_code == 409:
            assert_error(reply, 409, "public_key_in_use")


async def test_a_key_replacement_racing_a_disable_keeps_both(pipeline: Pipeline) -> None:
    """The ledger re-reads and re-applies a change that lost a race, so neither
    change undoes the other (no sleeps: the rival write happens inside the read)."""
    tenant = pipeline.tenant()
    client = aioredis.Redis.from_url(pipeline.settings.redis_url)
    try:
        store = PartnerStore(client)
        partner = Partner(
            name="Till",
            algorithm="RSA-SHA256",
            public_key_pem=public_pem(generate_rsa_key()).decode(),
            id="p_race",
            tenant_id=tenant.tenant_id,
            created_at=1,
        )
        await store.create(partner, None, "test")
        change = PublicKeyChange(public_key_pem=public_pem(generate_rsa_key()).decode())
        reads: list[bool] = []

        def replace_key(seen: Partner) -> Partner:
            reads.append(seen.enabled)
            if len(reads) == 1:  # another operator disables it between our read and write
                disabled = seen.model_copy(update={"enabled": False})
                pipeline.redis.hset(
                    TenantKeys(tenant.tenant_id).partners, seen.id, disabled.model_dump_json()
                )
            return with_public_key(seen, change)

        after = await store.update(tenant.tenant_id, partner.id, replace_key, "test", "key")
        assert reads == [True, False]
        stored = await store.partner(tenant.tenant_id, partner.id)
        assert after == stored
        assert stored is not None
        assert (stored.enabled, stored.public_key_pem) == (False, change.public_key_pem)
    finally:
        await client.aclose()


def test_registration_is_checked_scoped_to_the_tenant_and_by_role(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    tenant = pipeline.tenant()
    staff = tenant.staff_headers
    till = _register(http, tenant, "RSA-SHA256", store_ids=["store-1"])
    bank = _register(http, tenant, "HMAC-SHA256", budget_cents=100_000, budget_redemptions=50)
    before = _ok(http.get(PARTNERS, headers=staff))
    assert [p["id"] for p in before] == [till.partner_id, bank.partner_id]
    assert (before[1]["budget_cents"], before[1]["budget_redemptions"]) == (100_000, 50)
    assert all("secret" not in orjson.dumps(p).decode() for p in before)
    audit_before = _audit(http, tenant)

    short = public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)).decode()
    pem = public_pem(generate_rsa_key()).decode()
    for body, field in (
        ({"name": "x", "algorithm": "RSA-SHA256", "public_key_pem": short}, "body"),
        ({"name": "x", "algorithm": "RSA-SHA256", "public_key_pem": "not a key"}, "body"),
        ({"name": "x", "algorithm": "RSA-SHA256"}, "body"),
        ({"name": "x", "algorithm": "MD5"}, "algorithm"),
        ({"name": "x", "algorithm": "HMAC-SHA256", "store_ids": ["bad id!"]}, "body"),
        ({"name": "", "algorithm": "HMAC-SHA256"}, "name"),
        ({"name": "x", "algorithm": "HMAC-SHA256", "budget_cents": -1}, "budget_cents"),
        ({"name": "x", "algorithm": "HMAC-SHA256", "extra": 1}, "extra"),
        ({"name": "x", "algorithm": "HMAC-SHA256", "public_key_pem": pem}, "body"),
    ):
        problems = assert_error(
            http.post(PARTNERS, json=body, headers=staff), 422, "invalid_partner"
        )
        assert field in [p["field"] for p in problems["details"]["problems"]], problems
    not_json = {**staff, "Content-Type": "application/json"}
    assert_error(http.post(PARTNERS, content=b"[", headers=not_json), 422, "invalid_request")
    assert _ok(http.get(PARTNERS, headers=staff)) == before
    assert _audit(http, tenant) == audit_before

    other = pipeline.tenant()
    mine = f"{PARTNERS}/{till.partner_id}"
    assert_error(http.get(mine, headers=other.staff_headers), 404, "partner_not_found")
    for verb in ("disable", "enable", "rotate-secret"):
        reply = http.post(f"{PARTNERS}/{bank.partner_id}/{verb}", headers=other.staff_headers)
        assert_error(reply, 404, "partner_not_found")
    reply = http.put(
        f"{mine}/public-key", json={"public_key_pem": pem}, headers=other.staff_headers
    )
    assert_error(reply, 404, "partner_not_found")
    assert _ok(http.get(PARTNERS, headers=other.staff_headers)) == []
    assert _ok(http.get(PARTNERS, headers=staff)) == before  # nothing of tenant A changed
    assert (
        _ok(http.get(WHOAMI, headers=till.headers("GET", WHOAMI)))["tenant_id"] == tenant.tenant_id
    )

    analyst = {"X-Api-Key": pipeline.ledger.create_api_key(tenant.tenant_id, "analyst", "ana")}
    assert _ok(http.get(PARTNERS, headers=analyst)) == before
    assert _ok(http.get(mine, headers=analyst))["id"] == till.partner_id
    hmac_body = {"name": "x", "algorithm": "HMAC-SHA256"}
    assert_error(http.post(PARTNERS, json=hmac_body, headers=analyst), 403, "forbidden")
    assert_error(http.post(f"{mine}/disable", headers=analyst), 403, "forbidden")
    assert_error(http.get(PARTNERS), 401, "missing_api_key")
    assert _ok(http.get(PARTNERS, headers=staff)) == before
