-- Raw events are kept 90 days after they occurred: long enough for a campaign,
-- its coupons' validity and a month's partner settlement from the detail
-- records; the minute rollups (009, two years) and the since-the-start totals
-- (010, kept) carry the figures after that. Whole monthly partitions are
-- dropped, never rewritten (ttl_only_drop_parts, set before the TTL so the
-- first expiry already drops parts), so expiry costs no merges.
ALTER TABLE draw_outcomes MODIFY SETTING ttl_only_drop_parts = 1;
ALTER TABLE draw_outcomes MODIFY TTL toDateTime(occurred_at) + INTERVAL 90 DAY;
ALTER TABLE claim_outcomes MODIFY SETTING ttl_only_drop_parts = 1;
ALTER TABLE claim_outcomes MODIFY TTL toDateTime(occurred_at) + INTERVAL 90 DAY;
ALTER TABLE coupon_changes MODIFY SETTING ttl_only_drop_parts = 1;
ALTER TABLE coupon_changes MODIFY TTL toDateTime(occurred_at) + INTERVAL 90 DAY;
ALTER TABLE writeoffs MODIFY SETTING ttl_only_drop_parts = 1;
ALTER TABLE writeoffs MODIFY TTL toDateTime(occurred_at) + INTERVAL 90 DAY;
ALTER TABLE points_movements MODIFY SETTING ttl_only_drop_parts = 1;
ALTER TABLE points_movements MODIFY TTL toDateTime(occurred_at) + INTERVAL 90 DAY;
