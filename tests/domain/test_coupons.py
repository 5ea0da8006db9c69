"""Coupon templates: every kind valid, every problem reported against its field,
and the ``templates`` strategy (valid templates of every kind) the discount
tests build on."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.coupons import (
    DAY_MS,
    MAX_CENTS,
    CouponKind,
    CouponLimits,
    CouponTemplate,
    FlashPrice,
    Scope,
    Stacking,
    Validity,
)

KINDS: tuple[CouponKind, ...] = ("fixed", "threshold", "free_order", "percent", "flash_price")
SKUS = ("a", "b", "c", "d")
CATEGORIES = ("x", "y", "z")
WINDOW = Validity(starts_at=1_000, ends_at=2_000)

_KIND_FIELDS: dict[CouponKind, dict[str, Any]] = {
    "fixed": {"amount_cents": 500},
    "threshold": {"amount_cents": 1000, "threshold_cents": 10_000},
    "free_order": {"cap_cents": 5000},
    "percent": {"percent": 15},
    "flash_price": {"flash": FlashPrice(sku="a", price_cents=199)},
}


def _template(kind: CouponKind = "fixed", **overrides: Any) -> CouponTemplate:
    fields: dict[str, Any] = {
        "id": "c1",
        "tenant_id": "t1",
        "name": "Coupon",
        "kind": kind,
        "validity": WINDOW,
        **_KIND_FIELDS[kind],
    }
    fields.update(overrides)
    return CouponTemplate(**fields)


def _named(error: ValidationError) -> set[str]:
    """The fields a validation error names: each error's location, and for an
    error about a whole model the ``field:`` each of its problems starts with."""
    named = set()
    for e in error.errors():
        if e["loc"]:
            named.add(".".join(str(part) for part in e["loc"]))
        message = e["msg"].removeprefix("Value error, ")
        named.update(problem.split(":")[0].split(" ")[0] for problem in message.split("; "))
    return named


def _rejected(kind: CouponKind = "fixed", **overrides: Any) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        _template(kind, **overrides)
    return _named(caught.value)


# --- every kind --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "face_value"),
    [
        ("fixed", 500),
        ("threshold", 1000),
        ("free_order", 5000),
        ("percent", None),
        ("flash_price", None),
    ],
)
def test_every_kind_has_a_valid_template_and_a_face_value(
    kind: CouponKind, face_value: int | None
) -> None:
    template = _template(kind)
    assert template.kind == kind and template.status == "draft" and template.version == 1
    assert template.face_value_cents == face_value
    assert CouponTemplate.model_validate(template.model_dump()) == template


def test_optional_kind_fields() -> None:
    assert _template("percent", cap_cents=800).face_value_cents == 800
    assert _template("fixed", threshold_cents=2000).threshold_cents == 2000
    repeating = _template("threshold", repeat=True, max_repeats=3)
    assert (repeating.repeat, repeating.max_repeats) == (True, 3)
    free = _template("free_order", scope=Scope(include_shipping=True), threshold_cents=100)
    assert free.scope.include_shipping


def test_templates_are_frozen_and_closed() -> None:
    template = _template()
    with pytest.raises(ValidationError):
        template.amount_cents = 1  # type: ignore[misc]
    assert "discount" in _rejected(discount=5)


# --- problems, each named by its field -----------------------------------------


@pytest.mark.parametrize(
    ("kind", "overrides", "field"),
    [
        ("fixed", {"amount_cents": 0}, "amount_cents"),
        ("threshold", {"threshold_cents": 0}, "threshold_cents"),
        ("threshold", {"amount_cents": 0}, "amount_cents"),
        ("threshold", {"amount_cents": 10_001}, "amount_cents"),
        ("threshold", {"max_repeats": 2}, "max_repeats"),
        ("percent", {"percent": 0}, "percent"),
        ("percent", {"percent": 100}, "percent"),
        ("percent", {"cap_cents": 0}, "cap_cents"),
        ("free_order", {"cap_cents": None}, "cap_cents"),
        ("free_order", {"cap_cents": 0}, "cap_cents"),
        ("flash_price", {"flash": None}, "flash"),
        ("flash_price", {"validity": Validity(days_after_claim=7)}, "validity"),
        ("flash_price", {"scope": Scope(skus=("a",))}, "scope"),
        # Fields of another kind must keep their defaults.
        ("fixed", {"percent": 10}, "percent"),
        ("fixed", {"cap_cents": 100}, "cap_cents"),
        ("fixed", {"repeat": True}, "repeat"),
        ("percent", {"amount_cents": 100}, "amount_cents"),
        ("free_order", {"percent": 10}, "percent"),
        ("threshold", {"flash": FlashPrice(sku="a", price_cents=1)}, "flash"),
        ("flash_price", {"threshold_cents": 100}, "threshold_cents"),
        ("flash_price", {"amount_cents": 100}, "amount_cents"),
        ("percent", {"scope": Scope(include_shipping=True)}, "scope.include_shipping"),
        # Money is integer cents in [0, 10**12].
        ("fixed", {"amount_cents": MAX_CENTS + 1}, "amount_cents"),
        ("fixed", {"amount_cents": -1}, "amount_cents"),
        ("fixed", {"amount_cents": 1.5}, "amount_cents"),
        ("percent", {"cap_cents": MAX_CENTS + 1}, "cap_cents"),
        ("flash_price", {"flash": {"sku": "a", "price_cents": -1}}, "flash.price_cents"),
        # Identity and text.
        ("fixed", {"id": "has space"}, "id"),
        ("fixed", {"tenant_id": ""}, "tenant_id"),
        ("fixed", {"name": ""}, "name"),
        ("fixed", {"description": "x" * 1001}, "description"),
        ("fixed", {"status": "live"}, "status"),
    ],
)
def test_each_problem_names_its_field(
    kind: CouponKind, overrides: dict[str, Any], field: str
) -> None:
    assert field in _rejected(kind, **overrides)


def test_all_problems_of_a_template_are_reported_at_once() -> None:
    named = _rejected("fixed", amount_cents=0, percent=5, scope=Scope(include_shipping=True))
    assert {"amount_cents", "percent", "scope.include_shipping"} <= named


@pytest.mark.parametrize(
    ("validity", "field"),
    [
        ({"starts_at": 5}, "validity.ends_at"),
        ({"starts_at": 5, "ends_at": 5}, "validity.ends_at"),
        ({"ends_at": 10, "days_after_claim": 3}, "validity"),
        ({"days_after_claim": 0}, "validity.days_after_claim"),
        ({"days_after_claim": 3651}, "validity.days_after_claim"),
        ({}, "validity.ends_at"),
    ],
)
def test_validity_problems(validity: dict[str, Any], field: str) -> None:
    assert field in _rejected(validity=validity)


@pytest.mark.parametrize(
    ("stacking", "field"),
    [
        ({"exclusive": False}, "stacking.group"),
        ({"exclusive": True, "group": "g"}, "stacking.group"),
        ({"exclusive": True, "max_per_order": 2}, "stacking.max_per_order"),
        ({"exclusive": False, "group": "g", "max_per_order": 11}, "stacking.max_per_order"),
        ({"exclusive": False, "group": "g", "max_per_order": 0}, "stacking.max_per_order"),
        ({"exclusive": False, "group": "no spaces"}, "stacking.group"),
    ],
)
def test_stacking_problems(stacking: dict[str, Any], field: str) -> None:
    assert field in _rejected(stacking=stacking)


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"stock": -1}, "limits.stock"),
        ({"per_user": -1}, "limits.per_user"),
        ({"budget_cents": 0}, "limits.budget_cents"),
        ({"budget_cents": MAX_CENTS + 1}, "limits.budget_cents"),
        ({"budget_cents": 100, "budget_per_day_cents": 101}, "limits.budget_per_day_cents"),
    ],
)
def test_limit_problems(limits: dict[str, Any], field: str) -> None:
    assert field in _rejected(limits=limits)


@pytest.mark.parametrize(
    ("scope", "field"),
    [
        ({"skus": ("",)}, "scope.skus.0"),
        ({"categories": ("x" * 65,)}, "scope.categories.0"),
        ({"exclude_skus": tuple(f"s{i}" for i in range(1001))}, "scope.exclude_skus"),
        ({"exclude_categories": (3,)}, "scope.exclude_categories.0"),
    ],
)
def test_scope_problems(scope: dict[str, Any], field: str) -> None:
    assert field in _rejected(scope=scope)


# --- parts ---------------------------------------------------------------------


def test_scope_lists_then_exclusions() -> None:
    everything = Scope()
    assert everything.covers("any", "") and everything.covers("any", "x")
    listed = Scope(categories=("x",), skus=("b",), exclude_skus=("a",))
    assert listed.covers("c", "x") and listed.covers("b", "y")
    assert not listed.covers("c", "y")
    assert not listed.covers("a", "x")  # listed category, excluded sku
    excluded = Scope(exclude_categories=("y",))
    assert excluded.covers("a", "x") and excluded.covers("a", "")
    assert not excluded.covers("b", "y")


def test_validity_windows() -> None:
    assert Validity(ends_at=50).window(10) == (None, 50)
    assert Validity(starts_at=5, ends_at=50).window(10) == (5, 50)
    assert Validity(days_after_claim=3).window(10) == (10, 10 + 3 * DAY_MS)
    assert Validity(days_after_claim=3).is_absolute is False


def test_limits_and_stacking_defaults() -> None:
    limits = CouponLimits()
    assert (limits.stock, limits.per_user, limits.budget_cents) == (None, 0, None)
    stacking = Stacking()
    assert (stacking.exclusive, stacking.group, stacking.max_per_order) == (True, "", 1)
    assert Stacking(exclusive=False, group="g", max_per_order=3).max_per_order == 3


# --- the strategy of valid templates ---------------------------------------------

_entries = st.lists(st.sampled_from(SKUS), max_size=2, unique=True).map(tuple)
_category_entries = st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True).map(tuple)
_cents = st.one_of(st.integers(1, 5_000), st.integers(1, 5_000), st.integers(1, MAX_CENTS))


@st.composite
def stackings(draw: st.DrawFn) -> Stacking:
    # Mostly one shared group, so that combinations are common.
    if draw(st.integers(0, 3)) == 0:
        return Stacking()
    group = draw(st.sampled_from(("g1", "g1", "g1", "g2")))
    return Stacking(exclusive=False, group=group, max_per_order=draw(st.integers(1, 4)))


@st.composite
def scopes(draw: st.DrawFn, shipping: bool = False) -> Scope:
    include_shipping = shipping and draw(st.booleans())
    if draw(st.booleans()):  # the whole cart, half of the time
        return Scope(include_shipping=include_shipping)
    return Scope(
        categories=draw(_category_entries),
        skus=draw(_entries),
        exclude_categories=draw(_category_entries.map(lambda c: c[:1])),
        exclude_skus=draw(_entries.map(lambda s: s[:1])),
        include_shipping=include_shipping,
    )


@st.composite
def templates(draw: st.DrawFn, kind: CouponKind | None = None) -> CouponTemplate:
    """A valid template of ``kind`` (any kind when None), small amounts mostly,
    so that thresholds and caps are both met and missed."""
    kind = kind or draw(st.sampled_from(KINDS))
    fields: dict[str, Any] = {"stacking": draw(stackings())}
    minimum = draw(st.sampled_from((0, 0, 1, 2_000, 20_000)))
    if kind == "fixed":
        fields |= {"amount_cents": draw(_cents), "threshold_cents": minimum}
    elif kind == "threshold":
        step = draw(st.integers(1, 20_000))
        repeat = draw(st.booleans())
        fields |= {
            "threshold_cents": step,
            "amount_cents": draw(st.integers(1, step)),
            "repeat": repeat,
            "max_repeats": draw(st.integers(0, 5)) if repeat else 0,
        }
    elif kind == "percent":
        fields |= {
            "percent": draw(st.integers(1, 99)),
            "cap_cents": draw(st.one_of(st.none(), _cents)),
            "threshold_cents": minimum,
        }
    elif kind == "free_order":
        fields |= {"cap_cents": draw(_cents), "threshold_cents": minimum}
    else:
        fields["flash"] = FlashPrice(
            sku=draw(st.sampled_from(SKUS)),
            price_cents=draw(st.integers(0, 4000)),
            max_qty=draw(st.integers(0, 4)),
        )
    if kind != "flash_price":
        fields["scope"] = draw(scopes(shipping=kind == "free_order"))
    relative = kind != "flash_price" and draw(st.booleans())
    fields["validity"] = Validity(days_after_claim=30) if relative else WINDOW
    return _template(kind, **fields)


@settings(max_examples=150, deadline=None)
@given(templates())
def test_valid_templates_round_trip(template: CouponTemplate) -> None:
    assert CouponTemplate.model_validate(template.model_dump()) == template
    assert CouponTemplate.model_validate_json(template.model_dump_json()) == template
    face = template.face_value_cents
    assert face is None or 0 < face <= MAX_CENTS
