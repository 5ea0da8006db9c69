-- Draw outcomes, one row per DrawOutcome event.
-- Events are at-least-once (a crashed dispatcher or Faust worker replays), so
-- the same event_id may be inserted more than once: ReplacingMergeTree keyed by
-- the sorting key collapses duplicates on merge, and readers use FINAL or
-- uniqExact(event_id) so duplicates never show up before a merge either.
-- tenant_id leads the key: every query is tenant-scoped and prunes by it.
CREATE TABLE IF NOT EXISTS draw_outcomes
(
    event_id     String,
    tenant_id    LowCardinality(String),
    activity_id  String,
    user_id      String,
    request_id   String,
    status       LowCardinality(String),
    prize_id     String,
    prize_name   String,
    prize_kind   LowCardinality(String),
    reason       LowCardinality(String),
    batch_id     String,
    occurred_at  DateTime64(3, 'UTC'),
    ingested_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant_id, activity_id, event_id);
