-- Claims of one coupon template refused, by reason (sold out, limits, window ...).
-- Boards: flash-sale
SELECT reason, uniqExact(event_id) AS rejections
FROM claim_outcomes
WHERE tenant_id = {tenant_id:String} AND template_id = {template_id:String}
  AND status = 'rejected'
  AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
GROUP BY reason
ORDER BY rejections DESC, reason
