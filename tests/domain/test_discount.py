"""The discount engine: each kind by example, the documented order and rounding,
and the invariants as properties (never negative, never above the eligible
amount nor the cart total, cents exact, best never worse than any single
coupon and always legal, deterministic)."""

from __future__ import annotations

import random
import time
from itertools import combinations, permutations
from typing import Any, get_args
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import discount
from domain.coupons import CouponKind, CouponTemplate, FlashPrice, Scope, Stacking, Validity
from domain.discount import (
    BELOW_THRESHOLD,
    EXPIRED,
    NO_ELIGIBLE_ITEMS,
    NOT_COMBINABLE,
    NOT_YET_VALID,
    NOTHING_TO_DISCOUNT,
    PRICE_NOT_LOWER,
    REASON_MESSAGES,
    SKU_NOT_IN_CART,
    Application,
    Candidate,
    Cart,
    CartItem,
    DiscountReason,
    allocate_cents,
    apply,
    best_combination,
    evaluate,
    legal,
)
from tests.domain.test_coupons import CATEGORIES, KINDS, SKUS, templates

AT = 1_500  # inside the test templates' absolute window (1_000 .. 2_000)
GROUP = Stacking(exclusive=False, group="g", max_per_order=5)


def _coupon(coupon_id: str, kind: CouponKind, **fields: Any) -> Candidate:
    fields.setdefault("validity", Validity(starts_at=1_000, ends_at=2_000))
    template = CouponTemplate(id=coupon_id, tenant_id="t1", name=coupon_id, kind=kind, **fields)
    return Candidate.claimed(coupon_id, template, claimed_at_ms=AT)


def _cart(*lines: tuple[str, str, int, int], shipping: int = 0) -> Cart:
    items = tuple(CartItem(sku=s, category=c, unit_cents=u, qty=q) for s, c, u, q in lines)
    return Cart(items=items, shipping_cents=shipping)


CART = _cart(("a", "x", 1000, 3), ("b", "y", 333, 1), ("c", "x", 2500, 2), shipping=800)


def test_reason_codes_are_one_set_with_messages() -> None:
    assert set(REASON_MESSAGES) == set(get_args(DiscountReason))
    assert all(REASON_MESSAGES.values())


def test_cart_totals() -> None:
    assert (CART.items_cents, CART.total_cents) == (8333, 9133)


# --- each kind alone -----------------------------------------------------------


def test_fixed_with_and_without_minimum_and_scope() -> None:
    assert evaluate(_coupon("f", "fixed", amount_cents=500), CART, AT) == 500
    on_b = _coupon("f", "fixed", amount_cents=500, scope=Scope(skus=("b",)))
    assert evaluate(on_b, CART, AT) == 333  # never more than the scope's amount
    application = apply([on_b], CART, AT)
    assert application.lines == (0, 333, 0) and application.shipping_cents == 0
    minimum = _coupon("f", "fixed", amount_cents=500, threshold_cents=8334)
    assert evaluate(minimum, CART, AT) == BELOW_THRESHOLD
    outside = _coupon("f", "fixed", amount_cents=500, scope=Scope(categories=("z",)))
    assert evaluate(outside, CART, AT) == NO_ELIGIBLE_ITEMS


def test_threshold_once_repeating_and_capped() -> None:
    in_x = Scope(categories=("x",))  # 3000 + 5000 = 8000 in scope
    once = _coupon("t", "threshold", amount_cents=100, threshold_cents=3000, scope=in_x)
    assert evaluate(once, CART, AT) == 100
    repeat = once.template.model_copy(update={"repeat": True})
    assert evaluate(Candidate("t", repeat, None, None), CART, AT) == 200
    capped = once.template.model_copy(
        update={"repeat": True, "threshold_cents": 1000, "max_repeats": 5}
    )
    assert evaluate(Candidate("t", capped, None, None), CART, AT) == 500
    high = once.template.model_copy(update={"threshold_cents": 8001, "amount_cents": 8001})
    assert evaluate(Candidate("t", high, None, None), CART, AT) == BELOW_THRESHOLD


