"""Upstream channels (domain/channels.py): operators register one and read its
issuances; the upstream calls back, signed, when one of its coupons is spent.

Registering a channel makes Carnival a key pair for it: the private half signs
what Carnival sends the upstream and stays in the ledger; the public half is in
the answer, to hand to the upstream.
"""

from __future__ import annotations

from typing import Annotated, Any

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from api import pages
from api import writeoff_requests as wr
from api.deps import AnyStaff, Operator, Res
from api.errors import ApiError, validation_error
from api.partner_auth import Caller, SignedChannel
from api.routes_writeoffs import RedemptionResult, outcome, write_off
from api.tickets import Ticket
from domain import writeoffs as rules
from domain.channels import (
    ISSUANCE_STATES,
    Channel,
    ChannelFields,
    Issuance,
    IssuanceState,
    WriteoffCallback,
    new_channel_id,
)
from domain.events import now_ms
from domain.ids import ID_PATTERN, REQUEST_ID_PATTERN
from domain.signing import generate_rsa_key, public_pem
from ledger.channels import ChannelStore
from ledger.partners import PartnerStore

router = APIRouter(prefix="/v1", tags=["channels"])

ChannelId = Path(pattern=ID_PATTERN)
MAX_PAGE = 500


class IssuancePage(BaseModel):
    issuances: list[Issuance]
    next_cursor: str | None


async def _store(res: Res) -> ChannelStore:
    return ChannelStore(res.store.redis)


Channels = Annotated[ChannelStore, Depends(_store)]


async def _found(store: ChannelStore, tenant_id: str, channel_id: str) -> Channel:
    channel = await store.channel(channel_id)
    if channel is None or channel.tenant_id != tenant_id:
        raise ApiError(404, "channel_not_found", f"no channel '{channel_id}' in your tenant")
    return channel


@router.post("/admin/channels", status_code=201, response_model=Channel)
async def create_channel(res: Res, store: Channels, who: Operator, body: dict[str, Any]) -> Channel:
    try:
        fields = ChannelFields.model_validate(body)
    except ValidationError as exc:
        raise validation_error("invalid_channel", exc.errors()) from exc
    if await PartnerStore(res.store.redis).partner(who.tenant_id, fields.partner_id) is None:
        raise ApiError(
            422,
            "partner_not_found",
            f"partner_id: no partner '{fields.partner_id}' in your tenant; the upstream's "
            "write-offs are recorded for a partner, register it first",
        )
    key = generate_rsa_key()
    channel = Channel(
        **fields.model_dump(),
        id=new_channel_id(),
        tenant_id=who.tenant_id,
        created_at=now_ms(),
        carnival_public_key_pem=public_pem(key).decode(),
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    await store.add(channel, private_pem, who.key_name)
    return channel


@router.get("/admin/channels", response_model=list[Channel])
async def list_channels(store: Channels, who: AnyStaff) -> list[Channel]:
    return await store.of_tenant(who.tenant_id)


@router.get("/admin/channels/{channel_id}", response_model=Channel)
async def get_channel(store: Channels, who: AnyStaff, channel_id: str = ChannelId) -> Channel:
    return await _found(store, who.tenant_id, channel_id)


@router.get("/admin/channels/{channel_id}/issuances", response_model=IssuancePage)
async def list_issuances(
    store: Channels,
    who: AnyStaff,
    state: Annotated[
        IssuanceState | None, Query(description=f"one of {', '.join(ISSUANCE_STATES)}")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=9)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    channel_id: str = ChannelId,
) -> IssuancePage:
    """Newest first; ``state`` filters within the pages read (at most 10 per call)."""
    await _found(store, who.tenant_id, channel_id)
    found, next_cursor = await pages.filtered(
        lambda at, count: store.issuances(channel_id, at, count),
        (lambda i: i.state == state) if state else None,
        cursor,
        limit,
    )
    return IssuancePage(issuances=found, next_cursor=next_cursor)


@router.get("/admin/channels/{channel_id}/issuances/{coupon_id}", response_model=Issuance)
async def get_issuance(
    store: Channels, who: AnyStaff, channel_id: str = ChannelId, coupon_id: str = ChannelId
) -> Issuance:
    await _found(store, who.tenant_id, channel_id)
    issuance = await store.issuance(coupon_id)
    if issuance is None or issuance.channel_id != channel_id:
        raise ApiError(404, "issuance_not_found", f"no issuance of coupon '{coupon_id}' here")
    return issuance


@router.post(
    "/channels/{channel_id}/writeoffs",
    response_model=RedemptionResult,
    responses={202: {"model": Ticket}},
    summary="The upstream's write-off callback (signed with the upstream's key)",
)
async def writeoff_callback(
    res: Res, store: Channels, channel: SignedChannel, request: Request
) -> Response:
    """A coupon spent upstream is redeemed in Carnival for the channel's partner,
    on the write-off road like any redemption. ``writeoff_id`` is the idempotency
    key: the upstream re-sends the same callback until it gets a 200 (a 202 means
    it is being decided)."""
    callback = await wr.parse(request, WriteoffCallback, "invalid_callback")
    issuance = await store.issuance(callback.out_request_no)
    if (
        issuance is None
        or issuance.channel_id != channel.id
        or issuance.state != "issued"
        or issuance.upstream_coupon_id != callback.coupon_id
    ):
        raise ApiError(
            409,
            "channel_coupon_unknown",
            f"coupon '{callback.coupon_id}' (out_request_no '{callback.out_request_no}') was "
            "not issued through this channel",
        )
    caller = Caller(channel.partner_id, channel.tenant_id, (), "")
    body = rules.RedemptionRequest(
        request_id=callback.writeoff_id, coupon_id=callback.out_request_no, order=callback.order
    )
    return await write_off(res, caller, body, "redeem", f"/v1/channels/{channel.id}/writeoffs")


@router.get(
    "/channels/{channel_id}/writeoffs/{writeoff_id}",
    response_model=RedemptionResult,
    responses={202: {"model": Ticket}},
    summary="The outcome of a write-off callback (202 while pending)",
)
async def writeoff_callback_outcome(
    res: Res, channel: SignedChannel, writeoff_id: str = Path(pattern=REQUEST_ID_PATTERN)
) -> Response:
    caller = Caller(channel.partner_id, channel.tenant_id, (), "")
    poll = f"/v1/channels/{channel.id}/writeoffs"
    return await outcome(res, caller, writeoff_id, "redeem", poll)
