-- Since-the-start totals per entity, kept as long as the ledger keeps its
-- entities: the raw event tables expire after 90 days (011), and the totals an
-- operator and `carnival reconcile` read must outlive them. One
-- AggregatingMergeTree per stream, keyed by the entity and the dimensions the
-- totals are broken down by, with no time in the key, filled by a
-- materialized view on every raw insert and backfilled once.
--
-- Exact under duplicated deliveries for the reason 009 gives: every state is a
-- set keyed by the event id (uniqExact for counts, maxMap of event id -> value
-- for sums), so a copy of an event adds nothing. The last event's time is a
-- plain max, which a copy cannot move either.

CREATE TABLE IF NOT EXISTS draw_totals
(
    tenant_id        LowCardinality(String),
    activity_id      String,
    status           LowCardinality(String),
    prize_id         String,
    coupon_template  String,
    prize_name       SimpleAggregateFunction(anyLast, String),
    events           AggregateFunction(uniqExact, String),
    users            AggregateFunction(uniqExact, String),
    coupons          AggregateFunction(uniqExact, String),
    amounts          AggregateFunction(maxMap, Array(String), Array(Int64)),
    last_at          SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant_id, activity_id, status, prize_id, coupon_template);

CREATE MATERIALIZED VIEW IF NOT EXISTS draw_totals_mv TO draw_totals AS
SELECT
    tenant_id, activity_id, status, prize_id, coupon_template,
    anyLast(prize_name)                                  AS prize_name,
    uniqExactState(event_id)                             AS events,
    uniqExactState(user_id)                              AS users,
    uniqExactStateIf(event_id, coupon_id != '')          AS coupons,
    maxMapStateIf([event_id], [amount], amount != 0)     AS amounts,
    max(occurred_at)                                     AS last_at
FROM draw_outcomes
GROUP BY tenant_id, activity_id, status, prize_id, coupon_template;

INSERT INTO draw_totals
SELECT
    tenant_id, activity_id, status, prize_id, coupon_template,
    anyLast(prize_name), uniqExactState(event_id), uniqExactState(user_id),
    uniqExactStateIf(event_id, coupon_id != ''),
    maxMapStateIf([event_id], [amount], amount != 0), max(occurred_at)
FROM draw_outcomes
GROUP BY tenant_id, activity_id, status, prize_id, coupon_template;

CREATE TABLE IF NOT EXISTS claim_totals
(
    tenant_id    LowCardinality(String),
    template_id  String,
    status       LowCardinality(String),
    reason       LowCardinality(String),
    source       LowCardinality(String),
    events       AggregateFunction(uniqExact, String),
    users        AggregateFunction(uniqExact, String),
    last_at      SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant_id, template_id, status, reason, source);

CREATE MATERIALIZED VIEW IF NOT EXISTS claim_totals_mv TO claim_totals AS
SELECT
    tenant_id, template_id, status, reason, source,
    uniqExactState(event_id)  AS events,
    uniqExactState(user_id)   AS users,
    max(occurred_at)          AS last_at
FROM claim_outcomes
GROUP BY tenant_id, template_id, status, reason, source;

INSERT INTO claim_totals
SELECT
    tenant_id, template_id, status, reason, source,
    uniqExactState(event_id), uniqExactState(user_id), max(occurred_at)
FROM claim_outcomes
GROUP BY tenant_id, template_id, status, reason, source;

CREATE TABLE IF NOT EXISTS change_totals
(
    tenant_id    LowCardinality(String),
    template_id  String,
    status       LowCardinality(String),
    events       AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant_id, template_id, status);

CREATE MATERIALIZED VIEW IF NOT EXISTS change_totals_mv TO change_totals AS
SELECT tenant_id, template_id, status, uniqExactState(event_id) AS events
FROM coupon_changes
GROUP BY tenant_id, template_id, status;

INSERT INTO change_totals
SELECT tenant_id, template_id, status, uniqExactState(event_id)
FROM coupon_changes
GROUP BY tenant_id, template_id, status;

-- amounts holds (discount_cents, order_cents) per event id; a reversal's are negative.
CREATE TABLE IF NOT EXISTS writeoff_totals
(
    tenant_id    LowCardinality(String),
    template_id  String,
    partner_id   LowCardinality(String),
    status       LowCardinality(String),
    events       AggregateFunction(uniqExact, String),
    amounts      AggregateFunction(maxMap, Array(String), Array(Int64), Array(Int64)),
    last_at      SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant_id, template_id, partner_id, status);

CREATE MATERIALIZED VIEW IF NOT EXISTS writeoff_totals_mv TO writeoff_totals AS
SELECT
    tenant_id, template_id, partner_id, status,
    uniqExactState(event_id) AS events,
    maxMapStateIf([event_id], [discount_cents], [order_cents], discount_cents != 0 OR order_cents != 0) AS amounts,
    max(occurred_at) AS last_at
FROM writeoffs
GROUP BY tenant_id, template_id, partner_id, status;

INSERT INTO writeoff_totals
SELECT
    tenant_id, template_id, partner_id, status,
    uniqExactState(event_id),
    maxMapStateIf([event_id], [discount_cents], [order_cents], discount_cents != 0 OR order_cents != 0),
    max(occurred_at)
FROM writeoffs
GROUP BY tenant_id, template_id, partner_id, status;

CREATE TABLE IF NOT EXISTS points_totals
(
    tenant_id    LowCardinality(String),
    kind         LowCardinality(String),
    reason       String,
    events       AggregateFunction(uniqExact, String),
    users        AggregateFunction(uniqExact, String),
    amounts      AggregateFunction(maxMap, Array(String), Array(Int64)),
    last_at      SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant_id, kind, reason);

CREATE MATERIALIZED VIEW IF NOT EXISTS points_totals_mv TO points_totals AS
SELECT
    tenant_id, kind, reason,
    uniqExactState(event_id)                             AS events,
    uniqExactState(user_id)                              AS users,
    maxMapStateIf([event_id], [amount], amount != 0)     AS amounts,
    max(occurred_at)                                     AS last_at
FROM points_movements
GROUP BY tenant_id, kind, reason;

INSERT INTO points_totals
SELECT
    tenant_id, kind, reason,
    uniqExactState(event_id), uniqExactState(user_id),
    maxMapStateIf([event_id], [amount], amount != 0), max(occurred_at)
FROM points_movements
GROUP BY tenant_id, kind, reason;
