-- One activity's draws, distinct participants and wins per bucket of interval_s
-- seconds (rejections are not draws).
-- Boards: activity
SELECT
    toStartOfInterval(occurred_at, toIntervalSecond({interval_s:UInt32})) AS time,
    uniqExactIf(event_id, status != 'rejected') AS draws,
    uniqExactIf(user_id, status != 'rejected') AS participants,
    uniqExactIf(event_id, status = 'won') AS wins
FROM draw_outcomes
WHERE tenant_id = {tenant_id:String} AND activity_id = {activity_id:String}
  AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
GROUP BY time
ORDER BY time
