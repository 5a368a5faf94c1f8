/* Retention (actors/maintenance/maintenance.h): each job deletes one batch
 * of rows past their retention per round, in one transaction under the
 * job's fleet-wide advisory lock, so only one instance sweeps a table at a
 * time. The lock is transaction-scoped: the round's COMMIT releases it and
 * a dead connection cannot leak it. Rounds are small (at most
 * NMC_MAINT_RETENTION_BATCH rows walked or deleted) so they never hold many
 * row locks or much WAL at once; a backlog drains one round a second. */
#include "actors/maintenance/internal.h"
#include "actors/maintenance/retention_sql.h"

#include <stdio.h>
#include <string.h>

#include "runtime/log.h"
#include "runtime/metrics.h"

/* A job is named after the table it trims (labels job= and table=). */
struct job {
    const char *name;
    const char *stmt; /* prepared statement name */
    const char *sql;
    long long lock;
    int walks;        /* the statement takes a cursor as $2 */
};

static const struct job jobs[MAINT_RETENTION_NJOBS] = {
    [MAINT_RETENTION_OUTBOX] = {"outbox_events", "maint_retention_outbox", NMC_MAINT_SQL_RETENTION_OUTBOX,
                                NMC_MAINT_RETENTION_OUTBOX_LOCK, 1},
    [MAINT_RETENTION_WEBHOOK] = {"webhook_events", "maint_retention_webhook", NMC_MAINT_SQL_RETENTION_WEBHOOK,
                                 NMC_MAINT_RETENTION_WEBHOOK_LOCK, 0},
};

static struct nmc_metric *m_deleted, *m_runs;

static void count_run(const struct job *job, const char *outcome)
{
    const char *labels[] = {job->name, outcome};
    nmc_metrics_add(m_runs, labels, 1);
}

static void count_deleted(const struct job *job, int64_t n)
{
    const char *labels[] = {job->name};
    nmc_metrics_add(m_deleted, labels, (double)n);
}

/* Every series exists from start-up, so a dashboard sees 0 rather than
 * nothing before the first round (a minute after start). */
void nmc_maintenance_retention_metrics(void)
{
    static const char *const outcomes[] = {"ok", "locked", "error"};
    m_deleted = nmc_metrics_counter("maintenance_retention_deleted_total",
                                    "Rows deleted by the retention jobs", "table");
    m_runs = nmc_metrics_counter("maintenance_retention_runs_total", "Retention rounds by job and outcome",
                                 "job,outcome");
    for (size_t j = 0; j < NMC_ARRAY_SIZE(jobs); j++) {
        count_deleted(&jobs[j], 0);
        for (size_t o = 0; o < NMC_ARRAY_SIZE(outcomes); o++) {
            const char *labels[] = {jobs[j].name, outcomes[o]};
            nmc_metrics_add(m_runs, labels, 0);
        }
    }
}

void nmc_maintenance_retention_schedule(struct maintenance *mt, enum maint_retention_job j, uint64_t delay_ms)
{
    struct maint_retention *r = &mt->retention[j];
    uint64_t id = 0;
    if (r->timer != 0)
        return;
    if (nmc_rt_timer_start(mt->actor, delay_ms, MAINT_TIMER_RETENTION + (uint64_t)j, &id) == 0)
        r->timer = id;
}

void nmc_maintenance_retention_cancel(struct maintenance *mt)
{
    for (size_t j = 0; j < NMC_ARRAY_SIZE(mt->retention); j++) {
        if (mt->retention[j].timer != 0)
            nmc_rt_timer_cancel(mt->app->rt, mt->retention[j].timer);
        mt->retention[j].timer = 0;
    }
}

