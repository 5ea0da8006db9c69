-- Reverses 004.
ALTER TABLE draw_outcomes DROP COLUMN IF EXISTS coupon_template;
ALTER TABLE draw_outcomes DROP COLUMN IF EXISTS coupon_id;
