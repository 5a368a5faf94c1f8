/* The retention jobs (actors/maintenance/retention.c) against a real
 * PostgreSQL with the real migrations. The maintenance module runs as
 * `nmc serve` runs it (nmc_maintenance_init on an app with a runtime and a
 * pool on the test's loop); a test starts a round by sending the actor the
 * timer message its timer would send, and the round's follow-ups run on
 * the module's own timers. Outcomes are read from the module's metrics and
 * from the tables. The EXPLAIN cases run the statements of
 * actors/maintenance/retention_sql.h, the very strings the module sends,
 * on a side connection.
 *
 * What each case shows:
 *  - outbox_deletes_only_rows_dispatched_30_days_ago: rows dispatched more
 *    than 30 days ago go; rows dispatched less than 30 days ago (even when
 *    created 40 days ago), young rows, and pending rows (dispatched_at
 *    NULL, even 60 days old) stay; a second round deletes nothing more.
 *  - webhook_deletes_only_rows_received_90_days_ago: 91/95 days go, 89/1 stay.
 *  - locked_round_deletes_nothing: while another transaction holds a job's
 *    advisory lock (what a second instance in the middle of a round looks
 *    like) both jobs report outcome "locked" and delete nothing; once it
 *    commits, the next rounds delete.
 *  - failed_round_counts_error_and_recovers: a round that times out (the
 *    table is locked) counts outcome "error", deletes nothing and leaves
 *    the job scheduled; the next round succeeds.
 *  - backlog_drains_in_batches: 12,345 expired rows in each table go in
 *    three rounds of at most 5,000, the 2nd and 3rd started by the module's
 *    own 1 s timer; then it waits the long interval (no 4th round).
 *  - walk_passes_pending_head: 6,000 old pending rows ahead of 100 old
 *    dispatched ones: the first round walks exactly 5,000 rows (its cursor
 *    is the 5,000th id) and deletes nothing, the next one goes on from
 *    there and deletes the 100; the pending rows stay.
 *  - plans_use_indexes_and_stop_early: on 100,000 rows, in custom and
 *    generic plans, every scan of outbox_events is an index scan on its
 *    primary key and every scan of webhook_events uses
 *    webhook_events_received_idx or the primary key (no sequential scan);
 *    the walk visits at most 5,000 rows; with 20,000 rows all younger than
 *    30 days it visits exactly one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/maintenance/internal.h"
#include "actors/maintenance/retention_sql.h"
#include "db/migrate.h"
#include "runtime/metrics.h"
#include "tests/support/pgtest.h"

#define OUTBOX MAINT_RETENTION_OUTBOX
#define WEBHOOK MAINT_RETENTION_WEBHOOK

static const char *const job_names[] = {[OUTBOX] = "outbox_events", [WEBHOOK] = "webhook_events"};

static struct {
    char *url;
    PGconn *side;
    uv_loop_t loop;
    struct nmc_app app;
} F;

static struct maintenance *module(void)
{
    struct maintenance *mt = F.app.modules[NMC_SLOT_MAINTENANCE];
    assert_non_null(mt);
    return mt;
}

/* ---- metrics ---- */

static double runs(int job, const char *outcome)
{
    const char *labels[] = {job_names[job], outcome};
    return nmc_metrics_value(nmc_metrics_counter("maintenance_retention_runs_total", "", "job,outcome"), labels);
}

static double all_runs(int job)
{
    return runs(job, "ok") + runs(job, "locked") + runs(job, "error");
}

static double deleted(int job)
{
    const char *labels[] = {job_names[job]};
    return nmc_metrics_value(nmc_metrics_counter("maintenance_retention_deleted_total", "", "table"), labels);
}

/* ---- driving the module ---- */

struct wait_runs {
    int job;
    double want; /* all_runs(job) to reach */
};

static int runs_reached(void *ud)
{
    const struct wait_runs *w = ud;
    return all_runs(w->job) >= w->want && !module()->retention[w->job].running;
}

/* Sends <job>'s timer message, as its timer would (the pending timer is
 * cancelled so that only this round runs). */
