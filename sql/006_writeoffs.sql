-- Write-offs, one row per Writeoff event: every redemption by a partner (status
-- 'redeemed', with the order's amount and the discount), every reversal
-- ('reversed', amounts negated) and every refused one ('rejected', its reason).
-- GMV and discount cost are sums over the applied rows. At-least-once like the
-- other streams: ReplacingMergeTree on the sorting key, readers dedupe by event_id.
CREATE TABLE IF NOT EXISTS writeoffs
(
    event_id       String,
    tenant_id      LowCardinality(String),
    template_id    String,
    coupon_id      String,
    user_id        String,
    partner_id     LowCardinality(String),
    request_id     String,
    digest         String,
    op             LowCardinality(String),
    status         LowCardinality(String),
    reason         LowCardinality(String),
    detail         LowCardinality(String),
    order_id       String,
    order_cents    Int64,
    discount_cents Int64,
    batch_id       String,
    occurred_at    DateTime64(3, 'UTC'),
    ingested_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, template_id, event_id);
