-- Write-offs of one coupon template per bucket of interval_s seconds: redemptions,
-- reversals (full and partial) and refused write-offs.
-- Boards: coupons
SELECT
    toStartOfInterval(occurred_at, toIntervalSecond({interval_s:UInt32})) AS time,
    uniqExactIf(event_id, status = 'redeemed') AS redemptions,
    uniqExactIf(event_id, status IN ('reversed', 'partially_reversed')) AS reversals,
    uniqExactIf(event_id, status = 'rejected') AS rejections
FROM writeoffs
WHERE tenant_id = {tenant_id:String} AND template_id = {template_id:String}
  AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
GROUP BY time
ORDER BY time
