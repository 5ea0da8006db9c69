"""Shopper tokens and event schemas (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.events import DrawOutcome, SchemaError
from domain.road import RequestRecord
from domain.tokens import (
    TokenError,
    read_unverified_tenant,
    sign_shopper_token,
    verify_shopper_token,
)

SECRET = b"s" * 32


def test_token_round_trip() -> None:
    token = sign_shopper_token(SECRET, "t1", "alice")
    assert read_unverified_tenant(token) == "t1"
    claims = verify_shopper_token(SECRET, token)
    assert (claims.tenant_id, claims.user_id) == ("t1", "alice")


def test_token_with_other_secret_or_tampered_payload_is_refused() -> None:
    token = sign_shopper_token(SECRET, "t1", "alice")
    with pytest.raises(TokenError) as bad_secret:
        verify_shopper_token(b"x" * 32, token)
    assert bad_secret.value.code == "invalid_token"
    forged = (
        sign_shopper_token(b"x" * 32, "t1", "mallory").split(".")[0] + "." + token.split(".")[1]
    )
    with pytest.raises(TokenError):
        verify_shopper_token(SECRET, forged)


def test_user_ids_with_a_colon_cannot_get_a_token() -> None:
    with pytest.raises(ValueError):
        sign_shopper_token(SECRET, "t1", "a:b")


def test_expired_token_is_refused() -> None:
    token = sign_shopper_token(SECRET, "t1", "alice", ttl_s=60)
    with pytest.raises(TokenError) as expired:
        verify_shopper_token(SECRET, token, now_s=10**12)
    assert expired.value.code == "token_expired"


@given(st.text(max_size=80))
def test_garbage_tokens_never_crash(token: str) -> None:
    with pytest.raises(TokenError):
        verify_shopper_token(SECRET, token)


def test_events_round_trip_with_envelope_fields() -> None:
    event = RequestRecord("draw", "t", "a", "api-1", [["u", "r", 7, None]])  # type: ignore[list-item]
    body = event.to_dict()
    assert body["type"] == "requests" and body["schema_version"] == 1
    assert {"tenant_id", "occurred_at", "rows"} <= set(body)
    assert RequestRecord.loads(event.dumps()) == event


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b'{"type": "draw.outcome", "schema_version": 1}', b'{"type": "x"}'],
)
def test_bad_messages_raise_schema_error(raw: bytes) -> None:
    with pytest.raises(SchemaError):
        DrawOutcome.loads(raw)


@given(
    st.text(max_size=20),
    st.sampled_from(["won", "lost", "rejected"]),
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=-(2**40), max_value=2**40),
)
def test_encode_is_dumps_without_the_dataclass(text: str, status: str, at: int, n: int) -> None:
    values = (
        *(text, "t", "a", "u", "r\\n" + text, status, "p", text, "coupon", "", "b:0:1", at, n),
        *("c_" + text, "tpl", n, n),
    )
    encode = DrawOutcome.encoder()
    assert encode(*values) == DrawOutcome(*values).dumps()  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode(*values[:-1])
