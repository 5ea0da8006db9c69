-- One activity's figures over the range: draws (rejections excluded, as in the
-- stats endpoint), distinct participants, wins, rejections and the win rate.
-- Boards: activity
SELECT
    uniqExactIf(event_id, status != 'rejected') AS draws,
    uniqExactIf(user_id, status != 'rejected') AS participants,
    uniqExactIf(event_id, status = 'won') AS wins,
    uniqExactIf(event_id, status = 'rejected') AS rejections,
    wins / greatest(draws, 1) AS win_rate
FROM draw_outcomes
WHERE tenant_id = {tenant_id:String} AND activity_id = {activity_id:String}
  AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
