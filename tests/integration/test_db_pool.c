/* db/pool.c, db/conn.c, db/listen.c against a real PostgreSQL: results
 * arrive as messages, typed errors, transactions, timeouts, lost
 * connections, LISTEN/NOTIFY, concurrency, queue cap, shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include "db/pool.h"
#include "runtime/actor.h"
#include "runtime/metrics.h"
#include "runtime/trace.h"
#include "tests/support/pgtest.h"

#define MAX_MSGS 4096

struct fixture {
    char *url;
    PGconn *side; /* blocking connection for setup and checks */
    uv_loop_t loop;
    struct nmc_rt *rt;
    struct nmc_actor *actor;
    struct nmc_msg *msgs[MAX_MSGS];
    size_t nmsgs;
    struct nmc_db_pool *pool;
};

static struct fixture F;

static void on_msg(struct nmc_actor *self, struct nmc_msg *m, void *state)
{
    struct fixture *f = state;
    nmc_rt_msg_keep(m);
    assert_true(f->nmsgs < MAX_MSGS);
    f->msgs[f->nmsgs++] = m;
}

static void msgs_clear(void)
{
    for (size_t i = 0; i < F.nmsgs; i++)
        nmc_rt_msg_free(F.msgs[i]);
    F.nmsgs = 0;
}

static int have_n(void *ud)
{
    return F.nmsgs >= *(size_t *)ud;
}

static void wait_msgs(size_t n, uint64_t timeout_ms)
{
    if (!pgtest_run_until(&F.loop, have_n, &n, timeout_ms))
        fail_msg("timed out waiting for %zu messages (have %zu)", n, F.nmsgs);
}

static int all_connected(void *ud)
{
    (void)ud;
    return nmc_db_pool_connected(F.pool) == nmc_db_pool_size(F.pool);
}

static void pool_open(int size, int timeout_ms, size_t max_queue, int wait)
{
    struct nmc_db_pool_opts o = {.conninfo = F.url, .size = size, .query_timeout_ms = timeout_ms,
                                 .max_queue = max_queue};
    assert_int_equal(nmc_db_pool_create(F.rt, &o, &F.pool), 0);
    if (wait)
        assert_true(pgtest_run_until(&F.loop, all_connected, NULL, 10000));
}

static int never(void *ud)
{
    (void)ud;
    return 0;
}

static void pool_close(void)
{
    nmc_db_pool_destroy(F.pool);
    F.pool = NULL;
    pgtest_run_until(&F.loop, never, NULL, 30); /* close callbacks free the pool */
}

static const struct nmc_db_result *result_of(size_t i)
{
    assert_true(i < F.nmsgs);
    assert_int_equal(F.msgs[i]->type, NMC_MSG_DB_RESULT);
    return F.msgs[i]->payload;
}

/* Runs one statement through the pool and waits for its result. */
static const struct nmc_db_result *query(const char *name, const char *sql, int nparams, const char *p0,
                                         const char *p1)
{
    struct nmc_db_stmt st = {.name = name, .sql = sql, .nparams = nparams, .params = {p0, p1}};
    size_t before = F.nmsgs;
    assert_int_equal(nmc_db_query(F.pool, F.actor, 7, NULL, &st), 0);
    wait_msgs(before + 1, 15000);
    return result_of(before);
}

static const struct nmc_db_result *txn(const struct nmc_db_stmt *stmts, size_t n)
{
    size_t before = F.nmsgs;
    assert_int_equal(nmc_db_txn(F.pool, F.actor, 9, NULL, stmts, n), 0);
    wait_msgs(before + 1, 15000);
    return result_of(before);
}

