-- Minute rollups of draw outcomes, claim outcomes, write-offs and points
-- movements: one AggregatingMergeTree per stream keyed by (tenant, entity,
-- minute, status or kind), filled by a materialized view on every insert into
-- the raw table, and kept two years (raw draws, claims and write-offs keep
-- 90 days: 010).
--
-- Why they stay exact under duplicates. Events are at-least-once and inserts
-- carry no deduplication token (streams/clickhouse.py; a non-replicated
-- MergeTree dedupes no blocks anyway), so a materialized view sees every copy
-- of an event: a count() or a sum() state would count a replayed event twice,
-- and unlike the raw table no FINAL can undo it. So no state here is a plain
-- counter, each one is a set keyed by the event id:
--   * counts are uniqExactState(event_id), distinct people uniqExactState(user_id):
--     merging two states is the union of two sets, so a second copy adds nothing;
--   * sums are maxMapState([event_id], [value, ...]): one value per event id,
--     and a copy carries the same value (it is the same event), so the max of
--     the copies is that value. A reader sums the map's values: arraySum(m.2).
--     Rows whose values are all zero add nothing to a sum and are left out.
-- A copy also has the same occurred_at and status, so it lands on the same
-- rollup key. The price: a minute's state holds its events' ids, so a rollup
-- is smaller than its raw table by the columns it drops, not by its rows; what
-- it buys is exact series read from a few columns, kept two years (a TTL on
-- the raw tables waits until the since-the-start totals read rollups).
--
-- The same property makes the backfill below safe: it runs after its view
-- exists, so an event inserted in between is rolled up twice, harmlessly, and a
-- backfill run again (a process killed before the record) changes nothing.
-- It is the only non-DDL here, idempotent like the DDL.

CREATE TABLE IF NOT EXISTS draw_minutes
(
    tenant_id    LowCardinality(String),
    activity_id  String,
    minute       DateTime('UTC'),
    status       LowCardinality(String),
    events       AggregateFunction(uniqExact, String),
    users        AggregateFunction(uniqExact, String),
    amounts      AggregateFunction(maxMap, Array(String), Array(Int64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant_id, activity_id, minute, status)
TTL minute + INTERVAL 2 YEAR;

CREATE MATERIALIZED VIEW IF NOT EXISTS draw_minutes_mv TO draw_minutes AS
SELECT
    tenant_id, activity_id, toStartOfMinute(toDateTime(occurred_at, 'UTC')) AS minute, status,
    uniqExactState(event_id)                                AS events,
    uniqExactState(user_id)                                 AS users,
    maxMapStateIf([event_id], [amount], amount != 0)        AS amounts
FROM draw_outcomes
GROUP BY tenant_id, activity_id, minute, status;

INSERT INTO draw_minutes
SELECT
    tenant_id, activity_id, toStartOfMinute(toDateTime(occurred_at, 'UTC')) AS minute, status,
    uniqExactState(event_id), uniqExactState(user_id),
    maxMapStateIf([event_id], [amount], amount != 0)
FROM draw_outcomes
GROUP BY tenant_id, activity_id, minute, status;

CREATE TABLE IF NOT EXISTS claim_minutes
(
    tenant_id    LowCardinality(String),
    template_id  String,
    minute       DateTime('UTC'),
    status       LowCardinality(String),
    source       LowCardinality(String),
    events       AggregateFunction(uniqExact, String),
    users        AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant_id, template_id, minute, status, source)
TTL minute + INTERVAL 2 YEAR;

CREATE MATERIALIZED VIEW IF NOT EXISTS claim_minutes_mv TO claim_minutes AS
SELECT
    tenant_id, template_id, toStartOfMinute(toDateTime(occurred_at, 'UTC')) AS minute, status, source,
    uniqExactState(event_id)  AS events,
    uniqExactState(user_id)   AS users
FROM claim_outcomes
GROUP BY tenant_id, template_id, minute, status, source;

INSERT INTO claim_minutes
SELECT
    tenant_id, template_id, toStartOfMinute(toDateTime(occurred_at, 'UTC')) AS minute, status, source,
    uniqExactState(event_id), uniqExactState(user_id)
FROM claim_outcomes
GROUP BY tenant_id, template_id, minute, status, source;

-- amounts holds (discount_cents, order_cents) per event id; a reversal's are negative.
CREATE TABLE IF NOT EXISTS writeoff_minutes
(
    tenant_id    LowCardinality(String),
    partner_id   LowCardinality(String),
    template_id  String,
    minute       DateTime('UTC'),
    status       LowCardinality(String),
    events       AggregateFunction(uniqExact, String),
    amounts      AggregateFunction(maxMap, Array(String), Array(Int64), Array(Int64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant_id, partner_id, template_id, minute, status)
TTL minute + INTERVAL 2 YEAR;

CREATE MATERIALIZED VIEW IF NOT EXISTS writeoff_minutes_mv TO writeoff_minutes AS
SELECT
    tenant_id, partner_id, template_id, toStartOfMinute(toDateTime(occurred_at, 'UTC')) AS minute, status,
    uniqExactState(event_id) AS events,
    maxMapStateIf([event_id], [discount_cents], [order_cents], discount_cents != 0 OR order_cents != 0) AS amounts
FROM writeoffs
GROUP BY tenant_id, partner_id, template_id, minute, status;

INSERT INTO writeoff_minutes
SELECT
    tenant_id, partner_id, template_id, toStartOfMinute(toDateTime(occurred_at, 'UTC')) AS minute, status,
    uniqExactState(event_id),
    maxMapStateIf([event_id], [discount_cents], [order_cents], discount_cents != 0 OR order_cents != 0)
FROM writeoffs
GROUP BY tenant_id, partner_id, template_id, minute, status;

CREATE TABLE IF NOT EXISTS points_minutes
(
    tenant_id    LowCardinality(String),
    minute       DateTime('UTC'),
    kind         LowCardinality(String),
    events       AggregateFunction(uniqExact, String),
    users        AggregateFunction(uniqExact, String),
    amounts      AggregateFunction(maxMap, Array(String), Array(Int64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (tenant_id, minute, kind)
TTL minute + INTERVAL 2 YEAR;

CREATE MATERIALIZED VIEW IF NOT EXISTS points_minutes_mv TO points_minutes AS
SELECT
    tenant_id, toStartOfMinute(toDateTime(occurred_at, 'UTC')) AS minute, kind,
    uniqExactState(event_id)                             AS events,
    uniqExactState(user_id)                              AS users,
    maxMapStateIf([event_id], [amount], amount != 0)     AS amounts
FROM points_movements
GROUP BY tenant_id, minute, kind;

INSERT INTO points_minutes
SELECT
    tenant_id, toStartOfMinute(toDateTime(occurred_at, 'UTC')) AS minute, kind,
    uniqExactState(event_id), uniqExactState(user_id),
    maxMapStateIf([event_id], [amount], amount != 0)
FROM points_movements
GROUP BY tenant_id, minute, kind;
