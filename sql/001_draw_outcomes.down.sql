-- Reverses 001: the draw outcomes table and everything in it.
DROP TABLE IF EXISTS draw_outcomes;
