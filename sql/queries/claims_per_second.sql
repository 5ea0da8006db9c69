-- Claims of one coupon template per second, by status (issued / rejected),
-- averaged over each bucket of interval_s seconds.
-- Boards: flash-sale
SELECT
    toStartOfInterval(occurred_at, toIntervalSecond({interval_s:UInt32})) AS time,
    status,
    uniqExact(event_id) / {interval_s:UInt32} AS claims_per_second
FROM claim_outcomes
WHERE tenant_id = {tenant_id:String} AND template_id = {template_id:String}
  AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
GROUP BY time, status
ORDER BY time, status
