-- Reverses 012.
DROP TABLE IF EXISTS share_events;
