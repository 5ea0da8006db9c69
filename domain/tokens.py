"""Shopper tokens and API key hashing (pure, no I/O).

A shopper is identified by a token the merchant's backend obtains for its
logged-in user: ``base64url(payload).base64url(HMAC-SHA256(secret, payload))``
where payload is JSON ``{"t": tenant_id, "u": user_id, "exp": epoch_s}``.
The tenant's shopper secret never leaves the server side, so a shopper cannot
claim another user's id or another tenant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import orjson

from domain.ids import USER_ID_PATTERN


class TokenError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ShopperClaims:
    tenant_id: str
    user_id: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_shopper_token(secret: bytes, tenant_id: str, user_id: str, ttl_s: int = 86_400) -> str:
    if not re.fullmatch(USER_ID_PATTERN, user_id):
        raise ValueError(f"user id {user_id!r} must match {USER_ID_PATTERN}")
    payload = orjson.dumps({"t": tenant_id, "u": user_id, "exp": int(time.time()) + ttl_s})
    mac = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def read_unverified_tenant(token: str) -> str:
    """The tenant a token claims, to look up the secret that verifies it."""
    try:
        body = orjson.loads(_unb64(token.split(".", 1)[0]))
        tenant = body["t"]
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise TokenError("invalid_token", "the shopper token is malformed") from exc
    if not isinstance(tenant, str):
        raise TokenError("invalid_token", "the shopper token is malformed")
    return tenant


def verify_shopper_token(secret: bytes, token: str, now_s: float | None = None) -> ShopperClaims:
    try:
        payload_part, mac_part = token.split(".")
        payload, mac = _unb64(payload_part), _unb64(mac_part)
    except ValueError as exc:
        raise TokenError("invalid_token", "the shopper token is malformed") from exc
    if not hmac.compare_digest(hmac.new(secret, payload, hashlib.sha256).digest(), mac):
        raise TokenError("invalid_token", "the shopper token signature does not verify")
    body = orjson.loads(payload)
    if (now_s if now_s is not None else time.time()) >= body["exp"]:
        raise TokenError("token_expired", "the shopper token has expired; ask for a new one")
    return ShopperClaims(tenant_id=body["t"], user_id=body["u"], expires_at=body["exp"])


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    return "ck_" + secrets.token_urlsafe(24)


def hash_api_key(key: str) -> str:
    # Keys are random 192-bit strings, so a plain SHA-256 is enough (no salt/KDF).
    return hashlib.sha256(key.encode()).hexdigest()
