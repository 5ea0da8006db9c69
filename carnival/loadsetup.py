"""The entities of one load run, made through the admin API (carnival.loadrun).

A fresh activity, templates and partner per run (their ids carry the run's
tag, so runs never collide), shopper tokens from ``POST /v1/shopper-tokens``,
and for the tills coupons claimed by those shoppers. `Setup` holds it all: the
JSON ``loadtests/scenarios.py`` reads, and the limits the closing check
(carnival.loadcheck) holds the run to.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import httpx

Scenario = Literal["flash", "wheel", "writeoffs", "mixed"]

HTTP_TIMEOUT_S: Final = 60.0
SETUP_CONCURRENCY: Final = 32  # tokens and coupons made at set-up, requests at a time
TOKEN_TTL_S: Final = 86_400
POLL_EVERY_S: Final = 0.1
POLL_TIMEOUT_S: Final = 60.0  # a set-up claim answered 202 must be decided by then
FLASH_OPENS_AFTER_MS: Final = 2000  # the sale opens this long after set-up: a real rush
DISCOUNT_CENTS: Final = 500  # of the tills' template: 5 off orders of 20
WHEEL_POINTS: Final = 10  # a wheel's points prize, and the price of the exchange coupon
SIGNIN_POINTS: Final = (5, 10)  # set only when the tenant has no sign-in rule
TILLS_PER_USERS: Final = 20  # the mixed day: one till for every 20 simulated users

Say = Callable[[str], None]


class LoadError(RuntimeError):
    """The run could not be set up or run (not a broken invariant: see closing_check)."""


@dataclass(frozen=True, slots=True)
class LoadConfig:
    scenario: Scenario
    users: int = 50
    spawn_rate: float = 10.0
    duration_s: int = 60
    shoppers: int = 0  # 0: the scenario's default for the users
    coupons: int = 0  # for the tills; 0: the scenario's default


@dataclass(frozen=True, slots=True)
class TemplateLimits:
    template_id: str
    stock: int | None
    per_user: int
    budget_cents: int | None


@dataclass
class Setup:
    """What a run created, and the limits the closing check holds it to."""

    tag: str
    tenant_id: str
    locust: dict[str, Any]  # the JSON scenarios.py reads
    activities: dict[str, int] = field(default_factory=dict)  # id -> per_user_total
    prize_stock: dict[str, dict[str, int]] = field(default_factory=dict)  # activity -> prize
    templates: list[TemplateLimits] = field(default_factory=list)
    partners: dict[str, int | None] = field(default_factory=dict)  # id -> budget_cents
    redeem_template: str | None = None  # whose write-offs the tills made


def expect(reply: httpx.Response, *statuses: int) -> Any:
    if reply.status_code not in statuses:
        raise LoadError(
            f"{reply.request.method} {reply.request.url.path}: {reply.status_code} {reply.text}"
        )
    return reply.json()


def _run_tag() -> str:
    return time.strftime("%m%d%H%M%S") + os.urandom(2).hex()


def shoppers_for(config: LoadConfig) -> int:
    """A crowd for the rush and the storm (each request is the next shopper's),
    a shopper per simulated user for the mixed day."""
    if config.shoppers:
        return config.shoppers
    per_user = {"flash": 20, "wheel": 10, "writeoffs": 2, "mixed": 2}[config.scenario]
    return max(100, min(config.users * per_user, 20_000))


def coupons_for(config: LoadConfig) -> int:
    if config.coupons:
        return config.coupons
    return max(100, min(config.users * 10, 5_000))


async def _tokens(admin: httpx.AsyncClient, tag: str, count: int) -> list[str]:
    tokens = [""] * count
    todo = iter(range(count))

    async def worker() -> None:
        for i in todo:
            body = {"user_id": f"load-{tag}-{i}", "ttl_s": TOKEN_TTL_S}
            tokens[i] = expect(await admin.post("/v1/shopper-tokens", json=body), 200)["token"]

    await asyncio.gather(*(worker() for _ in range(SETUP_CONCURRENCY)))
    return tokens


async def _claim_coupons(
    api: str, template_id: str, tokens: list[str], count: int, tag: str
) -> list[str]:
    """``count`` coupons of the template claimed by the shoppers, round robin."""
    coupons: list[str] = []
    todo = iter(range(count))
    async with httpx.AsyncClient(base_url=api, timeout=HTTP_TIMEOUT_S) as client:

        async def one(i: int) -> None:
            headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
            request_id = f"setup-{tag}-{i}"
            path = f"/v1/templates/{template_id}/claims"
            reply = await client.post(path, json={"request_id": request_id}, headers=headers)
            deadline = time.monotonic() + POLL_TIMEOUT_S
            while reply.status_code == 202 and time.monotonic() < deadline:
                await asyncio.sleep(POLL_EVERY_S)
                reply = await client.get(f"{path}/{request_id}", headers=headers)
            answer = expect(reply, 200)
            if answer["status"] != "issued":
                raise LoadError(f"set-up claim {request_id} was not issued: {answer}")
            coupons.append(answer["coupon"]["coupon_id"])

        async def worker() -> None:
            for i in todo:
                await one(i)

        await asyncio.gather(*(worker() for _ in range(SETUP_CONCURRENCY)))
    return coupons


def _template(admin: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    expect(admin.post("/v1/admin/templates", json=body), 201)
    return expect(admin.post(f"/v1/admin/templates/{body['id']}/start"), 200)


def _activity(admin: httpx.Client, body: dict[str, Any]) -> None:
    expect(admin.post("/v1/admin/activities", json=body), 201)
    for to in ("scheduled", "running"):
        expect(admin.post(f"/v1/admin/activities/{body['id']}/transitions", json={"to": to}), 200)


def _wheel(admin: httpx.Client, setup: Setup, users: int, per_user_total: int) -> None:
    """A wheel with two stock-limited prizes (the grand one runs out fast), an
    unlimited points prize and the fallback."""
    activity_id = f"load-wheel-{setup.tag}"
    stock = {"grand": max(5, users // 2), "second": max(20, users * 2)}
    _activity(
        admin,
        {
            "id": activity_id,
            "kind": "wheel",
            "name": f"Load wheel {setup.tag}",
            "prizes": [
                {"id": "grand", "name": "Grand prize", "kind": "item", "weight": 5,
                 "stock": stock["grand"]},
                {"id": "second", "name": "Second prize", "kind": "item", "weight": 15,
                 "stock": stock["second"]},
                {"id": "points", "name": f"{WHEEL_POINTS} points", "kind": "points",
                 "weight": 40, "points": WHEEL_POINTS},
                {"id": "thanks", "name": "Thanks", "kind": "thanks", "weight": 40},
            ],
            "fallback_prize_id": "thanks",
            "limits": {"per_user_total": per_user_total},
        },
    )  # fmt: skip
    setup.activities[activity_id] = per_user_total
    setup.prize_stock[activity_id] = stock
    setup.locust["activity_id"] = activity_id


def _coupon_template(
    template_id: str, name: str, stock: int, per_user: int, **extra: Any
) -> dict[str, Any]:
    return {
        "id": template_id,
        "name": name,
        "kind": "fixed",
        "amount_cents": DISCOUNT_CENTS,
        "threshold_cents": 2000,
        "validity": {"days_after_claim": 30},
        "limits": {"stock": stock, "per_user": per_user, **extra.pop("limits", {})},
        **extra,
    }


def _tills(admin: httpx.Client, api: str, setup: Setup, tokens: list[str], coupons: int) -> None:
    """A template whose budget runs out before its coupons do, an HMAC partner
    with a smaller budget still, and the coupons the tills will redeem."""
    template_id = f"load-till-{setup.tag}"
    budget = coupons * DISCOUNT_CENTS * 3 // 5
    body = _coupon_template(
        template_id, f"Tills {setup.tag}", coupons, 0, limits={"budget_cents": budget}
    )
    _template(admin, body)
    setup.templates.append(TemplateLimits(template_id, coupons, 0, budget))
    partner_budget = coupons * DISCOUNT_CENTS // 2
    created = expect(
        admin.post(
            "/v1/admin/partners",
            json={
                "name": f"Load till {setup.tag}",
                "algorithm": "HMAC-SHA256",
                "budget_cents": partner_budget,
            },
        ),
        201,
    )
    setup.partners[created["partner"]["id"]] = partner_budget
    setup.redeem_template = template_id
    setup.locust |= {
        "partner_id": created["partner"]["id"],
        "partner_secret": created["secret"],
        "coupons": asyncio.run(_claim_coupons(api, template_id, tokens, coupons, setup.tag)),
    }


def _flash(admin: httpx.Client, setup: Setup, users: int) -> None:
    """A flash-price template with little stock, one per shopper, opening at a
    second just after set-up; and the flash-sale page that lists it."""
    now = int(time.time() * 1000)
    opens = now + FLASH_OPENS_AFTER_MS
    template_id = f"load-flash-{setup.tag}"
    stock = max(10, users // 2)
    _template(
        admin,
        {
            "id": template_id,
            "name": f"Flash tee {setup.tag}",
            "kind": "flash_price",
            "flash": {"sku": "tee", "price_cents": 990, "max_qty": 1},
            "validity": {"starts_at": opens, "ends_at": opens + 7 * 86_400_000},
            "limits": {"stock": stock, "per_user": 1},
            "claim_opens_at": opens,
        },
    )
    setup.templates.append(TemplateLimits(template_id, stock, 1, None))
    page_id = f"load-sale-{setup.tag}"
    _activity(
        admin,
        {
            "id": page_id,
            "kind": "flash_sale",
            "name": f"Flash sale {setup.tag}",
            "starts_at": opens,
            "templates": [template_id],
        },
    )
    setup.locust |= {"flash_template_id": template_id, "flash_page_id": page_id}


def _ensure_signin_rule(admin: httpx.Client) -> str | None:
    """Sign-ins need a rule: the tenant's rules stay as they are when they have
    one; otherwise SIGNIN_POINTS is set (the rest of the rules unchanged)."""
    rules = expect(admin.get("/v1/admin/points/rules"), 200)
    if rules.get("signin"):
        return None
    body = {k: v for k, v in rules.items() if k != "version"} | {"signin": list(SIGNIN_POINTS)}
    expect(admin.put("/v1/admin/points/rules", json=body), 200)
    return f"the tenant had no sign-in rule: set signin {list(SIGNIN_POINTS)}"


def set_up(config: LoadConfig, api: str, admin_key: str, say: Say) -> tuple[Setup, list[str]]:
    """The run's entities and shopper tokens; returns the set-up and notes."""
    notes: list[str] = []
    tag = _run_tag()
    headers = {"X-Api-Key": admin_key}
    with httpx.Client(base_url=api, headers=headers, timeout=HTTP_TIMEOUT_S) as admin:
        who = expect(admin.get("/v1/admin/whoami"), 200)
        setup = Setup(tag, who["tenant_id"], {"api": api})
        count = shoppers_for(config)
        say(f"minting {count:,} shopper tokens (tenant {setup.tenant_id}, run {tag})...")

        async def mint() -> list[str]:
            async with httpx.AsyncClient(
                base_url=api, headers=headers, timeout=HTTP_TIMEOUT_S
            ) as client:
                return await _tokens(client, tag, count)

        tokens = asyncio.run(mint())
        setup.locust["tokens"] = tokens
        if config.scenario == "flash":
            _flash(admin, setup, config.users)
        elif config.scenario == "wheel":
            _wheel(admin, setup, config.users, per_user_total=5)
        elif config.scenario == "writeoffs":
            say(f"claiming {coupons_for(config):,} coupons for the tills...")
            _tills(admin, api, setup, tokens, coupons_for(config))
        else:
            _wheel(admin, setup, config.users, per_user_total=20)
            claim_id, exchange_id = f"load-claim-{tag}", f"load-xchg-{tag}"
            claim_stock, exchange_stock = max(20, config.users * 3), max(20, config.users * 2)
            _template(admin, _coupon_template(claim_id, f"Claim {tag}", claim_stock, 2))
            _template(
                admin,
                _coupon_template(
                    exchange_id, f"Exchange {tag}", exchange_stock, 3, points_price=WHEEL_POINTS
                ),
            )
            setup.templates += [
                TemplateLimits(claim_id, claim_stock, 2, None),
                TemplateLimits(exchange_id, exchange_stock, 3, None),
            ]
            setup.locust |= {
                "claim_template_id": claim_id,
                "exchange_template_id": exchange_id,
                "tills": max(1, config.users // TILLS_PER_USERS),
            }
            if note := _ensure_signin_rule(admin):
                notes.append(note)
            coupons = max(50, coupons_for(config) // 2)
            say(f"claiming {coupons:,} coupons for the tills...")
            _tills(admin, api, setup, tokens, coupons)
    return setup, notes
