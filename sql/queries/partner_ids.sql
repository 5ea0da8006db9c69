-- The tenant's partners that have write-offs: the partner_id variable.
-- Boards: partner
SELECT DISTINCT partner_id
FROM writeoffs
WHERE tenant_id = {tenant_id:String}
ORDER BY partner_id
