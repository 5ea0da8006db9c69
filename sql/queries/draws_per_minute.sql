-- Draw outcomes of one activity per minute, by status (won / lost / rejected).
-- Boards: flash-sale
SELECT
    toStartOfMinute(occurred_at) AS time,
    status,
    uniqExact(event_id) AS draws
FROM draw_outcomes
WHERE tenant_id = {tenant_id:String} AND activity_id = {activity_id:String}
  AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
GROUP BY time, status
ORDER BY time, status
