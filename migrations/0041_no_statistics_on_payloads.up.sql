-- No planner statistics for the columns no query filters, joins or sorts on:
-- the outbox's and the webhook log's JSON payloads and the SMS bodies. ANALYZE
-- (autovacuum's, after every 10% of new rows) sorted 30,000 sampled payloads
-- to build statistics nobody reads: on a 363,000-event outbox, ANALYZE took
-- 540 ms with them and 420 ms without; webhook_events 235 -> 107 ms, messages
-- 416 -> 358 ms
-- (bench/first_sms.sh at 2,000 calls/s: autovacuum's first pass over the hot
-- tables is the run's worst second, bench/README.md).
ALTER TABLE outbox_events ALTER COLUMN payload SET STATISTICS 0;
ALTER TABLE webhook_events ALTER COLUMN payload SET STATISTICS 0;
ALTER TABLE messages ALTER COLUMN body SET STATISTICS 0;
