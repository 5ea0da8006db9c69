-- One coupon template over the range: coupons issued (claims, distributions, codes
-- and draws), redemptions, full reversals, and the redemption rate (redemptions
-- less full reversals, over issued; coupons issued before the range and redeemed
-- in it can take it above 1).
-- Boards: coupons
SELECT
    issued,
    redemptions,
    reversals,
    (redemptions - reversals) / greatest(issued, 1) AS redemption_rate
FROM
(
    SELECT
        (
            SELECT uniqExact(event_id) FROM claim_outcomes
            WHERE tenant_id = {tenant_id:String} AND template_id = {template_id:String}
              AND status = 'issued'
              AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
        ) + (
            SELECT uniqExact(event_id) FROM draw_outcomes
            WHERE tenant_id = {tenant_id:String} AND coupon_template = {template_id:String}
              AND coupon_id != ''
              AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
        ) AS issued,
        uniqExactIf(event_id, status = 'redeemed') AS redemptions,
        uniqExactIf(event_id, status = 'reversed') AS reversals
    FROM writeoffs
    WHERE tenant_id = {tenant_id:String} AND template_id = {template_id:String}
      AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
)
