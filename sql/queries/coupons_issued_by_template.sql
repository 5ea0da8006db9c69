-- Coupons issued per template per bucket of interval_s seconds, all templates of
-- the tenant: by claims, distributions and codes (claim_outcomes) and by draws
-- that won a coupon prize (draw_outcomes), each table's events counted once.
-- Boards: coupons
SELECT time, template_id, sum(issued) AS issued
FROM (
    SELECT
        toStartOfInterval(occurred_at, toIntervalSecond({interval_s:UInt32})) AS time,
        template_id,
        uniqExact(event_id) AS issued
    FROM claim_outcomes
    WHERE tenant_id = {tenant_id:String} AND status = 'issued'
      AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
    GROUP BY time, template_id
    UNION ALL
    SELECT
        toStartOfInterval(occurred_at, toIntervalSecond({interval_s:UInt32})) AS time,
        coupon_template AS template_id,
        uniqExact(event_id) AS issued
    FROM draw_outcomes
    WHERE tenant_id = {tenant_id:String} AND coupon_id != ''
      AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
    GROUP BY time, template_id
)
GROUP BY time, template_id
ORDER BY time, template_id
