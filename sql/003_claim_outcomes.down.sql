-- Reverses 003.
DROP TABLE IF EXISTS claim_outcomes;
