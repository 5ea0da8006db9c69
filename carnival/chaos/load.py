"""The mixed load: draws, claims, points exchanges and partner write-offs, each
with its own request id, sent at a steady pace so a kill lands mid-load and the
load goes on across the outage.

Contract: every request sent gets one ``Answer``. It is *acknowledged* when the
api decided it (200, or a 409 naming the refusal) or queued it (a 202 ticket,
then polled until decided). A request that got no answer because a process
was down (refused or reset connection, timeout, 503) is *not acknowledged*: it
may or may not have been decided, and nothing is asserted about it. Nothing is
retried with another request id.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from carnival.chaos.shop import ORDER_ITEMS, SHIPPING_CENTS, Shop
from domain.events import request_key
from domain.tokens import sign_shopper_token

Kind = Literal["draw", "claim", "exchange", "redeem"]
DECIDED = frozenset({200, 409})
# One request's own bound; the api answers a 202 after its reply timeout (3 s).
REQUEST_TIMEOUT_S = 10.0
# A ticket is polled this long at most: past it, an acknowledged request is lost.
TICKET_DEADLINE_S = 180.0
POLL_EVERY_S = 0.25
MAX_CONNECTIONS = 64
# Shares of the planned requests; every coupon a claim issues is then redeemed.
SHARES: tuple[tuple[Kind, float], ...] = (("draw", 0.45), ("claim", 0.30), ("exchange", 0.25))


@dataclass(frozen=True, slots=True)
class Ask:
    kind: Kind
    user: str  # the shopper, or the partner for a write-off
    request_id: str
    path: str
    body: dict[str, Any]

    @property
    def key(self) -> str:
        """The ledger's key of its outcome."""
        return request_key(self.user, self.request_id)


@dataclass(slots=True)
class Answer:
    ask: Ask
    status: int | None = None  # the last HTTP status seen; None: no answer at all
    body: Any = None
    ticket: bool = False  # a 202 came first
    refused: str = ""  # why there is no decided answer

    @property
    def decided(self) -> bool:
        return self.status in DECIDED

    @property
    def acknowledged(self) -> bool:
        return self.decided or self.ticket

    @property
    def code(self) -> str:
        """The refusal's error code for a 409, else ''."""
        if self.status == 409 and isinstance(self.body, dict):
            return str(self.body.get("error", {}).get("code", ""))
        return ""


@dataclass
class Tally:
    """Read by the orchestrating thread while the load runs."""

    planned: int = 0
    finished: int = 0
    answers: list[Answer] = field(default_factory=list)


def plan(shop: Shop, requests: int, seed: int) -> list[Ask]:
    """``requests`` asks in a shuffled order: each shopper's claims come in pairs
    (a shopper hammering the button) and some draw past the per-user limit."""
    rng = random.Random(seed)
    asks: list[Ask] = []
    for kind, share in SHARES:
        for n in range(round(requests * share)):
            user = (
                shop.users[(n // 2) % len(shop.users)]
                if kind == "claim"
                else rng.choice(shop.users)
            )
            rid = f"{kind[0]}{n}"
            asks.append(Ask(kind, user, rid, _path(shop, kind), {"request_id": rid}))
    rng.shuffle(asks)
    return asks


def _path(shop: Shop, kind: Kind) -> str:
    if kind == "draw":
        return f"/v1/activities/{shop.wheel_id}/draws"
    if kind == "claim":
        return f"/v1/templates/{shop.template_id}/claims"
    if kind == "exchange":
        return f"/v1/templates/{shop.exchange_id}/exchanges"
    return "/v1/partner/redemptions"


def redemption(shop: Shop, coupon_id: str, n: int) -> Ask:
    rid = f"wo{n}"
    body = {
        "request_id": rid,
        "coupon_id": coupon_id,
        "order": {"order_id": f"o{n}", "items": ORDER_ITEMS, "shipping_cents": SHIPPING_CENTS},
    }
    return Ask("redeem", shop.partner_id, rid, _path(shop, "redeem"), body)


class Clients:
    """The shoppers' client and the partner's (every request signed)."""

    def __init__(self, api_url: str, shop: Shop) -> None:
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S, pool=None)
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS)
        self.shop = shop
        self.shoppers = httpx.AsyncClient(base_url=api_url, timeout=timeout, limits=limits)
        self.partner = httpx.AsyncClient(
            base_url=api_url, timeout=timeout, limits=limits, auth=shop.partner_auth()
        )
        self._tokens: dict[str, str] = {}

    def headers(self, ask: Ask) -> dict[str, str]:
        if ask.kind == "redeem":
            return {}
        token = self._tokens.get(ask.user)
        if token is None:
            token = sign_shopper_token(self.shop.secret, self.shop.tenant_id, ask.user)
            self._tokens[ask.user] = token
        return {"Authorization": f"Bearer {token}"}

    def client(self, ask: Ask) -> httpx.AsyncClient:
        return self.partner if ask.kind == "redeem" else self.shoppers

    async def aclose(self) -> None:
        await self.shoppers.aclose()
        await self.partner.aclose()


