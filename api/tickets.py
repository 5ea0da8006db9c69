"""What every request on the road shares at the api: the idempotency key a
client may send, and the ticket answered (202) when the outcome is not decided
within the reply timeout."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from domain.ids import REQUEST_ID_PATTERN


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str | None = Field(
        default=None,
        pattern=REQUEST_ID_PATTERN,
        description="Idempotency key: a retry with the same id returns the same outcome.",
    )


class Ticket(BaseModel):
    request_id: str
    status: str = "pending"
    poll: str  # GET it until the outcome is decided
