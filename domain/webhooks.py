"""Webhooks: which committed events a partner hears of, what a notification
says, and how its delivery is retried (pure, no I/O).

A notification is made from an outcome event that was committed (claim, draw,
coupon change, write-off), never from a request, so a partner only ever hears
of what the ledger holds. Its ``id`` is the event's id with the type in front:
an event consumed twice after a crash makes the same notification, and a
receiver dedupes on that id. Delivery is at least once (relay/webhooks.py).

Who hears what: a subscription belongs to one partner of one tenant. Coupon
life events (issued, claimed, expired, voided) of the tenant reach every
subscription that asked for their type (optionally only for some templates);
write-off events (redeemed, reversed) reach only the partner that made them,
since one till's orders are not another bank's business.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated, Any, Final, Literal, get_args
from urllib.parse import urlsplit

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.ids import ID_PATTERN

EventType = Literal[
    "coupon.issued",  # given without being asked: a distribution, a code bound, a prize won
    "coupon.claimed",  # claimed by the shopper in a claim centre
    "coupon.redeemed",  # redeemed (or a lock confirmed) by this partner
    "coupon.reversed",  # given back, whole or in part, on this partner's refund
    "coupon.expired",
    "coupon.voided",
]
EVENT_TYPES: Final[tuple[EventType, ...]] = get_args(EventType)
# Write-off events go only to the partner whose write-off it was.
PARTNER_OWN: Final[frozenset[str]] = frozenset({"coupon.redeemed", "coupon.reversed"})

DeliveryState = Literal["pending", "delivered", "dead"]
DELIVERY_STATES: Final[tuple[DeliveryState, ...]] = get_args(DeliveryState)

MAX_SUBSCRIPTIONS_PER_PARTNER: Final = 20
MAX_URL_CHARS: Final = 2048
MAX_TEMPLATE_FILTER: Final = 100
# The attempts a delivery keeps in its record: the first ones and the last ones
# say what happened; a delivery redelivered by hand for weeks must not grow forever.
MAX_ATTEMPTS_KEPT: Final = 50
SECRET_BYTES: Final = 32
# Not an attempt: where an operator asked for a redelivery (failures in a row restart).
REDELIVER_MARK: Final = "redeliver requested"


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the URL must be absolute http:// or https:// with a host")
    if parts.username or parts.password:
        raise ValueError("the URL must not carry credentials; verify the signature instead")
    if parts.fragment:
        raise ValueError("the URL must not have a #fragment")
    return url


class SubscriptionFields(BaseModel):
    """What a partner (or an operator for it) asks for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: Annotated[str, Field(min_length=8, max_length=MAX_URL_CHARS), AfterValidator(_check_url)]
    event_types: tuple[EventType, ...] = Field(min_length=1, max_length=len(EVENT_TYPES))
    # Only events of these templates; empty: every template of the tenant.
    template_ids: tuple[Annotated[str, Field(pattern=ID_PATTERN)], ...] = Field(
        default=(), max_length=MAX_TEMPLATE_FILTER
    )
    description: str = Field(default="", max_length=200)


class Subscription(SubscriptionFields):
    id: str = Field(pattern=ID_PATTERN)
    tenant_id: str
    partner_id: str
    created_at: int  # epoch ms: events that happened before are not sent to it
    # Signs every delivery (domain.signing.sign_webhook); shown once, at creation.
    secret: str = Field(repr=False)

    def public(self) -> dict[str, Any]:
        return self.model_dump(exclude={"secret"})


def new_subscription_id() -> str:
    return "wh_" + secrets.token_hex(8)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(SECRET_BYTES)


