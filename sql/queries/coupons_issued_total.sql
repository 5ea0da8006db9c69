-- Sold-out progress: coupons of one template issued so far (a running total since
-- the template's first claim, so the curve ends at the template's issued count).
-- The stock itself lives in Redis; set it as the panel's threshold.
-- Boards: flash-sale
SELECT time, issued_total
FROM (
    SELECT time, sum(issued) OVER (ORDER BY time) AS issued_total
    FROM (
        SELECT
            toStartOfInterval(occurred_at, toIntervalSecond({interval_s:UInt32})) AS time,
            uniqExact(event_id) AS issued
        FROM claim_outcomes
        WHERE tenant_id = {tenant_id:String} AND template_id = {template_id:String}
          AND status = 'issued' AND occurred_at < {to:DateTime64(3)}
        GROUP BY time
    )
)
WHERE time >= toStartOfInterval({from:DateTime64(3)}, toIntervalSecond({interval_s:UInt32}))
ORDER BY time
