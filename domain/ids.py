"""Identifier patterns, defined once: every id a client sends is checked against one of these."""

from __future__ import annotations

# Tenants, activities, prizes, templates: URL- and Redis-key-safe.
ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
# No ":" in user ids: a request's ledger key is "<user_id>:<request_id>".
USER_ID_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"
# Idempotency keys chosen by clients (an order number may carry ":").
REQUEST_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
