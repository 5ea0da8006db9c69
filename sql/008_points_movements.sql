-- Points movements, one row per ledger entry: every earn, spend, expiry,
-- adjustment and reversal of a shopper's points. They arrive inside points
-- outcomes (sign-in, order rebate, refund, adjust, expire: origin 'points'),
-- draw outcomes (a draw's cost and its points prize: 'draw') and claim outcomes
-- (an exchange's price: 'claim'). A movement's id is "<tenant>:<user>:<entry key>"
-- and its ledger key is unique per account, so a movement delivered twice is one
-- row. At-least-once like the other streams: ReplacingMergeTree on the sorting key,
-- and readers sum over FINAL. balance is the account's after the movement, 0 where
-- the event does not carry it (draws and claims). Liability is sum(amount).
CREATE TABLE IF NOT EXISTS points_movements
(
    event_id     String,
    tenant_id    LowCardinality(String),
    user_id      String,
    key          String,
    kind         LowCardinality(String),
    amount       Int64,
    balance      Int64,
    reason       String,
    source_id    String,
    origin       LowCardinality(String),
    outcome_id   String,
    batch_id     String,
    occurred_at  DateTime64(3, 'UTC'),
    ingested_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, user_id, event_id);
