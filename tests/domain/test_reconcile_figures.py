"""The reconcile figures, pure: the ledger's events counted as ClickHouse counts
them (distinct events; sums over settled write-offs only)."""

from __future__ import annotations

from carnival.reconcile import (
    activity_figures,
    partner_figures,
    points_figures,
    template_figures,
)


def _draw(n: int, status: str, user: str = "u", prize: str = "p", amount: int = 0) -> dict:
    return {
        "event_id": f"{user}:{n}",
        "status": status,
        "user_id": user,
        "prize_id": prize,
        "amount": amount,
    }


def test_activity_figures_count_each_event_once() -> None:
    events = [
        _draw(1, "won", amount=5),
        _draw(1, "won", amount=5),  # the same event twice
        _draw(2, "lost", user="v"),
        _draw(3, "rejected", user="w"),
        _draw(4, "won", prize="q", amount=7),
    ]
    assert activity_figures(events) == {
        "outcomes": 4,
        "draws": 3,
        "won": 2,
        "lost": 1,
        "rejected": 1,
        "amount_won": 12,
        "participants": 2,
        "prizes": {"p": 1, "q": 1},
    }


def test_template_figures_sum_settled_write_offs_only() -> None:
    claims = [
        {"event_id": "a:1", "status": "issued", "user_id": "a"},
        {"event_id": "b:1", "status": "rejected", "user_id": "b"},
    ]
    changes = [{"event_id": "x", "status": "voided"}, {"event_id": "y", "status": "expired"}]
    writeoffs = [
        {"event_id": "p:1", "status": "redeemed", "discount_cents": 500, "order_cents": 5000},
        {"event_id": "p:2", "status": "locked", "discount_cents": 300, "order_cents": 3000},
        {"event_id": "p:3:c", "status": "reversed", "discount_cents": -500, "order_cents": -5000},
        {"event_id": "p:4", "status": "rejected", "discount_cents": 0, "order_cents": 0},
    ]
    figures = template_figures(claims, changes, writeoffs, won_in_draws=3)
    assert figures == {
        "claims": 2,
        "issued": 1,
        "rejected": 1,
        "holders": 1,
        "won_in_draws": 3,
        "voided": 1,
        "expired": 1,
        "redeemed": 1,
        "discount_cents": 0,
        "order_cents": 0,
    }


def _writeoff(template: str, event: str, partner: str, status: str, cents: int = 0) -> dict:
    return {
        "template_id": template,
        "event_id": event,
        "partner_id": partner,
        "status": status,
        "discount_cents": cents,
        "order_cents": cents * 10,
    }


def test_partner_figures_count_each_templates_event_once() -> None:
    writeoffs = [
        _writeoff("t1", "p:1", "p", "redeemed", 500),
        _writeoff("t1", "p:1", "p", "redeemed", 500),  # the same event twice
        _writeoff("t2", "p:1", "p", "redeemed", 300),  # the same id, another template
        _writeoff("t1", "p:2:c", "p", "partially_reversed", -200),
        _writeoff("t1", "p:3", "p", "locked", 700),  # reserves only
        _writeoff("t1", "q:1", "q", "rejected"),
    ]
    assert partner_figures(writeoffs) == {
        "p": {
            "writeoffs": 4,
            "redeemed": 2,
            "reversed": 1,
            "rejected": 0,
            "discount_cents": 600,
            "order_cents": 6000,
        },
        "q": {
            "writeoffs": 1,
            "redeemed": 0,
            "reversed": 0,
            "rejected": 1,
            "discount_cents": 0,
            "order_cents": 0,
        },
    }


def _entry(key: str, kind: str, amount: int, source: str = "x") -> dict:
    return {"key": key, "kind": kind, "amount": amount, "source_id": source}


def test_points_figures_leave_seeded_entries_out() -> None:
    logs = [
        (
            "ann",
            [
                _entry("seed:1:ab", "adjust", 12, source="admin"),  # a tool's, not an event
                _entry("signin", "earn", 5),
                _entry("draw:a:r1", "spend", -10),
                _entry("expire:signin", "expire", -1),
                _entry("fix", "adjust", -2, source="operator"),
            ],
        ),
        ("bob", [_entry("seed:1:cd", "adjust", 7, source="admin")]),  # seeded only
        ("cy", [_entry("order:o-1", "earn", 20), _entry("refund:o-1", "reverse", -20)]),
        # An operator's adjustment with a seed-like key is an event all the same.
        ("dee", [_entry("seed:x", "adjust", 3, source="operator")]),
    ]
    points = points_figures(logs)
    assert (points.seeded, points.seeded_points) == (2, 19)
    assert points.figures == {
        "earned": 25,
        "spent": 10,
        "expired": 1,
        "reversed": 20,
        "adjusted": 1,
        "liability": -5,
        "movements": 7,
        "accounts": 3,
    }
