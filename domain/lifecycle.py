"""Activity lifecycle: draft → scheduled → running ⇄ paused → ended, and what
may be edited in each state."""

from __future__ import annotations

from domain.activity import Activity, ActivityStatus

TRANSITIONS: dict[ActivityStatus, frozenset[ActivityStatus]] = {
    "draft": frozenset({"scheduled"}),
    "scheduled": frozenset({"running", "ended"}),
    "running": frozenset({"paused", "ended"}),
    "paused": frozenset({"running", "ended"}),
    "ended": frozenset(),
}
# Fields an operator may change while the activity is live (the pool is frozen;
# stock is added through its own operation). The theme is only the page's look:
# no decision reads it.
LIVE_EDITABLE = frozenset({"name", "ends_at", "institution_id", "theme"})


class LifecycleError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def transition(activity: Activity, to: ActivityStatus, at_ms: int) -> Activity:
    """The clock moves scheduled activities to running and live ones to ended;
    an explicit transition to the state the clock already reached just records it."""
    current = activity.effective_status(at_ms)
    if to not in TRANSITIONS[current] and not (to == current != activity.status):
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
        raise LifecycleError(
            "invalid_transition",
            f"cannot go from '{current}' to '{to}' (allowed from '{current}': {allowed})",
        )
    updates: dict = {"status": to, "version": activity.version + 1}
    if to == "running" and activity.starts_at is not None and activity.starts_at > at_ms:
        updates["starts_at"] = at_ms  # started early by the operator: the window opens now
    return activity.model_copy(update=updates)


def not_started(activity: Activity, at_ms: int) -> bool:
    """No draw can have happened yet, so the pool's stock may be rewritten."""
    return activity.effective_status(at_ms) in ("draft", "scheduled")


def edit(activity: Activity, changes: dict, at_ms: int) -> Activity:
    """Apply an operator's edit, refusing what the activity's state forbids."""
    status = activity.effective_status(at_ms)
    forbidden = {"id", "tenant_id", "status", "version"} & set(changes)
    if forbidden:
        raise LifecycleError("field_not_editable", f"cannot edit {', '.join(sorted(forbidden))}")
    if status == "ended":
        raise LifecycleError("activity_ended", "an ended activity cannot be edited")
    if status in ("running", "paused"):
        frozen = set(changes) - LIVE_EDITABLE
        if frozen:
            raise LifecycleError(
                "activity_live",
                f"a {status} activity only allows editing {', '.join(sorted(LIVE_EDITABLE))}; "
                f"pause is not enough to change {', '.join(sorted(frozen))} (add stock with "
                "POST .../stock)",
            )
    body = activity.model_dump()
    body.update(changes)
    body["version"] = activity.version + 1
    return Activity.model_validate(body)


def add_stock(activity: Activity, prize_id: str, amount: int, at_ms: int) -> Activity:
    if activity.effective_status(at_ms) == "ended":
        raise LifecycleError("activity_ended", "an ended activity cannot get more stock")
    prize = activity.prize(prize_id)
    if prize is None:
        raise LifecycleError("prize_not_found", f"no prize '{prize_id}' in this activity")
    if prize.stock is None:
        raise LifecycleError("unlimited_stock", f"prize '{prize_id}' has unlimited stock")
    prizes = tuple(
        p.model_copy(update={"stock": p.stock + amount}) if p.id == prize_id else p  # type: ignore[operator]
        for p in activity.prizes
    )
    return activity.model_copy(update={"prizes": prizes, "version": activity.version + 1})
