-- Reverses 010: each view before its table, so no insert lands in a dropped table.
DROP VIEW IF EXISTS points_totals_mv;
DROP TABLE IF EXISTS points_totals;
DROP VIEW IF EXISTS writeoff_totals_mv;
DROP TABLE IF EXISTS writeoff_totals;
DROP VIEW IF EXISTS change_totals_mv;
DROP TABLE IF EXISTS change_totals;
DROP VIEW IF EXISTS claim_totals_mv;
DROP TABLE IF EXISTS claim_totals;
DROP VIEW IF EXISTS draw_totals_mv;
DROP TABLE IF EXISTS draw_totals;
