"""Points movements as rows of ``points_movements`` (pure): each outcome that moved
points turned into one row per ledger entry it wrote.

A points outcome carries its entries (``movements``); a draw or a claim outcome
carries only how many points it moved, so its entries are rebuilt here under the
keys the actors wrote them with (actors/draws.py, actors/claims.py). A row's id is
the tenant, the user and the entry's key: the ledger writes a key once per
account, so the same movement seen twice (a redelivery, a replay) is one row.
Outcomes are decoded before they get here (streams/decode.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Literal

from domain.claims import ClaimOutcome
from domain.events import DrawOutcome
from domain.points import PointsOutcome

Origin = Literal["points", "draw", "claim"]


@dataclass(frozen=True, slots=True)
class Movement:
    """One row of ``points_movements``; ``amount`` is what the balance gained
    (negative when it lost), ``balance`` 0 where the event does not say."""

    event_id: str
    tenant_id: str
    user_id: str
    key: str
    kind: str
    amount: int
    balance: int
    reason: str
    source_id: str
    origin: Origin
    outcome_id: str
    batch_id: str
    occurred_at: int


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Movement))


def movement_id(tenant_id: str, user_id: str, key: str) -> str:
    # Neither tenant nor user ids hold ":" (domain/ids.py): the id is unambiguous.
    return f"{tenant_id}:{user_id}:{key}"


def of_points(o: PointsOutcome) -> list[Movement]:
    """The entries a points request wrote (none when it was rejected)."""
    return [
        Movement(
            event_id=movement_id(o.tenant_id, o.user_id, m["key"]),
            tenant_id=o.tenant_id,
            user_id=o.user_id,
            key=m["key"],
            kind=m["kind"],
            amount=m["amount"],
            balance=m["balance"],
            reason=m["reason"],
            source_id=m["source_id"],
            origin="points",
            outcome_id=o.event_id,
            batch_id=o.batch_id,
            occurred_at=m["at"],
        )
        for m in o.movements
    ]


def of_draw(o: DrawOutcome) -> list[Movement]:
    """A draw's cost spent and its points prize earned, as the draw's commit wrote them."""
    source = f"{o.activity_id}:{o.request_id}"
    rows = []
    if o.points_spent:
        rows.append(_rebuilt(o, f"draw:{source}", "spend", -o.points_spent, "draw", "draw"))
    if o.points_earned:
        rows.append(_rebuilt(o, f"prize:{source}", "earn", o.points_earned, "prize", "draw"))
    return rows


def of_claim(o: ClaimOutcome) -> list[Movement]:
    """The points an exchange spent on its coupon, as the claim's commit wrote them."""
    if not o.points_spent:
        return []
    key = f"exchange:{o.template_id}:{o.request_id}"
    return [_rebuilt(o, key, "spend", -o.points_spent, "exchange", "claim")]


def _rebuilt(
    o: DrawOutcome | ClaimOutcome, key: str, kind: str, amount: int, reason: str, origin: Origin
) -> Movement:
    source_id = o.activity_id if isinstance(o, DrawOutcome) else o.template_id
    return Movement(
        event_id=movement_id(o.tenant_id, o.user_id, key),
        tenant_id=o.tenant_id,
        user_id=o.user_id,
        key=key,
        kind=kind,
        amount=amount,
        balance=0,
        reason=reason,
        source_id=source_id,
        origin=origin,
        outcome_id=o.event_id,
        batch_id=o.batch_id,
        occurred_at=o.occurred_at,
    )


def flatten(outcomes: Iterable[PointsOutcome | DrawOutcome | ClaimOutcome]) -> list[Movement]:
    """Every movement of a batch of outcomes, in order."""
    rows: list[Movement] = []
    for o in outcomes:
        if isinstance(o, PointsOutcome):
            rows += of_points(o)
        elif isinstance(o, DrawOutcome):
            rows += of_draw(o)
        else:
            rows += of_claim(o)
    return rows
