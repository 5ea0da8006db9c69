"""Coupon template lifecycle: draft → running ⇄ paused → ended
(``domain.claims.TEMPLATE_TRANSITIONS``), and what may be edited in each state.

A coupon's terms are its template's at claim time, and a wallet reads them from
the template: so once shoppers may hold its coupons (running, paused, ended)
only ``domain.claims.LIVE_EDITABLE`` changes, and an ended template nothing.
Errors are ``domain.lifecycle.LifecycleError`` with the code the api answers.
"""

from __future__ import annotations

from typing import Any, Literal

from domain.claims import LIVE_EDITABLE, TEMPLATE_TRANSITIONS
from domain.coupons import CouponTemplate, TemplateStatus
from domain.lifecycle import LifecycleError

# Set by the server, never by an edit: the status moves by transitions only.
SERVER_FIELDS = frozenset({"id", "tenant_id", "status", "version"})

Verb = Literal["start", "pause", "resume", "end"]
VERB_TARGETS: dict[Verb, TemplateStatus] = {
    "start": "running",
    "pause": "paused",
    "resume": "running",
    "end": "ended",
}
# Both lead to running, each from its own state: resuming a draft (or starting
# a paused template) is more likely a mistaken id than an intent.
_VERB_ONLY_FROM: dict[Verb, TemplateStatus] = {"start": "draft", "resume": "paused"}


def transition(template: CouponTemplate, to: TemplateStatus) -> CouponTemplate:
    current = template.status
    if to not in TEMPLATE_TRANSITIONS[current]:
        allowed = ", ".join(sorted(TEMPLATE_TRANSITIONS[current])) or "none"
        raise LifecycleError(
            "invalid_transition",
            f"cannot go from '{current}' to '{to}' (allowed from '{current}': {allowed})",
        )
    return template.model_copy(update={"status": to, "version": template.version + 1})


def act(template: CouponTemplate, verb: Verb) -> CouponTemplate:
    """An operator's verb: a transition to ``VERB_TARGETS[verb]``."""
    only = _VERB_ONLY_FROM.get(verb)
    if only is not None and template.status != only:
        raise LifecycleError(
            "invalid_transition",
            f"cannot {verb} a '{template.status}' template (only a '{only}' one)",
        )
    return transition(template, VERB_TARGETS[verb])


def never_ran(template: CouponTemplate) -> bool:
    """No claim can have happened (a draft never returns once started), so the
    ledger's stock may be rewritten to follow an edit."""
    return template.status == "draft"


def edit(template: CouponTemplate, changes: dict[str, Any]) -> CouponTemplate:
    """Apply an operator's edit (top-level fields replace their whole value),
    refusing what the template's state forbids. Raises pydantic's
    ``ValidationError`` when the edited template is invalid."""
    forbidden = SERVER_FIELDS & set(changes)
    if forbidden:
        raise LifecycleError(
            "field_not_editable",
            f"cannot edit {', '.join(sorted(forbidden))} (status moves by POST .../start, "
            "pause, resume or end)",
        )
    status = template.status
    if status == "ended":
        raise LifecycleError("template_ended", "an ended template cannot be edited")
    frozen = set(changes) - LIVE_EDITABLE
    if not never_ran(template) and frozen:
        raise LifecycleError(
            "template_live",
            f"a {status} template only allows editing {', '.join(sorted(LIVE_EDITABLE))}: "
            f"shoppers may hold its coupons, whose terms are {', '.join(sorted(frozen))} "
            "(add stock with POST .../stock; for new terms create a new template)",
        )
    body = template.model_dump()
    body.update(changes)
    body["version"] = template.version + 1
    return CouponTemplate.model_validate(body)


def add_stock(template: CouponTemplate, amount: int) -> CouponTemplate:
    """Raises pydantic's ``ValidationError`` when the new total passes the maximum stock."""
    if template.status == "ended":
        raise LifecycleError("template_ended", "an ended template cannot get more stock")
    stock = template.limits.stock
    if stock is None:
        raise LifecycleError("unlimited_stock", f"template '{template.id}' has unlimited stock")
    # Validated, not copied: the sum may pass the stock's maximum.
    body = template.model_dump()
    body["limits"]["stock"] = stock + amount
    body["version"] = template.version + 1
    return CouponTemplate.model_validate(body)
