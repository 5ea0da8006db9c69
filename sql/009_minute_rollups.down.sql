-- Reverses 009: each view before its table, so no insert lands in a dropped table.
DROP VIEW IF EXISTS points_minutes_mv;
DROP TABLE IF EXISTS points_minutes;
DROP VIEW IF EXISTS writeoff_minutes_mv;
DROP TABLE IF EXISTS writeoff_minutes;
DROP VIEW IF EXISTS claim_minutes_mv;
DROP TABLE IF EXISTS claim_minutes;
DROP VIEW IF EXISTS draw_minutes_mv;
DROP TABLE IF EXISTS draw_minutes;