static int group_setup(void **state)
{
    (void)state;
    F.url = pgtest_db_create();
    F.side = pgtest_connect(F.url);
    pgtest_exec(F.side, "CREATE EXTENSION IF NOT EXISTS btree_gist;"
                        "CREATE TABLE parent (id int PRIMARY KEY);"
                        "CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL "
                        "  CONSTRAINT child_parent_fk REFERENCES parent(id),"
                        "  qty int CONSTRAINT child_qty_positive CHECK (qty > 0));"
                        "CREATE TABLE booking (id serial PRIMARY KEY, room int NOT NULL, during tstzrange NOT NULL,"
                        "  CONSTRAINT booking_no_overlap EXCLUDE USING gist (room WITH =, during WITH &&));"
                        "CREATE TABLE tx (id int CONSTRAINT tx_pkey PRIMARY KEY, note text);"
                        "INSERT INTO parent VALUES (1);");
    assert_int_equal(uv_loop_init(&F.loop), 0);
    assert_int_equal(nmc_rt_create(&F.loop, 0, &F.rt), 0);
    assert_int_equal(nmc_rt_actor_create(F.rt, "dbtest", on_msg, &F, 0, &F.actor), 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    msgs_clear();
    nmc_rt_destroy(F.rt);
    pgtest_run_until(&F.loop, never, NULL, 30);
    assert_int_equal(uv_loop_close(&F.loop), 0);
    PQfinish(F.side);
    pgtest_db_drop(F.url);
    return 0;
}

static int test_setup(void **state)
{
    (void)state;
    msgs_clear();
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    if (F.pool)
        pool_close();
    msgs_clear();
    return 0;
}

/* ---- tests ------------------------------------------------------------ */

static void test_db_query_round_trip_copies_context(void **state)
{
    (void)state;
    pool_open(2, 0, 0, 1);
    struct nmc_msg ctx;
    memset(&ctx, 0, sizeof ctx);
    nmc_strlcpy(ctx.tenant_id, "11111111-1111-4111-8111-111111111111", sizeof ctx.tenant_id);
    nmc_strlcpy(ctx.correlation_id, "22222222-2222-4222-8222-222222222222", sizeof ctx.correlation_id);
    ctx.trace.trace_id[0] = 0xab;
    ctx.trace.span_id[0] = 0xcd;
    ctx.trace.flags = 1;
    struct nmc_db_stmt st = {.sql = "SELECT $1::int + 1, NULL::text", .nparams = 1, .params = {"41"}};
    assert_int_equal(nmc_db_query(F.pool, F.actor, 1234, &ctx, &st), 0);
    assert_int_equal(F.nmsgs, 0); /* never from inside the call */
    wait_msgs(1, 10000);
    const struct nmc_db_result *res = result_of(0);
    assert_int_equal(res->status, 0);
    assert_int_equal(res->failed_stmt, -1);
    assert_int_equal(res->nresults, 1);
    assert_string_equal(nmc_db_get(res->results[0], 0, 0), "42");
    assert_null(nmc_db_get(res->results[0], 0, 1));
    assert_true(res->latency_ns > 0);
    assert_int_equal(F.msgs[0]->cookie, 1234);
    assert_string_equal(F.msgs[0]->tenant_id, ctx.tenant_id);
    assert_string_equal(F.msgs[0]->correlation_id, ctx.correlation_id);
    assert_memory_equal(&F.msgs[0]->trace, &ctx.trace, sizeof ctx.trace);
}

static void test_db_submit_batch_returns_result_per_statement(void **state)
{
    (void)state;
    pool_open(1, 0, 0, 1);
    struct nmc_db_stmt st[3] = {
        {.name = "t_one", .sql = "SELECT 1"},
        {.sql = "SELECT $1::text || $2::text", .nparams = 2, .params = {"a", "b"}},
        {.name = "t_three", .sql = "SELECT $1::int * 3", .nparams = 1, .params = {"3"}},
    };
    assert_int_equal(nmc_db_submit(F.pool, F.actor, 5, NULL, st, 3), 0);
    wait_msgs(1, 10000);
    const struct nmc_db_result *res = result_of(0);
    assert_int_equal(res->status, 0);
    assert_int_equal(res->nresults, 3);
    assert_string_equal(nmc_db_get(res->results[0], 0, 0), "1");
    assert_string_equal(nmc_db_get(res->results[1], 0, 0), "ab");
    assert_string_equal(nmc_db_get(res->results[2], 0, 0), "9");
}

static void test_db_query_prepared_once_per_connection(void **state)
{
    (void)state;
    pool_open(1, 0, 0, 1);
    /* A second Prepare of the same name on a session fails (42P05), so
     * three successes prove the statement was prepared once and reused. */
    for (int i = 0; i < 3; i++) {
        char v[8];
        snprintf(v, sizeof v, "%d", i);
        const struct nmc_db_result *res = query("t_add", "SELECT $1::int + 100", 1, v, NULL);
        assert_int_equal(res->status, 0);
        char want[8];
        snprintf(want, sizeof want, "%d", i + 100);
        assert_string_equal(nmc_db_get(res->results[0], 0, 0), want);
    }
    const struct nmc_db_result *res =
        query(NULL, "SELECT count(*) FROM pg_prepared_statements WHERE name = 't_add'", 0, NULL, NULL);
    assert_int_equal(res->status, 0);
    assert_string_equal(nmc_db_get(res->results[0], 0, 0), "1");
}

static void test_db_query_same_name_twice_in_one_batch(void **state)
{
    (void)state;
    pool_open(1, 0, 0, 1);
    struct nmc_db_stmt st[2] = {
        {.name = "t_twice", .sql = "SELECT $1::int", .nparams = 1, .params = {"5"}},
        {.name = "t_twice", .sql = "SELECT $1::int", .nparams = 1, .params = {"6"}},
    };
    assert_int_equal(nmc_db_submit(F.pool, F.actor, 1, NULL, st, 2), 0);
    wait_msgs(1, 10000);
    const struct nmc_db_result *res = result_of(0);
    assert_int_equal(res->status, 0);
    assert_string_equal(nmc_db_get(res->results[1], 0, 0), "6");
}

static void test_db_txn_commits(void **state)
{
    (void)state;
    pool_open(1, 0, 0, 1);
    pgtest_exec(F.side, "DELETE FROM tx");
    struct nmc_db_stmt st[2] = {
        {.name = "tx_ins", .sql = "INSERT INTO tx (id, note) VALUES ($1, $2)", .nparams = 2, .params = {"1", "a"}},
        {.name = "tx_ins", .sql = "INSERT INTO tx (id, note) VALUES ($1, $2)", .nparams = 2, .params = {"2", "b"}},
    };
    const struct nmc_db_result *res = txn(st, 2);
    assert_int_equal(res->status, 0);
    assert_int_equal(res->nresults, 2);
    assert_int_equal(pgtest_int(F.side, "SELECT count(*) FROM tx WHERE id IN (1, 2)"), 2);
}

/* A batch is the pipeline's implicit transaction (db/conn.c): its
 * statements share one transaction id, a transaction-local setting holds
 * for the rest of the batch and ends with it, and the session is idle
 * afterwards (no ROLLBACK or BEGIN is ever needed around a batch). */
static void test_db_txn_is_one_implicit_transaction(void **state)
{
    (void)state;
    pool_open(1, 0, 0, 1);
    struct nmc_db_stmt st[3] = {
        {.name = "tx_xid", .sql = "SELECT txid_current()::text"},
        {.name = "tx_local", .sql = "SELECT set_config('synchronous_commit', 'off', true)"},
        {.name = "tx_xid_show", .sql = "SELECT txid_current()::text || ' ' || current_setting('synchronous_commit')"},
    };
    const struct nmc_db_result *res = txn(st, 3);
    assert_int_equal(res->status, 0);
    assert_int_equal(res->nresults, 3);
    char want[64];
    snprintf(want, sizeof want, "%s off", nmc_db_get(res->results[0], 0, 0));
    assert_string_equal(nmc_db_get(res->results[2], 0, 0), want);
    const struct nmc_db_result *after =
        query("tx_after", "SELECT current_setting('synchronous_commit') || ' ' || txid_current()::text", 0, NULL, NULL);
    assert_int_equal(after->status, 0);
    char first[32];
    nmc_strlcpy(first, nmc_db_get(res->results[0], 0, 0), sizeof first);
    const char *v = nmc_db_get(after->results[0], 0, 0);
    assert_true(strncmp(v, "on ", 3) == 0);   /* the local setting ended with the batch */
    assert_string_not_equal(v + 3, first);    /* and so did its transaction */
}

static void test_db_txn_failure_rolls_back_and_reports_statement(void **state)
{
    (void)state;
    pool_open(1, 0, 0, 1);
    pgtest_exec(F.side, "DELETE FROM tx; INSERT INTO tx VALUES (50, 'existing')");
    struct nmc_db_stmt st[3] = {
        {.name = "tx_ins", .sql = "INSERT INTO tx (id, note) VALUES ($1, $2)", .nparams = 2, .params = {"10", "x"}},
        {.name = "tx_ins", .sql = "INSERT INTO tx (id, note) VALUES ($1, $2)", .nparams = 2, .params = {"50", "y"}},
        {.name = "tx_ins", .sql = "INSERT INTO tx (id, note) VALUES ($1, $2)", .nparams = 2, .params = {"11", "z"}},
    };
    /* A second batch pipelined right behind the failing transaction on the
     * same connection must not see the aborted transaction. */
    struct nmc_db_stmt after = {.sql = "SELECT count(*) FROM tx"};
    assert_int_equal(nmc_db_txn(F.pool, F.actor, 1, NULL, st, 3), 0);
    assert_int_equal(nmc_db_query(F.pool, F.actor, 2, NULL, &after), 0);
    wait_msgs(2, 10000);
    const struct nmc_db_result *res = result_of(0);
    assert_int_equal(F.msgs[0]->cookie, 1);
    assert_int_equal(res->status, NMC_EUNIQUE);
    assert_int_equal(res->failed_stmt, 1);
    assert_string_equal(res->sqlstate, "23505");
    assert_string_equal(res->constraint, "tx_pkey");
    assert_non_null(strstr(res->message, "tx_pkey"));
    assert_null(strstr(res->message, "50")); /* no values in the message */
    assert_int_equal(pgtest_int(F.side, "SELECT count(*) FROM tx WHERE id IN (10, 11)"), 0);
    const struct nmc_db_result *res2 = result_of(1);
    assert_int_equal(F.msgs[1]->cookie, 2);
    assert_int_equal(res2->status, 0);
    assert_string_equal(nmc_db_get(res2->results[0], 0, 0), "1");
    /* and the session is usable afterwards, when idle */
    const struct nmc_db_result *res3 = query("tx_count", "SELECT count(*) FROM tx", 0, NULL, NULL);
    assert_int_equal(res3->status, 0);
}

static void test_db_txn_failure_keeps_later_prepare_for_pipelined_batch(void **state)
{
    (void)state;
    pool_open(1, 0, 0, 1);
    pgtest_exec(F.side, "DELETE FROM tx; INSERT INTO tx VALUES (60, 'existing')");
    /* The first statement fails; t_late is first used (so prepared) after
     * it in the same transaction. A batch pipelined behind that also uses
     * t_late must still find it prepared. */
    struct nmc_db_stmt st[2] = {
        {.name = "tx_dup", .sql = "INSERT INTO tx (id, note) VALUES ($1, 'dup')", .nparams = 1, .params = {"60"}},
        {.name = "t_late", .sql = "SELECT $1::int * 2", .nparams = 1, .params = {"4"}},
    };
    struct nmc_db_stmt after = {.name = "t_late", .sql = "SELECT $1::int * 2", .nparams = 1, .params = {"21"}};
    assert_int_equal(nmc_db_txn(F.pool, F.actor, 1, NULL, st, 2), 0);
    assert_int_equal(nmc_db_query(F.pool, F.actor, 2, NULL, &after), 0);
    wait_msgs(2, 10000);
    assert_int_equal(result_of(0)->status, NMC_EUNIQUE);
    assert_int_equal(result_of(0)->failed_stmt, 0);
    const struct nmc_db_result *res = result_of(1);
    if (res->status)
        fail_msg("pipelined batch failed: %s (%s)", res->message, res->sqlstate);
    assert_string_equal(nmc_db_get(res->results[0], 0, 0), "42");
}

static void expect_error(const struct nmc_db_result *res, int err, const char *sqlstate, const char *constraint)
{
    assert_int_equal(res->status, err);
    assert_int_equal(res->failed_stmt, 0);
    assert_string_equal(res->sqlstate, sqlstate);
    if (constraint)
        assert_string_equal(res->constraint, constraint);
    assert_true(res->message[0] != '\0');
}

static void test_db_query_typed_errors(void **state)
{
    (void)state;
    pool_open(2, 0, 0, 1);
    pgtest_exec(F.side, "DELETE FROM child; DELETE FROM booking; INSERT INTO child VALUES (1, 1, 1)");
    expect_error(query("ch_ins", "INSERT INTO child VALUES ($1, 1, 1)", 1, "1", NULL), NMC_EUNIQUE, "23505",
                 "child_pkey");
    expect_error(query("ch_ins", "INSERT INTO child VALUES ($1, 1, 1)", 1, "1", NULL), NMC_EUNIQUE, "23505",
                 "child_pkey");
    expect_error(query("ch_fk", "INSERT INTO child VALUES ($1, $2, 1)", 2, "2", "999"), NMC_EFOREIGNKEY, "23503",
                 "child_parent_fk");
    expect_error(query("ch_chk", "INSERT INTO child VALUES ($1, 1, $2)", 2, "3", "-5"), NMC_ECHECK, "23514",
                 "child_qty_positive");
    expect_error(query(NULL, "INSERT INTO child VALUES (4, NULL, 1)", 0, NULL, NULL), NMC_ECHECK, "23502", NULL);
    const char *book = "INSERT INTO booking (room, during) VALUES (1, tstzrange($1::timestamptz, $2::timestamptz))";
    const struct nmc_db_result *ok = query("bk_ins", book, 2, "2030-01-01 10:00Z", "2030-01-01 11:00Z");
    assert_int_equal(ok->status, 0);
    expect_error(query("bk_ins", book, 2, "2030-01-01 10:30Z", "2030-01-01 11:30Z"), NMC_EEXCLUSION, "23P01",
                 "booking_no_overlap");
    expect_error(query(NULL, "SELEC 1", 0, NULL, NULL), NMC_EDB, "42601", NULL);
    expect_error(query("bad_prep", "SELECT * FROM no_such_table", 0, NULL, NULL), NMC_EDB, "42P01", NULL);
    /* the failed Prepare was forgotten: the name prepares again next time */
    expect_error(query("bad_prep", "SELECT * FROM no_such_table", 0, NULL, NULL), NMC_EDB, "42P01", NULL);
}

static void test_db_query_data_exception_message_hides_value(void **state)
{
    (void)state;
    pool_open(1, 0, 0, 1);
    const struct nmc_db_result *res = query(NULL, "SELECT $1::int", 1, "x+15551234567", NULL);
    assert_int_equal(res->status, NMC_EDB);
    assert_string_equal(res->sqlstate, "22P02");
    assert_null(strstr(res->message, "5551234567"));
}

static void test_db_query_statement_timeout(void **state)
{
    (void)state;
    pool_open(1, 200, 0, 1);
    const struct nmc_db_result *res = query(NULL, "SELECT pg_sleep(3)", 0, NULL, NULL);
    assert_int_equal(res->status, NMC_ETIMEDOUT);
    assert_string_equal(res->sqlstate, "57014");
    assert_true(res->latency_ns < 2500000000ull);
    res = query(NULL, "SELECT current_setting('statement_timeout')", 0, NULL, NULL);
    assert_int_equal(res->status, 0);
    assert_string_equal(nmc_db_get(res->results[0], 0, 0), "200ms");
}

/* Waits (blocking, while the loop idles) for a backend of our database
 * running a query like pattern, and returns its pid. */
static long backend_running(const char *pattern)
{
    char db[64], sql[512];
    pgtest_db_name(F.url, db, sizeof db);
    snprintf(sql, sizeof sql,
             "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE datname = '%s' AND query LIKE '%s' "
             "AND pid <> pg_backend_pid()",
             db, pattern);
    for (int i = 0; i < 400; i++) {
        long pid = (long)pgtest_int(F.side, sql);
        if (pid)
            return pid;
        pgtest_run_until(&F.loop, never, NULL, 10);
    }
    fail_msg("no backend running %s", pattern);
    return 0;
}

static void terminate(long pid)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%ld)", pid);
    char *v = pgtest_value(F.side, sql);
    assert_string_equal(v, "t");
    free(v);
}

