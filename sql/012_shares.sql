-- Share events: landing-page opens of a share link (kind 'share_click', user_id
-- '') and referred friends' conversions (kind 'conversion', one per activity and
-- friend: its event id is "conversion:<tenant>:<activity>:<friend>", so a
-- conversion sent again is one row). At-least-once like the other streams:
-- ReplacingMergeTree on the sorting key, and readers count uniqExact(event_id).
-- Kept 90 days like the other raw events (011).
CREATE TABLE IF NOT EXISTS share_events
(
    event_id     String,
    tenant_id    LowCardinality(String),
    activity_id  String,
    kind         LowCardinality(String),
    code         String,
    advocate_id  String,
    channel      LowCardinality(String),
    user_id      String,
    occurred_at  DateTime64(3, 'UTC'),
    ingested_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, activity_id, event_id)
TTL toDateTime(occurred_at) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;
