-- Claim outcomes, one row per ClaimOutcome event: every coupon issued by a claim
-- (status 'issued', with its coupon_id) and every refused claim (its reason).
-- At-least-once like draw outcomes: ReplacingMergeTree on the sorting key, and
-- readers count uniqExact(event_id).
CREATE TABLE IF NOT EXISTS claim_outcomes
(
    event_id     String,
    tenant_id    LowCardinality(String),
    template_id  String,
    user_id      String,
    request_id   String,
    status       LowCardinality(String),
    reason       LowCardinality(String),
    coupon_id    String,
    valid_from   Nullable(Int64),
    valid_until  Nullable(Int64),
    batch_id     String,
    occurred_at  DateTime64(3, 'UTC'),
    ingested_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, template_id, event_id);