static void test_db_query_connection_killed_fails_then_reconnects(void **state)
{
    (void)state;
    pool_open(1, 0, 0, 1);
    assert_int_equal(query("t_pid", "SELECT pg_backend_pid()", 0, NULL, NULL)->status, 0);
    char *first_pid = nmc_xstrdup(nmc_db_get(result_of(0)->results[0], 0, 0));
    struct nmc_db_stmt st = {.sql = "SELECT pg_sleep(5) /* kill me */"};
    assert_int_equal(nmc_db_query(F.pool, F.actor, 77, NULL, &st), 0);
    terminate(backend_running("SELECT pg_sleep(5) /* kill me */%"));
    wait_msgs(2, 4000); /* well before the sleep would end */
    const struct nmc_db_result *res = result_of(1);
    assert_int_equal(F.msgs[1]->cookie, 77);
    assert_int_equal(res->status, NMC_ECONNLOST);
    /* the next query waits for the reconnect and prepares t_pid again */
    res = query("t_pid", "SELECT pg_backend_pid()", 0, NULL, NULL);
    assert_int_equal(res->status, 0);
    assert_string_not_equal(nmc_db_get(res->results[0], 0, 0), first_pid);
    assert_int_equal(nmc_db_pool_connected(F.pool), 1);
    free(first_pid);
}

