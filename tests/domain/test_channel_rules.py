"""Channel rules, pure: an issuance is sent once, then only asked about; answers
are bound to their request."""

from __future__ import annotations

import pytest

from domain.channels import Issuance, query_delay_ms, response_verifies, sign_response
from domain.signing import generate_rsa_key, public_pem


def _issuance() -> Issuance:
    return Issuance(
        coupon_id="c_1",
        tenant_id="t",
        template_id="tpl",
        user_id="u",
        channel_id="ch_1",
        stock_id="s",
        created_at=100,
    )


def test_an_issuance_is_sent_once_and_then_only_queried() -> None:
    pending = _issuance()
    assert pending.due_at(500, now_ms=120) == 120, "a pending one is sent now"
    sent = pending.sending(at=200)
    assert (sent.state, sent.issue_sent_at) == ("unknown", 200)
    with pytest.raises(ValueError, match="never sent twice"):
        sent.sending(at=300)
    assert sent.due_at(500, now_ms=210) == 700, "asked once in-flight requests are done"
    asked = sent.undecided("ReadTimeout", queried=True)
    assert asked.queries == 1 and asked.due_at(500, now_ms=800) == 1200
    assert asked.issued("up_1", 900).state == "issued"
    assert asked.failed("not_issued_upstream", 900).reason == "not_issued_upstream"


def test_query_delays_grow_and_are_capped() -> None:
    assert [query_delay_ms(q, 1000) for q in range(4)] == [1000, 2000, 4000, 8000]
    assert query_delay_ms(40, 10_000) == 3_600_000


def test_an_answer_verifies_only_for_its_request_status_and_body() -> None:
    key = generate_rsa_key()
    pem = public_pem(key).decode()
    signature = sign_response(key, "nonce-1", 200, b'{"coupon_id":"up_1"}')
    assert response_verifies(pem, "nonce-1", 200, b'{"coupon_id":"up_1"}', signature)
    assert not response_verifies(pem, "nonce-2", 200, b'{"coupon_id":"up_1"}', signature)
    assert not response_verifies(pem, "nonce-1", 404, b'{"coupon_id":"up_1"}', signature)
    assert not response_verifies(pem, "nonce-1", 200, b'{"coupon_id":"up_2"}', signature)
    assert not response_verifies(pem, "nonce-1", 200, b"{}", "not base64!")
    other = public_pem(generate_rsa_key()).decode()
    assert not response_verifies(other, "nonce-1", 200, b'{"coupon_id":"up_1"}', signature)
