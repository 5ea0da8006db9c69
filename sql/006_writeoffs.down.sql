-- Reverses 006.
DROP TABLE IF EXISTS writeoffs;
