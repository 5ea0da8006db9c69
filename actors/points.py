"""The points kind: sign-ins, order rebates, refunds, adjustments and expiries,
decided per account shard.

Nothing is held in memory (an account is small and read with its batch): each
batch reads its users' accounts and the tenant's rules, decides every request
in order with ``domain.points.apply``, and commits the accounts compared with
what was read (ledger/accounts.lua). A draw or an exchange that moved an
account meanwhile makes the commit stale; the batch is then decided again on a
fresh read, so no movement is lost and none is applied twice.
"""

from __future__ import annotations

from domain import points
from domain.events import now_ms, request_key
from domain.points import PointsOutcome
from domain.road import Request
from ledger.accounts import AccountChange
from ledger.points import PointsLedger

_ENCODE = PointsOutcome.encoder()
# Attempts per batch and shard before the batch fails back to the dispatcher.
MAX_ATTEMPTS = 5


class PointsAccounts:
    def __init__(self, ledger: PointsLedger) -> None:
        self._ledger = ledger

    async def decide(
        self, batch_id: str, tenant_id: str, shard: str, requests: list[Request]
    ) -> dict[str, bytes]:
        """One outcome per distinct request key; a key decided before gets the
        outcome already decided, byte for byte."""
        unique = list({r.key: r for r in requests}.values())
        for _ in range(MAX_ATTEMPTS):
            results, decided, changes = await self._decide_once(batch_id, tenant_id, unique)
            if not decided:
                return results
            reply = await self._ledger.commit(tenant_id, decided, changes)
            if reply[0] == b"ok":
                return results
        raise RuntimeError(f"points batch {batch_id} for {tenant_id}/{shard} refused")

    async def _decide_once(
        self, batch_id: str, tenant_id: str, unique: list[Request]
    ) -> tuple[dict[str, bytes], list[tuple[str, bytes]], list[AccountChange]]:
        users = sorted({r.user_id for r in unique})
        orders = {
            r.key: request_key(r.user_id, points.order_request_id(_order_id(r)))
            for r in unique
            if _body(r).get("op") == "refund"
        }
        look = await self._ledger.lookup(
            tenant_id, [r.key for r in unique], users, sorted(set(orders.values()))
        )
        at = now_ms()
        earned = dict(look.orders)
        results: dict[str, bytes] = {}
        decided: list[tuple[str, bytes]] = []
        for req, done in zip(unique, look.outcomes, strict=True):
            if done is not None:
                results[req.key] = done
                continue
            held = look.held[req.user_id]
            body = _body(req)
            op = str(body.get("op", ""))
            reason = ""
            entries: list[points.Entry] = []
            try:
                account, entries = points.apply(
                    held.account,
                    look.rules,
                    req.request_id,
                    body,
                    at,
                    earned.get(orders.get(req.key, "")),
                )
            except points.PointsError as exc:
                reason = exc.code
            except ValueError:  # the api checks amounts; this guards against a bug
                reason = "invalid_points_request"
            else:
                if account is not held.account:
                    held.account, held.moved = account, True
                    held.entries += entries
            amount = sum(e.amount for e in entries)
            if op == "order" and not reason:
                earned[req.key] = amount
            outcome = _ENCODE(
                req.key,
                tenant_id,
                req.user_id,
                req.request_id,
                op,
                "rejected" if reason else "applied",
                reason,
                amount,
                held.account.balance,
                [e.model_dump() for e in entries],
                batch_id,
                at,
            )
            results[req.key] = outcome
            decided.append((req.key, outcome))
        changes = [held.change(user) for user, held in look.held.items() if held.moved]
        return results, decided, changes


def _body(req: Request) -> dict:
    return req.body if type(req.body) is dict else {}


def _order_id(req: Request) -> str:
    return str(_body(req).get("order_id", ""))
