/* actors/conversation/batch.c against a real PostgreSQL (owner: perf
 * engineer): jobs submitted in one turn share one round trip and each gets
 * its own results; a failing statement rolls its group back and every job
 * runs again alone (only the bad one fails); the async-commit kind shares
 * one set_config; loads are grouped, other queries go alone; past the
 * in-flight limit jobs wait and grow the next group; values are copied at
 * submit; odd cookies and bad arguments are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/conversation/batch.h"
#include "runtime/actor.h"
#include "tests/support/pgtest.h"

#define MAX_JOBS 64
#define ASYNC "SELECT set_config('synchronous_commit', 'off', true)"
#define INSERT_SQL "INSERT INTO t (id, v) VALUES ($1::int, $2) RETURNING v, txid_current()::text"

struct got {
    int status;
    int nresults;
    char first[64];      /* first column of the first row of the job's last result */
    char xid[32];        /* its second column, when there is one: the transaction id */
    int async_seen;      /* results[0] is the shared set_config result */
};

static struct {
    char *url;
    PGconn *side;
    uv_loop_t loop;
    struct nmc_rt *rt;
    struct nmc_actor *actor;
    struct nmc_db_pool *pool;
    struct nmc_conversation_batch *batch;
    struct got got[MAX_JOBS];
    int delivered;
    int direct; /* results that were not a group's */
} F;

static void on_deliver(void *ud, uint64_t cookie, const struct nmc_db_result *res)
{
    (void)ud;
    size_t i = (size_t)(cookie / 2);
    assert_true(i < MAX_JOBS);
    struct got *g = &F.got[i];
    g->status = res->status;
    g->nresults = (int)res->nresults;
    const PGresult *last = res->nresults > 0 ? res->results[res->nresults - 1] : NULL;
    const char *v = last != NULL && PQntuples(last) > 0 ? PQgetvalue(last, 0, 0) : "";
    snprintf(g->first, sizeof g->first, "%s", v);
    v = last != NULL && PQntuples(last) > 0 && PQnfields(last) > 1 ? PQgetvalue(last, 0, 1) : "";
    snprintf(g->xid, sizeof g->xid, "%s", v);
    const PGresult *r0 = res->nresults > 0 ? res->results[0] : NULL;
    g->async_seen = r0 != NULL && PQntuples(r0) > 0 && strcmp(PQgetvalue(r0, 0, 0), "off") == 0;
    F.delivered++;
}

/* The actor: group results go through the batcher, a job's own result is
 * delivered as the conversation actor does; flush when the mailbox is empty. */
static void on_msg(struct nmc_actor *self, struct nmc_msg *m, void *state)
{
    (void)state;
    if (m->type == NMC_MSG_DB_RESULT && !nmc_conversation_batch_on_result(F.batch, m)) {
        F.direct++;
        on_deliver(NULL, m->cookie, m->payload);
    }
    if (nmc_rt_actor_depth(self) == 0)
        nmc_conversation_batch_flush(F.batch);
}

static int delivered_n(void *ud)
{
    return F.delivered >= *(int *)ud;
}

static int all_connected(void *ud)
{
    (void)ud;
    return nmc_db_pool_connected(F.pool) == nmc_db_pool_size(F.pool);
}

static void wait_delivered(int n)
{
    if (!pgtest_run_until(&F.loop, delivered_n, &n, 15000))
        fail_msg("timed out waiting for %d results (have %d)", n, F.delivered);
}

static uint64_t ck(int i)
{
    return (uint64_t)i * 2;
}

/* Submits an intent-like transaction for job i: insert a row, return its value. */
static void submit_insert(int i, const char *value)
{
    char id[16];
    snprintf(id, sizeof id, "%d", i);
    struct nmc_db_stmt st = { "bt_insert", INSERT_SQL, 2, { id, value } };
    assert_int_equal(nmc_conversation_batch_submit(F.batch, ck(i), NULL, &st, 1, 1), 0);
}

static void reset(void)
{
    memset(F.got, 0, sizeof F.got);
    F.delivered = 0;
    F.direct = 0;
    pgtest_exec(F.side, "TRUNCATE t");
}

