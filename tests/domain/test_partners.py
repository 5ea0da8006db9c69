"""Pure rules of partners: what an operator may register, the key fingerprint that
keeps one key to one partner, and which key change fits which partner."""

from __future__ import annotations

import re
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from domain.ids import ID_PATTERN
from domain.partners import (
    MAX_STORES,
    PARTNER_NOT_HMAC,
    PARTNER_NOT_RSA,
    Partner,
    PartnerError,
    PartnerFields,
    PublicKeyChange,
    check_secret_rotation,
    key_fingerprint,
    new_partner_id,
    new_secret,
    with_public_key,
)
from domain.signing import generate_rsa_key, public_pem

RSA_PEM = public_pem(generate_rsa_key()).decode()
SHORT_PEM = public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)).decode()
EC_PEM = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
HMAC: dict[str, Any] = {"name": "Bank B", "algorithm": "HMAC-SHA256"}
RSA: dict[str, Any] = {"name": "Till A", "algorithm": "RSA-SHA256", "public_key_pem": RSA_PEM}


def _partner(fields: dict[str, Any], **extra: Any) -> Partner:
    return Partner(**fields, id="p_1", tenant_id="t1", created_at=1, **extra)


def test_valid_partners_of_both_algorithms() -> None:
    rsa_fields = PartnerFields.model_validate({**RSA, "store_ids": ["store-1", "store.2"]})
    assert rsa_fields.store_ids == ("store-1", "store.2")
    hmac_fields = PartnerFields.model_validate(
        {
            **HMAC,
            "budget_cents": 10_000,
            "budget_per_day_cents": 10_000,
            "budget_redemptions": 100,
            "budget_per_day_redemptions": 5,
        }
    )
    assert (hmac_fields.budget_redemptions, hmac_fields.budget_per_day_redemptions) == (100, 5)
    assert hmac_fields.public_key_pem is None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({**RSA, "public_key_pem": None}, "needs its public key"),
        ({**RSA, "public_key_pem": "not a key"}, "not a PEM"),
        ({**RSA, "public_key_pem": SHORT_PEM}, "1024 bits; at least 2048"),
        ({**RSA, "public_key_pem": EC_PEM}, "must be an RSA key"),
        ({**HMAC, "public_key_pem": RSA_PEM}, "has no public key"),
        ({**HMAC, "algorithm": "MD5"}, "algorithm"),
        ({**HMAC, "algorithm": "rsa-sha256"}, "algorithm"),
        ({**HMAC, "name": ""}, "name"),
        ({**HMAC, "name": "x" * 101}, "name"),
        ({**HMAC, "store_ids": ["bad id!"]}, "'bad id!' is not an id"),
        ({**HMAC, "store_ids": ["s" * 65]}, "is not an id"),
        ({**HMAC, "store_ids": [f"s{i}" for i in range(MAX_STORES + 1)]}, "store_ids"),
        ({**HMAC, "budget_cents": 0}, "budget_cents"),
        ({**HMAC, "budget_cents": -1}, "budget_cents"),
        ({**HMAC, "budget_redemptions": 0}, "budget_redemptions"),
        ({**HMAC, "budget_cents": 10, "budget_per_day_cents": 11}, "budget_per_day_cents"),
        (
            {**HMAC, "budget_redemptions": 1, "budget_per_day_redemptions": 2},
            "budget_per_day_redemptions cannot exceed",
        ),
        ({**HMAC, "enabled": False}, "enabled"),  # set by the operator API, not at creation
        ({**HMAC, "secret": "mine"}, "secret"),  # Carnival issues it
    ],
)
def test_bad_registrations_are_refused_with_the_reason(body: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)):
        PartnerFields.model_validate(body)


def test_the_fingerprint_names_the_key_not_its_encoding() -> None:
    key = generate_rsa_key()
    spki = public_pem(key).decode()
    pkcs1 = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        .decode()
    )
    assert spki != pkcs1
    assert key_fingerprint(spki) == key_fingerprint(pkcs1) == key_fingerprint(spki + "\n")
    assert key_fingerprint(spki) != key_fingerprint(RSA_PEM)
    assert _partner(RSA).fingerprint == key_fingerprint(RSA_PEM)
    assert _partner(HMAC).fingerprint is None


def test_only_an_rsa_partner_gets_a_new_key_and_only_an_hmac_partner_a_new_secret() -> None:
    new_pem = public_pem(generate_rsa_key()).decode()
    change = PublicKeyChange(public_key_pem=new_pem)
    rsa_partner = _partner(RSA, enabled=False)
    replaced = with_public_key(rsa_partner, change)
    assert replaced.public_key_pem == new_pem
    assert replaced.model_dump(exclude={"public_key_pem"}) == rsa_partner.model_dump(
        exclude={"public_key_pem"}
    )
    with pytest.raises(PartnerError) as refused:
        with_public_key(_partner(HMAC), change)
    assert refused.value.code == PARTNER_NOT_RSA
    check_secret_rotation(_partner(HMAC))
    with pytest.raises(PartnerError) as refused:
        check_secret_rotation(rsa_partner)
    assert refused.value.code == PARTNER_NOT_HMAC


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"public_key_pem": SHORT_PEM}, "at least 2048"),
        ({"public_key_pem": "garbage"}, "not a PEM"),
        ({"public_key_pem": ""}, "public_key_pem"),
        ({}, "public_key_pem"),
        ({"public_key_pem": RSA_PEM, "algorithm": "HMAC-SHA256"}, "algorithm"),
    ],
)
def test_a_replacement_key_is_checked_like_a_new_one(body: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)):
        PublicKeyChange.model_validate(body)


def test_ids_and_secrets_are_fresh_and_safe_to_use_as_keys() -> None:
    ids = {new_partner_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(ID_PATTERN.strip("^$"), i) and i.startswith("p_") for i in ids)
    secrets = {new_secret() for _ in range(1000)}
    assert len(secrets) == 1000
    assert all(len(s) >= 43 for s in secrets)  # 32 bytes of base64url
