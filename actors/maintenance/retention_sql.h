/* SQL of the retention jobs (actors/maintenance/retention.c), in a header
 * so that tests/integration/test_maintenance_retention.c runs exactly these
 * strings. Owner: sched engineer.
 *
 * Each statement is one round of one job: it takes the job's advisory lock
 * with pg_try_advisory_xact_lock (released by the round's COMMIT) and,
 * only when it got it, deletes at most one batch. Every statement returns
 * one row: (locked_ok bool, deleted bigint, more bool, cursor bigint);
 * more means "run the next round soon", cursor is where the next round
 * starts (0: from the oldest row). The outer DELETE repeats the age test so
 * a row updated since it was picked is checked again on its new version. */
#ifndef NMC_ACTORS_MAINTENANCE_RETENTION_SQL_H
#define NMC_ACTORS_MAINTENANCE_RETENTION_SQL_H

/* How long rows are kept (runbook section 8), as SQL interval literals. */
#define NMC_MAINT_OUTBOX_KEEP "30 days"  /* after dispatched_at */
#define NMC_MAINT_WEBHOOK_KEEP "90 days" /* after received_at */

/* $1 lock key, $2 walk after this id (0: from the oldest), $3 batch.
 *
 * There is no index on dispatched_at (0031 dropped it from the hot path),
 * so the round walks the primary key one row at a time from id $2 (a
 * recursive CTE, one index probe per row) and stops at the first row
 * created less than NMC_MAINT_OUTBOX_KEEP ago: ids ascend with created_at
 * and an event cannot be dispatched before it is created, so no row past
 * that one is old enough. The walk also stops after $3 rows, so a round
 * costs at most $3 probes however many old rows are pending (dispatched_at
 * NULL: never deleted) or dispatched too recently. The rows walked that
 * were dispatched long enough ago are deleted by id. more: the walk was cut
 * by $3 before reaching a young row; cursor: the last id walked then. */
#define NMC_MAINT_SQL_RETENTION_OUTBOX \
    "WITH RECURSIVE lock AS (SELECT pg_try_advisory_xact_lock($1::bigint) AS ok)," \
    " walk (id, created_at, dispatched_at, n) AS (" \
    "  (SELECT id, created_at, dispatched_at, 1 FROM outbox_events" \
    "    WHERE id > $2::bigint AND (SELECT ok FROM lock) ORDER BY id LIMIT 1)" \
    "  UNION ALL" \
    "  (SELECT o.id, o.created_at, o.dispatched_at, w.n + 1 FROM walk w," \
    "    LATERAL (SELECT id, created_at, dispatched_at FROM outbox_events" \
    "             WHERE id > w.id ORDER BY id LIMIT 1) o" \
    "    WHERE w.created_at < now() - interval '" NMC_MAINT_OUTBOX_KEEP "' AND w.n < $3::integer))," \
    " gone AS (DELETE FROM outbox_events o" \
    "   WHERE o.id = ANY (ARRAY(SELECT id FROM walk" \
    "                           WHERE dispatched_at < now() - interval '" NMC_MAINT_OUTBOX_KEEP "'))" \
    "     AND o.dispatched_at < now() - interval '" NMC_MAINT_OUTBOX_KEEP "' RETURNING 1)," \
    " last AS (SELECT id, created_at, n FROM walk ORDER BY n DESC LIMIT 1)" \
    " SELECT (SELECT ok FROM lock), (SELECT count(*) FROM gone)," \
    "  COALESCE((SELECT n >= $3::integer AND created_at < now() - interval '" NMC_MAINT_OUTBOX_KEEP "'" \
    "            FROM last), false)," \
    "  COALESCE((SELECT id FROM last), 0)"

/* $1 lock key, $2 batch. The oldest rows by webhook_events_received_idx;
 * a range scan that ends at the cutoff. more: a full batch was deleted;
 * cursor: always 0. */
#define NMC_MAINT_SQL_RETENTION_WEBHOOK \
    "WITH lock AS (SELECT pg_try_advisory_xact_lock($1::bigint) AS ok)," \
    " gone AS (DELETE FROM webhook_events w" \
    "   WHERE w.id = ANY (ARRAY(SELECT id FROM webhook_events" \
    "                           WHERE received_at < now() - interval '" NMC_MAINT_WEBHOOK_KEEP "'" \
    "                             AND (SELECT ok FROM lock)" \
    "                           ORDER BY received_at LIMIT $2::integer))" \
    "     AND w.received_at < now() - interval '" NMC_MAINT_WEBHOOK_KEEP "' RETURNING 1)" \
    " SELECT l.ok, g.n, g.n >= $2::integer, 0::bigint" \
    " FROM lock l, (SELECT count(*) AS n FROM gone) g"

#endif
