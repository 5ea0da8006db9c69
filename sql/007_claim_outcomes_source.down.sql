-- Reverses 007.
ALTER TABLE claim_outcomes DROP COLUMN IF EXISTS source;
