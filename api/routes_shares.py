"""Share links and referrals.

* ``POST /v1/me/shares`` (shopper): the link of one channel for one activity.
  The code is derived from (tenant, activity, advocate, channel), so asking
  again is the same link.
* ``GET /s/{code}``: the landing page (api/share_page.py); each open is a
  ``share_click`` event on SHARES.
* ``POST /v1/me/referrals`` (shopper, the friend): binds the friend to the
  advocate once per activity (the first link wins) and, once the friend took
  part in the activity (a decided draw, or a claim on a coupon page:
  ``ShareStore.participated``), is the conversion: a ``conversion`` event and
  the rewards, asked through the road (points through the points kind, a
  coupon through the claim kind).
* ``GET|PUT /v1/admin/referral-rules`` (operator): the tenant's reward.

Exactly once, without a new kind: the binding is one HSETNX; a reward is a
points ``adjust`` or a coupon grant whose request id is a function of
(activity, friend, side, kind) (domain.shares.reward_request_id), and each
kind decides a request id once and answers a retry with the same outcome. A
coupon's template is pinned on its first ask (HSETNX), so a rule edited in
between cannot make it a different request. So posting the acceptance again,
concurrently, or after a crash anywhere in it, asks the same requests and
grants each once; the conversion event's id is also a function of (tenant,
activity, friend), so a copy sent again is one ClickHouse row.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Literal

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from api import share_page
from api.deps import Operator, Res, Resources, Shopper
from api.errors import ApiError, activity_not_found
from domain.activity import Activity
from domain.claims import REFERRAL_GRANT
from domain.ids import ID_PATTERN
from domain.points import account_shard
from domain.road import CLAIM, POINTS
from domain.shares import (
    CODE_PATTERN,
    SIDES,
    Channel,
    ReferralRule,
    ShareEvent,
    Side,
    conversion_event_id,
    intent_url,
    is_code,
    reward_request_id,
    share_code,
)
from domain.topics import SHARES, pack
from ledger.shares import ShareLink, ShareStore
from ledger.templates import TemplateStore

log = logging.getLogger("carnival.api.shares")

router = APIRouter(tags=["shares"])

# A click is counted on the way to the page, never in its way: a Kafka that does
# not acknowledge within this loses the click, not the visitor.
CLICK_SEND_TIMEOUT_S = 1.0
REWARD_REASON = "referral"
# The claim kind's grant body: an operator's grant (stock applies; the claim
# window and per-user limit do not), as a bulk distribution line is.
COUPON_GRANT = {"grant": REFERRAL_GRANT}


class ShareAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    activity_id: str = Field(pattern=ID_PATTERN)
    channel: Channel


class ShareLinkView(BaseModel):
    code: str
    activity_id: str
    channel: str
    landing_url: str  # the page to share: it carries the cards and the referral
    share_url: str  # where the channel's share button goes (TikTok: the landing URL)


class ReferralAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=CODE_PATTERN)


class Reward(BaseModel):
    user_id: str
    side: Side
    kind: Literal["points", "coupon"] = "points"
    points: int = 0  # a points reward's amount
    template_id: str = ""  # a coupon reward's template
    coupon_id: str = ""  # the coupon issued ("" until issued)
    request_id: str
    # points: applied | rejected; coupon: issued | rejected; either: pending
    # (queued, not decided yet: asked again on the next acceptance)
    status: str
    reason: str = ""


class ReferralView(BaseModel):
    code: str  # the link that holds the binding (the friend's first)
    activity_id: str
    advocate_id: str
    channel: str
    friend_id: str
    converted: bool  # the friend took part: a decided draw, or a claim on a coupon page
    rewards: list[Reward]


def _share_not_found() -> ApiError:
    return ApiError(404, "share_not_found", "there is no such share link in your tenant")


def landing_url(request: Request, code: str) -> str:
    return str(request.url_for("share_landing", code=code))


@router.post("/v1/me/shares", response_model=ShareLinkView)
async def create_share(res: Res, me: Shopper, body: ShareAsk, request: Request) -> ShareLinkView:
    activity = await res.store.activity(me.tenant_id, body.activity_id)
    if activity is None:
        raise activity_not_found(body.activity_id)
    code = share_code(me.tenant_id, body.activity_id, me.user_id, body.channel)
    link = ShareLink(code, me.tenant_id, body.activity_id, me.user_id, body.channel)
    if await ShareStore(res.store.redis).save_link(link) != link:
        # A hash collision (see domain.shares.CODE_CHARS): refuse, never hijack.
        log.error("share code collision on %s", code)
        raise ApiError(409, "share_code_collision", "this link cannot be made; tell the merchant")
    url = landing_url(request, code)
    return ShareLinkView(
        code=code,
        activity_id=body.activity_id,
        channel=body.channel,
        landing_url=url,
        share_url=intent_url(body.channel, url, activity.name),
    )


async def _send(res: Resources, event: ShareEvent) -> None:
    await res.producer.send_and_wait(
        SHARES.name, pack([event.dumps()]), key=event.activity_id.encode()
    )


@router.get("/s/{code}", name="share_landing", include_in_schema=False)
async def share_landing(res: Res, code: str, request: Request) -> HTMLResponse:
    link = await ShareStore(res.store.redis).link(code) if is_code(code) else None
    if link is None:
        return share_page.missing()
    activity = await res.store.activity(link.tenant_id, link.activity_id)
    if activity is None:  # deleted since the link was made
        return share_page.missing()
    # Every open is a click (a new id): a person opening it twice clicked twice.
    click = ShareEvent(
        event_id=f"click:{uuid.uuid4().hex}",
        tenant_id=link.tenant_id,
        activity_id=link.activity_id,
        kind="share_click",
        code=code,
        advocate_id=link.advocate_id,
        channel=link.channel,
        user_id="",
    )
    try:
        async with asyncio.timeout(CLICK_SEND_TIMEOUT_S):
            await _send(res, click)
    except (KafkaError, TimeoutError):
        log.warning("share click on %s not recorded: Kafka did not acknowledge it", code)
    return share_page.landing(
        title=activity.name,
        description=f"{activity.name}: play and win. A friend shared this with you.",
        url=landing_url(request, code),
        target=f"/p/{link.tenant_id}/{link.activity_id}?ref={code}",
        image=_card_image(request, activity),
    )


def _card_image(request: Request, activity: Activity) -> str | None:
    """The activity's banner as an absolute URL: crawlers resolve no relative
    one. (domain.activity.Theme allows https URLs and paths on this host only.)"""
    banner = activity.theme.banner_url if activity.theme else None
    if not banner or banner.startswith("https://"):
        return banner
    return str(request.base_url).rstrip("/") + banner


@router.post("/v1/me/referrals", response_model=ReferralView)
async def accept_referral(res: Res, me: Shopper, body: ReferralAsk) -> ReferralView:
    store = ShareStore(res.store.redis)
    link = await store.link(body.code)
    if link is None or link.tenant_id != me.tenant_id:
        raise _share_not_found()
    if link.advocate_id == me.user_id:
        raise ApiError(409, "self_referral", "a shopper cannot refer themself")
    bound_code = await store.bind(link, me.user_id)
    bound = link if bound_code == link.code else await store.link(bound_code)
    if bound is None or bound.advocate_id != link.advocate_id:
        raise ApiError(
            409,
            "already_referred",
            "you were already referred to this activity by someone else; the first referral counts",
            {"activity_id": link.activity_id},
        )
    view = ReferralView(
        code=bound.code,
        activity_id=bound.activity_id,
        advocate_id=bound.advocate_id,
        channel=bound.channel,
        friend_id=me.user_id,
        converted=False,
        rewards=[],
    )
    activity = await res.store.activity(me.tenant_id, bound.activity_id)
    if activity is None or not await store.participated(activity, me.user_id):
        return view
    # Converted. Rewards first, then the event: a retry after a failure anywhere
    # asks the same requests again, and each is decided once.
    rule = await store.rule(me.tenant_id) or ReferralRule()
    for side in SIDES:
        if rule.points(side):
            view.rewards.append(await _reward(res, bound, me.user_id, side, rule.points(side)))
    for side in SIDES:
        template_id = rule.template_id(side)
        if template_id:
            pinned = await store.reward_template(bound, me.user_id, side, template_id)
            view.rewards.append(await _coupon_reward(res, bound, me.user_id, side, pinned))
    conversion = ShareEvent(
        event_id=conversion_event_id(me.tenant_id, bound.activity_id, me.user_id),
        tenant_id=me.tenant_id,
        activity_id=bound.activity_id,
        kind="conversion",
        code=bound.code,
        advocate_id=bound.advocate_id,
        channel=bound.channel,
        user_id=me.user_id,
    )
    await _send(res, conversion)  # KafkaError: a 503, and the retry is safe
    view.converted = True
    return view


async def _reward(
    res: Resources,
    link: ShareLink,
    friend_id: str,
    side: Side,
    points: int,
) -> Reward:
    """One side's reward, asked through the points road under its fixed request id."""
    user_id = link.advocate_id if side == "advocate" else friend_id
    request_id = reward_request_id(link.activity_id, friend_id, side)
    outcome: dict[str, Any] | None = await res.road.ask(
        POINTS,
        link.tenant_id,
        account_shard(user_id),
        user_id,
        request_id,
        res.settings.reply_timeout_ms / 1000,
        {"op": "adjust", "amount": points, "reason": REWARD_REASON},
    )
    return Reward(
        user_id=user_id,
        side=side,
        # The decided amount: a rule changed since the first ask does not change it.
        points=points if outcome is None else outcome["amount"],
        request_id=request_id,
        # None: queued, not decided yet; the balance shows it once decided
        status="pending" if outcome is None else outcome["status"],
        reason="" if outcome is None else outcome.get("reason", ""),
    )


