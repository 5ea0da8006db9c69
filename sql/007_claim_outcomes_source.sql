-- Where an issued coupon came from (claim, distribution, code): a claim centre's
-- claims and a bulk distribution's grants are told apart in the stats and webhooks.
ALTER TABLE claim_outcomes ADD COLUMN IF NOT EXISTS source LowCardinality(String) DEFAULT '' AFTER occurred_at;