static void kick(int job)
{
    struct maint_retention *r = &module()->retention[job];
    if (r->timer != 0)
        nmc_rt_timer_cancel(F.app.rt, r->timer);
    r->timer = 0;
    struct nmc_rt_timer_fire *fire = calloc(1, sizeof(*fire));
    assert_non_null(fire);
    fire->cookie = MAINT_TIMER_RETENTION + (uint64_t)job;
    struct nmc_msg *m = nmc_rt_msg_new(NMC_MSG_TIMER, fire, free);
    m->cookie = fire->cookie;
    assert_int_equal(nmc_rt_send(nmc_rt_actor_find(F.app.rt, "maintenance"), m), 0);
}

/* Runs the loop until <job> has completed <want> rounds in all, or fails. */
static void wait_runs_total(int job, double want, uint64_t timeout_ms)
{
    struct wait_runs w = {job, want};
    if (!pgtest_run_until(&F.loop, runs_reached, &w, timeout_ms))
        fail_msg("%s: timed out waiting for round %.0f (have %.0f)", job_names[job], w.want, all_runs(job));
}

/* Runs the loop until <n> more rounds of <job> have completed, or fails. */
static void wait_rounds(int job, double n, uint64_t timeout_ms)
{
    wait_runs_total(job, all_runs(job) + n, timeout_ms);
}

/* One round, started by hand. */
static void round_of(int job)
{
    kick(job);
    wait_rounds(job, 1, 15000);
}

static int never(void *ud)
{
    (void)ud;
    return 0;
}

/* ---- data ---- */

static int64_t count(const char *sql)
{
    return pgtest_int(F.side, sql);
}

/* An outbox row created <created> ago, dispatched <dispatched> ago (NULL:
 * pending). Rows must be added oldest first: ids ascend with created_at. */
static void outbox_row(const char *created, const char *dispatched, const char *tag)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO outbox_events (event_name, schema_version, payload, created_at, dispatched_at)"
             " VALUES ('RetentionTest', 1, '{\"tag\": \"%s\"}', now() - interval '%s', %s%s%s)",
             tag, created, dispatched ? "now() - interval '" : "", dispatched ? dispatched : "NULL",
             dispatched ? "'" : "");
    pgtest_exec(F.side, sql);
}

static void webhook_row(const char *received, const char *tag)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO webhook_events (provider, event_id, received_at) VALUES ('twilio', '%s', now() - interval '%s')",
             tag, received);
    pgtest_exec(F.side, sql);
}

/* The tags left in outbox_events, in id order, comma-separated. */
static char *outbox_tags(void)
{
    return pgtest_value(F.side, "SELECT string_agg(payload->>'tag', ',' ORDER BY id) FROM outbox_events");
}

static char *webhook_tags(void)
{
    return pgtest_value(F.side, "SELECT string_agg(event_id, ',' ORDER BY received_at) FROM webhook_events");
}

static void assert_tags(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static int reset(void **state)
{
    (void)state;
    for (int j = 0; j < MAINT_RETENTION_NJOBS; j++)
        assert_false(module()->retention[j].running);
    nmc_maintenance_retention_cancel(module());
    for (int j = 0; j < MAINT_RETENTION_NJOBS; j++)
        module()->retention[j].cursor = 0;
    pgtest_exec(F.side, "TRUNCATE outbox_events, webhook_events");
    return 0;
}

/* ---- fixture ---- */

static int all_connected(void *ud)
{
    (void)ud;
    return nmc_db_pool_connected(F.app.db) == nmc_db_pool_size(F.app.db);
}

static int setup(void **state)
{
    char err[512];
    (void)state;
    F.url = pgtest_db_create();
    assert_int_equal(nmc_db_migrate_up(F.url, nmc_db_migrate_default_dir(), NULL, err, sizeof err), 0);
    F.side = pgtest_connect(F.url);
    assert_int_equal(uv_loop_init(&F.loop), 0);
    F.app.loop = &F.loop;
    F.app.run_workers = 1;
    struct nmc_db_pool_opts o = {.conninfo = F.url, .size = 2, .query_timeout_ms = 3000};
    assert_int_equal(nmc_rt_create(&F.loop, 0, &F.app.rt), 0);
    assert_int_equal(nmc_db_pool_create(F.app.rt, &o, &F.app.db), 0);
    assert_true(pgtest_run_until(&F.loop, all_connected, NULL, 10000));
    assert_int_equal(nmc_maintenance_init(&F.app), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nmc_maintenance_stop(&F.app);
    nmc_rt_stop(F.app.rt);
    nmc_db_pool_destroy(F.app.db);
    nmc_rt_destroy(F.app.rt);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&F.loop), 0);
    PQfinish(F.side);
    pgtest_db_drop(F.url);
    return 0;
}

