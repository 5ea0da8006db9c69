-- Reverses 008.
DROP TABLE IF EXISTS points_movements;