static void test_db_query_pipelined_batches_all_fail_on_lost_connection(void **state)
{
    (void)state;
    pool_open(1, 0, 0, 1);
    struct nmc_db_stmt sleep = {.sql = "SELECT pg_sleep(5) /* pipelined */"};
    struct nmc_db_stmt quick = {.sql = "SELECT 1"};
    assert_int_equal(nmc_db_query(F.pool, F.actor, 1, NULL, &sleep), 0);
    for (uint64_t i = 2; i <= 5; i++)
        assert_int_equal(nmc_db_query(F.pool, F.actor, i, NULL, &quick), 0);
    terminate(backend_running("SELECT pg_sleep(5) /* pipelined */%"));
    wait_msgs(5, 4000);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(F.msgs[i]->cookie, i + 1); /* in order, each once */
        assert_int_equal(result_of(i)->status, NMC_ECONNLOST);
    }
}

struct notify_wait {
    const char *payload;
};

static int got_notify(void *ud)
{
    const struct notify_wait *w = ud;
    for (size_t i = 0; i < F.nmsgs; i++) {
        if (F.msgs[i]->type != NMC_MSG_DB_NOTIFY)
            continue;
        const struct nmc_db_notify *n = F.msgs[i]->payload;
        if (strcmp(n->payload, w->payload) == 0)
            return 1;
    }
    return 0;
}

