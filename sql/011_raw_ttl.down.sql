-- Reverses 011: raw events are kept for ever again. REMOVE TTL fails on a table
-- without one, so each is preceded by 011's own TTL: the pair can run again
-- after a process killed half-way, and the TTL it sets again is the one the
-- table had until this down began.
ALTER TABLE points_movements MODIFY TTL toDateTime(occurred_at) + INTERVAL 90 DAY;
ALTER TABLE points_movements REMOVE TTL;
ALTER TABLE writeoffs MODIFY TTL toDateTime(occurred_at) + INTERVAL 90 DAY;
ALTER TABLE writeoffs REMOVE TTL;
ALTER TABLE coupon_changes MODIFY TTL toDateTime(occurred_at) + INTERVAL 90 DAY;
ALTER TABLE coupon_changes REMOVE TTL;
ALTER TABLE claim_outcomes MODIFY TTL toDateTime(occurred_at) + INTERVAL 90 DAY;
ALTER TABLE claim_outcomes REMOVE TTL;
ALTER TABLE draw_outcomes MODIFY TTL toDateTime(occurred_at) + INTERVAL 90 DAY;
ALTER TABLE draw_outcomes REMOVE TTL;
