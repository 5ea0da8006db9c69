"""The reconcile figures, pure: the ledger's events counted as ClickHouse counts
them (distinct events; sums over settled write-offs only)."""

from __future__ import annotations

from carnival.reconcile import activity_figures, template_figures


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