/* NOTIFY until one arrives: the LISTEN may still be on its way. */
static void notify_until_delivered(const char *payload)
{
    struct notify_wait w = {payload};
    char sql[128];
    snprintf(sql, sizeof sql, "NOTIFY nmc_test_ch, '%s'", payload);
    for (int i = 0; i < 200; i++) {
        pgtest_exec(F.side, sql);
        if (pgtest_run_until(&F.loop, got_notify, &w, 50))
            return;
    }
    fail_msg("notification %s never arrived", payload);
}

static void test_db_listen_delivers_and_survives_reconnect(void **state)
{
    (void)state;
    pool_open(1, 0, 0, 1);
    assert_int_equal(nmc_db_listen(F.pool, "nmc_test_ch", F.actor), 0);
    /* the LISTEN took effect: an empty notification says so, and from then
     * on one NOTIFY is enough */
    struct notify_wait subscribed = {""};
    assert_true(pgtest_run_until(&F.loop, got_notify, &subscribed, 5000));
    assert_int_equal(F.nmsgs, 1);
    msgs_clear();
    pgtest_exec(F.side, "NOTIFY nmc_test_ch, 'first'");
    struct notify_wait first = {"first"};
    assert_true(pgtest_run_until(&F.loop, got_notify, &first, 5000));
    msgs_clear();
    pgtest_exec(F.side, "NOTIFY nmc_test_ch, 'second'; NOTIFY other_channel, 'nope'");
    struct notify_wait w = {"second"};
    assert_true(pgtest_run_until(&F.loop, got_notify, &w, 5000));
    pgtest_run_until(&F.loop, never, NULL, 50);
    assert_int_equal(F.nmsgs, 1);
    const struct nmc_db_notify *n = F.msgs[0]->payload;
    assert_string_equal(n->channel, "nmc_test_ch");
    assert_int_equal(nmc_db_pool_connected(F.pool), 1); /* the listener is not a pool connection */
    terminate(backend_running("LISTEN \"nmc_test_ch\"%"));
    msgs_clear();
    /* subscribed again after the reconnect: announced the same way */
    assert_true(pgtest_run_until(&F.loop, got_notify, &subscribed, 10000));
    notify_until_delivered("after-reconnect");
}

