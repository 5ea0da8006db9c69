-- Prizes won in one activity, most won first.
-- Boards: activity, flash-sale
SELECT any(prize_name) AS prize, uniqExact(event_id) AS wins
FROM draw_outcomes
WHERE tenant_id = {tenant_id:String} AND activity_id = {activity_id:String}
  AND status = 'won'
  AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
GROUP BY prize_id
ORDER BY wins DESC, prize
