"""Kafka topics: names, partition counts and message keys, defined once.

Every record on these topics carries MANY messages, as a JSON array: the api
packs the requests one owner received within a loop turn into one record, the
dispatcher packs one batch's outcomes per owner and its replies per api
instance. Python spends ~20-40 µs per Kafka record it produces or consumes,
so a record per message would cost more than the decision itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key_doc: str


# Requests of every kind, keyed by the owner whose counters they touch, so that
# one dispatcher sees an owner's requests in order and one actor decides them.
REQUESTS = Topic("carnival.requests", 6, "owner key: <owner type>/<tenant id>/<owner id>")
# Replies are keyed by the api instance waiting for them (request-reply).
REPLIES = Topic("carnival.replies", 3, "api instance id")
# Draw outcome events, the stream Faust aggregates into ClickHouse.
DRAW_OUTCOMES = Topic("carnival.draw.outcomes", 6, "activity id")

# Claim outcomes: every issued coupon (and every refused claim), keyed by template.
CLAIM_OUTCOMES = Topic("carnival.claim.outcomes", 6, "template id")

# Coupon changes: every coupon voided or expired (and every refused change), by template.
COUPON_CHANGES = Topic("carnival.coupon.changes", 6, "template id")

# Write-offs: every redemption and reversal by a partner (and every refused one),
# with the order's amount and the discount, keyed by template.
WRITEOFFS = Topic("carnival.writeoffs", 6, "template id")

# Points outcomes: every sign-in, order rebate, refund, adjustment and expiry
# (and every refused one), with the ledger entries it wrote, keyed by account shard.
POINTS_OUTCOMES = Topic(
    "carnival.points.outcomes", 6, "account shard (domain.points.account_shard)"
)

# Share events: landing-page opens (clicks) and referral conversions, keyed by
# activity id. Produced by the api (they decide nothing: no owner counts them).
SHARES = Topic("carnival.shares", 3, "activity id")

# Dead letters: what the streams worker could not decode, as received, with the
# reason and the topic it came from (one record each; a JSON object, not an array).
DEAD_LETTERS = Topic("carnival.deadletters", 1, "the topic the rejected message came from")

ALL_TOPICS: tuple[Topic, ...] = (
    REQUESTS,
    REPLIES,
    DRAW_OUTCOMES,
    CLAIM_OUTCOMES,
    COUPON_CHANGES,
    WRITEOFFS,
    POINTS_OUTCOMES,
    SHARES,
    DEAD_LETTERS,
)

# The header in which the api says how many requests a REQUESTS record carries,
# so the dispatcher can size its calls without parsing records.
COUNT_HEADER = "n"


def message_key(value: str) -> bytes:
    return value.encode()


def pack(messages: list[bytes]) -> bytes:
    """One record's value: serialised JSON messages joined into one JSON array."""
    return b"[" + b",".join(messages) + b"]"
