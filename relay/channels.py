"""Upstream channel issuances: committed coupons of channel-linked templates
become issuances on the durable queue (ledger/channels.py); the issuer sends
each one's single issue request, and asks by query about those whose answer
was lost, until each is ``issued`` or ``failed`` (domain/channels.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError
from redis.exceptions import RedisError

from domain.channels import (
    RESPONSE_SIGNATURE_HEADER,
    UPSTREAM_COUPONS,
    Channel,
    Issuance,
    UpstreamCoupon,
    response_verifies,
)
from domain.coupons import ChannelLink
from domain.events import now_ms
from domain.signing import NONCE_HEADER, RSA_SHA256, sign_headers
from ledger.channels import ChannelStore
from ledger.templates import TemplateStore
from relay.queue import work_forever

log = logging.getLogger("carnival.relay.channels")

TAKE = 200
# What a relay takes is not taken by another for this long. Only against doing the
# same work twice: an issue is guarded by the pending -> unknown step, which one
# relay wins, and a query is due only when no issue request can still land.
LEASE_MS = 10_000
CONCURRENCY = 32
# A template's channel link is read again after this (a template's link is set at
# creation; the cache only spares a Redis read per event).
LINK_TTL_S = 5.0
# A refusal code from the upstream is kept this long.
CODE_CHARS = 64


class ChannelLinks:
    """Which templates' coupons are issued upstream, cached per template."""

    def __init__(self, templates: TemplateStore) -> None:
        self._templates = templates
        self._cache: dict[tuple[str, str], tuple[float, ChannelLink | None]] = {}

    async def link(self, tenant_id: str, template_id: str) -> ChannelLink | None:
        key = (tenant_id, template_id)
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < LINK_TTL_S:
            return hit[1]
        template = await self._templates.template(tenant_id, template_id)
        link = template.channel if template is not None else None
        self._cache[key] = (time.monotonic(), link)
        return link


def _issued_coupon(event: dict[str, Any]) -> tuple[str, str, str] | None:
    """(template id, coupon id, user id) of a coupon a committed event issued."""
    if event.get("type") == "claim.outcome" and event.get("status") == "issued":
        return event["template_id"], event["coupon_id"], event["user_id"]
    if (
        event.get("type") == "draw.outcome"
        and event.get("status") == "won"
        and event.get("coupon_id")
    ):
        return event["coupon_template"], event["coupon_id"], event["user_id"]
    return None


async def issuances(events: Iterable[dict[str, Any]], links: ChannelLinks) -> list[Issuance]:
    out = []
    for event in events:
        try:
            issued = _issued_coupon(event)
        except KeyError as exc:
            log.error("event %r lacks %s; skipped", event, exc)
            continue
        if issued is None:
            continue
        template_id, coupon_id, user_id = issued
        link = await links.link(event["tenant_id"], template_id)
        if link is not None:
            out.append(
                Issuance(
                    coupon_id=coupon_id,
                    tenant_id=event["tenant_id"],
                    template_id=template_id,
                    user_id=user_id,
                    channel_id=link.channel_id,
                    stock_id=link.stock_id,
                    created_at=event["occurred_at"],
                )
            )
    return out


class _Answer:
    """An upstream answer whose signature verified (or None for the status)."""

    def __init__(self, status: int | None, body: Any, error: str) -> None:
        self.status = status
        self.body = body
        self.error = error


