-- Settlement per partner per UTC day: redemptions and reversals (full and partial),
-- the discount and order cents redeemed, the cents reversed (positive), and the net
-- the partner settles (redeemed less reversed). FINAL because a sum cannot be
-- deduplicated by uniqExact.
-- Boards: partner
SELECT
    toDate(occurred_at) AS day,
    partner_id,
    countIf(status = 'redeemed') AS redemptions,
    countIf(status IN ('reversed', 'partially_reversed')) AS reversals,
    sumIf(discount_cents, status = 'redeemed') AS redeemed_discount_cents,
    sumIf(order_cents, status = 'redeemed') AS redeemed_order_cents,
    -sumIf(discount_cents, status IN ('reversed', 'partially_reversed')) AS reversed_discount_cents,
    -sumIf(order_cents, status IN ('reversed', 'partially_reversed')) AS reversed_order_cents,
    redeemed_discount_cents - reversed_discount_cents AS net_discount_cents,
    redeemed_order_cents - reversed_order_cents AS net_order_cents
FROM writeoffs FINAL
WHERE tenant_id = {tenant_id:String}
  AND status IN ('redeemed', 'reversed', 'partially_reversed')
  AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
GROUP BY day, partner_id
ORDER BY day, partner_id
