-- The tenant's points per UTC day: earned, spent, expired and reversed (taken
-- points as positive numbers), adjusted and net (signed; net is the day's change
-- of the liability). Same figures as streams.stats.points_by_day; FINAL because a
-- sum cannot be deduplicated by uniqExact.
-- Boards: coupons
SELECT
    toStartOfDay(occurred_at) AS time,
    sumIf(amount, kind = 'earn') AS earned,
    -sumIf(amount, kind = 'spend') AS spent,
    -sumIf(amount, kind = 'expire') AS expired,
    -sumIf(amount, kind = 'reverse') AS reversed,
    sumIf(amount, kind = 'adjust') AS adjusted,
    sum(amount) AS net
FROM points_movements FINAL
WHERE tenant_id = {tenant_id:String}
  AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}
GROUP BY time
ORDER BY time