def test_percent_floors_then_caps() -> None:
    # 8333 * 15 / 100 = 1249.95: floor gives 1249, never the extra cent.
    assert evaluate(_coupon("p", "percent", percent=15), CART, AT) == 1249
    assert evaluate(_coupon("p", "percent", percent=15, cap_cents=1000), CART, AT) == 1000
    tiny = _cart(("a", "x", 3, 1))
    assert evaluate(_coupon("p", "percent", percent=33), tiny, AT) == NOTHING_TO_DISCOUNT


def test_free_order_up_to_its_cap_with_or_without_shipping() -> None:
    assert evaluate(_coupon("o", "free_order", cap_cents=100_000), CART, AT) == 8333
    shipping = Scope(include_shipping=True)
    free = _coupon("o", "free_order", cap_cents=100_000, scope=shipping)
    application = apply([free], CART, AT)
    assert application.total_discount_cents == 9133 and application.payable_cents == 0
    assert application.lines == (3000, 333, 5000)
    assert application.shipping_cents == 800
    capped = apply([_coupon("o", "free_order", cap_cents=913, scope=shipping)], CART, AT)
    # 913 over 3000 / 333 / 5000 / 800 (shipping as the last line), largest remainder.
    assert capped.coupons[0].lines == (300, 33, 500) and capped.shipping_cents == 80
    assert sum(capped.lines) + capped.shipping_cents == 913


def test_a_minimum_spend_counts_items_not_shipping() -> None:
    cart = _cart(("a", "x", 1000, 1), shipping=500)
    scope = Scope(include_shipping=True)
    high = _coupon("o", "free_order", cap_cents=10**6, threshold_cents=1001, scope=scope)
    assert evaluate(high, cart, AT) == BELOW_THRESHOLD
    met = _coupon("o", "free_order", cap_cents=10**6, threshold_cents=1000, scope=scope)
    assert evaluate(met, cart, AT) == 1500
    # Shipping alone is not enough: the coupon needs a line in its scope.
    on_b = Scope(skus=("b",), include_shipping=True)
    elsewhere = _coupon("o", "free_order", cap_cents=10**6, scope=on_b)
    assert evaluate(elsewhere, cart, AT) == NO_ELIGIBLE_ITEMS
    assert apply([elsewhere], cart, AT).coupons[0].eligible_cents == 0


def test_flash_price_per_unit_up_to_max_qty() -> None:
    flash = _coupon("s", "flash_price", flash=FlashPrice(sku="a", price_cents=700))
    assert evaluate(flash, CART, AT) == 900  # 3 units x 300
    two = _coupon("s", "flash_price", flash=FlashPrice(sku="a", price_cents=700, max_qty=2))
    assert evaluate(two, CART, AT) == 600
    assert apply([two], CART, AT).lines == (600, 0, 0)
    missing = _coupon("s", "flash_price", flash=FlashPrice(sku="zz", price_cents=1))
    assert evaluate(missing, CART, AT) == SKU_NOT_IN_CART
    dearer = _coupon("s", "flash_price", flash=FlashPrice(sku="b", price_cents=333))
    assert evaluate(dearer, CART, AT) == PRICE_NOT_LOWER


def test_flash_max_qty_counts_over_the_order_and_units_are_priced_once() -> None:
    cart = _cart(("a", "x", 1000, 2), ("a", "x", 1000, 2))
    three = _coupon("s1", "flash_price", flash=FlashPrice(sku="a", price_cents=600, max_qty=3))
    assert apply([three], cart, AT).lines == (800, 400)
    stacking = {"stacking": GROUP}
    first = _coupon("s1", "flash_price", flash=FlashPrice(sku="a", price_cents=600), **stacking)
    second = _coupon("s2", "flash_price", flash=FlashPrice(sku="a", price_cents=100), **stacking)
    both = apply([first, second], cart, AT)
    # s1 priced every unit; s2 finds none left rather than pricing them twice.
    assert both.total_discount_cents == 1600
    assert both.result("s2").reason == NOTHING_TO_DISCOUNT  # type: ignore[union-attr]
    assert best_combination([first, second], cart, AT).chosen == ("s2",)


