"""Coupon templates: what a merchant configures, validated so that every template
the discount engine (``domain.discount``) sees is consistent.

A template describes a kind of coupon; shoppers claim coupons from it. Money is
integer cents in ``[0, MAX_CENTS]``; times are epoch milliseconds (UTC).

Kinds and the fields each uses (any other kind-specific field must keep its
default, so a merchant never configures something that silently does nothing):

- ``fixed``: ``amount_cents`` off; optional minimum spend ``threshold_cents``.
- ``threshold``: ``amount_cents`` off once the scope reaches ``threshold_cents``;
  with ``repeat``, off for every full ``threshold_cents`` (at most ``max_repeats``
  times when set).
- ``percent``: ``percent`` off, optionally at most ``cap_cents``; optional
  minimum spend ``threshold_cents``.
- ``free_order``: the scope (plus shipping with ``scope.include_shipping``) is
  free up to ``cap_cents``; optional minimum spend ``threshold_cents``.
- ``flash_price``: ``flash.sku`` sells at ``flash.price_cents`` inside an
  absolute validity window; ``flash.sku`` is its whole scope.

Validation errors name the field first (``"amount_cents: ..."``); the api
reports an error about the whole template against the body, so the field has
to be in the message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from domain.activity import ID_PATTERN, _Frozen

CouponKind = Literal["fixed", "threshold", "free_order", "percent", "flash_price"]
# Like an activity's, without "scheduled": a template's claim window does the timing.
TemplateStatus = Literal["draft", "running", "paused", "ended"]

MAX_CENTS = 10**12
DAY_MS = 86_400_000
SCOPE_MAX_ENTRIES = 1000
MAX_VALIDITY_DAYS = 3650
MAX_PER_ORDER_LIMIT = 10

ScopeEntry = Annotated[str, Field(min_length=1, max_length=64)]
Cents = Annotated[int, Field(ge=0, le=MAX_CENTS)]


class Scope(_Frozen):
    """Which cart lines a coupon acts on: the listed categories and skus (all
    lines when both lists are empty), minus the excluded ones."""

    categories: tuple[ScopeEntry, ...] = Field(default=(), max_length=SCOPE_MAX_ENTRIES)
    skus: tuple[ScopeEntry, ...] = Field(default=(), max_length=SCOPE_MAX_ENTRIES)
    exclude_categories: tuple[ScopeEntry, ...] = Field(default=(), max_length=SCOPE_MAX_ENTRIES)
    exclude_skus: tuple[ScopeEntry, ...] = Field(default=(), max_length=SCOPE_MAX_ENTRIES)
    # Only a free_order coupon may cover shipping (checked on the template).
    include_shipping: bool = False

    def matcher(self) -> Callable[[str, str], bool]:
        """``covers`` with the lists turned into sets once, for checking many
        lines. Not cached on the model: ``model_copy(update=...)`` would carry a
        cached value over to the edited copy."""
        everything = not self.categories and not self.skus
        categories, skus = frozenset(self.categories), frozenset(self.skus)
        excluded_categories = frozenset(self.exclude_categories)
        excluded_skus = frozenset(self.exclude_skus)

        def covers(sku: str, category: str) -> bool:
            if sku in excluded_skus or category in excluded_categories:
                return False
            return everything or sku in skus or category in categories

        return covers

    def covers(self, sku: str, category: str) -> bool:
        return self.matcher()(sku, category)


class Validity(_Frozen):
    """When a claimed coupon may be redeemed: an absolute window
    (``starts_at`` optional, ``ends_at`` required) or ``days_after_claim`` days
    from the claim, never both. Windows are half-open: valid from ``starts_at``
    included until ``ends_at`` excluded, like an activity's ``ends_at``."""

    starts_at: int | None = Field(default=None, ge=0)
    ends_at: int | None = Field(default=None, ge=0)
    days_after_claim: int | None = Field(default=None, ge=1, le=MAX_VALIDITY_DAYS)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.days_after_claim is not None:
            if self.starts_at is not None or self.ends_at is not None:
                raise ValueError(
                    "validity: give either days_after_claim or starts_at/ends_at, not both"
                )
            return self
        if self.ends_at is None:
            raise ValueError(
                "validity.ends_at: an absolute window needs ends_at (or use days_after_claim)"
            )
        if self.starts_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("validity.ends_at must be after validity.starts_at")
        return self

    @property
    def is_absolute(self) -> bool:
        return self.days_after_claim is None

    def window(self, claimed_at_ms: int) -> tuple[int | None, int | None]:
        """(valid_from, valid_until) of a coupon claimed at ``claimed_at_ms``;
        None = open on that side."""
        if self.days_after_claim is not None:
            return claimed_at_ms, claimed_at_ms + self.days_after_claim * DAY_MS
        return self.starts_at, self.ends_at


