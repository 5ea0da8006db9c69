-- The tenant's coupon templates that have claims: the template_id variable.
-- Boards: coupons, flash-sale
SELECT DISTINCT template_id
FROM claim_outcomes
WHERE tenant_id = {tenant_id:String}
ORDER BY template_id