def test_validity_window_is_half_open() -> None:
    coupon = _coupon("f", "fixed", amount_cents=5)
    assert evaluate(coupon, CART, 999) == NOT_YET_VALID
    assert evaluate(coupon, CART, 1_000) == 5
    assert evaluate(coupon, CART, 1_999) == 5
    assert evaluate(coupon, CART, 2_000) == EXPIRED
    relative = _coupon("r", "fixed", amount_cents=5, validity=Validity(days_after_claim=1))
    assert (relative.valid_from, relative.valid_until) == (AT, AT + 86_400_000)


# --- together: order, thresholds after item discounts, allocation ----------------


def test_canonical_order_and_thresholds_after_item_discounts() -> None:
    cart = _cart(("a", "x", 1000, 1))
    flash = _coupon("z-flash", "flash_price", flash=FlashPrice(sku="a", price_cents=900))
    percent = _coupon("y-pct", "percent", percent=10, stacking=GROUP)
    fixed = _coupon("b-fix", "fixed", amount_cents=100, stacking=GROUP)
    threshold = _coupon("a-thr", "threshold", amount_cents=50, threshold_cents=800, stacking=GROUP)
    free = _coupon("0-free", "free_order", cap_cents=200, stacking=GROUP)
    application = apply([free, threshold, fixed, percent, flash], cart, AT)
    order = [c.coupon_id for c in application.coupons]
    assert order == ["z-flash", "y-pct", "a-thr", "b-fix", "0-free"]
    discounts = [c.discount_cents for c in application.coupons]
    # 1000 -> flash 900 -> 10% = 90 off -> 810 >= 800: 50 off -> 100 off -> free up to 200.
    assert discounts == [100, 90, 50, 100, 200]
    assert application.payable_cents == 1000 - 540
    # The same threshold after a bigger percentage is no longer met: the merchant
    # never pays "50 off 800" on money the shopper is not paying.
    bigger = _coupon("y-pct", "percent", percent=20, stacking=GROUP)
    again = apply([flash, bigger, threshold], cart, AT)
    assert again.result("a-thr").reason == BELOW_THRESHOLD  # type: ignore[union-attr]


def test_order_level_discounts_are_allocated_by_largest_remainder() -> None:
    cart = _cart(("a", "x", 1, 1), ("b", "x", 1, 1), ("c", "x", 1, 1))
    assert apply([_coupon("f", "fixed", amount_cents=2)], cart, AT).lines == (1, 1, 0)
    assert allocate_cents(10, [4, 4, 4]) == (4, 3, 3)
    assert allocate_cents(7, [0, 5, 5]) == (0, 4, 3)
    assert allocate_cents(0, [1, 2]) == (0, 0)
    with pytest.raises(ValueError, match="cannot allocate"):
        allocate_cents(4, [1, 2])


def test_later_coupons_see_what_is_left_of_each_line() -> None:
    cart = _cart(("a", "x", 1000, 1), ("b", "y", 1000, 1))
    on_a = _coupon("1", "fixed", amount_cents=1000, scope=Scope(skus=("a",)), stacking=GROUP)
    everywhere = _coupon("2", "percent", percent=50, stacking=GROUP)
    application = apply([on_a, everywhere], cart, AT)
    # The percentage comes first (1000 off over both lines), then a has 500 left.
    assert [c.lines for c in application.coupons] == [(500, 500), (500, 0)]
    assert application.lines == (1000, 500)


