-- One partner's net discount and net order cents per UTC day (redeemed less
-- reversed), for the settlement trend. FINAL because a sum cannot be deduplicated
-- by uniqExact.
-- Boards: partner
SELECT
    toStartOfDay(occurred_at) AS time,
    sum(discount_cents) AS net_discount_cents,
    sum(order_cents) AS net_order_cents
FROM writeoffs FINAL
WHERE tenant_id = {tenant_id:String} AND partner_id = {partner_id:String}
  AND status IN ('redeemed', 'reversed', 'partially_reversed')
  AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
GROUP BY time
ORDER BY time
