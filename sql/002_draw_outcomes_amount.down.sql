-- Reverses 002.
ALTER TABLE draw_outcomes DROP COLUMN IF EXISTS amount;
