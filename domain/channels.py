"""Upstream channels (seed 002's aggregator: WeChat, Alipay, UnionPay coupons):
what a channel is, the protocol Carnival speaks with one, and the life of one
issuance (pure, no I/O).

A coupon of a template linked to a channel is issued in Carnival first (the
claim or draw road decides stock and limits), then the relay asks the upstream
to issue its counterpart. The rule that matters: **an issue request is sent at
most once per coupon**. The issuance turns ``unknown`` *before* the request
goes out, so a timeout, an upstream 5xx, an unverifiable answer or a crash
mid-call all leave it ``unknown``, and only a query (by ``out_request_no``, the
coupon id) resolves it: found upstream -> ``issued``, not found -> ``failed``.
The query is asked `Channel.query_wait_ms` after the issue was sent (the issue
request's timeout, then `Channel.reconcile_after_ms`), when the upstream has
finished with any request still in flight; so however many relays take an
issuance, only the one that turned it ``unknown`` sends it, and nobody asks
about it while that request may still land. A ``failed``
issuance voids the Carnival coupon (the shopper must not hold a coupon that
does not exist where it is spent).

The protocol (`UPSTREAM_*` paths), JSON bodies, every request signed with the
partner signing scheme of domain/signing.py (RSA-SHA256, SHA256withRSA) both
ways:

* Carnival -> upstream, signed with Carnival's key for the channel, partner id
  = the channel's ``merchant_id`` at the upstream:
  - ``POST /v1/coupons`` ``{out_request_no, stock_id, user_id}`` -> 200 the
    upstream coupon, or 4xx ``{code, message}`` (a refusal: nothing issued);
  - ``GET /v1/coupons?out_request_no=...`` -> 200 the upstream coupon, or 404.
  Every answer carries ``X-Upstream-Signature``: base64 RSA-SHA256, with the
  upstream's key, of `response_message` (the request's nonce, the status, the
  body's SHA-256), so an answer cannot be replayed onto another request.
* upstream -> Carnival: ``POST /v1/channels/{channel_id}/writeoffs`` signed with
  the upstream's key, partner id = the channel id: a coupon was spent upstream.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Annotated, Final, Literal, get_args
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.ids import ID_PATTERN, REQUEST_ID_PATTERN
from domain.signing import load_public_key
from domain.writeoffs import Order

UPSTREAM_COUPONS: Final = "/v1/coupons"
RESPONSE_SIGNATURE_HEADER: Final = "X-Upstream-Signature"

IssuanceState = Literal["pending", "unknown", "issued", "failed"]
ISSUANCE_STATES: Final[tuple[IssuanceState, ...]] = get_args(IssuanceState)
FINAL: Final[frozenset[str]] = frozenset({"issued", "failed"})

MAX_PEM_CHARS: Final = 16_384
ERROR_CHARS: Final = 300


def _check_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("base_url must be absolute http:// or https:// with a host")
    if parts.query or parts.fragment or parts.username:
        raise ValueError("base_url must not carry a query, a fragment or credentials")
    return url.rstrip("/")


def _check_pem(pem: str) -> str:
    load_public_key(pem)  # SignatureError is a ValueError: pydantic reports it
    return pem


class ChannelFields(BaseModel):
    """What an operator registers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    base_url: Annotated[str, Field(max_length=2048), AfterValidator(_check_base_url)]
    # Carnival's id at the upstream: the partner id of the requests Carnival signs.
    merchant_id: str = Field(pattern=ID_PATTERN)
    # Verifies the upstream's answers and its write-off callbacks.
    upstream_public_key_pem: Annotated[
        str, Field(max_length=MAX_PEM_CHARS), AfterValidator(_check_pem)
    ]
    # The partner the upstream's write-offs are recorded for (its budgets, its stats).
    partner_id: str = Field(pattern=ID_PATTERN)
    timeout_ms: int = Field(default=3000, ge=100, le=60_000)
    # Asked by query this long after an issue whose answer was lost.
    reconcile_after_ms: int = Field(default=10_000, ge=100, le=3_600_000)