void nmc_maintenance_retention_run(struct maintenance *mt, enum maint_retention_job j)
{
    const struct job *job = &jobs[j];
    struct maint_retention *r = &mt->retention[j];
    char key[24], cursor[24], batch[16];
    struct nmc_db_stmt st = {.name = job->stmt, .sql = job->sql};
    snprintf(key, sizeof(key), "%lld", job->lock);
    snprintf(cursor, sizeof(cursor), "%lld", (long long)r->cursor);
    snprintf(batch, sizeof(batch), "%d", NMC_MAINT_RETENTION_BATCH);
    st.params[st.nparams++] = key;
    if (job->walks)
        st.params[st.nparams++] = cursor;
    st.params[st.nparams++] = batch;
    r->timer = 0;
    if (r->running)
        return;
    if (nmc_db_txn(nmc_app_db_slow(mt->app), mt->actor, MAINT_DB_RETENTION + (uint64_t)j, NULL, &st, 1) != 0) {
        count_run(job, "error");
        nmc_maintenance_retention_schedule(mt, j, NMC_MAINT_RETENTION_INTERVAL_MS);
        return;
    }
    r->running = 1;
}

/* Reads the round's row (locked_ok, deleted, more, cursor). Returns 0, or
 * NMC_EDB when the row is missing or malformed. */
static int parse_round(const PGresult *pr, int *ok, int64_t *deleted, int *more, int64_t *cursor)
{
    if (pr == NULL || PQntuples(pr) != 1 || PQnfields(pr) != 4)
        return NMC_EDB;
    const char *o = nmc_db_get(pr, 0, 0), *m = nmc_db_get(pr, 0, 2);
    if (o == NULL || m == NULL)
        return NMC_EDB;
    *ok = strcmp(o, "t") == 0;
    *more = strcmp(m, "t") == 0;
    if (nmc_parse_i64(nmc_db_get(pr, 0, 1), 0, INT64_MAX, deleted) != 0 ||
        nmc_parse_i64(nmc_db_get(pr, 0, 3), 0, INT64_MAX, cursor) != 0)
        return NMC_EDB;
    return 0;
}

static void log_failed(const struct job *job, int status, const char *message)
{
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_WARN, "maintenance", "retention.failed");
    nmc_log_str(r, "job", job->name);
    nmc_log_error(r, status, message);
    nmc_log_end(r);
}

static void log_swept(const struct job *job, int64_t deleted, int more)
{
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_INFO, "maintenance", "retention.swept");
    nmc_log_str(r, "job", job->name);
    nmc_log_int(r, "rows_deleted", deleted);
    nmc_log_bool(r, "more", more);
    nmc_log_end(r);
}

/* A failed round keeps the cursor (the walk resumes where it was) and waits
 * the normal interval; a locked one leaves the round to the lock holder. */
void nmc_maintenance_retention_done(struct maintenance *mt, enum maint_retention_job j,
                                    const struct nmc_db_result *res)
{
    const struct job *job = &jobs[j];
    struct maint_retention *r = &mt->retention[j];
    int ok = 0, more = 0, status = res->status;
    int64_t deleted = 0, cursor = 0;
    r->running = 0;
    if (status == 0)
        status = parse_round(res->nresults > 0 ? res->results[0] : NULL, &ok, &deleted, &more, &cursor);
    if (status != 0) {
        count_run(job, "error");
        log_failed(job, status, res->status != 0 ? res->message : "unexpected result");
        nmc_maintenance_retention_schedule(mt, j, NMC_MAINT_RETENTION_INTERVAL_MS);
        return;
    }
    if (!ok) {
        count_run(job, "locked");
        nmc_maintenance_retention_schedule(mt, j, NMC_MAINT_RETENTION_INTERVAL_MS);
        return;
    }
    count_run(job, "ok");
    count_deleted(job, deleted);
    if (deleted > 0)
        log_swept(job, deleted, more);
    r->cursor = more ? cursor : 0;
    nmc_maintenance_retention_schedule(mt, j, more ? NMC_MAINT_RETENTION_AGAIN_MS : NMC_MAINT_RETENTION_INTERVAL_MS);
}
