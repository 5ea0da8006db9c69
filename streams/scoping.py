"""A Visibility as SQL: the condition and bound parameters that keep a query to
what a key may see. Ids travel as bound Array(String) parameters, never as text."""

from __future__ import annotations

from typing import Any

from domain.visibility import Visibility


def condition(view: Visibility, activity_column: str = "", template_column: str = "") -> str:
    """``tenant_id = … [AND <entity column> in the scope's ids]`` for a WHERE clause.

    Name the column that places a row in an institution: ``activity_column`` for
    draw rows, ``template_column`` for claim, change and write-off rows. Both may
    be given (a row is visible when either id is in scope), e.g. coupons won in
    a draw are the activity's and the template's.
    """
    sql = "tenant_id = {tenant_id:String}"
    if not view.scoped:
        return sql
    parts = []
    if activity_column:
        parts.append(f"has({{scope_activities:Array(String)}}, {activity_column})")
    if template_column:
        parts.append(f"has({{scope_templates:Array(String)}}, {template_column})")
    if not parts:
        raise ValueError("a scoped query names the column that places a row in an institution")
    return f"{sql} AND ({' OR '.join(parts)})"


def parameters(view: Visibility) -> dict[str, Any]:
    return {
        "tenant_id": view.tenant_id,
        "scope_activities": sorted(view.activities),
        "scope_templates": sorted(view.templates),
    }