class Channel(ChannelFields):
    id: str = Field(pattern=ID_PATTERN)
    tenant_id: str
    created_at: int
    # The upstream verifies Carnival's requests with this; its private half stays
    # in the ledger beside the channel (ledger/channels.py).
    carnival_public_key_pem: str

    @property
    def query_wait_ms(self) -> int:
        """From the issue request to the first query: the request's own timeout
        (its sender may still be waiting), then the upstream's settling time."""
        return self.timeout_ms + self.reconcile_after_ms


def new_channel_id() -> str:
    return "ch_" + secrets.token_hex(8)


class Issuance(BaseModel):
    model_config = ConfigDict(frozen=True)

    coupon_id: str  # also the out_request_no: one coupon, one upstream coupon
    tenant_id: str
    template_id: str
    user_id: str
    channel_id: str
    stock_id: str
    created_at: int
    state: IssuanceState = "pending"
    issue_sent_at: int | None = None  # set once, before the one issue request goes out
    upstream_coupon_id: str = ""
    reason: str = ""  # the upstream's refusal code, or why a query failed the issuance
    last_error: str = ""  # the last answer that decided nothing (timeout, 5xx, ...)
    queries: int = 0
    resolved_at: int | None = None

    def sending(self, at: int) -> Issuance:
        """The state written before the issue request is sent: ``unknown`` until an
        answer says otherwise. Only a pending issuance is ever sent."""
        if self.state != "pending":
            raise ValueError(f"issuance {self.coupon_id} is {self.state}: never sent twice")
        return self.model_copy(update={"state": "unknown", "issue_sent_at": at})

    def issued(self, upstream_coupon_id: str, at: int) -> Issuance:
        return self.model_copy(
            update={"state": "issued", "upstream_coupon_id": upstream_coupon_id, "resolved_at": at}
        )

    def failed(self, reason: str, at: int) -> Issuance:
        return self.model_copy(update={"state": "failed", "reason": reason, "resolved_at": at})

    def due_at(self, query_wait_ms: int, now_ms: int) -> int:
        """When to work on it next: a pending one now; an unknown one when the
        upstream is done with the issue request, then less and less often."""
        if self.state != "unknown" or self.issue_sent_at is None:
            return now_ms
        return self.issue_sent_at + query_delay_ms(self.queries, query_wait_ms)

    def undecided(self, error: str, queried: bool) -> Issuance:
        return self.model_copy(
            update={"last_error": error[:ERROR_CHARS], "queries": self.queries + int(queried)}
        )


def query_delay_ms(queries: int, query_wait_ms: int) -> int:
    """From the issue request, when to query: the first query waits out requests
    still in flight; one that itself got no answer is asked again later and later
    (after 2, 4, 8 ... times the wait, at most an hour after the issue)."""
    return min(3_600_000, query_wait_ms << min(queries, 16))


class IssueRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    out_request_no: str = Field(pattern=REQUEST_ID_PATTERN)
    stock_id: str = Field(pattern=ID_PATTERN)
    user_id: str = Field(min_length=1, max_length=64)


class UpstreamCoupon(BaseModel):
    model_config = ConfigDict(frozen=True)

    coupon_id: str = Field(min_length=1, max_length=128)
    out_request_no: str
    stock_id: str
    user_id: str


class WriteoffCallback(BaseModel):
    """The upstream says one of its coupons was spent: a redemption in Carnival."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    writeoff_id: str = Field(pattern=REQUEST_ID_PATTERN)  # the upstream's: idempotency key
    out_request_no: str = Field(pattern=REQUEST_ID_PATTERN)  # the Carnival coupon id
    coupon_id: str = Field(min_length=1, max_length=128)  # the upstream's coupon id
    order: Order


def response_message(nonce: str, status: int, body: bytes) -> bytes:
    return f"{nonce}\n{status}\n{hashlib.sha256(body).hexdigest()}".encode()


def sign_response(key: rsa.RSAPrivateKey, nonce: str, status: int, body: bytes) -> str:
    signature = key.sign(response_message(nonce, status, body), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def response_verifies(pem: str, nonce: str, status: int, body: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        load_public_key(pem).verify(
            raw, response_message(nonce, status, body), padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        return False
    return True
