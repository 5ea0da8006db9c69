-- Reverses 005.
DROP TABLE IF EXISTS coupon_changes;
