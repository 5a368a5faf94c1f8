DROP TABLE IF EXISTS missed_calls;