def test_legal_combinations() -> None:
    exclusive = _coupon("e", "fixed", amount_cents=1)
    g = [_coupon(f"g{i}", "fixed", amount_cents=1, stacking=GROUP) for i in range(6)]
    other = _coupon("o", "fixed", amount_cents=1, stacking=Stacking(exclusive=False, group="h"))
    small = _coupon(
        "s", "fixed", amount_cents=1, stacking=Stacking(exclusive=False, group="g", max_per_order=2)
    )
    assert legal([]) and legal([exclusive])
    assert not legal([exclusive, g[0]])
    assert legal(g[:5]) and not legal(g)
    assert not legal([g[0], other])
    assert legal([g[0], small]) and not legal([g[0], g[1], small])
    assert not legal([g[0], g[0]])


def test_best_combination_example_and_reasons() -> None:
    big_alone = _coupon("alone", "fixed", amount_cents=3000)
    stackers = [
        _coupon("s1", "fixed", amount_cents=2000, stacking=GROUP),
        _coupon("s2", "percent", percent=20, stacking=GROUP),
        _coupon("s3", "threshold", amount_cents=10, threshold_cents=10**6, stacking=GROUP),
    ]
    late = _coupon("late", "fixed", amount_cents=10**6, validity=Validity(ends_at=1_200))
    best = best_combination([big_alone, *stackers, late], CART, AT)
    # s2 first: floor(8333 * 20%) = 1666, then s1 2000 = 3666 > 3000 alone.
    assert best.chosen == ("s1", "s2")
    assert best.application.total_discount_cents == 3666
    assert dict(best.rejected) == {
        "alone": NOT_COMBINABLE,
        "late": EXPIRED,
        "s3": BELOW_THRESHOLD,
    }
    assert best.reason("s1") is None and best.reason("late") == EXPIRED


def test_ties_prefer_fewer_coupons_then_smaller_ids() -> None:
    cart = _cart(("a", "x", 100, 1))
    b = _coupon("b", "fixed", amount_cents=100, stacking=GROUP)
    a = _coupon("a", "fixed", amount_cents=100, stacking=GROUP)
    c = _coupon("c", "fixed", amount_cents=60, stacking=GROUP)
    d = _coupon("d", "fixed", amount_cents=40, stacking=GROUP)
    assert best_combination([b, c, d, a], cart, AT).chosen == ("a",)
    halves = [_coupon(i, "fixed", amount_cents=50, stacking=GROUP) for i in "zyx"]
    assert best_combination(halves, cart, AT).chosen == ("x", "y")
    # Fewer coupons first, even when a larger set has smaller ids: ("a", "e")
    # also reaches 100 (a's 50, then e's remaining 50), but e alone does.
    e = _coupon("e", "fixed", amount_cents=100, stacking=GROUP)
    half = _coupon("a", "fixed", amount_cents=50, stacking=GROUP)
    assert best_combination([e, half], cart, AT).chosen == ("e",)


def test_nothing_applies() -> None:
    best = best_combination(
        [_coupon("f", "fixed", amount_cents=1, threshold_cents=10**9)], CART, AT
    )
    assert best.chosen == () and best.application.total_discount_cents == 0
    assert best.application.payable_cents == CART.total_cents
    assert best.rejected == (("f", BELOW_THRESHOLD),)
    assert best_combination([], CART, AT).chosen == ()


def test_duplicate_coupon_ids_are_refused() -> None:
    coupon = _coupon("f", "fixed", amount_cents=1)
    with pytest.raises(ValueError, match="given twice"):
        apply([coupon, coupon], CART, AT)


def test_small_groups_are_searched_exhaustively_large_ones_greedily() -> None:
    cart = _cart(("a", "x", 1000, 1))
    pair = Stacking(exclusive=False, group="g", max_per_order=2)
    coupons = [
        _coupon("t", "threshold", amount_cents=600, threshold_cents=1000, stacking=pair),
        _coupon("p", "percent", percent=50, stacking=pair),
        _coupon("q", "percent", percent=40, stacking=pair),
    ]
    # 50% then 40% of the rest = 700 beats the threshold coupon alone (600),
    # which either percentage would push below its threshold.
    exhaustive = best_combination(coupons, cart, AT)
    assert (exhaustive.chosen, exhaustive.application.total_discount_cents) == (("p", "q"), 700)
    with mock.patch.object(discount, "MAX_EXHAUSTIVE_SUBSETS", 0):
        greedy = best_combination(coupons, cart, AT)
    # Greedy starts from the best single coupon and no addition raises it: it is
    # a heuristic, never worse than a single coupon but not always optimal.
    assert (greedy.chosen, greedy.application.total_discount_cents) == (("t",), 600)


