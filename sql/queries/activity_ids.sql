-- The tenant's activities that have draw outcomes: the activity_id variable.
-- Boards: activity, flash-sale
SELECT DISTINCT activity_id
FROM draw_outcomes
WHERE tenant_id = {tenant_id:String}
ORDER BY activity_id