/* ---- cases ---- */

static void test_maintenance_retention_outbox_deletes_only_rows_dispatched_30_days_ago(void **state)
{
    (void)state;
    double ok = runs(OUTBOX, "ok"), gone = deleted(OUTBOX);
    outbox_row("60 days", NULL, "pending60");
    outbox_row("45 days", "44 days", "old1");
    outbox_row("40 days", "29 days", "late");
    outbox_row("35 days", "31 days", "old2");
    outbox_row("31 days", NULL, "pending31");
    outbox_row("20 days", "20 days", "young");
    outbox_row("1 day", NULL, "pending1");
    round_of(OUTBOX);
    assert_tags(outbox_tags(), "pending60,late,pending31,young,pending1");
    assert_true(runs(OUTBOX, "ok") == ok + 1);
    assert_true(deleted(OUTBOX) == gone + 2);
    assert_int_equal(module()->retention[OUTBOX].cursor, 0); /* the walk reached "young": done */
    assert_int_not_equal(module()->retention[OUTBOX].timer, 0);

    round_of(OUTBOX);
    assert_tags(outbox_tags(), "pending60,late,pending31,young,pending1");
    assert_true(runs(OUTBOX, "ok") == ok + 2);
    assert_true(deleted(OUTBOX) == gone + 2);
}

static void test_maintenance_retention_webhook_deletes_only_rows_received_90_days_ago(void **state)
{
    (void)state;
    double ok = runs(WEBHOOK, "ok"), gone = deleted(WEBHOOK);
    webhook_row("95 days", "old95");
    webhook_row("91 days", "old91");
    webhook_row("89 days", "young89");
    webhook_row("1 day", "young1");
    round_of(WEBHOOK);
    assert_tags(webhook_tags(), "young89,young1");
    assert_true(runs(WEBHOOK, "ok") == ok + 1);
    assert_true(deleted(WEBHOOK) == gone + 2);
    assert_int_not_equal(module()->retention[WEBHOOK].timer, 0);
}

static void test_maintenance_retention_locked_round_deletes_nothing(void **state)
{
    (void)state;
    PGconn *other = pgtest_connect(F.url);
    outbox_row("45 days", "44 days", "old");
    webhook_row("95 days", "old");
    double locked_o = runs(OUTBOX, "locked"), locked_w = runs(WEBHOOK, "locked");
    double ok_o = runs(OUTBOX, "ok"), ok_w = runs(WEBHOOK, "ok");
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%lld), pg_advisory_xact_lock(%lld)",
             NMC_MAINT_RETENTION_OUTBOX_LOCK, NMC_MAINT_RETENTION_WEBHOOK_LOCK);
    pgtest_exec(other, "BEGIN");
    pgtest_exec(other, sql);
    round_of(OUTBOX);
    round_of(WEBHOOK);
    assert_true(runs(OUTBOX, "locked") == locked_o + 1);
    assert_true(runs(WEBHOOK, "locked") == locked_w + 1);
    assert_true(runs(OUTBOX, "ok") == ok_o);
    assert_true(runs(WEBHOOK, "ok") == ok_w);
    assert_int_equal(count("SELECT count(*) FROM outbox_events"), 1);
    assert_int_equal(count("SELECT count(*) FROM webhook_events"), 1);

    pgtest_exec(other, "COMMIT"); /* the other instance's round ends */
    round_of(OUTBOX);
    round_of(WEBHOOK);
    assert_true(runs(OUTBOX, "ok") == ok_o + 1);
    assert_true(runs(WEBHOOK, "ok") == ok_w + 1);
    assert_int_equal(count("SELECT count(*) FROM outbox_events"), 0);
    assert_int_equal(count("SELECT count(*) FROM webhook_events"), 0);
    PQfinish(other);
}