def test_a_large_group_is_built_greedily_and_quickly() -> None:
    lines = [(sku, category) for sku in SKUS for category in CATEGORIES]
    cart = _cart(*((s, c, 1000 + 37 * i, 1 + i % 3) for i, (s, c) in enumerate(lines)))
    ten = Stacking(exclusive=False, group="g", max_per_order=10)
    coupons = [_coupon(f"c{i:02}", "fixed", amount_cents=100 + i, stacking=ten) for i in range(30)]
    started = time.monotonic()
    best = best_combination(coupons, cart, AT)
    assert time.monotonic() - started < 5
    assert best.chosen == tuple(f"c{i}" for i in range(20, 30))  # the ten largest
    assert legal([c for c in coupons if c.coupon_id in best.chosen])


# --- properties ------------------------------------------------------------------

_items = st.builds(
    CartItem,
    sku=st.sampled_from(SKUS),
    category=st.sampled_from(("", *CATEGORIES)),
    unit_cents=st.one_of(st.integers(0, 5_000), st.integers(0, 10**10)),
    qty=st.one_of(st.integers(1, 4), st.integers(1, 10_000)),
)
carts = st.builds(
    Cart,
    items=st.lists(_items, min_size=1, max_size=6).map(tuple),
    shipping_cents=st.one_of(st.just(0), st.integers(0, 2_000)),
)
# Times: the test templates' window is 1_000 .. 2_000 and coupons are claimed
# at 1_000; AT itself half of the time, so that most coupons are valid.
moments = st.one_of(st.just(AT), st.integers(0, 3_000))
_starts = st.one_of(st.none(), st.just(0), st.integers(0, 3_000))
_ends = st.one_of(st.none(), st.just(10**13), st.integers(0, 3_000))


@st.composite
def candidate_sets(draw: st.DrawFn, max_size: int = 6) -> list[Candidate]:
    """Up to ``max_size`` coupons; half of the sets are all in one stacking group
    and valid now, so that real combinations are common."""
    size = draw(st.integers(1, max_size))  # uniform: long sets are as common as short ones
    if not draw(st.booleans()):
        return [
            Candidate(f"c{index}", draw(templates()), draw(_starts), draw(_ends))
            for index in range(size)
        ]
    out = []
    for index in range(size):
        stacking = Stacking(exclusive=False, group="g", max_per_order=draw(st.integers(2, 4)))
        template = draw(templates()).model_copy(update={"stacking": stacking})
        out.append(Candidate(f"c{index}", template, None, None))
    return out


def _in_scope(template: CouponTemplate, item: CartItem) -> bool:
    if template.flash is not None:
        return item.sku == template.flash.sku
    return template.scope.covers(item.sku, item.category)


def _check_application(application: Application, cart: Cart) -> None:
    """The invariants every application keeps, whatever it applied."""
    assert len(application.lines) == len(cart.items)
    for cut, item in zip(application.lines, cart.items, strict=True):
        assert 0 <= cut <= item.line_cents
    assert 0 <= application.shipping_cents <= cart.shipping_cents
    total = application.total_discount_cents
    assert total == sum(application.lines) + application.shipping_cents  # cents exact
    assert 0 <= total <= cart.total_cents
    assert application.payable_cents == cart.total_cents - total
    assert sum(c.discount_cents for c in application.coupons) == total
    for line in range(len(cart.items)):
        assert sum(c.lines[line] for c in application.coupons) == application.lines[line]
    assert sum(c.shipping_cents for c in application.coupons) == application.shipping_cents
    for result in application.coupons:
        assert 0 <= result.discount_cents <= result.eligible_cents
        assert result.discount_cents == sum(result.lines) + result.shipping_cents
        assert all(cut >= 0 for cut in result.lines) and result.shipping_cents >= 0
        assert (result.discount_cents > 0) != bool(result.reason)
        assert result.reason == "" or result.reason in REASON_MESSAGES