async def _coupon_reward(
    res: Resources, link: ShareLink, friend_id: str, side: Side, template_id: str
) -> Reward:
    """One side's coupon, asked through the claim road (key: the template) as a
    grant under its fixed request id."""
    user_id = link.advocate_id if side == "advocate" else friend_id
    request_id = reward_request_id(link.activity_id, friend_id, side, "coupon")
    outcome: dict[str, Any] | None = await res.road.ask(
        CLAIM,
        link.tenant_id,
        template_id,
        user_id,
        request_id,
        res.settings.reply_timeout_ms / 1000,
        COUPON_GRANT,
    )
    return Reward(
        user_id=user_id,
        side=side,
        kind="coupon",
        template_id=template_id,
        coupon_id="" if outcome is None else outcome.get("coupon_id") or "",
        request_id=request_id,
        status="pending" if outcome is None else outcome["status"],
        reason="" if outcome is None else outcome.get("reason", ""),
    )


async def _check_rule_templates(res: Resources, tenant_id: str, rule: ReferralRule) -> None:
    """A coupon reward names a template of the tenant: a misspelt id would
    otherwise reward every conversion with a refusal, silently."""
    named = [(f"{side}_template_id", rule.template_id(side)) for side in SIDES]
    wanted = sorted({t for _, t in named if t})
    found = await TemplateStore(res.store.redis).templates_by_id(tenant_id, wanted)
    for field, template_id in named:
        if template_id and template_id not in found:
            raise ApiError(
                404,
                "template_not_found",
                f"{field}: no coupon template '{template_id}' in your tenant; create it first",
                {"field": field, "template_id": template_id},
            )


# Unset fields are left out (no coupon reward: no template id), so a rule reads
# back as it was put.
@router.get(
    "/v1/admin/referral-rules", response_model=ReferralRule, response_model_exclude_none=True
)
async def get_referral_rule(res: Res, who: Operator) -> ReferralRule:
    return await ShareStore(res.store.redis).rule(who.tenant_id) or ReferralRule()


@router.put(
    "/v1/admin/referral-rules", response_model=ReferralRule, response_model_exclude_none=True
)
async def put_referral_rule(res: Res, who: Operator, body: ReferralRule) -> ReferralRule:
    await _check_rule_templates(res, who.tenant_id, body)
    await ShareStore(res.store.redis).save_rule(who.tenant_id, body, who.key_name)
    return body