static void test_db_listen_rejects_bad_channel(void **state)
{
    (void)state;
    pool_open(1, 0, 0, 0);
    assert_int_equal(nmc_db_listen(F.pool, "bad\"name", F.actor), NMC_EINVAL);
    assert_int_equal(nmc_db_listen(F.pool, "", F.actor), NMC_EINVAL);
    assert_int_equal(nmc_db_listen(F.pool, NULL, F.actor), NMC_EINVAL);
    assert_int_equal(nmc_db_listen(F.pool, "ok", NULL), NMC_EINVAL);
}

static void test_db_query_thousand_concurrent_complete_once(void **state)
{
    (void)state;
    pool_open(4, 0, 0, 1);
    static char vals[1000][8];
    for (int i = 0; i < 1000; i++) {
        snprintf(vals[i], sizeof vals[i], "%d", i);
        struct nmc_db_stmt st = {.name = "t_echo", .sql = "SELECT $1::int, pg_backend_pid()", .nparams = 1,
                                 .params = {vals[i]}};
        assert_int_equal(nmc_db_query(F.pool, F.actor, (uint64_t)i, NULL, &st), 0);
    }
    wait_msgs(1000, 60000);
    pgtest_run_until(&F.loop, never, NULL, 50);
    assert_int_equal(F.nmsgs, 1000);
    static int seen[1000];
    memset(seen, 0, sizeof seen);
    char pids[4][16] = {{0}};
    int npids = 0;
    for (size_t i = 0; i < F.nmsgs; i++) {
        const struct nmc_db_result *res = result_of(i);
        uint64_t k = F.msgs[i]->cookie;
        assert_int_equal(res->status, 0);
        assert_true(k < 1000);
        seen[k]++;
        assert_string_equal(nmc_db_get(res->results[0], 0, 0), vals[k]);
        const char *pid = nmc_db_get(res->results[0], 0, 1);
        int known = 0;
        for (int j = 0; j < npids; j++)
            known |= strcmp(pids[j], pid) == 0;
        if (!known) {
            assert_true(npids < 4);
            nmc_strlcpy(pids[npids++], pid, sizeof pids[0]);
        }
    }
    for (int i = 0; i < 1000; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(npids, 4);
    assert_int_equal(nmc_db_pool_in_use(F.pool), 0);
}

static void test_db_submit_queue_cap_returns_full(void **state)
{
    (void)state;
    pool_open(1, 0, 2, 0); /* still connecting: nothing leaves the queue */
    struct nmc_db_stmt st = {.sql = "SELECT 1"};
    assert_int_equal(nmc_db_query(F.pool, F.actor, 1, NULL, &st), 0);
    assert_int_equal(nmc_db_query(F.pool, F.actor, 2, NULL, &st), 0);
    assert_int_equal(nmc_db_query(F.pool, F.actor, 3, NULL, &st), NMC_EFULL);
    wait_msgs(2, 10000);
    assert_int_equal(result_of(0)->status, 0);
    assert_int_equal(result_of(1)->status, 0);
    pgtest_run_until(&F.loop, never, NULL, 30);
    assert_int_equal(F.nmsgs, 2); /* the refused one never answers */
}

static void test_db_submit_rejects_bad_input(void **state)
{
    (void)state;
    pool_open(1, 0, 0, 0);
    struct nmc_db_stmt ok = {.sql = "SELECT 1"};
    struct nmc_db_stmt no_sql = {.name = "x"};
    struct nmc_db_stmt many = {.sql = "SELECT 1", .nparams = NMC_DB_MAX_PARAMS + 1};
    struct nmc_db_stmt neg = {.sql = "SELECT 1", .nparams = -1};
    struct nmc_db_stmt empty_name = {.name = "", .sql = "SELECT 1"};
    struct nmc_db_stmt long_name = {.name = "a_name_that_is_longer_than_sixty_three_bytes_which_postgres_truncates",
                                    .sql = "SELECT 1"};
    assert_int_equal(nmc_db_query(F.pool, F.actor, 0, NULL, &no_sql), NMC_EINVAL);
    assert_int_equal(nmc_db_query(F.pool, F.actor, 0, NULL, &many), NMC_EINVAL);
    assert_int_equal(nmc_db_query(F.pool, F.actor, 0, NULL, &neg), NMC_EINVAL);
    assert_int_equal(nmc_db_query(F.pool, F.actor, 0, NULL, &empty_name), NMC_EINVAL);
    assert_int_equal(nmc_db_query(F.pool, F.actor, 0, NULL, &long_name), NMC_EINVAL);
    assert_int_equal(nmc_db_query(F.pool, NULL, 0, NULL, &ok), NMC_EINVAL);
    assert_int_equal(nmc_db_query(NULL, F.actor, 0, NULL, &ok), NMC_EINVAL);
    assert_int_equal(nmc_db_submit(F.pool, F.actor, 0, NULL, &ok, 0), NMC_EINVAL);
    assert_int_equal(nmc_db_submit(F.pool, F.actor, 0, NULL, NULL, 1), NMC_EINVAL);
    assert_int_equal(nmc_db_txn(F.pool, F.actor, 0, NULL, &ok, NMC_DB_MAX_STMTS + 1), NMC_EINVAL);
    pgtest_run_until(&F.loop, never, NULL, 20);
    assert_int_equal(F.nmsgs, 0);
}

static void test_db_pool_create_rejects_bad_options(void **state)
{
    (void)state;
    struct nmc_db_pool *p = NULL;
    struct nmc_db_pool_opts bad_info = {.conninfo = "host=", .size = 1};
    struct nmc_db_pool_opts garbage = {.conninfo = "this is not a conninfo", .size = 1};
    struct nmc_db_pool_opts zero = {.conninfo = F.url, .size = 0};
    struct nmc_db_pool_opts neg_timeout = {.conninfo = F.url, .size = 1, .query_timeout_ms = -1};
    assert_int_equal(nmc_db_pool_create(F.rt, &garbage, &p), NMC_EINVAL);
    assert_int_equal(nmc_db_pool_create(F.rt, &zero, &p), NMC_EINVAL);
    assert_int_equal(nmc_db_pool_create(F.rt, &neg_timeout, &p), NMC_EINVAL);
    assert_int_equal(nmc_db_pool_create(F.rt, NULL, &p), NMC_EINVAL);
    assert_int_equal(nmc_db_pool_create(NULL, &bad_info, &p), NMC_EINVAL);
    assert_null(p);
}

static void test_db_pool_destroy_fails_pending_with_shutdown(void **state)
{
    (void)state;
    pool_open(1, 0, 0, 1);
    struct nmc_db_stmt sleep = {.sql = "SELECT pg_sleep(5) /* shutdown */"};
    struct nmc_db_stmt quick = {.sql = "SELECT 1"};
    assert_int_equal(nmc_db_query(F.pool, F.actor, 1, NULL, &sleep), 0);
    backend_running("SELECT pg_sleep(5) /* shutdown */%");
    for (int i = 0; i < 19; i++) /* some in flight, some queued */
        assert_int_equal(nmc_db_query(F.pool, F.actor, 2, NULL, &quick), 0);
    pool_close();
    wait_msgs(20, 2000);
    for (size_t i = 0; i < F.nmsgs; i++)
        assert_int_equal(result_of(i)->status, NMC_ESHUTDOWN);
}

static void test_db_pool_unreachable_server_queues_then_shuts_down(void **state)
{
    (void)state;
    struct nmc_db_pool_opts o = {.conninfo = "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1", .size = 2};
    assert_int_equal(nmc_db_pool_create(F.rt, &o, &F.pool), 0);
    struct nmc_db_stmt st = {.sql = "SELECT 1"};
    assert_int_equal(nmc_db_query(F.pool, F.actor, 1, NULL, &st), 0);
    pgtest_run_until(&F.loop, never, NULL, 300); /* a few refused attempts with backoff */
    assert_int_equal(F.nmsgs, 0); /* waits for a connection; not failed, not dropped */
    assert_int_equal(nmc_db_pool_connected(F.pool), 0);
    pool_close();
    wait_msgs(1, 1000);
    assert_int_equal(result_of(0)->status, NMC_ESHUTDOWN);
}

/* A TCP listener that completes handshakes (the kernel does) but never
 * answers the startup packet: libpq would wait forever. */
static int silent_server(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    return fd;
}

static void test_db_pool_connect_timeout_retries_silent_server(void **state)
{
    (void)state;
    int port, srv = silent_server(&port);
    char info[160];
    snprintf(info, sizeof info, "host=127.0.0.1 port=%d dbname=x user=x connect_timeout=1", port);
    struct nmc_db_pool_opts o = {.conninfo = info, .size = 1};
    assert_int_equal(nmc_db_pool_create(F.rt, &o, &F.pool), 0);
    pgtest_run_until(&F.loop, never, NULL, 2600);
    int attempts = 0, fd;
    while ((fd = accept(srv, NULL, NULL)) >= 0) {
        attempts++;
        close(fd);
    }
    close(srv);
    assert_true(attempts >= 2); /* the first attempt was abandoned after 1 s, then retried */
    assert_int_equal(nmc_db_pool_connected(F.pool), 0);
}

static const char *const stmt_label[] = {"t_metric"};

static void test_db_query_metrics_recorded(void **state)
{
    (void)state;
    struct nmc_metric *dur = nmc_metrics_histogram("db_query_duration_ms", "", "stmt", NULL, 0);
    struct nmc_metric *errs = nmc_metrics_counter("db_errors_total", "", "code");
    struct nmc_metric *max = nmc_metrics_gauge("db_connections_max", "", NULL);
    const char *code[] = {nmc_errcode(NMC_EUNIQUE)};
    double before_dur = nmc_metrics_value(dur, stmt_label);
    double before_err = nmc_metrics_value(errs, code);
    double before_max = nmc_metrics_value(max, NULL);
    pool_open(3, 0, 0, 1);
    assert_true(nmc_metrics_value(max, NULL) == before_max + 3);
    assert_int_equal(query("t_metric", "SELECT 1", 0, NULL, NULL)->status, 0);
    assert_int_equal(query("t_metric", "SELECT 1", 0, NULL, NULL)->status, 0);
    pgtest_exec(F.side, "DELETE FROM tx; INSERT INTO tx VALUES (1, 'a')");
    assert_int_equal(query(NULL, "INSERT INTO tx VALUES (1, 'b')", 0, NULL, NULL)->status, NMC_EUNIQUE);
    assert_true(nmc_metrics_value(dur, stmt_label) == before_dur + 2);
    assert_true(nmc_metrics_value(errs, code) == before_err + 1);
    pool_close();
    assert_true(nmc_metrics_value(max, NULL) == before_max);
}

static struct {
    int count;
    uint8_t parent[8];
    uint8_t trace_id[16];
    char statement[64];
    int error;
} spans;

static void on_span(const struct nmc_span *s, void *ud)
{
    (void)ud;
    if (strcmp(s->name, "db.query") != 0)
        return;
    spans.count++;
    memcpy(spans.parent, s->parent_span_id, sizeof spans.parent);
    memcpy(spans.trace_id, s->ctx.trace_id, sizeof spans.trace_id);
    spans.error = s->error;
    for (size_t i = 0; i < s->nattrs; i++)
        if (strcmp(s->attrs[i].key, "db.statement") == 0)
            nmc_strlcpy(spans.statement, s->attrs[i].value, sizeof spans.statement);
}

static void test_db_query_span_parented_on_context(void **state)
{
    (void)state;
    struct nmc_trace_exporter e = {.export_span = on_span};
    memset(&spans, 0, sizeof spans);
    nmc_trace_set_exporter(&e);
    pool_open(1, 0, 0, 1);
    struct nmc_msg ctx;
    memset(&ctx, 0, sizeof ctx);
    memset(ctx.trace.trace_id, 0x5a, sizeof ctx.trace.trace_id);
    memset(ctx.trace.span_id, 0x3c, sizeof ctx.trace.span_id);
    ctx.trace.flags = 1;
    struct nmc_db_stmt st = {.name = "t_span", .sql = "SELECT 1"};
    assert_int_equal(nmc_db_query(F.pool, F.actor, 1, &ctx, &st), 0);
    wait_msgs(1, 10000);
    nmc_trace_set_exporter(NULL);
    assert_int_equal(spans.count, 1);
    assert_memory_equal(spans.parent, ctx.trace.span_id, 8);
    assert_memory_equal(spans.trace_id, ctx.trace.trace_id, 16);
    assert_string_equal(spans.statement, "t_span");
    assert_int_equal(spans.error, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_db_query_round_trip_copies_context, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_submit_batch_returns_result_per_statement, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_query_prepared_once_per_connection, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_query_same_name_twice_in_one_batch, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_txn_commits, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_txn_is_one_implicit_transaction, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_txn_failure_rolls_back_and_reports_statement, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_db_txn_failure_keeps_later_prepare_for_pipelined_batch, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_db_query_typed_errors, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_query_data_exception_message_hides_value, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_query_statement_timeout, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_query_connection_killed_fails_then_reconnects, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_db_query_pipelined_batches_all_fail_on_lost_connection, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_db_listen_delivers_and_survives_reconnect, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_listen_rejects_bad_channel, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_query_thousand_concurrent_complete_once, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_submit_queue_cap_returns_full, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_submit_rejects_bad_input, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_pool_create_rejects_bad_options, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_pool_destroy_fails_pending_with_shutdown, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_pool_unreachable_server_queues_then_shuts_down, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_db_pool_connect_timeout_retries_silent_server, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_db_query_metrics_recorded, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_query_span_parented_on_context, test_setup, test_teardown),
    };
    return cmocka_run_group_tests_name("db_pool", tests, group_setup, group_teardown);
}
