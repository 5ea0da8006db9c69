"""Partners: the tills, payment channels and banks that redeem coupons through
the signed API (domain/signing.py). Pure: what a partner is and what an
operator may register."""

from __future__ import annotations

import re
import secrets
from typing import Self

from pydantic import ConfigDict, Field, model_validator

from domain.activity import _Frozen
from domain.ids import ID_PATTERN
from domain.signing import HMAC_SHA256, RSA_SHA256, Algorithm, SignatureError, load_public_key

MAX_CENTS = 10**12
MAX_STORES = 1000
# 32 bytes of CSPRNG: the HMAC secret Carnival issues (shown once, at creation).
SECRET_BYTES = 32
_ID = re.compile(ID_PATTERN)


def new_partner_id() -> str:
    return "p_" + secrets.token_hex(8)


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


class PartnerFields(_Frozen):
    """What an operator sends to register a partner."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    algorithm: Algorithm
    # RSA-SHA256: the partner's public key (PEM, SubjectPublicKeyInfo, >= 2048 bits).
    # HMAC-SHA256: leave it out; Carnival issues the secret.
    public_key_pem: str | None = Field(default=None, max_length=16_384)
    store_ids: tuple[str, ...] = Field(default=(), max_length=MAX_STORES)
    budget_cents: int | None = Field(default=None, ge=1, le=MAX_CENTS)
    budget_per_day_cents: int | None = Field(default=None, ge=1, le=MAX_CENTS)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.algorithm == RSA_SHA256:
            if not self.public_key_pem:
                raise ValueError("public_key_pem: an RSA-SHA256 partner needs its public key")
            try:
                load_public_key(self.public_key_pem)
            except SignatureError as exc:
                raise ValueError(f"public_key_pem: {exc.message}") from exc
        elif self.public_key_pem is not None:
            raise ValueError(
                "public_key_pem: an HMAC-SHA256 partner has no public key; Carnival "
                "issues its secret"
            )
        for store in self.store_ids:
            if not _ID.match(store):
                raise ValueError(f"store_ids: '{store}' is not an id ([A-Za-z0-9_.-], 1-64)")
        total, daily = self.budget_cents, self.budget_per_day_cents
        if total is not None and daily is not None and daily > total:
            raise ValueError("budget_per_day_cents cannot exceed budget_cents")
        return self


class Partner(PartnerFields):
    """A registered partner as the ledger holds it (its HMAC secret is kept
    beside it, never in this record)."""

    id: str = Field(pattern=ID_PATTERN)
    tenant_id: str = Field(pattern=ID_PATTERN)
    enabled: bool = True
    created_at: int

    @property
    def uses_secret(self) -> bool:
        return self.algorithm == HMAC_SHA256