def _json(reply: httpx.Response) -> Any:
    try:
        return reply.json()
    except ValueError:
        return reply.text


async def ask_once(clients: Clients, ask: Ask, answer: Answer | None = None) -> Answer:
    """POST the ask; a ticket is polled until decided or TICKET_DEADLINE_S passed."""
    answer = answer or Answer(ask)
    client = clients.client(ask)
    try:
        reply = await client.post(ask.path, json=ask.body, headers=clients.headers(ask))
    except httpx.HTTPError as exc:
        answer.refused = type(exc).__name__
        return answer
    answer.status, answer.body = reply.status_code, _json(reply)
    if reply.status_code != 202:
        if not answer.decided:
            answer.refused = f"HTTP {reply.status_code}"
        return answer
    answer.ticket = True
    poll = answer.body["poll"]
    deadline = time.monotonic() + TICKET_DEADLINE_S
    while time.monotonic() < deadline:
        await asyncio.sleep(POLL_EVERY_S)
        try:
            reply = await client.get(poll, headers=clients.headers(ask))
        except httpx.HTTPError:
            continue  # the api is down: the ticket stays good
        if reply.status_code in DECIDED:
            answer.status, answer.body = reply.status_code, _json(reply)
            return answer
        if reply.status_code not in (202, 503):
            answer.status, answer.body = reply.status_code, _json(reply)
            answer.refused = f"poll HTTP {reply.status_code}"
            return answer
    answer.refused = "ticket never decided"
    return answer


async def run_load(
    api_url: str, shop: Shop, asks: list[Ask], rate: float, tally: Tally
) -> list[Answer]:
    """Send ``asks`` at ``rate`` per second, and a redemption for every coupon a
    claim issued as soon as it is issued; every answer is in ``tally``."""
    clients = Clients(api_url, shop)
    tally.planned = len(asks)
    redeemed = 0
    started = time.monotonic()

    async def one(ask: Ask, at: float) -> None:
        nonlocal redeemed
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        answer = Answer(ask)
        tally.answers.append(answer)
        await ask_once(clients, ask, answer)
        tally.finished += 1
        coupon = answer.body.get("coupon") if isinstance(answer.body, dict) else None
        if ask.kind == "claim" and answer.status == 200 and coupon:
            redeemed += 1
            follow = redemption(shop, coupon["coupon_id"], redeemed)
            tally.planned += 1
            followed = Answer(follow)
            tally.answers.append(followed)
            await ask_once(clients, follow, followed)
            tally.finished += 1

    try:
        await asyncio.gather(*(one(ask, i / rate) for i, ask in enumerate(asks)))
    finally:
        await clients.aclose()
    return tally.answers


async def reask(api_url: str, shop: Shop, answers: list[Answer]) -> dict[int, Answer]:
    """Each decided answer's request sent again with its request id (index ->
    the second answer), once the stack is up: a retry must get the same answer."""
    clients = Clients(api_url, shop)
    limit = asyncio.Semaphore(MAX_CONNECTIONS)

    async def again(answer: Answer) -> Answer:
        async with limit:
            return await _until_answered(lambda: ask_once(clients, answer.ask))

    try:
        chosen = [i for i, a in enumerate(answers) if a.decided]
        seconds = await asyncio.gather(*(again(answers[i]) for i in chosen))
    finally:
        await clients.aclose()
    return dict(zip(chosen, seconds, strict=True))


async def _until_answered(send: Callable[[], Awaitable[Answer]], attempts: int = 20) -> Answer:
    answer = await send()
    for _ in range(attempts):
        if answer.status not in (None, 503):
            return answer
        await asyncio.sleep(0.5)
        answer = await send()
    return answer
