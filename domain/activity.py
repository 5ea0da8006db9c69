"""Activity configuration: the data an operator sets and the actor enforces."""

from __future__ import annotations

import re
from typing import Final, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.ids import ID_PATTERN

_ID = re.compile(ID_PATTERN)

ActivityKind = Literal["wheel", "grid", "red_envelope", "claim", "flash_sale"]
# Coupon pages: shoppers claim the listed templates' coupons (domain.claims); no draws.
CLAIM_KINDS: frozenset[str] = frozenset({"claim", "flash_sale"})
PAGE_MAX_TEMPLATES = 50
ActivityStatus = Literal["draft", "scheduled", "running", "paused", "ended"]
PrizeKind = Literal["coupon", "points", "item", "thanks"]

GRID_CELLS = 8
WHEEL_MAX_PRIZES = 16


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Prize(_Frozen):
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    kind: PrizeKind
    weight: int = Field(ge=0, le=1_000_000_000)
    # Total stock ever configured; None = unlimited (the fallback must be unlimited).
    stock: int | None = Field(default=None, ge=0)
    # Points credited for a "points" prize.
    points: int = Field(default=0, ge=0, le=1_000_000_000)
    # Coupon template issued for a "coupon" prize (the coupon issue builds the templates).
    coupon_template: str | None = Field(default=None, pattern=ID_PATTERN)
    # Locked (drawn -> fallback) until the user has drawn this many times before.
    unlock_after_draws: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.kind == "points" and self.points <= 0:
            raise ValueError(f"prize '{self.id}': a points prize needs points > 0")
        if self.kind != "points" and self.points:
            raise ValueError(f"prize '{self.id}': only points prizes carry points")
        return self


class Tier(_Frozen):
    """A user who has drawn >= min_draws times and holds >= min_points draws
    with these weights instead (prizes not listed get weight 0)."""

    name: str = Field(min_length=1, max_length=50)
    min_draws: int = Field(default=0, ge=0)
    min_points: int = Field(default=0, ge=0)
    weights: dict[str, int]


class Limits(_Frozen):
    """A shopper's quota account in the activity: total, daily and monthly draws
    (days and months on the activity's ``timezone``), each raised by the chances
    the shopper bought with points or was granted (``domain.draw.Quota``)."""

    per_user_total: int = Field(default=0, ge=0)  # 0 = no limit, everywhere here
    per_user_daily: int = Field(default=0, ge=0)
    per_user_monthly: int = Field(default=0, ge=0)
    max_draws: int = Field(default=0, ge=0)  # activity-wide
    points_cost: int = Field(default=0, ge=0)  # per draw, deducted with the draw
    # Points for one extra chance (POST .../chances); 0: chances are not sold.
    chance_points: int = Field(default=0, ge=0, le=10**9)


class Rules(_Frozen):
    blacklist: tuple[str, ...] = Field(default=(), max_length=100_000)
    tiers: tuple[Tier, ...] = Field(default=(), max_length=16)


class Envelopes(_Frozen):
    """Red envelopes: ``budget_cents`` split into ``count`` random amounts."""

    budget_cents: int = Field(gt=0, le=10**12)
    count: int = Field(gt=0, le=10_000_000)
    min_cents: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.budget_cents < self.count * self.min_cents:
            raise ValueError("budget_cents must be at least count × min_cents")
        return self


HEX_COLOUR: Final = re.compile(r"#[0-9A-Fa-f]{6}")
BANNER_URL_MAX_CHARS: Final = 2_048
# Characters that could end the CSS string the banner goes into (url("...")),
# or an HTML attribute, or hide a scheme: never part of a plain URL anyway.
_BANNER_FORBIDDEN = re.compile(r"[\s\"'\\<>\x00-\x1f\x7f]")


