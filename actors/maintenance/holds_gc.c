/* Hold GC (actors/maintenance/maintenance.h): deletes expired holds in
 * batches under a fleet-wide advisory lock, so only one instance sweeps at
 * a time. The lock is transaction-scoped: it is released by the COMMIT of
 * the same batch, never leaked by a dead connection. Correctness never
 * depends on this sweep (an insert deletes the expired holds it overlaps);
 * it keeps the table and the runbook's view of holds small. */
#include "actors/maintenance/internal.h"

#include <stdio.h>
#include <string.h>

#include "runtime/log.h"
#include "runtime/metrics.h"

static struct nmc_metric *m_expired, *m_runs;

/* $1 lock key, $2 batch size. Columns: locked?, holds deleted, tombstones pruned. */
static const char SQL_HOLD_GC[] =
    "WITH lock AS (SELECT pg_try_advisory_xact_lock($1::bigint) AS ok), "
    "gone AS (DELETE FROM sched_slots s WHERE s.id IN (SELECT h.id FROM sched_slots h "
    "  WHERE h.kind = 'hold' AND h.expires_at <= now() ORDER BY h.expires_at LIMIT $2::integer) "
    "  AND s.kind = 'hold' AND s.expires_at <= now() AND (SELECT ok FROM lock) "
    "  RETURNING s.id, s.tenant_id, s.expires_at), "
    "tomb AS (INSERT INTO sched_expired_holds (id, tenant_id, expired_at) "
    "  SELECT id, tenant_id, expires_at FROM gone ON CONFLICT (id) DO NOTHING RETURNING 1), "
    "pruned AS (DELETE FROM sched_expired_holds x WHERE x.removed_at < now() - interval '1 day' "
    "  AND (SELECT ok FROM lock) RETURNING 1) "
    "SELECT (SELECT ok FROM lock), (SELECT count(*) FROM gone), (SELECT count(*) FROM tomb), "
    "(SELECT count(*) FROM pruned)";

void nmc_maintenance_holds_gc_metrics(void)
{
    m_expired = nmc_metrics_counter("maintenance_holds_expired_total", "Expired holds deleted by hold GC", NULL);
    m_runs = nmc_metrics_counter("maintenance_hold_gc_runs_total", "Hold GC rounds by outcome", "outcome");
}

static void count_run(const char *outcome)
{
    const char *labels[] = {outcome};
    nmc_metrics_add(m_runs, labels, 1);
}

void nmc_maintenance_holds_gc_schedule(struct maintenance *mt, uint64_t delay_ms)
{
    uint64_t id = 0;
    if (mt->hold_gc_timer != 0)
        return;
    if (nmc_rt_timer_start(mt->actor, delay_ms, MAINT_TIMER_HOLD_GC, &id) == 0)
        mt->hold_gc_timer = id;
}

void nmc_maintenance_holds_gc_run(struct maintenance *mt)
{
    char key[24], batch[16];
    snprintf(key, sizeof(key), "%lld", (long long)NMC_MAINT_HOLD_GC_LOCK);
    snprintf(batch, sizeof(batch), "%d", NMC_MAINT_HOLD_GC_BATCH);
    struct nmc_db_stmt st = {.name = "maint_hold_gc", .sql = SQL_HOLD_GC, .nparams = 2, .params = {key, batch}};
    mt->hold_gc_timer = 0;
    if (mt->hold_gc_running)
        return;
    if (nmc_db_txn(nmc_app_db_slow(mt->app), mt->actor, MAINT_DB_HOLD_GC, NULL, &st, 1) != 0) {
        count_run("error");
        nmc_maintenance_holds_gc_schedule(mt, NMC_MAINT_HOLD_GC_INTERVAL_MS);
        return;
    }
    mt->hold_gc_running = 1;
}

void nmc_maintenance_holds_gc_done(struct maintenance *mt, const struct nmc_db_result *res)
{
    const PGresult *pr = res->nresults > 0 ? res->results[0] : NULL;
    int64_t deleted = 0;
    mt->hold_gc_running = 0;
    if (res->status != 0 || pr == NULL || PQntuples(pr) == 0) {
        count_run("error");
        struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_WARN, "scheduling", "hold_gc.failed");
        nmc_log_error(r, res->status, res->message);
        nmc_log_end(r);
        nmc_maintenance_holds_gc_schedule(mt, NMC_MAINT_HOLD_GC_INTERVAL_MS);
        return;
    }
    if (strcmp(nmc_db_get(pr, 0, 0), "t") != 0) {
        count_run("locked"); /* another instance sweeps this round */
        nmc_maintenance_holds_gc_schedule(mt, NMC_MAINT_HOLD_GC_INTERVAL_MS);
        return;
    }
    count_run("ran");
    if (nmc_parse_i64(nmc_db_get(pr, 0, 1), 0, INT64_MAX, &deleted) != 0)
        deleted = 0;
    nmc_metrics_add(m_expired, NULL, (double)deleted);
    if (deleted > 0) {
        struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_INFO, "scheduling", "hold_gc.swept");
        nmc_log_int(r, "holds_deleted", deleted);
        nmc_log_end(r);
    }
    nmc_maintenance_holds_gc_schedule(mt, deleted >= NMC_MAINT_HOLD_GC_BATCH ? NMC_MAINT_HOLD_GC_AGAIN_MS
                                                                               : NMC_MAINT_HOLD_GC_INTERVAL_MS);
}