static void test_maintenance_retention_failed_round_counts_error_and_recovers(void **state)
{
    (void)state;
    PGconn *other = pgtest_connect(F.url);
    outbox_row("45 days", "44 days", "old");
    double err = runs(OUTBOX, "error"), ok = runs(OUTBOX, "ok");
    pgtest_exec(other, "BEGIN");
    pgtest_exec(other, "LOCK TABLE outbox_events IN ACCESS EXCLUSIVE MODE");
    round_of(OUTBOX); /* waits for the table until the pool's 3 s statement timeout */
    assert_true(runs(OUTBOX, "error") == err + 1);
    assert_int_not_equal(module()->retention[OUTBOX].timer, 0);
    pgtest_exec(other, "ROLLBACK");
    assert_int_equal(count("SELECT count(*) FROM outbox_events"), 1);
    round_of(OUTBOX);
    assert_true(runs(OUTBOX, "ok") == ok + 1);
    assert_int_equal(count("SELECT count(*) FROM outbox_events"), 0);
    PQfinish(other);
}

static void test_maintenance_retention_backlog_drains_in_batches(void **state)
{
    (void)state;
    pgtest_exec(F.side,
                "INSERT INTO outbox_events (event_name, schema_version, payload, created_at, dispatched_at)"
                " SELECT 'RetentionTest', 1, '{\"tag\": \"old\"}', now() - interval '50 days' + g * interval '1 second',"
                "  now() - interval '40 days' FROM generate_series(1, 12345) g");
    outbox_row("1 day", "1 day", "young");
    pgtest_exec(F.side,
                "INSERT INTO webhook_events (provider, event_id, received_at)"
                " SELECT 'twilio', 'old' || g, now() - interval '100 days' FROM generate_series(1, 12345) g");
    webhook_row("1 day", "young");
    double ok_o = runs(OUTBOX, "ok"), ok_w = runs(WEBHOOK, "ok");
    double gone_o = deleted(OUTBOX), gone_w = deleted(WEBHOOK);
    double all_o = all_runs(OUTBOX), all_w = all_runs(WEBHOOK);

    kick(OUTBOX);
    kick(WEBHOOK);
    wait_runs_total(OUTBOX, all_o + 3, 20000); /* 5,000 + 5,000 + 2,345, one second apart */
    wait_runs_total(WEBHOOK, all_w + 3, 20000);
    assert_true(runs(OUTBOX, "ok") == ok_o + 3);
    assert_true(runs(WEBHOOK, "ok") == ok_w + 3);
    assert_true(deleted(OUTBOX) == gone_o + 12345);
    assert_true(deleted(WEBHOOK) == gone_w + 12345);
    assert_tags(outbox_tags(), "young");
    assert_tags(webhook_tags(), "young");

    /* The last round was not full: the next one waits the long interval. */
    pgtest_run_until(&F.loop, never, NULL, 2 * NMC_MAINT_RETENTION_AGAIN_MS + 500);
    assert_true(runs(OUTBOX, "ok") == ok_o + 3);
    assert_true(runs(WEBHOOK, "ok") == ok_w + 3);
    assert_int_equal(module()->retention[OUTBOX].cursor, 0);
}