class Theme(_Frozen):
    """An activity page's look (seed 000): colours and a banner image. Each field
    left out keeps the kind's default (web/src/shopper/theme.js). The banner is
    an ``https://`` URL or a path on the api's own host: never ``javascript:``,
    ``data:`` or plain ``http:`` (a shopper's page would mix content)."""

    primary: str | None = None  # buttons, top bar, wheel rim
    accent: str | None = None  # highlights: the lit grid cell, the pointer
    background: str | None = None  # the page
    text: str | None = None  # body text on the background
    banner_url: str | None = None

    @field_validator("primary", "accent", "background", "text")
    @classmethod
    def _colour(cls, value: str | None) -> str | None:
        if value is not None and not HEX_COLOUR.fullmatch(value):
            raise ValueError(f"'{value[:20]}' is not a colour: write it as #rrggbb (hex)")
        return None if value is None else value.lower()

    @field_validator("banner_url")
    @classmethod
    def _banner(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value or len(value) > BANNER_URL_MAX_CHARS:
            raise ValueError(f"a banner URL has 1 to {BANNER_URL_MAX_CHARS} characters")
        if _BANNER_FORBIDDEN.search(value):
            raise ValueError("a banner URL has no spaces, quotes, backslashes or < >")
        lowered = value.lower()
        if lowered.startswith(("javascript:", "data:", "vbscript:")):
            raise ValueError("javascript: and data: URLs are not allowed as a banner")
        if value.startswith("/") and not value.startswith("//"):
            return value  # a path on the api's own host
        if lowered.startswith("https://") and urlsplit(value).hostname:
            return value
        raise ValueError("a banner is an https:// URL or a path starting with '/'")


class Activity(_Frozen):
    id: str = Field(pattern=ID_PATTERN)
    tenant_id: str = Field(pattern=ID_PATTERN)
    kind: ActivityKind = "wheel"
    name: str = Field(min_length=1, max_length=200)
    status: ActivityStatus = "draft"
    starts_at: int | None = None  # epoch ms; None = open
    ends_at: int | None = None
    prizes: tuple[Prize, ...] = Field(default=(), max_length=WHEEL_MAX_PRIZES)
    # Awarded when the drawn prize is out of stock or locked; never runs out.
    fallback_prize_id: str | None = None
    limits: Limits = Limits()
    rules: Rules = Rules()
    envelopes: Envelopes | None = None
    # claim / flash_sale: the coupon templates the page offers, in page order.
    templates: tuple[str, ...] = Field(default=(), max_length=PAGE_MAX_TEMPLATES)
    # The calendar of daily and monthly limits (an IANA zone: a day starts at
    # the merchant's midnight, not UTC's).
    timezone: str = Field(default="UTC", min_length=1, max_length=64)
    # The branch (seed 002's institution) whose scoped keys see this activity.
    institution_id: str | None = Field(default=None, pattern=ID_PATTERN)
    # The shopper page's colours and banner; None: the kind's default look.
    theme: Theme | None = None
    version: int = 1

    @model_validator(mode="after")
    def _check(self) -> Self:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone: '{self.timezone}' is not an IANA time zone") from exc
        starts, ends = self.starts_at, self.ends_at
        if starts is not None and ends is not None and ends <= starts:
            raise ValueError("ends_at must be after starts_at")
        if self.kind in CLAIM_KINDS:
            self._check_page()
            return self
        if self.templates:
            raise ValueError(f"a {self.kind} activity lists no templates (its prizes name them)")
        if self.kind == "red_envelope":
            if self.envelopes is None:
                raise ValueError("a red_envelope activity needs 'envelopes'")
            if self.prizes or self.fallback_prize_id or self.rules.tiers:
                raise ValueError("a red_envelope activity has no prizes, fallback or tiers")
            return self
        if self.envelopes is not None:
            raise ValueError(f"a {self.kind} activity has no 'envelopes'")
        self._check_pool()
        return self

    def _check_page(self) -> None:
        if not self.templates:
            raise ValueError(f"a {self.kind} page needs 'templates': the coupons it offers")
        if len(set(self.templates)) != len(self.templates):
            raise ValueError("templates must be unique")
        if any(not _ID.match(t) for t in self.templates):
            raise ValueError(f"every template id matches {ID_PATTERN}")
        if self.prizes or self.fallback_prize_id or self.envelopes or self.rules.tiers:
            raise ValueError(f"a {self.kind} page has no prizes, fallback, envelopes or tiers")
        if self.kind == "flash_sale" and self.starts_at is None:
            raise ValueError("a flash_sale needs starts_at: the second the sale opens")

    def _check_pool(self) -> None:
        ids = [p.id for p in self.prizes]
        if len(set(ids)) != len(ids):
            raise ValueError("prize ids must be unique")
        if self.kind == "grid" and len(self.prizes) != GRID_CELLS:
            raise ValueError(f"a grid (nine-grid marquee) has exactly {GRID_CELLS} prize cells")
        if self.kind == "wheel" and len(self.prizes) < 2:
            raise ValueError("a wheel needs at least 2 prizes (one of them the fallback)")
        fallback = self.prize(self.fallback_prize_id or "")
        if fallback is None:
            raise ValueError("fallback_prize_id must name one of the prizes")
        if fallback.stock is not None or fallback.unlock_after_draws:
            raise ValueError("the fallback prize must have unlimited stock and no lock")
        if sum(p.weight for p in self.prizes) <= 0:
            raise ValueError("at least one prize needs a positive weight")
        for tier in self.rules.tiers:
            unknown = set(tier.weights) - set(ids)
            if unknown:
                raise ValueError(f"tier '{tier.name}' names unknown prizes: {sorted(unknown)}")
            if any(w < 0 for w in tier.weights.values()) or sum(tier.weights.values()) <= 0:
                raise ValueError(f"tier '{tier.name}' needs non-negative weights, one positive")

    def prize(self, prize_id: str) -> Prize | None:
        return next((p for p in self.prizes if p.id == prize_id), None)

    def effective_status(self, at_ms: int) -> ActivityStatus:
        """Scheduled activities start, and any activity ends, by the clock."""
        if self.status in ("scheduled", "running", "paused") and (
            self.ends_at is not None and at_ms >= self.ends_at
        ):
            return "ended"
        if self.status == "scheduled" and (self.starts_at is None or at_ms >= self.starts_at):
            return "running"
        return self.status

    def is_open(self, at_ms: int) -> bool:
        if self.effective_status(at_ms) != "running":
            return False
        return self.starts_at is None or at_ms >= self.starts_at
