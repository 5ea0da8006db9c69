-- Coupon changes, one row per CouponChange event: every coupon voided by an
-- operator or expired by the sweep (status 'voided' / 'expired'), and every
-- refused change (status 'rejected', its reason). At-least-once like the other
-- streams: ReplacingMergeTree on the sorting key, and readers count
-- uniqExact(event_id). An event id is "<holder>:<op>-<coupon id>", so a coupon
-- counts as voided or expired once however often it was asked for.
CREATE TABLE IF NOT EXISTS coupon_changes
(
    event_id     String,
    tenant_id    LowCardinality(String),
    template_id  String,
    coupon_id    String,
    user_id      String,
    request_id   String,
    op           LowCardinality(String),
    status       LowCardinality(String),
    reason       LowCardinality(String),
    note         String,
    batch_id     String,
    occurred_at  DateTime64(3, 'UTC'),
    ingested_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, template_id, event_id);
