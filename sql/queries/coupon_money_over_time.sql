-- Discount cost and order GMV of one coupon template per bucket of interval_s
-- seconds, net of reversals (a reversal carries its amounts negated). Only the
-- settled statuses move money (domain.writeoffs.SETTLED); FINAL because a sum
-- cannot be deduplicated by uniqExact.
-- Boards: coupons
SELECT
    toStartOfInterval(occurred_at, toIntervalSecond({interval_s:UInt32})) AS time,
    sum(discount_cents) AS discount_cost_cents,
    sum(order_cents) AS gmv_cents
FROM writeoffs FINAL
WHERE tenant_id = {tenant_id:String} AND template_id = {template_id:String}
  AND status IN ('redeemed', 'reversed', 'partially_reversed')
  AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
GROUP BY time
ORDER BY time
