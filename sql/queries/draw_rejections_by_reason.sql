-- Draw requests of one activity refused, by reason (limits, blacklist, not running ...).
-- Boards: activity
SELECT reason, uniqExact(event_id) AS rejections
FROM draw_outcomes
WHERE tenant_id = {tenant_id:String} AND activity_id = {activity_id:String}
  AND status = 'rejected'
  AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
GROUP BY reason
ORDER BY rejections DESC, reason