@settings(max_examples=300, deadline=None)
@given(templates(), carts, moments)
def test_one_coupon_alone_follows_its_rule(template: CouponTemplate, cart: Cart, at: int) -> None:
    candidate = Candidate.claimed("c", template, claimed_at_ms=1_000)
    application = apply([candidate], cart, at)
    _check_application(application, cart)
    result = application.coupons[0]
    outcome = evaluate(candidate, cart, at)
    assert outcome == (result.discount_cents or result.reason)
    in_scope = [i for i, item in enumerate(cart.items) if _in_scope(template, item)]
    flash = template.flash
    # A flash price acts on the lines of its sku that cost more than the price.
    acted_on = [
        i for i in in_scope if flash is None or cart.items[i].unit_cents > flash.price_cents
    ]
    for i, cut in enumerate(result.lines):
        assert cut == 0 or i in in_scope  # scope respected
    assert result.shipping_cents == 0 or template.scope.include_shipping
    start, end = candidate.valid_from, candidate.valid_until
    if (start is not None and at < start) or (end is not None and at >= end):
        assert outcome in (NOT_YET_VALID, EXPIRED) and result.eligible_cents == 0
        return
    scope_cents = sum(cart.items[i].line_cents for i in acted_on)
    shipping = cart.shipping_cents if template.scope.include_shipping else 0
    assert result.eligible_cents == (scope_cents + shipping if acted_on else 0)
    if flash is not None:
        if not in_scope:
            assert outcome == SKU_NOT_IN_CART
        elif not acted_on:
            assert outcome == PRICE_NOT_LOWER
        else:
            assert outcome == _flash_alone(flash, cart)
        return
    if not in_scope:
        assert outcome == NO_ELIGIBLE_ITEMS
    elif scope_cents < template.threshold_cents:
        assert outcome == BELOW_THRESHOLD
    else:
        expected = min(_alone(template, scope_cents, shipping), scope_cents + shipping)
        assert outcome == (expected or NOTHING_TO_DISCOUNT)


def _alone(template: CouponTemplate, scope: int, shipping: int) -> int:
    """Each kind's rule as the docs state it, written independently of the engine."""
    if template.kind == "fixed":
        return template.amount_cents
    if template.kind == "threshold":
        steps = scope // template.threshold_cents if template.repeat else 1
        return template.amount_cents * min(steps, template.max_repeats or steps)
    if template.kind == "percent":
        off = scope * template.percent // 100
        return min(off, template.cap_cents) if template.cap_cents is not None else off
    assert template.cap_cents is not None
    return min(template.cap_cents, scope + shipping)


def _flash_alone(flash: FlashPrice, cart: Cart) -> int | str:
    units_left = flash.max_qty or 10**9
    off = 0
    for item in cart.items:
        if item.sku == flash.sku and item.unit_cents > flash.price_cents:
            units = min(item.qty, units_left)
            units_left -= units
            off += (item.unit_cents - flash.price_cents) * units
    return off or NOTHING_TO_DISCOUNT


@settings(max_examples=200, deadline=None)
@given(candidate_sets(), carts, moments, st.randoms(use_true_random=False))
def test_any_set_applied_together_keeps_the_invariants(
    candidates: list[Candidate], cart: Cart, at: int, rng: random.Random
) -> None:
    application = apply(candidates, cart, at)
    _check_application(application, cart)
    for result in application.coupons:
        template = next(c.template for c in candidates if c.coupon_id == result.coupon_id)
        scope = sum(item.line_cents for item in cart.items if _in_scope(template, item))
        shipping = cart.shipping_cents if template.scope.include_shipping else 0
        assert result.eligible_cents <= scope + shipping
        alone = evaluate(next(c for c in candidates if c.coupon_id == result.coupon_id), cart, at)
        if isinstance(alone, str):  # what does not apply alone applies in no combination
            assert result.discount_cents == 0
    shuffled = list(candidates)
    rng.shuffle(shuffled)
    assert apply(shuffled, cart, at) == application  # the order given does not matter


