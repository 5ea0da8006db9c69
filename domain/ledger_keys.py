"""Redis key layout of the ledger.

Every key of one activity shares the hash tag ``{a:<id>}`` so the batch commit
script touches a single slot and runs unchanged on Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "carnival"


@dataclass(frozen=True, slots=True)
class ActivityKeys:
    activity_id: str

    @property
    def tag(self) -> str:
        return f"{PREFIX}:{{a:{self.activity_id}}}"

    @property
    def config(self) -> str:
        return f"{self.tag}:cfg"

    @property
    def stock(self) -> str:
        return f"{self.tag}:stock"

    @property
    def users(self) -> str:
        return f"{self.tag}:users"

    @property
    def draws(self) -> str:
        return f"{self.tag}:draws"

    @property
    def outcomes(self) -> str:
        return f"{self.tag}:out"

    def pending(self, request_key: str) -> str:
        return f"{self.tag}:pending:{request_key}"

    def batch(self, batch_id: str) -> str:
        return f"{self.tag}:batch:{batch_id}"


def tenant_key(tenant_id: str) -> str:
    return f"{PREFIX}:tenant:{tenant_id}"


def tenant_activities_key(tenant_id: str) -> str:
    return f"{PREFIX}:tenant:{tenant_id}:activities"


def api_key_key(key_hash: str) -> str:
    return f"{PREFIX}:apikey:{key_hash}"


DISPATCHER_HEARTBEAT = f"{PREFIX}:heartbeat:dispatcher"
