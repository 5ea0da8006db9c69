"""Signed partner requests: the dependency every partner route takes.

It verifies the request as received (raw path and query, raw body) with
``domain.signing.verify``, and only then remembers the nonce (SET NX EX for the
request's window), so a forged request can never burn the nonce of a genuine
one. Each refusal is a 401 with the signing rule's own code; a disabled partner
is a 403 (only once its signature verified: a stranger learns nothing of it), a
body over `MAX_BODY_BYTES` a 413.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.deps import Res
from api.errors import ApiError
from domain.channels import Channel
from domain.signing import (
    NONCE_REPLAYED,
    RSA_SHA256,
    PartnerKey,
    SignatureError,
    VerifiedRequest,
    nonce_key_suffix,
    read_unverified_partner,
    verify,
)
from ledger.channels import ChannelStore
from ledger.partners import PartnerStore


@dataclass(frozen=True, slots=True)
class Caller:
    """A partner whose request verified: who it is and where it may act."""

    partner_id: str
    tenant_id: str
    store_ids: tuple[str, ...]
    body_sha256: str  # of the body as received and verified


# The body is read (and hashed) before the partner is known: bound what a stranger
# can make the api buffer. A redemption with a long order is a few KB.
MAX_BODY_BYTES = 1 << 20


def _too_large() -> ApiError:
    return ApiError(
        413, "body_too_large", f"a partner request's body is at most {MAX_BODY_BYTES} bytes"
    )


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    body = await request.body()  # cached by Starlette: the route reads it again
    if len(body) > MAX_BODY_BYTES:
        raise _too_large()
    return body


def _verify(request: Request, body: bytes, key: PartnerKey | None) -> VerifiedRequest:
    scope = request.scope
    try:
        return verify(
            request.method,
            (scope.get("raw_path") or request.url.path.encode()).decode("ascii", "replace"),
            scope["query_string"].decode("ascii", "replace"),
            request.headers,
            body,
            lambda _: key,
            time.time(),
        )
    except SignatureError as exc:
        raise ApiError(401, exc.code, exc.message) from exc


async def _fresh_nonce(
    store: PartnerStore, tenant_id: str, signer_id: str, verified: VerifiedRequest
) -> None:
    suffix = nonce_key_suffix(signer_id, verified.nonce)
    if not await store.remember_nonce(tenant_id, suffix, verified.nonce_ttl_s):
        raise ApiError(
            401,
            NONCE_REPLAYED,
            "this nonce was already used: every request (a retry too) needs a fresh "
            "nonce, timestamp and signature",
        )


async def signed_partner(res: Res, request: Request) -> Caller:
    body = await _body(request)
    store = PartnerStore(res.store.redis)
    claimed = read_unverified_partner(request.headers)
    found = await store.with_key(claimed) if claimed else None
    verified = _verify(request, body, found.key if found else None)
    assert found is not None  # verify refused an unknown partner
    partner = found.partner
    if not partner.enabled:
        raise ApiError(403, "partner_disabled", "this partner is disabled; ask the merchant")
    await _fresh_nonce(store, partner.tenant_id, partner.id, verified)
    return Caller(partner.id, partner.tenant_id, partner.store_ids, verified.body_sha256)


async def signed_channel(res: Res, request: Request, channel_id: str) -> Channel:
    """An upstream's callback: signed with the upstream's key, the partner header
    naming the channel (the one in the path)."""
    body = await _body(request)
    claimed = read_unverified_partner(request.headers)
    channel = await ChannelStore(res.store.redis).channel(channel_id)
    known = channel is not None and claimed == channel_id
    key = PartnerKey(RSA_SHA256, channel.upstream_public_key_pem.encode()) if known else None
    verified = _verify(request, body, key)
    assert channel is not None  # verify refused an unknown signer
    await _fresh_nonce(PartnerStore(res.store.redis), channel.tenant_id, channel.id, verified)
    return channel


SignedPartner = Annotated[Caller, Depends(signed_partner)]
SignedChannel = Annotated[Channel, Depends(signed_channel)]