static int setup(void **state)
{
    (void)state;
    F.url = pgtest_db_create();
    F.side = pgtest_connect(F.url);
    pgtest_exec(F.side, "CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL CHECK (v <> 'bad'))");
    assert_int_equal(uv_loop_init(&F.loop), 0);
    assert_int_equal(nmc_rt_create(&F.loop, 0, &F.rt), 0);
    assert_int_equal(nmc_rt_actor_create(F.rt, "batchtest", on_msg, NULL, 0, &F.actor), 0);
    struct nmc_db_pool_opts o = { .conninfo = F.url, .size = 2 };
    assert_int_equal(nmc_db_pool_create(F.rt, &o, &F.pool), 0);
    assert_true(pgtest_run_until(&F.loop, all_connected, NULL, 10000));
    static const char *const ro[] = { "bt_load", NULL };
    struct nmc_conversation_batch_opts bo = { .db = F.pool, .actor = F.actor, .deliver = on_deliver,
                                              .async_commit_stmt = "bt_async", .read_only_stmts = ro };
    assert_int_equal(nmc_conversation_batch_create(&bo, &F.batch), 0);
    return 0;
}

static int never(void *ud)
{
    (void)ud;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nmc_conversation_batch_free(F.batch);
    nmc_db_pool_destroy(F.pool);
    pgtest_run_until(&F.loop, never, NULL, 50);
    nmc_rt_destroy(F.rt);
    pgtest_run_until(&F.loop, never, NULL, 20);
    uv_loop_close(&F.loop);
    PQfinish(F.side);
    pgtest_db_drop(F.url);
    return 0;
}

/* Submissions made outside a handler are flushed by the test, as the actor
 * would at the end of its turn. */
static void flush(void)
{
    nmc_conversation_batch_flush(F.batch);
}

static void test_conversation_batch_submit_groups_one_turn_and_cuts_results(void **state)
{
    (void)state;
    reset();
    for (int i = 1; i <= 5; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        submit_insert(i, v);
    }
    assert_int_equal(F.delivered, 0); /* never from inside the call, nor before the flush */
    flush();
    wait_delivered(5);
    assert_int_equal(F.direct, 0);
    for (int i = 1; i <= 5; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        assert_int_equal(F.got[i].status, 0);
        assert_int_equal(F.got[i].nresults, 1);
        assert_string_equal(F.got[i].first, v);
        assert_string_equal(F.got[i].xid, F.got[1].xid); /* one transaction */
    }
    assert_int_equal(pgtest_int(F.side, "SELECT count(*) FROM t"), 5);
}

static void test_conversation_batch_submit_failed_statement_reruns_each_alone(void **state)
{
    (void)state;
    reset();
    submit_insert(1, "a");
    submit_insert(2, "bad"); /* violates the check */
    submit_insert(3, "c");
    flush();
    wait_delivered(3);
    assert_int_equal(F.direct, 3); /* the group rolled back; each ran again alone */
    assert_int_equal(F.got[1].status, 0);
    assert_string_equal(F.got[1].first, "a");
    assert_int_equal(F.got[2].status, NMC_ECHECK);
    assert_int_equal(F.got[3].status, 0);
    assert_string_not_equal(F.got[1].xid, F.got[3].xid);
    assert_int_equal(pgtest_int(F.side, "SELECT count(*) FROM t"), 2);
}

static void test_conversation_batch_submit_async_kind_shares_set_config(void **state)
{
    (void)state;
    reset();
    for (int i = 1; i <= 3; i++) {
        char id[16], v[16];
        snprintf(id, sizeof id, "%d", i);
        snprintf(v, sizeof v, "m%d", i);
        struct nmc_db_stmt st[2] = {
            { "bt_async", ASYNC, 0, { NULL } },
            { "bt_insert", INSERT_SQL, 2, { id, v } },
        };
        assert_int_equal(nmc_conversation_batch_submit(F.batch, ck(i), NULL, st, 2, 1), 0);
    }
    flush();
    wait_delivered(3);
    for (int i = 1; i <= 3; i++) {
        char v[16];
        snprintf(v, sizeof v, "m%d", i);
        assert_int_equal(F.got[i].status, 0);
        assert_int_equal(F.got[i].nresults, 2); /* shaped as if alone: set_config, then its insert */
        assert_true(F.got[i].async_seen);
        assert_string_equal(F.got[i].first, v);
        assert_string_equal(F.got[i].xid, F.got[1].xid);
    }
}

