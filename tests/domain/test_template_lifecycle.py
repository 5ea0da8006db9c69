"""Pure template lifecycle rules: transitions, what may be edited in each state
(terms are frozen once shoppers may hold coupons), adding stock."""

from __future__ import annotations

import itertools
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from domain import template_lifecycle as lifecycle
from domain.claims import LIVE_EDITABLE, TEMPLATE_TRANSITIONS
from domain.coupons import CouponLimits, CouponTemplate, TemplateStatus, Validity
from domain.lifecycle import LifecycleError

STATUSES: tuple[TemplateStatus, ...] = get_args(TemplateStatus)
ALLOWED = {
    ("draft", "running"),
    ("draft", "ended"),
    ("running", "paused"),
    ("running", "ended"),
    ("paused", "running"),
    ("paused", "ended"),
}
LIVE: tuple[TemplateStatus, ...] = ("running", "paused")


def template(status: TemplateStatus = "draft", **overrides: Any) -> CouponTemplate:
    fields: dict[str, Any] = {
        "id": "ten-off",
        "tenant_id": "shop",
        "name": "10 off",
        "kind": "fixed",
        "amount_cents": 1000,
        "validity": Validity(days_after_claim=30),
        "limits": CouponLimits(stock=100, per_user=1),
        "status": status,
        **overrides,
    }
    return CouponTemplate(**fields)


def _refused(code: str, call: Any, *args: Any) -> LifecycleError:
    with pytest.raises(LifecycleError) as caught:
        call(*args)
    assert caught.value.code == code
    return caught.value


# -- transitions ------------------------------------------------------------------------


def test_transition_table_is_the_documented_one() -> None:
    assert {(a, b) for a, targets in TEMPLATE_TRANSITIONS.items() for b in targets} == ALLOWED
    assert set(TEMPLATE_TRANSITIONS) == set(STATUSES)


@pytest.mark.parametrize(("start", "to"), sorted(ALLOWED))
def test_allowed_transitions(start: TemplateStatus, to: TemplateStatus) -> None:
    before = template(start)
    after = lifecycle.transition(before, to)
    assert after.status == to and after.version == before.version + 1
    assert after.model_copy(update={"status": start, "version": 1}) == before
    assert before.status == start  # the input is not changed


@pytest.mark.parametrize(
    ("start", "to"), sorted(set(itertools.product(STATUSES, STATUSES)) - ALLOWED)
)
def test_forbidden_transitions(start: TemplateStatus, to: TemplateStatus) -> None:
    error = _refused("invalid_transition", lifecycle.transition, template(start), to)
    assert f"'{start}'" in str(error) and f"'{to}'" in str(error)


# The verbs each status accepts: start only a draft, resume only a paused template.
VERBS_FROM: dict[TemplateStatus, set[str]] = {
    "draft": {"start", "end"},
    "running": {"pause", "end"},
    "paused": {"resume", "end"},
    "ended": set(),
}


@pytest.mark.parametrize("start", STATUSES)
@pytest.mark.parametrize("verb", sorted(lifecycle.VERB_TARGETS))
def test_verbs(start: TemplateStatus, verb: lifecycle.Verb) -> None:
    before = template(start)
    if verb in VERBS_FROM[start]:
        after = lifecycle.act(before, verb)
        assert after == lifecycle.transition(before, lifecycle.VERB_TARGETS[verb])
    else:
        error = _refused("invalid_transition", lifecycle.act, before, verb)
        assert f"'{start}'" in str(error)


def test_only_a_draft_never_ran() -> None:
    assert [s for s in STATUSES if lifecycle.never_ran(template(s))] == ["draft"]


# -- editing ----------------------------------------------------------------------------


def test_draft_may_change_its_terms() -> None:
    before = template()
    after = lifecycle.edit(
        before,
        {"kind": "percent", "amount_cents": 0, "percent": 15, "limits": {"stock": 5}},
    )
    assert (after.kind, after.percent, after.amount_cents) == ("percent", 15, 0)
    assert after.limits == CouponLimits(stock=5)  # a field replaces its whole value
    assert after.version == 2 and before.kind == "fixed"


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("field", sorted(lifecycle.SERVER_FIELDS))
def test_server_fields_are_never_editable(status: TemplateStatus, field: str) -> None:
    error = _refused("field_not_editable", lifecycle.edit, template(status), {field: "x"})
    assert field in str(error)


@pytest.mark.parametrize("status", LIVE)
def test_live_template_edits_only_what_is_not_a_term(status: TemplateStatus) -> None:
    before = template(status)
    changes = {
        "name": "Ten off",
        "description": "Spring sale",
        "claim_closes_at": 5_000,
        "institution_id": "branch-a",
    }
    assert set(changes) == LIVE_EDITABLE
    after = lifecycle.edit(before, changes)
    got = (after.name, after.description, after.claim_closes_at, after.institution_id)
    assert got == tuple(changes.values())
    for term in ({"amount_cents": 2000}, {"limits": {"stock": 1}}, {"name": "x", "percent": 5}):
        error = _refused("template_live", lifecycle.edit, before, term)
        assert status in str(error) and "name" in str(error)


def test_ended_template_edits_nothing() -> None:
    _refused("template_ended", lifecycle.edit, template("ended"), {"name": "Too late"})


def test_invalid_edit_names_the_field() -> None:
    with pytest.raises(ValidationError, match="amount_cents"):
        lifecycle.edit(template(), {"amount_cents": 0})
    with pytest.raises(ValidationError, match="claim_closes_at"):
        lifecycle.edit(template("running", claim_opens_at=10), {"claim_closes_at": 5})


# -- stock ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["draft", *LIVE])
def test_add_stock(status: TemplateStatus) -> None:
    before = template(status)
    after = lifecycle.add_stock(before, 50)
    assert after.limits.stock == 150 and after.limits.per_user == 1
    assert after.version == 2 and before.limits.stock == 100


def test_add_stock_refusals() -> None:
    _refused("template_ended", lifecycle.add_stock, template("ended"), 1)
    unlimited = template("running", limits=CouponLimits())
    _refused("unlimited_stock", lifecycle.add_stock, unlimited, 1)
    with pytest.raises(ValidationError, match="stock"):
        lifecycle.add_stock(template("running", limits=CouponLimits(stock=10**9)), 1)
