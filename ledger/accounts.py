"""Points accounts as the commit scripts need them (ledger/accounts.lua): read
with the users' legacy balances, decided on in memory, written back as one
``AccountChange`` per user and commit, compared with what was read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from domain.points import Account, Entry, PointsRules
from ledger.committer import Script
from ledger.keys import TenantKeys

_ACCOUNTS_LUA = (Path(__file__).parent / "accounts.lua").read_text()


def script(name: str) -> Script:
    """A commit script that moves points: ``accounts.lua`` prefixed to it."""
    return Script(_ACCOUNTS_LUA + (Path(__file__).parent / name).read_text())


class AccountChange(NamedTuple):
    """One user's account in one commit (the argument layout of accounts.lua)."""

    user_id: str
    before: bytes  # the account's JSON as read; b"" for none
    after: bytes
    balance: int
    next_expiry: int | str  # "" for none
    entries: bytes  # JSON lines


@dataclass(slots=True)
class HeldAccount:
    """A user's account as a batch reads and moves it."""

    raw: bytes
    account: Account
    entries: list[Entry] = field(default_factory=list)
    moved: bool = False  # changed by this batch (then it is written back)

    def change(self, user_id: str) -> AccountChange:
        account = self.account
        expiry = account.next_expiry()
        return AccountChange(
            user_id,
            self.raw,
            account.model_dump_json().encode(),
            account.balance,
            "" if expiry is None else expiry,
            b"\n".join(e.model_dump_json().encode() for e in self.entries),
        )


def hold(
    users: list[str], raws: list[bytes | None], legacy: list[bytes | None]
) -> dict[str, HeldAccount]:
    return {
        user: HeldAccount(raw or b"", Account.of(raw, int(old or 0)))
        for user, raw, old in zip(users, raws, legacy, strict=True)
    }


def read(pipe: Any, tenant_id: str, users: list[str]) -> None:
    """Queue the reads ``hold`` needs, then the rules: three replies."""
    tenant = TenantKeys(tenant_id)
    pipe.hmget(tenant.points_accounts, users)
    pipe.hmget(tenant.points, users)
    pipe.get(tenant.points_rules)


def rules_of(raw: bytes | None) -> PointsRules:
    return PointsRules.model_validate_json(raw) if raw else PointsRules()


def keys(tenant_id: str, changes: list[AccountChange]) -> list[str]:
    """accounts, balances, expiry schedule, then each change's log list."""
    tenant = TenantKeys(tenant_id)
    return [
        tenant.points_accounts,
        tenant.points,
        tenant.points_expiries,
        *(tenant.points_log(c.user_id) for c in changes),
    ]


def args(changes: list[AccountChange]) -> list[Any]:
    out: list[Any] = []
    for change in changes:
        out.extend(change)
    return out