class Stacking(_Frozen):
    """Whether a coupon combines with others in one order. An exclusive coupon
    is always used alone; non-exclusive coupons combine only within one
    ``group``, and a combination may not be larger than the smallest
    ``max_per_order`` of its members."""

    exclusive: bool = True
    group: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,64}$")
    max_per_order: int = Field(default=1, ge=1, le=MAX_PER_ORDER_LIMIT)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.exclusive and not self.group:
            raise ValueError("stacking.group: a non-exclusive coupon needs a group to stack in")
        # An exclusive coupon never combines: a group or a size limit on it would
        # suggest to the merchant that it does.
        if self.exclusive and self.group:
            raise ValueError(
                "stacking.group: an exclusive coupon has no group (set exclusive=false)"
            )
        if self.exclusive and self.max_per_order != 1:
            raise ValueError(
                "stacking.max_per_order: an exclusive coupon is always alone (set exclusive=false)"
            )
        return self


class CouponLimits(_Frozen):
    # Coupons that may ever be issued from the template; None = unlimited.
    stock: int | None = Field(default=None, ge=0, le=10**9)
    # Coupons one user may ever claim from the template; 0 = no limit.
    per_user: int = Field(default=0, ge=0, le=10**6)
    # Total discount redemptions may grant, enforced at write-off; None = unlimited.
    budget_cents: int | None = Field(default=None, ge=1, le=MAX_CENTS)
    budget_per_day_cents: int | None = Field(default=None, ge=1, le=MAX_CENTS)  # UTC days

    @model_validator(mode="after")
    def _check(self) -> Self:
        total, daily = self.budget_cents, self.budget_per_day_cents
        if total is not None and daily is not None and daily > total:
            raise ValueError("limits.budget_per_day_cents cannot exceed limits.budget_cents")
        return self


class FlashPrice(_Frozen):
    sku: str = Field(min_length=1, max_length=64)
    price_cents: Cents
    # Units per order sold at the special price; 0 = every unit in the cart.
    max_qty: int = Field(default=0, ge=0, le=10_000)


# Kind-specific fields each kind uses; the others must keep their defaults.
_KIND_FIELDS: dict[CouponKind, frozenset[str]] = {
    "fixed": frozenset({"amount_cents", "threshold_cents"}),
    "threshold": frozenset({"amount_cents", "threshold_cents", "repeat", "max_repeats"}),
    "percent": frozenset({"percent", "cap_cents", "threshold_cents"}),
    "free_order": frozenset({"cap_cents", "threshold_cents"}),
    "flash_price": frozenset({"flash"}),
}
_KIND_SPECIFIC = frozenset().union(*_KIND_FIELDS.values())


class ChannelLink(_Frozen):
    """On a coupon template: its coupons are issued upstream too (domain/channels.py)."""

    channel_id: str = Field(pattern=ID_PATTERN)
    stock_id: str = Field(pattern=ID_PATTERN)  # the upstream's coupon stock (批次号)