static void test_conversation_batch_submit_loads_grouped_others_alone(void **state)
{
    (void)state;
    reset();
    pgtest_exec(F.side, "INSERT INTO t VALUES (1, 'one'), (2, 'two')");
    struct nmc_db_stmt load1 = { "bt_load", "SELECT v FROM t WHERE id = $1::int", 1, { "1" } };
    struct nmc_db_stmt load2 = { "bt_load", "SELECT v FROM t WHERE id = $1::int", 1, { "2" } };
    struct nmc_db_stmt other = { "bt_other", "SELECT v || '!' FROM t WHERE id = $1::int", 1, { "2" } };
    assert_int_equal(nmc_conversation_batch_submit(F.batch, ck(1), NULL, &load1, 1, 0), 0);
    assert_int_equal(nmc_conversation_batch_submit(F.batch, ck(2), NULL, &load2, 1, 0), 0);
    assert_int_equal(nmc_conversation_batch_submit(F.batch, ck(3), NULL, &other, 1, 0), 0);
    flush();
    wait_delivered(3);
    assert_int_equal(F.direct, 1); /* only the statement not listed as read-only went alone */
    assert_string_equal(F.got[1].first, "one");
    assert_string_equal(F.got[2].first, "two");
    assert_string_equal(F.got[3].first, "two!");
}

static void test_conversation_batch_submit_copies_values(void **state)
{
    (void)state;
    reset();
    char id[16] = "7", v[16] = "kept";
    struct nmc_db_stmt st = { "bt_insert", INSERT_SQL, 2, { id, v } };
    assert_int_equal(nmc_conversation_batch_submit(F.batch, ck(7), NULL, &st, 1, 1), 0);
    snprintf(v, sizeof v, "bad"); /* the caller's buffers change before the flush */
    snprintf(id, sizeof id, "x");
    flush();
    wait_delivered(1);
    assert_int_equal(F.got[7].status, 0);
    assert_string_equal(F.got[7].first, "kept");
}

static void test_conversation_batch_submit_waits_past_inflight_limit(void **state)
{
    (void)state;
    reset();
    /* three turns before any result: the first two go out, the third waits
     * and takes what the fourth turn adds */
    submit_insert(1, "a");
    flush();
    submit_insert(2, "b");
    flush();
    submit_insert(3, "c");
    flush();
    submit_insert(4, "d");
    flush();
    wait_delivered(4);
    for (int i = 1; i <= 4; i++)
        assert_int_equal(F.got[i].status, 0);
    assert_string_not_equal(F.got[1].xid, F.got[2].xid);
    assert_string_equal(F.got[3].xid, F.got[4].xid); /* the waiting job took the later one along */
    assert_int_equal(pgtest_int(F.side, "SELECT count(*) FROM t"), 4);
}

static void test_conversation_batch_submit_rejects_bad_arguments(void **state)
{
    (void)state;
    struct nmc_db_stmt st = { "bt_load", "SELECT 1", 0, { NULL } };
    assert_int_equal(nmc_conversation_batch_submit(F.batch, 3, NULL, &st, 1, 0), NMC_EINVAL); /* odd cookie */
    assert_int_equal(nmc_conversation_batch_submit(F.batch, 4, NULL, &st, 0, 0), NMC_EINVAL);
    assert_int_equal(nmc_conversation_batch_submit(F.batch, 4, NULL, NULL, 1, 0), NMC_EINVAL);
    assert_int_equal(nmc_conversation_batch_submit(NULL, 4, NULL, &st, 1, 0), NMC_EINVAL);
    struct nmc_conversation_batch *b = NULL;
    struct nmc_conversation_batch_opts o = { 0 };
    assert_int_equal(nmc_conversation_batch_create(&o, &b), NMC_EINVAL);
    assert_null(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversation_batch_submit_groups_one_turn_and_cuts_results),
        cmocka_unit_test(test_conversation_batch_submit_failed_statement_reruns_each_alone),
        cmocka_unit_test(test_conversation_batch_submit_async_kind_shares_set_config),
        cmocka_unit_test(test_conversation_batch_submit_loads_grouped_others_alone),
        cmocka_unit_test(test_conversation_batch_submit_copies_values),
        cmocka_unit_test(test_conversation_batch_submit_waits_past_inflight_limit),
        cmocka_unit_test(test_conversation_batch_submit_rejects_bad_arguments),
    };
    return cmocka_run_group_tests_name("conversation_batch", tests, setup, teardown);
}
