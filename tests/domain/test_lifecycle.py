"""Pure lifecycle rules: transitions, what may be edited in each state, adding stock."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydantic import ValidationError

from domain import lifecycle
from domain.activity import Activity, ActivityStatus, Envelopes, Limits, Prize

NOW = 1_750_000_000_000
HOUR = 3_600_000
STATUSES: tuple[ActivityStatus, ...] = ("draft", "scheduled", "running", "paused", "ended")
ALLOWED = {
    ("draft", "scheduled"),
    ("scheduled", "running"),
    ("scheduled", "ended"),
    ("running", "paused"),
    ("running", "ended"),
    ("paused", "running"),
    ("paused", "ended"),
}


def wheel(status: ActivityStatus = "draft", **overrides: Any) -> Activity:
    fields: dict[str, Any] = {
        "id": "spin",
        "tenant_id": "shop",
        "name": "Wheel",
        "status": status,
        "prizes": (
            Prize(id="gold", name="Gold", kind="item", weight=1, stock=3),
            Prize(id="pts", name="Points", kind="points", weight=1, points=5),
            Prize(id="thanks", name="Thanks", kind="thanks", weight=1),
        ),
        "fallback_prize_id": "thanks",
        **overrides,
    }
    if status == "scheduled" and "starts_at" not in overrides:
        fields["starts_at"] = NOW + HOUR  # still waiting for its start
    return Activity(**fields)


# -- transitions ------------------------------------------------------------------------


def test_transition_table_is_the_documented_one() -> None:
    table = {(a, b) for a, targets in lifecycle.TRANSITIONS.items() for b in targets}
    assert table == ALLOWED
    assert set(lifecycle.TRANSITIONS) == set(STATUSES)


@pytest.mark.parametrize(("start", "to"), sorted(ALLOWED))
def test_allowed_transitions(start: ActivityStatus, to: ActivityStatus) -> None:
    before = wheel(start)
    after = lifecycle.transition(before, to, NOW)
    assert after.status == to
    assert after.version == before.version + 1
    unchanged = {"status": start, "version": 1, "starts_at": before.starts_at}
    assert after.model_copy(update=unchanged) == before
    assert before.status == start  # the input is not changed
    if to == "running" and start == "scheduled":  # started early: the window opens now
        assert after.starts_at == NOW and after.is_open(NOW)


@pytest.mark.parametrize(
    ("start", "to"),
    sorted(set(itertools.product(STATUSES, STATUSES)) - ALLOWED),
)
def test_forbidden_transitions(start: ActivityStatus, to: ActivityStatus) -> None:
    with pytest.raises(lifecycle.LifecycleError) as caught:
        lifecycle.transition(wheel(start), to, NOW)
    assert caught.value.code == "invalid_transition"
    assert f"'{start}'" in str(caught.value) and f"'{to}'" in str(caught.value)


def test_transitions_follow_the_clock() -> None:
    started = wheel("scheduled", starts_at=NOW - HOUR)
    assert started.effective_status(NOW) == "running"
    assert lifecycle.transition(started, "paused", NOW).status == "paused"

    over = wheel("running", ends_at=NOW - 1)
    assert over.effective_status(NOW) == "ended"
    for to in STATUSES:
        if to == "ended":  # recording what the clock did is allowed
            assert lifecycle.transition(over, to, NOW).status == "ended"
            continue
        with pytest.raises(lifecycle.LifecycleError):
            lifecycle.transition(over, to, NOW)
    paused_over = wheel("paused", ends_at=NOW)
    with pytest.raises(lifecycle.LifecycleError):
        lifecycle.transition(paused_over, "running", NOW)
    # A draft never ends by the clock: it can still be scheduled (and is then over).
    draft_over = wheel("draft", starts_at=NOW - 2 * HOUR, ends_at=NOW - HOUR)
    scheduled = lifecycle.transition(draft_over, "scheduled", NOW)
    assert scheduled.effective_status(NOW) == "ended"
    assert not scheduled.is_open(NOW)


def test_message_lists_what_is_allowed() -> None:
    with pytest.raises(lifecycle.LifecycleError, match=r"allowed from 'ended': none"):
        lifecycle.transition(wheel("ended"), "running", NOW)
    with pytest.raises(lifecycle.LifecycleError, match=r"allowed from 'running': ended, paused"):
        lifecycle.transition(wheel("running"), "draft", NOW)


# -- editing ----------------------------------------------------------------------------

NEW_PRIZES = [
    {"id": "tv", "name": "TV", "kind": "item", "weight": 2, "stock": 1},
    {"id": "thanks", "name": "Thanks", "kind": "thanks", "weight": 1},
]
POOL_CHANGES: list[dict[str, Any]] = [
    {"prizes": NEW_PRIZES},
    {"limits": {"per_user_total": 2}},
    {"rules": {"blacklist": ["bad"]}},
    {"fallback_prize_id": "gold"},
    {"starts_at": NOW + 2 * HOUR},
]


@pytest.mark.parametrize("status", ["draft", "scheduled"])
def test_not_live_edits_anything(status: ActivityStatus) -> None:
    before = wheel(status)
    after = lifecycle.edit(
        before,
        {
            "name": "New",
            "prizes": NEW_PRIZES,
            "limits": {"points_cost": 5},
            "ends_at": NOW + 9 * HOUR,
        },
        NOW,
    )
    assert after.name == "New"
    assert [p.id for p in after.prizes] == ["tv", "thanks"]
    assert after.limits == Limits(points_cost=5)
    assert after.ends_at == NOW + 9 * HOUR
    assert after.status == status and after.version == before.version + 1


@pytest.mark.parametrize("status", ["running", "paused"])
def test_live_edits_only_name_and_end(status: ActivityStatus) -> None:
    before = wheel(status)
    after = lifecycle.edit(before, {"name": "Renamed", "ends_at": NOW + HOUR}, NOW)
    assert (after.name, after.ends_at, after.version) == ("Renamed", NOW + HOUR, 2)
    assert after.prizes == before.prizes
    for change in POOL_CHANGES:
        with pytest.raises(lifecycle.LifecycleError) as caught:
            lifecycle.edit(before, {"name": "x", **change}, NOW)
        assert caught.value.code == "activity_live"
        assert next(iter(change)) in str(caught.value)


def test_scheduled_past_its_start_is_live() -> None:
    started = wheel("scheduled", starts_at=NOW - HOUR)
    with pytest.raises(lifecycle.LifecycleError) as caught:
        lifecycle.edit(started, {"prizes": NEW_PRIZES}, NOW)
    assert caught.value.code == "activity_live"
    assert lifecycle.edit(started, {"name": "ok"}, NOW).name == "ok"


@pytest.mark.parametrize(
    "before",
    [
        wheel("ended"),
        wheel("running", ends_at=NOW - 1),
        wheel("scheduled", starts_at=NOW - HOUR, ends_at=NOW),
    ],
)
def test_ended_edits_nothing(before: Activity) -> None:
    for change in ({"name": "late"}, {"ends_at": NOW + HOUR}, {"prizes": NEW_PRIZES}):
        with pytest.raises(lifecycle.LifecycleError) as caught:
            lifecycle.edit(before, change, NOW)
        assert caught.value.code == "activity_ended"


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("field", ["id", "tenant_id", "status", "version"])
def test_identity_and_status_are_never_editable(status: ActivityStatus, field: str) -> None:
    with pytest.raises(lifecycle.LifecycleError) as caught:
        lifecycle.edit(wheel(status), {field: "running" if field == "status" else "x"}, NOW)
    assert caught.value.code == "field_not_editable"


def test_edit_revalidates_the_activity() -> None:
    draft = wheel("draft")
    with pytest.raises(ValidationError):  # the fallback must be unlimited
        lifecycle.edit(draft, {"fallback_prize_id": "gold"}, NOW)
    with pytest.raises(ValidationError):
        lifecycle.edit(draft, {"ends_at": NOW, "starts_at": NOW + 1}, NOW)
    with pytest.raises(ValidationError):
        lifecycle.edit(draft, {"envelopes": {"budget_cents": 100, "count": 2}}, NOW)
    grid = wheel(
        "draft",
        kind="grid",
        prizes=tuple(
            Prize(id=f"c{i}", name="C", kind="thanks" if i == 0 else "item", weight=1)
            for i in range(8)
        ),
        fallback_prize_id="c0",
    )
    with pytest.raises(ValidationError):
        lifecycle.edit(grid, {"prizes": NEW_PRIZES}, NOW)
    live = wheel("running")
    with pytest.raises(ValidationError):  # even the live fields are checked
        lifecycle.edit(live, {"name": ""}, NOW)


def test_edit_red_envelope_draft() -> None:
    envelopes = Activity(
        id="env",
        tenant_id="shop",
        kind="red_envelope",
        name="Lucky",
        envelopes=Envelopes(budget_cents=1_000, count=10),
    )
    after = lifecycle.edit(envelopes, {"envelopes": {"budget_cents": 5_000, "count": 20}}, NOW)
    assert after.envelopes == Envelopes(budget_cents=5_000, count=20)
    with pytest.raises(ValidationError):
        lifecycle.edit(envelopes, {"prizes": NEW_PRIZES}, NOW)


# -- stock ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["draft", "scheduled", "running", "paused"])
def test_add_stock(status: ActivityStatus) -> None:
    before = wheel(status)
    after = lifecycle.add_stock(before, "gold", 7, NOW)
    assert after.prize("gold").stock == 10  # type: ignore[union-attr]
    assert [p.id for p in after.prizes] == [p.id for p in before.prizes]
    assert [p for p in after.prizes if p.id != "gold"] == [
        p for p in before.prizes if p.id != "gold"
    ]
    assert after.version == before.version + 1 and after.status == status
    assert before.prize("gold").stock == 3  # type: ignore[union-attr]


def test_add_stock_refusals() -> None:
    cases = [
        (wheel("ended"), "gold", "activity_ended"),
        (wheel("running", ends_at=NOW - 1), "gold", "activity_ended"),
        (wheel("running"), "nope", "prize_not_found"),
        (wheel("running"), "thanks", "unlimited_stock"),
        (wheel("running"), "pts", "unlimited_stock"),
    ]
    for activity, prize_id, code in cases:
        with pytest.raises(lifecycle.LifecycleError) as caught:
            lifecycle.add_stock(activity, prize_id, 1, NOW)
        assert caught.value.code == code, (prize_id, code)
