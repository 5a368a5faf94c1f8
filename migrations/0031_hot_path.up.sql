-- The missed-call path writes about fifteen rows per call into these tables,
-- thousands of calls a second in one PostgreSQL. Two things on that path cost
-- more than they give:
--
-- 1. Foreign keys from the append-heavy tables to tenants. Every insert's
--    check takes FOR KEY SHARE on the owning tenants row; when many
--    transactions of one busy tenant do that at once, PostgreSQL records the
--    lockers as a MultiXact, rewrites the row's xmax and WAL-logs it, all on
--    one hot page (measured with bench/first_sms.sh at 1,500 calls/s: 1,271/s
--    achieved and first-SMS P95 2.0 s with the keys, 1,497/s and 0.49 s
--    without). Tenants are never deleted (the API has no route for it: a
--    tenant is suspended through compliance_status), and every tenant_id
--    written here comes from a tenants row read in the same transaction or
--    from the number -> tenant lookup, so the keys guard nothing the code
--    does not. The keys to tenants stay on the low-volume tables (users,
--    numbers, opt-outs, catalog, scheduling, reporting), and the keys between
--    the hot tables (messages -> conversations, first_responses -> messages)
--    stay: those lock rows the same transaction just wrote.
-- 2. outbox_events_dispatched_idx, which no statement reads, costs an index
--    entry for every dispatched event. Retention of dispatched events, when it
--    comes, deletes by id range.
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_tenant_id_fkey;
ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_tenant_id_fkey;
ALTER TABLE missed_calls DROP CONSTRAINT missed_calls_tenant_id_fkey;
ALTER TABLE conversations DROP CONSTRAINT conversations_tenant_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_tenant_id_fkey;
ALTER TABLE first_responses DROP CONSTRAINT first_responses_tenant_id_fkey;
DROP INDEX outbox_events_dispatched_idx;
