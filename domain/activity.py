"""Activity configuration: the data an operator sets and the actor enforces."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

ActivityKind = Literal["wheel"]
ActivityStatus = Literal["draft", "scheduled", "running", "paused", "ended"]
PrizeKind = Literal["coupon", "points", "item", "thanks"]

_ID = r"^[A-Za-z0-9_.-]{1,64}$"


class Prize(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=100)
    kind: PrizeKind
    weight: int = Field(ge=0, le=1_000_000_000)
    # None = unlimited (only sensible for the fallback "thanks" prize or points).
    stock: int | None = Field(default=None, ge=0)


class Activity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_ID)
    tenant_id: str = Field(pattern=_ID)
    kind: ActivityKind = "wheel"
    name: str = Field(min_length=1, max_length=200)
    status: ActivityStatus = "draft"
    starts_at: int | None = None  # epoch ms; None = open
    ends_at: int | None = None
    prizes: tuple[Prize, ...] = Field(min_length=1, max_length=64)
    # Awarded when the drawn prize is out of stock; must never run out itself.
    fallback_prize_id: str
    per_user_limit: int = Field(default=0, ge=0)  # 0 = no limit
    version: int = 1

    @model_validator(mode="after")
    def _check(self) -> Self:
        ids = [p.id for p in self.prizes]
        if len(set(ids)) != len(ids):
            raise ValueError("prize ids must be unique")
        fallback = self.prize(self.fallback_prize_id)
        if fallback is None:
            raise ValueError("fallback_prize_id must name one of the prizes")
        if fallback.stock is not None:
            raise ValueError("the fallback prize must have unlimited stock")
        if sum(p.weight for p in self.prizes) <= 0:
            raise ValueError("at least one prize needs a positive weight")
        starts, ends = self.starts_at, self.ends_at
        if starts is not None and ends is not None and ends <= starts:
            raise ValueError("ends_at must be after starts_at")
        return self

    def prize(self, prize_id: str) -> Prize | None:
        return next((p for p in self.prizes if p.id == prize_id), None)

    def is_open(self, at_ms: int) -> bool:
        if self.status != "running":
            return False
        if self.starts_at is not None and at_ms < self.starts_at:
            return False
        return self.ends_at is None or at_ms < self.ends_at
