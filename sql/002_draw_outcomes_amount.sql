-- Red-envelope cents / points of a points prize, per outcome.
ALTER TABLE draw_outcomes ADD COLUMN IF NOT EXISTS amount Int64 DEFAULT 0 AFTER occurred_at;