@settings(max_examples=150, deadline=None)
@given(candidate_sets(), carts, moments, st.randoms(use_true_random=False))
def test_best_combination_is_legal_optimal_and_deterministic(
    candidates: list[Candidate], cart: Cart, at: int, rng: random.Random
) -> None:
    best = best_combination(candidates, cart, at)
    _check_application(best.application, cart)
    chosen = [c for c in candidates if c.coupon_id in best.chosen]
    assert legal(chosen)
    assert best.application == apply(chosen, cart, at)
    assert sorted(best.application.applied) == list(best.chosen)  # each chosen coupon counts
    total = best.application.total_discount_cents
    for candidate in candidates:
        alone = evaluate(candidate, cart, at)
        assert isinstance(alone, str) or alone <= total  # never worse than any single coupon
        if candidate.coupon_id not in best.chosen:
            assert best.reason(candidate.coupon_id) == (
                alone if isinstance(alone, str) else NOT_COMBINABLE
            )
    assert sorted([*best.chosen, *(cid for cid, _ in best.rejected)]) == sorted(
        c.coupon_id for c in candidates
    )
    # The exhaustive search is exact: no legal subset does better.
    for size in range(2, len(candidates) + 1):
        for subset in combinations(candidates, size):
            if legal(subset):
                assert apply(subset, cart, at).total_discount_cents <= total
    shuffled = list(candidates)
    rng.shuffle(shuffled)
    assert best_combination(shuffled, cart, at) == best  # deterministic


@settings(max_examples=100, deadline=None)
@given(candidate_sets(max_size=8), carts, moments)
def test_greedy_search_is_never_worse_than_a_single_coupon(
    candidates: list[Candidate], cart: Cart, at: int
) -> None:
    with mock.patch.object(discount, "MAX_EXHAUSTIVE_SUBSETS", 0):
        best = best_combination(candidates, cart, at)
        assert best_combination(list(reversed(candidates)), cart, at) == best
    _check_application(best.application, cart)
    assert legal([c for c in candidates if c.coupon_id in best.chosen])
    assert sorted(best.application.applied) == list(best.chosen)  # no passenger adding 0
    for candidate in candidates:
        alone = evaluate(candidate, cart, at)
        assert isinstance(alone, str) or alone <= best.application.total_discount_cents


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**12), min_size=1, max_size=20), st.data())
def test_allocation_is_exact_and_proportional(weights: list[int], data: st.DataObject) -> None:
    amount = data.draw(st.integers(0, sum(weights)))
    shares = allocate_cents(amount, weights)
    assert sum(shares) == amount
    total = sum(weights) or 1
    for share, weight in zip(shares, weights, strict=True):
        assert 0 <= share <= weight
        assert abs(share * total - amount * weight) < total  # within one cent of exact
    assert allocate_cents(amount, weights) == shares


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_every_kind_is_generated(kind: CouponKind, data: st.DataObject) -> None:
    # The properties above draw from every kind; make sure the strategy can.
    assert data.draw(templates(kind)).kind == kind


def test_permutations_of_a_small_set_give_one_answer() -> None:
    coupons = [
        _coupon("p", "percent", percent=10, stacking=GROUP),
        _coupon("f", "fixed", amount_cents=700, stacking=GROUP),
        _coupon("o", "free_order", cap_cents=900, stacking=GROUP),
        _coupon("s", "flash_price", flash=FlashPrice(sku="c", price_cents=2000), stacking=GROUP),
    ]
    answers = {best_combination(list(order), CART, AT) for order in permutations(coupons)}
    assert len(answers) == 1