static void test_maintenance_retention_walk_passes_pending_head(void **state)
{
    (void)state;
    pgtest_exec(F.side,
                "INSERT INTO outbox_events (event_name, schema_version, payload, created_at)"
                " SELECT 'RetentionTest', 1, '{\"tag\": \"pending\"}', now() - interval '60 days' + g * interval '1 second'"
                " FROM generate_series(1, 6000) g");
    pgtest_exec(F.side,
                "INSERT INTO outbox_events (event_name, schema_version, payload, created_at, dispatched_at)"
                " SELECT 'RetentionTest', 1, '{\"tag\": \"old\"}', now() - interval '50 days' + g * interval '1 second',"
                "  now() - interval '40 days' FROM generate_series(1, 100) g");
    outbox_row("1 day", "1 day", "young");
    int64_t fifth_thousand = count("SELECT id FROM outbox_events ORDER BY id OFFSET 4999 LIMIT 1");
    double gone = deleted(OUTBOX), ok = runs(OUTBOX, "ok");

    round_of(OUTBOX);
    assert_true(deleted(OUTBOX) == gone);
    assert_int_equal(module()->retention[OUTBOX].cursor, fifth_thousand); /* walked 5,000 rows, no more */
    wait_rounds(OUTBOX, 1, 5000); /* started by the module's 1 s timer */
    assert_true(runs(OUTBOX, "ok") == ok + 2);
    assert_true(deleted(OUTBOX) == gone + 100);
    assert_int_equal(module()->retention[OUTBOX].cursor, 0);
    assert_int_equal(count("SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL"), 6000);
    assert_int_equal(count("SELECT count(*) FROM outbox_events"), 6001);
}

/* ---- plans ---- */

struct plan_stats {
    const char *table;
    int scans;              /* scan nodes on table */
    int bad_scans;          /* of which not an index scan on an allowed index */
    const char *const *indexes;
    int used[2];            /* per allowed index */
    long walk_rows;         /* actual rows of the Recursive Union, -1 when none */
};

static void plan_visit(json_t *plan, struct plan_stats *s)
{
    const char *type = json_string_value(json_object_get(plan, "Node Type"));
    const char *rel = json_string_value(json_object_get(plan, "Relation Name"));
    const char *index = json_string_value(json_object_get(plan, "Index Name"));
    if (type != NULL && strcmp(type, "Recursive Union") == 0)
        s->walk_rows = (long)json_integer_value(json_object_get(plan, "Actual Rows"));
    if (type != NULL && strcmp(type, "ModifyTable") != 0 && rel != NULL && strcmp(rel, s->table) == 0) {
        int ok = 0;
        s->scans++;
        for (int i = 0; i < 2 && s->indexes[i] != NULL; i++)
            if (strcmp(type, "Index Scan") == 0 && index != NULL && strcmp(index, s->indexes[i]) == 0) {
                s->used[i]++;
                ok = 1;
            }
        if (!ok) {
            print_message("unexpected scan of %s: %s %s\n", rel, type, index ? index : "");
            s->bad_scans++;
        }
    }
    json_t *children = json_object_get(plan, "Plans"), *child;
    size_t i;
    json_array_foreach(children, i, child)
        plan_visit(child, s);
}

/* EXPLAIN (ANALYZE, FORMAT JSON) of the job's prepared statement with the
 * parameters the module sends on a walk's first round, in a transaction
 * rolled back afterwards (the round deletes nothing). */
static void explain(int job, struct plan_stats *s)
{
    char sql[256];
    json_error_t jerr;
    if (job == OUTBOX)
        snprintf(sql, sizeof sql, "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE ret_outbox(%lld, 0, %d)",
                 NMC_MAINT_RETENTION_OUTBOX_LOCK, NMC_MAINT_RETENTION_BATCH);
    else
        snprintf(sql, sizeof sql, "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE ret_webhook(%lld, %d)",
                 NMC_MAINT_RETENTION_WEBHOOK_LOCK, NMC_MAINT_RETENTION_BATCH);
    pgtest_exec(F.side, "BEGIN");
    char *text = pgtest_value(F.side, sql);
    pgtest_exec(F.side, "ROLLBACK");
    assert_non_null(text);
    json_t *root = json_loads(text, 0, &jerr);
    assert_non_null(root);
    s->walk_rows = -1;
    plan_visit(json_object_get(json_array_get(root, 0), "Plan"), s);
    json_decref(root);
    free(text);
}

