"""Partners: the tills, payment channels and banks that redeem coupons through
the signed API (domain/signing.py). Pure: what a partner is, what an operator
may register, and how a partner's key may change."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Annotated, Final, Literal, Self

from cryptography.hazmat.primitives import serialization
from pydantic import AfterValidator, ConfigDict, Field, model_validator

from domain.activity import _Frozen
from domain.coupons import MAX_CENTS
from domain.ids import ID_PATTERN
from domain.signing import HMAC_SHA256, RSA_SHA256, Algorithm, SignatureError, load_public_key

MAX_STORES = 1000
MAX_REDEMPTIONS = 10**9
# A PEM of a 16384-bit RSA key is ~2.8 KB; anything much longer is not a key.
MAX_PEM_CHARS = 16_384
# 32 bytes of CSPRNG: the HMAC secret Carnival issues (shown once, at creation
# or rotation).
SECRET_BYTES = 32
# 64 random bits: partner ids appear in request headers and logs, so they are
# not secrets, but they must not be enumerable.
PARTNER_ID_BYTES = 8
_ID = re.compile(ID_PATTERN)

PartnerErrorCode = Literal["partner_not_rsa", "partner_not_hmac"]
PARTNER_NOT_RSA: Final[PartnerErrorCode] = "partner_not_rsa"
PARTNER_NOT_HMAC: Final[PartnerErrorCode] = "partner_not_hmac"


class PartnerError(ValueError):
    """A change that does not fit the partner: ``code`` for machines, the message for people."""

    def __init__(self, code: PartnerErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def new_partner_id() -> str:
    return "p_" + secrets.token_hex(PARTNER_ID_BYTES)


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def key_fingerprint(pem: str) -> str:
    """Hex SHA-256 of the key's DER SubjectPublicKeyInfo: the same for the same
    key whatever its PEM form (SPKI or PKCS#1, line breaks)."""
    der = load_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def _check_public_key(pem: str) -> str:
    try:
        load_public_key(pem)
    except SignatureError as exc:
        raise ValueError(exc.message) from exc
    return pem


def _check_budget(total: int | None, daily: int | None, what: str) -> None:
    if total is not None and daily is not None and daily > total:
        raise ValueError(f"budget_per_day_{what} cannot exceed budget_{what}")


class PartnerFields(_Frozen):
    """What an operator sends to register a partner."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    algorithm: Algorithm
    # RSA-SHA256: the partner's public key (PEM, SubjectPublicKeyInfo, >= 2048 bits).
    # HMAC-SHA256: leave it out; Carnival issues the secret.
    public_key_pem: str | None = Field(default=None, max_length=MAX_PEM_CHARS)
    store_ids: tuple[str, ...] = Field(default=(), max_length=MAX_STORES)
    # Enforced on every redemption and lock (actors/writeoffs.py). None = no limit
    # (a budget of 0 would be a disabled partner: disable it instead).
    budget_cents: int | None = Field(default=None, ge=1, le=MAX_CENTS)
    budget_per_day_cents: int | None = Field(default=None, ge=1, le=MAX_CENTS)  # UTC days
    budget_redemptions: int | None = Field(default=None, ge=1, le=MAX_REDEMPTIONS)
    budget_per_day_redemptions: int | None = Field(default=None, ge=1, le=MAX_REDEMPTIONS)

    # Stored records are read back through these rules (Partner inherits them): a rule
    # made stricter later must still accept every partner already registered.
    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.algorithm == RSA_SHA256:
            if not self.public_key_pem:
                raise ValueError("public_key_pem: an RSA-SHA256 partner needs its public key")
            try:
                _check_public_key(self.public_key_pem)
            except ValueError as exc:
                # Checked here, not on the field: whether a key is needed depends on
                # the algorithm; the message names the field instead.
                raise ValueError(f"public_key_pem: {exc}") from exc
        elif self.public_key_pem is not None:
            raise ValueError(
                "public_key_pem: an HMAC-SHA256 partner has no public key; Carnival "
                "issues its secret"
            )
        for store in self.store_ids:
            if not _ID.match(store):
                raise ValueError(f"store_ids: '{store}' is not an id ([A-Za-z0-9_.-], 1-64)")
        _check_budget(self.budget_cents, self.budget_per_day_cents, "cents")
        _check_budget(self.budget_redemptions, self.budget_per_day_redemptions, "redemptions")
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

    @property
    def fingerprint(self) -> str | None:
        """Of its RSA public key; None for an HMAC partner."""
        return key_fingerprint(self.public_key_pem) if self.public_key_pem else None


class PublicKeyChange(_Frozen):
    """An RSA partner's new public key (the old one stops verifying at once)."""

    public_key_pem: Annotated[
        str, Field(min_length=1, max_length=MAX_PEM_CHARS), AfterValidator(_check_public_key)
    ]


def with_public_key(partner: Partner, change: PublicKeyChange) -> Partner:
    """The partner verifying with the new key; only an RSA partner has one."""
    if partner.algorithm != RSA_SHA256:
        raise PartnerError(
            PARTNER_NOT_RSA,
            f"partner '{partner.id}' signs with {partner.algorithm} and has no public key; "
            "rotate its secret instead",
        )
    return partner.model_copy(update={"public_key_pem": change.public_key_pem})


def check_secret_rotation(partner: Partner) -> None:
    """Only an HMAC partner has a secret Carnival can rotate."""
    if not partner.uses_secret:
        raise PartnerError(
            PARTNER_NOT_HMAC,
            f"partner '{partner.id}' signs with {partner.algorithm}: Carnival holds no secret "
            "of it; replace its public key instead (PUT …/public-key)",
        )