class CouponTemplate(_Frozen):
    id: str = Field(pattern=ID_PATTERN)
    tenant_id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=1000)
    kind: CouponKind
    # draft -> running <-> paused -> ended (domain.claims.TEMPLATE_TRANSITIONS); it
    # governs claiming, not redeeming coupons already held.
    status: TemplateStatus = "draft"
    version: int = Field(default=1, ge=1)
    # The branch (seed 002's institution) whose scoped keys see this template.
    institution_id: str | None = Field(default=None, pattern=ID_PATTERN)
    # fixed: the amount off; threshold: the amount off per step.
    amount_cents: Cents = 0
    # Minimum in-scope amount; for threshold also the step.
    threshold_cents: Cents = 0
    repeat: bool = False  # threshold: amount off for every full threshold_cents
    max_repeats: int = Field(default=0, ge=0, le=10_000)  # 0 = no cap
    percent: int = Field(default=0, ge=0, le=99)
    # percent: optional maximum discount; free_order: the required maximum.
    cap_cents: Cents | None = None
    flash: FlashPrice | None = None
    scope: Scope = Scope()
    validity: Validity
    stacking: Stacking = Stacking()
    limits: CouponLimits = CouponLimits()
    # Points a shopper may exchange for one coupon (spent in the claim's commit);
    # 0: not exchangeable. The claim rules (window, stock, per-user) apply too.
    points_price: int = Field(default=0, ge=0, le=10**9)
    # When shoppers may claim (a flash sale opens at a second): half-open, by the
    # deciding actor's clock; None = from when it runs / until it ends.
    claim_opens_at: int | None = Field(default=None, ge=0)
    claim_closes_at: int | None = Field(default=None, ge=0)
    # Its coupons are issued by an upstream channel too; set at creation only.
    channel: ChannelLink | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = self._unused_fields() + _KIND_CHECKS[self.kind](self)
        opens, closes = self.claim_opens_at, self.claim_closes_at
        if opens is not None and closes is not None and closes <= opens:
            problems.append("claim_closes_at: must be after claim_opens_at")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _unused_fields(self) -> list[str]:
        problems = []
        for name in sorted(_KIND_SPECIFIC - _KIND_FIELDS[self.kind]):
            if getattr(self, name) != type(self).model_fields[name].default:
                problems.append(f"{name}: not used by a {self.kind} coupon; leave it unset")
        if self.scope.include_shipping and self.kind != "free_order":
            problems.append("scope.include_shipping: only a free_order coupon covers shipping")
        return problems

    @property
    def face_value_cents(self) -> int | None:
        """What the coupon is worth on a coupon card: the amount off (for
        threshold, per step), the cap of a percent or free_order coupon; None
        when the value depends on the cart (uncapped percent, flash_price)."""
        if self.kind in ("fixed", "threshold"):
            return self.amount_cents
        if self.kind in ("percent", "free_order"):
            return self.cap_cents
        return None


def _check_fixed(t: CouponTemplate) -> list[str]:
    return [] if t.amount_cents > 0 else ["amount_cents: a fixed coupon needs amount_cents > 0"]


def _check_threshold(t: CouponTemplate) -> list[str]:
    problems = []
    if t.threshold_cents <= 0:
        problems.append("threshold_cents: a threshold coupon needs threshold_cents > 0")
    if t.amount_cents <= 0:
        problems.append("amount_cents: a threshold coupon needs amount_cents > 0")
    elif t.amount_cents > t.threshold_cents > 0:
        problems.append("amount_cents: cannot exceed threshold_cents (it is the amount per step)")
    if t.max_repeats and not t.repeat:
        problems.append("max_repeats: only used with repeat=true")
    return problems


def _check_percent(t: CouponTemplate) -> list[str]:
    problems = []
    if not 1 <= t.percent <= 99:
        problems.append("percent: a percent coupon needs percent between 1 and 99")
    if t.cap_cents is not None and t.cap_cents <= 0:
        problems.append("cap_cents: must be > 0 when set (leave it unset for no cap)")
    return problems


def _check_free_order(t: CouponTemplate) -> list[str]:
    if t.cap_cents is None or t.cap_cents <= 0:
        return ["cap_cents: a free_order coupon needs a maximum cap_cents > 0"]
    return []


def _check_flash_price(t: CouponTemplate) -> list[str]:
    problems = []
    if t.flash is None:
        problems.append("flash: a flash_price coupon needs flash (sku and price_cents)")
    if not t.validity.is_absolute:
        problems.append(
            "validity: a flash_price coupon needs an absolute window (starts_at/ends_at), "
            "not days_after_claim"
        )
    if t.scope != Scope():
        problems.append("scope: a flash_price coupon applies to flash.sku only; leave scope unset")
    return problems


_KIND_CHECKS: dict[CouponKind, Callable[[CouponTemplate], list[str]]] = {
    "fixed": _check_fixed,
    "threshold": _check_threshold,
    "percent": _check_percent,
    "free_order": _check_free_order,
    "flash_price": _check_flash_price,
}