static void prepare(const char *name, const char *sql)
{
    PGresult *r = PQprepare(F.side, name, sql, 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("prepare %s: %s", name, PQerrorMessage(F.side));
    PQclear(r);
}

static void check_plans(void)
{
    static const char *const outbox_idx[] = {"outbox_events_pkey", NULL};
    static const char *const webhook_idx[] = {"webhook_events_received_idx", "webhook_events_pkey"};
    struct plan_stats o = {.table = "outbox_events", .indexes = outbox_idx};
    struct plan_stats w = {.table = "webhook_events", .indexes = webhook_idx};
    explain(OUTBOX, &o);
    explain(WEBHOOK, &w);
    assert_int_equal(o.bad_scans, 0);
    assert_true(o.used[0] >= 3); /* walk start, walk step, delete */
    assert_true(o.walk_rows >= 1 && o.walk_rows <= NMC_MAINT_RETENTION_BATCH);
    assert_int_equal(w.bad_scans, 0);
    assert_true(w.used[0] >= 1 && w.used[1] >= 1);
}

static void test_maintenance_retention_plans_use_indexes_and_stop_early(void **state)
{
    (void)state;
    /* 100,000 rows over 60 days, one in a thousand pending; as many webhooks over 180 days. */
    pgtest_exec(F.side,
                "INSERT INTO outbox_events (event_name, schema_version, payload, created_at, dispatched_at)"
                " SELECT 'RetentionTest', 1, '{\"tag\": \"x\"}', now() - interval '60 days' + g * interval '51 seconds',"
                "  CASE WHEN g % 1000 = 0 THEN NULL"
                "  ELSE now() - interval '60 days' + g * interval '51 seconds' + interval '2 seconds' END"
                " FROM generate_series(1, 100000) g");
    pgtest_exec(F.side,
                "INSERT INTO webhook_events (provider, event_id, received_at)"
                " SELECT 'twilio', 'w' || g, now() - interval '180 days' + g * interval '155 seconds'"
                " FROM generate_series(1, 100000) g");
    pgtest_exec(F.side, "ANALYZE outbox_events, webhook_events");
    prepare("ret_outbox", NMC_MAINT_SQL_RETENTION_OUTBOX);
    prepare("ret_webhook", NMC_MAINT_SQL_RETENTION_WEBHOOK);
    check_plans();
    pgtest_exec(F.side, "SET plan_cache_mode = force_generic_plan"); /* what the pool's prepared statements get */
    check_plans();
    pgtest_exec(F.side, "RESET plan_cache_mode");

    /* Every row younger than 30 days: the walk stops at the first one. */
    pgtest_exec(F.side, "TRUNCATE outbox_events");
    pgtest_exec(F.side,
                "INSERT INTO outbox_events (event_name, schema_version, payload, created_at, dispatched_at)"
                " SELECT 'RetentionTest', 1, '{\"tag\": \"y\"}', now() - interval '20 days' + g * interval '60 seconds',"
                "  now() - interval '20 days' + g * interval '60 seconds' FROM generate_series(1, 20000) g");
    pgtest_exec(F.side, "ANALYZE outbox_events");
    static const char *const outbox_idx[] = {"outbox_events_pkey", NULL};
    struct plan_stats y = {.table = "outbox_events", .indexes = outbox_idx};
    explain(OUTBOX, &y);
    assert_int_equal(y.bad_scans, 0);
    assert_int_equal(y.walk_rows, 1);
    pgtest_exec(F.side, "DEALLOCATE ret_outbox; DEALLOCATE ret_webhook");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_maintenance_retention_outbox_deletes_only_rows_dispatched_30_days_ago, reset),
        cmocka_unit_test_setup(test_maintenance_retention_webhook_deletes_only_rows_received_90_days_ago, reset),
        cmocka_unit_test_setup(test_maintenance_retention_locked_round_deletes_nothing, reset),
        cmocka_unit_test_setup(test_maintenance_retention_failed_round_counts_error_and_recovers, reset),
        cmocka_unit_test_setup(test_maintenance_retention_backlog_drains_in_batches, reset),
        cmocka_unit_test_setup(test_maintenance_retention_walk_passes_pending_head, reset),
        cmocka_unit_test_setup(test_maintenance_retention_plans_use_indexes_and_stop_early, reset),
    };
    return cmocka_run_group_tests_name("maintenance_retention", tests, setup, teardown);
}
