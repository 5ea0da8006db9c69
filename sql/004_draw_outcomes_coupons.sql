-- The coupon a won coupon prize put in the winner's wallet, and its template:
-- a template's stats count coupons issued by draws next to those claimed.
ALTER TABLE draw_outcomes ADD COLUMN IF NOT EXISTS coupon_id String DEFAULT '' AFTER amount;
ALTER TABLE draw_outcomes ADD COLUMN IF NOT EXISTS coupon_template String DEFAULT '' AFTER coupon_id;