class Notification(BaseModel):
    """One committed event as partners see it; ``body`` is what is POSTed."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: EventType
    tenant_id: str
    template_id: str
    partner_id: str  # the write-off's partner; "" for coupon life events
    occurred_at: int
    data: dict[str, Any]

    def body(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "type": self.type,
                "tenant_id": self.tenant_id,
                "occurred_at": self.occurred_at,
                "data": self.data,
            },
            option=orjson.OPT_SORT_KEYS,
        )


_WRITEOFF_TYPES: Final[dict[str, EventType]] = {
    "redeemed": "coupon.redeemed",
    "reversed": "coupon.reversed",
    "partially_reversed": "coupon.reversed",
}
_CHANGE_TYPES: Final[dict[str, EventType]] = {
    "expired": "coupon.expired",
    "voided": "coupon.voided",
}


def _note(
    kind: EventType, event: dict[str, Any], data: dict[str, Any], partner: str = ""
) -> Notification:
    return Notification(
        id=f"{kind}:{event['event_id']}",
        type=kind,
        tenant_id=event["tenant_id"],
        template_id=data["template_id"],
        partner_id=partner,
        occurred_at=event["occurred_at"],
        data=data,
    )


def notification(event: dict[str, Any]) -> Notification | None:
    """The notification an outcome event makes, or None (a refusal, a lost draw)."""
    kind = event.get("type")
    if kind == "claim.outcome" and event["status"] == "issued":
        data = {
            key: event[key]
            for key in ("coupon_id", "template_id", "user_id", "valid_from", "valid_until")
        }
        data["source"] = event.get("source") or "claim"
        claimed = data["source"] == "claim"
        return _note("coupon.claimed" if claimed else "coupon.issued", event, data)
    if kind == "draw.outcome" and event["status"] == "won" and event.get("coupon_id"):
        data = {
            "coupon_id": event["coupon_id"],
            "template_id": event["coupon_template"],
            "user_id": event["user_id"],
            "source": "draw",
            "activity_id": event["activity_id"],
        }
        return _note("coupon.issued", event, data)
    if kind == "coupon.change" and event["status"] in _CHANGE_TYPES:
        data = {key: event[key] for key in ("coupon_id", "template_id", "user_id")}
        return _note(_CHANGE_TYPES[event["status"]], event, data)
    if kind == "writeoff" and event["status"] in _WRITEOFF_TYPES:
        data = {
            key: event[key]
            for key in (
                "coupon_id",
                "template_id",
                "user_id",
                "request_id",
                "op",
                "status",
                "order_id",
                "order_cents",
                "discount_cents",
            )
        }
        return _note(_WRITEOFF_TYPES[event["status"]], event, data, event["partner_id"])
    return None


def matches(sub: Subscription, note: Notification) -> bool:
    if note.type not in sub.event_types or note.tenant_id != sub.tenant_id:
        return False
    if note.occurred_at < sub.created_at:
        return False
    if sub.template_ids and note.template_id not in sub.template_ids:
        return False
    return note.type not in PARTNER_OWN or note.partner_id == sub.partner_id


def delivery_id(subscription_id: str, notification_id: str) -> str:
    """Derived, never random: the same event consumed twice makes the same delivery."""
    digest = hashlib.sha256(notification_id.encode()).hexdigest()[:24]
    return f"{subscription_id}.{digest}"


def retry_delay_ms(failed_attempts: int, base_ms: int, cap_ms: int) -> int:
    """Exponential backoff: base, 2·base, 4·base, ... never more than cap."""
    return min(cap_ms, base_ms << min(failed_attempts - 1, 40))


class Attempt(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: int
    status_code: int | None  # None: no HTTP answer (refused, timed out)
    error: str  # "" on a 2xx
    ms: int  # how long the attempt took


class Delivery(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    subscription_id: str
    tenant_id: str
    partner_id: str
    notification_id: str
    event_type: EventType
    url: str
    body: str  # the JSON POSTed, exactly as signed
    created_at: int
    state: DeliveryState = "pending"
    attempts: tuple[Attempt, ...] = ()
    attempt_count: int = 0  # all attempts, including those no longer kept
    next_at: int | None = None  # when it is tried next, while pending

    def after(self, attempt: Attempt, max_attempts: int, base_ms: int, cap_ms: int) -> Delivery:
        """This delivery once ``attempt`` is recorded: delivered on a 2xx, dead after
        ``max_attempts`` failures in a row, otherwise due again after the backoff."""
        count = self.attempt_count + 1
        kept = (*self.attempts, attempt)
        if len(kept) > MAX_ATTEMPTS_KEPT:
            kept = kept[:1] + kept[-(MAX_ATTEMPTS_KEPT - 1) :]
        if not attempt.error:
            return self.model_copy(
                update={
                    "state": "delivered",
                    "attempts": kept,
                    "attempt_count": count,
                    "next_at": None,
                }
            )
        failures = _failures_in_a_row(kept)
        if failures >= max_attempts:
            return self.model_copy(
                update={"state": "dead", "attempts": kept, "attempt_count": count, "next_at": None}
            )
        next_at = attempt.at + attempt.ms + retry_delay_ms(failures, base_ms, cap_ms)
        return self.model_copy(
            update={"attempts": kept, "attempt_count": count, "next_at": next_at}
        )

    def redelivered(self, at: int) -> Delivery:
        """Due again now, whatever its state; its attempts stay as history, and the
        count of failures in a row starts again (a redelivery marks a fresh start)."""
        marker = Attempt(at=at, status_code=None, error=REDELIVER_MARK, ms=0)
        return self.model_copy(
            update={"state": "pending", "next_at": at, "attempts": (*self.attempts, marker)}
        )


def _failures_in_a_row(attempts: tuple[Attempt, ...]) -> int:
    count = 0
    for attempt in reversed(attempts):
        if not attempt.error or attempt.error == REDELIVER_MARK:
            break
        count += 1
    return count
