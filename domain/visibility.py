"""What a staff key may see: the whole tenant, or one institution's entities.

Seed 002's banks give each branch (an institution) a key that sees only its
own activities and coupon templates. The api resolves a key's institution to
the ids of the entities tagged with it (``institution_id`` on an activity or a
template) and hands the read side a ``Visibility``; the read side filters by
those ids, so ClickHouse rows need no institution column and re-tagging an
entity moves its whole history with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Visibility:
    tenant_id: str
    # None: the whole tenant. Otherwise the institution's entities (maybe none).
    institution_id: str | None = None
    activities: frozenset[str] = frozenset()
    templates: frozenset[str] = frozenset()

    @property
    def scoped(self) -> bool:
        return self.institution_id is not None

    def sees_activity(self, activity_id: str) -> bool:
        return not self.scoped or activity_id in self.activities

    def sees_template(self, template_id: str) -> bool:
        return not self.scoped or template_id in self.templates

    def params(self) -> list[tuple[str, str]]:
        """Query parameters of the api -> streams hop (repeated keys for the ids)."""
        out = [("tenant_id", self.tenant_id)]
        if self.scoped:
            out.append(("institution_id", self.institution_id or ""))
            out += [("activity_id", a) for a in sorted(self.activities)]
            out += [("template_id", t) for t in sorted(self.templates)]
        return out

    @classmethod
    def from_params(cls, query: Mapping[str, str] | Sequence[tuple[str, str]]) -> Visibility:
        """The inverse of ``params``; raises ValueError without a tenant."""
        pairs: Iterable[tuple[str, str]] = query.items() if isinstance(query, Mapping) else query
        tenant, institution = "", None
        activities: set[str] = set()
        templates: set[str] = set()
        for name, value in pairs:
            if name == "tenant_id":
                tenant = value
            elif name == "institution_id":
                institution = value
            elif name == "activity_id":
                activities.add(value)
            elif name == "template_id":
                templates.add(value)
        if not tenant:
            raise ValueError("tenant_id is required")
        return cls(tenant, institution, frozenset(activities), frozenset(templates))