class Issuer:
    def __init__(self, store: ChannelStore) -> None:
        self._store = store
        self._channels: dict[str, tuple[Channel, rsa.RSAPrivateKey]] = {}
        self._client = httpx.AsyncClient(follow_redirects=False)
        self._slots = asyncio.Semaphore(CONCURRENCY)

    async def close(self) -> None:
        await self._client.aclose()

    async def run(self) -> None:
        await work_forever(
            lambda: self._store.take_due(now_ms(), LEASE_MS, TAKE), self._work_all, "issuance"
        )

    async def _work_all(self, taken: list[tuple[str, Issuance]]) -> None:
        await asyncio.gather(*(self._work(read, i) for read, i in taken))

    async def _channel(self, channel_id: str) -> tuple[Channel, rsa.RSAPrivateKey] | None:
        if channel_id not in self._channels:
            channel = await self._store.channel(channel_id)
            pem = await self._store.private_key(channel_id)
            if channel is None or pem is None:
                return None
            key = serialization.load_pem_private_key(pem, password=None)
            assert isinstance(key, rsa.RSAPrivateKey)  # made by ledger/channels.py's caller
            self._channels[channel_id] = (channel, key)
        return self._channels[channel_id]

    async def _work(self, read: str, issuance: Issuance) -> None:
        async with self._slots:
            try:
                found = await self._channel(issuance.channel_id)
                if found is None:
                    done = issuance.failed("channel_deleted", now_ms())
                    await self._store.replace(read, done, 0, now_ms())
                    return
                channel, key = found
                if issuance.state == "pending":
                    sending = issuance.sending(now_ms())
                    # Written before the request goes out: a crash from here on
                    # leaves it unknown, to be asked about, never sent again.
                    if not await self._store.replace(
                        read, sending, channel.query_wait_ms, now_ms()
                    ):
                        return
                    read, issuance = sending.model_dump_json(), sending
                    done = await self._issue(channel, key, issuance)
                else:
                    done = await self._query(channel, key, issuance)
                await self._store.replace(read, done, channel.query_wait_ms, now_ms())
                if done.state in ("issued", "failed"):
                    log.info("issuance %s %s %s", done.coupon_id, done.state, done.reason)
            except RedisError as exc:  # still leased: worked on again once the lease ends
                log.warning("issuance %s not recorded (%s)", issuance.coupon_id, exc)

    async def _issue(
        self, channel: Channel, key: rsa.RSAPrivateKey, issuance: Issuance
    ) -> Issuance:
        body = orjson.dumps(
            {
                "out_request_no": issuance.coupon_id,
                "stock_id": issuance.stock_id,
                "user_id": issuance.user_id,
            }
        )
        answer = await self._call(channel, key, "POST", UPSTREAM_COUPONS, body)
        at = now_ms()
        if answer.status == 200:
            coupon = _coupon(answer.body, issuance)
            if coupon is not None:
                return issuance.issued(coupon.coupon_id, at)
        elif (
            answer.status is not None
            and 400 <= answer.status < 500
            and answer.status not in (408, 429)
        ):
            # A refusal: the upstream says it issued nothing.
            code = answer.body.get("code") if isinstance(answer.body, dict) else None
            return issuance.failed(str(code or f"http_{answer.status}")[:CODE_CHARS], at)
        return issuance.undecided(answer.error or f"HTTP {answer.status}", queried=False)

    async def _query(
        self, channel: Channel, key: rsa.RSAPrivateKey, issuance: Issuance
    ) -> Issuance:
        target = f"{UPSTREAM_COUPONS}?{urlencode({'out_request_no': issuance.coupon_id})}"
        answer = await self._call(channel, key, "GET", target, b"")
        at = now_ms()
        if answer.status == 200:
            coupon = _coupon(answer.body, issuance)
            if coupon is not None:
                return issuance.issued(coupon.coupon_id, at)
        elif answer.status == 404:
            return issuance.failed("not_issued_upstream", at)
        return issuance.undecided(answer.error or f"HTTP {answer.status}", queried=True)

    async def _call(
        self, channel: Channel, key: rsa.RSAPrivateKey, method: str, target: str, body: bytes
    ) -> _Answer:
        headers = sign_headers(method, target, body or None, channel.merchant_id, key, RSA_SHA256)
        headers["Content-Type"] = "application/json"
        try:
            reply = await self._client.request(
                method,
                channel.base_url + target,
                content=body or None,
                headers=headers,
                timeout=channel.timeout_ms / 1000,
            )
        except httpx.HTTPError as exc:
            return _Answer(None, None, f"{type(exc).__name__}: {exc}")
        signature = reply.headers.get(RESPONSE_SIGNATURE_HEADER, "")
        nonce = headers[NONCE_HEADER]
        if not response_verifies(
            channel.upstream_public_key_pem, nonce, reply.status_code, reply.content, signature
        ):
            # Whatever it says, it may not be the upstream saying it: decides nothing.
            return _Answer(
                None, None, f"HTTP {reply.status_code}: the answer's signature did not verify"
            )
        try:
            parsed = orjson.loads(reply.content)
        except orjson.JSONDecodeError:
            parsed = None
        return _Answer(reply.status_code, parsed, f"HTTP {reply.status_code}")


def _coupon(body: Any, issuance: Issuance) -> UpstreamCoupon | None:
    try:
        coupon = UpstreamCoupon.model_validate(body)
    except ValidationError:
        return None
    return coupon if coupon.out_request_no == issuance.coupon_id else None
