"""Share links and referrals: the pure rules (codes, channel URLs, reward ids)
and the share event. No I/O.

A share code names (tenant, activity, advocate, channel). It is derived from
them, so asking for the same link twice is the same code without a read
first, and it says nothing about them (a hash, not an encoding): the link is
public, the ids behind it need not be.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import ClassVar, Final, Literal, get_args
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from domain.events import Event, now_ms
from domain.ids import ID_PATTERN

Channel = Literal["x", "facebook", "tiktok", "copy"]
CHANNELS: Final[tuple[str, ...]] = get_args(Channel)
ShareEventKind = Literal["share_click", "conversion"]
SHARE_EVENT_KINDS: Final[tuple[str, ...]] = get_args(ShareEventKind)

# 16 base32 characters: 80 bits of a SHA-256, so two links of the whole platform
# colliding is out of reach (~10^-12 at a billion links); short enough to paste.
CODE_CHARS: Final = 16
CODE_PATTERN: Final = rf"^[a-z2-7]{{{CODE_CHARS}}}$"
_CODE = re.compile(CODE_PATTERN)
MAX_REWARD_POINTS: Final = 1_000_000


def share_code(tenant_id: str, activity_id: str, advocate_id: str, channel: str) -> str:
    # "\n" cannot occur in an id, so the fields cannot run into each other.
    digest = hashlib.sha256(
        f"{tenant_id}\n{activity_id}\n{advocate_id}\n{channel}".encode()
    ).digest()
    return base64.b32encode(digest).decode().lower()[:CODE_CHARS]


def is_code(value: str) -> bool:
    """Whether ``value`` can be a share code (checked before any lookup)."""
    return _CODE.fullmatch(value) is not None


def intent_url(channel: str, landing_url: str, text: str) -> str:
    """Where the channel's share button sends the advocate. TikTok has no web
    share intent: the advocate copies the landing URL into the app."""
    url = quote(landing_url, safe="")
    if channel == "x":
        return f"https://twitter.com/intent/tweet?url={url}&text={quote(text, safe='')}"
    if channel == "facebook":
        return f"https://www.facebook.com/sharer/sharer.php?u={url}"
    return landing_url


Side = Literal["advocate", "friend"]
SIDES: Final[tuple[Side, ...]] = ("advocate", "friend")
RewardKind = Literal["points", "coupon"]


def reward_request_id(
    activity_id: str, friend_id: str, side: Side, kind: RewardKind = "points"
) -> str:
    """The request id of one side's reward of one kind: one per (activity,
    friend, side, kind), so however often the reward is asked, the road (the
    points kind for points, the claim kind for a coupon: each decides a request
    id once) grants it once. Hashed: the ids together can exceed the 64
    characters a request id may have."""
    digest = hashlib.sha256(f"{activity_id}\n{friend_id}".encode()).hexdigest()[:32]
    suffix = "" if kind == "points" else f":{kind}"
    return f"referral:{digest}:{side}{suffix}"


class ReferralRule(BaseModel):
    """A tenant's referral reward when a referred friend converts (their first
    decided draw, or first claim on a coupon page): points to each side (0:
    none) and/or a coupon of a template to each side (None: none). A coupon is
    an operator's grant: the template's stock applies, its claim window and
    per-user limit do not."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    advocate_points: int = Field(default=0, ge=0, le=MAX_REWARD_POINTS)
    friend_points: int = Field(default=0, ge=0, le=MAX_REWARD_POINTS)
    advocate_template_id: str | None = Field(default=None, pattern=ID_PATTERN)
    friend_template_id: str | None = Field(default=None, pattern=ID_PATTERN)

    def points(self, side: Side) -> int:
        return self.advocate_points if side == "advocate" else self.friend_points

    def template_id(self, side: Side) -> str | None:
        return self.advocate_template_id if side == "advocate" else self.friend_template_id


@dataclass(frozen=True, slots=True)
class ShareEvent(Event):
    """A landing-page open (``share_click``, user_id "") or a referred friend's
    conversion (one per activity and friend: its event id says so, so a
    conversion sent again is one row)."""

    TYPE: ClassVar[str] = "share"

    event_id: str
    tenant_id: str
    activity_id: str
    kind: str  # ShareEventKind
    code: str
    advocate_id: str
    channel: str  # Channel
    user_id: str  # the friend; "" for a click
    occurred_at: int = field(default_factory=now_ms)


def conversion_event_id(tenant_id: str, activity_id: str, friend_id: str) -> str:
    return f"conversion:{tenant_id}:{activity_id}:{friend_id}"
