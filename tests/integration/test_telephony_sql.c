/* The set-based statement for a batch of missed calls
 * (NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY_MANY, owner: perf engineer), against
 * a real PostgreSQL with every migration applied: one row per webhook in
 * order; a webhook twice in one batch is stored once, for its first
 * position; the same call under a second key records no second missed
 * call; a second call from the same caller in the batch gets no second
 * first reply (repeat); the whole batch replayed stores nothing; the
 * callers' locks are taken in one order, whatever the batch's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/telephony/telephony_sql.h"
#include "db/pool.h"
#include "runtime/buf.h"
#include "tests/support/pgtest.h"

#define BUSINESS "+15550008000"
#define N 5

static struct {
    char *url;
    PGconn *db;
    char tenant[40];
} F;

static int setup(void **state)
{
    (void)state;
    F.url = pgtest_db_migrated();
    F.db = pgtest_connect(F.url);
    pgtest_tenant(F.db, "Batch Plumbing", F.tenant);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(F.db);
    pgtest_db_drop(F.url);
    return 0;
}

/* The statement's parameters for n webhooks (key, CallSid, caller), in
 * p[16]; free with params_free(). */
static void params_make(struct nmc_buf a[16], const char *p[16], int n, const char *const *keys,
                        const char *const *sids, const char *const *callers)
{
    memset(a, 0, 16 * sizeof a[0]);
    for (int k = 0; k < 16; k++)
        nmc_buf_puts(&a[k], "{");
    for (int i = 0; i < n; i++) {
        char payload[128], dedupe[64];
        snprintf(payload, sizeof payload, "{\"CallSid\": \"%s\", \"From\": \"%s\"}", sids[i], callers[i]);
        snprintf(dedupe, sizeof dedupe, "first:%s", sids[i]);
        const char *v[16] = { keys[i], F.tenant, payload, sids[i], callers[i], BUSINESS, "no-answer", NULL, "corr",
                              NULL, NULL, dedupe, "Sorry we missed your call", "pending", "60", NULL };
        for (int k = 0; k < 16; k++)
            if (k != 9 && k != 10) /* $10 and $11 are the batch's, not arrays */
                nmc_db_array_append(&a[k], v[k]);
    }
    for (int k = 0; k < 16; k++) {
        nmc_buf_puts(&a[k], "}");
        p[k] = a[k].data;
    }
    p[9] = NULL; /* no lease owner: the events are left to the claims */
    p[10] = "0";
}

static void params_free(struct nmc_buf a[16])
{
    for (int k = 0; k < 16; k++)
        nmc_buf_free(&a[k]);
}

/* Runs the statement for the webhooks (key, CallSid, caller) of the test. */
static PGresult *run_batch(void)
{
    static const char *const keys[N] = { "k1", "k1", "k2", "k3", "k4" };
    static const char *const sids[N] = { "CAb1", "CAb1", "CAb2", "CAb3", "CAb1" };
    static const char *const callers[N] = { "+15557000001", "+15557000001", "+15557000002", "+15557000002",
                                            "+15557000001" };
    struct nmc_buf a[16];
    const char *p[16];
    params_make(a, p, N, keys, sids, callers);
    PGresult *r = PQexecParams(F.db, NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY_MANY, 16, NULL, p, NULL, NULL, 0);
    params_free(a);
    return r;
}

static const char *cell(const PGresult *r, int row, int col)
{
    const char *v = nmc_db_get(r, row, col);
    return v != NULL ? v : "";
}

static void test_telephony_sql_batch_stores_each_webhook_and_call_once(void **state)
{
    (void)state;
    PGresult *r = run_batch();
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), N);
    assert_int_equal(PQnfields(r), 18);
    static const char *const stored[N] = { "1", "0", "1", "1", "1" };
    static const char *const events[N] = { "1", "0", "1", "1", "0" };
    for (int i = 0; i < N; i++) {
        char pos[8];
        snprintf(pos, sizeof pos, "%d", i + 1);
        assert_string_equal(cell(r, i, 17), pos);
        assert_string_equal(cell(r, i, 0), stored[i]);
        assert_string_equal(cell(r, i, 1), events[i]);
    }
    assert_true(cell(r, 0, 6)[0] != '\0');       /* CAb1: a first reply, */
    assert_string_equal(cell(r, 0, 9), "t");     /* a new conversation */
    assert_string_equal(cell(r, 0, 15), "t");
    assert_true(cell(r, 2, 6)[0] != '\0');       /* CAb2: a first reply to the second caller */
    assert_string_equal(cell(r, 3, 10), "repeat"); /* CAb3, same caller: none */
    assert_string_equal(cell(r, 3, 15), "f");
    assert_true(cell(r, 0, 16)[0] != '\0');      /* detected_at */
    PQclear(r);
    assert_int_equal(pgtest_int(F.db, "SELECT count(*) FROM webhook_events"), 4);
    assert_int_equal(pgtest_int(F.db, "SELECT count(*) FROM missed_calls"), 3);
    assert_int_equal(pgtest_int(F.db, "SELECT count(*) FROM outbox_events WHERE event_name = 'CallDetected'"), 3);
    assert_int_equal(pgtest_int(F.db, "SELECT count(*) FROM messages WHERE kind = 'first_reply'"), 2);
    assert_int_equal(pgtest_int(F.db, "SELECT count(*) FROM outbox_events WHERE event_name = 'ConversationStarted'"),
                     2);
    assert_int_equal(pgtest_int(F.db, "SELECT missed_calls FROM conversations WHERE caller_e164 = '+15557000002'"),
                     2);

    r = run_batch(); /* Twilio replays the whole batch */
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), N);
    for (int i = 0; i < N; i++) {
        assert_string_equal(cell(r, i, 0), "0");
        assert_string_equal(cell(r, i, 1), "0");
    }
    PQclear(r);
    assert_int_equal(pgtest_int(F.db, "SELECT count(*) FROM webhook_events"), 4);
    assert_int_equal(pgtest_int(F.db, "SELECT count(*) FROM outbox_events"), 5);
}

/* The callers' locks (migration 0044) are taken in one order whatever the
 * order the calls came in: by the hashes the lock is named by. Another
 * session holds the lock of the caller that comes later in that order; the
 * batch lists that caller first. The batch must then hold the other
 * caller's lock while it waits: it took them in order. Before, it took them
 * in the order of a join, and two batches holding the two callers in
 * opposite orders deadlocked (one was aborted after deadlock_timeout). */
static void test_telephony_sql_batch_locks_callers_in_order(void **state)
{
    (void)state;
    const char *one = "+15557100001", *two = "+15557100002";
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT (hashtext('%s') > hashtext('%s'))::int", one, two);
    int swap = (int)pgtest_int(F.db, sql) != 0;
    const char *early = swap ? two : one, *late = swap ? one : two;
    PGconn *x = pgtest_connect(F.url), *b = pgtest_connect(F.url);
    pgtest_exec(x, "BEGIN");
    snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(hashtext('%s'), hashtext('%s'))", F.tenant, late);
    pgtest_exec(x, sql);

    static const char *const keys[2] = { "lock-k1", "lock-k2" };
    static const char *const sids[2] = { "CAlock1", "CAlock2" };
    const char *callers[2] = { late, early };
    struct nmc_buf a[16];
    const char *p[16];
    params_make(a, p, 2, keys, sids, callers);
    assert_int_equal(PQsendQueryParams(b, NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY_MANY, 16, NULL, p, NULL, NULL, 0), 1);
    params_free(a);

    char waiting[256];
    snprintf(waiting, sizeof waiting,
             "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND wait_event_type = 'Lock'", PQbackendPID(b));
    for (int i = 0; i < 500 && pgtest_int(F.db, waiting) == 0; i++)
        pgtest_exec(F.db, "SELECT pg_sleep(0.01)");
    assert_int_equal(pgtest_int(F.db, waiting), 1);
    /* pg_locks shows a two-key advisory lock's keys as oids (unsigned) */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_locks WHERE pid = %d AND locktype = 'advisory' AND granted AND objsubid = 2"
             " AND classid::bigint = (hashtext('%s')::bigint + 4294967296) %% 4294967296"
             " AND objid::bigint = (hashtext('%s')::bigint + 4294967296) %% 4294967296",
             PQbackendPID(b), F.tenant, early);
    assert_int_equal(pgtest_int(F.db, sql), 1);

    pgtest_exec(x, "ROLLBACK");
    PGresult *r = PQgetResult(b);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 2);
    for (int i = 0; i < 2; i++) {
        assert_true(cell(r, i, 6)[0] != '\0'); /* each caller got its first reply */
        assert_string_equal(cell(r, i, 9), "t");
    }
    PQclear(r);
    while ((r = PQgetResult(b)) != NULL)
        PQclear(r);
    PQfinish(x);
    PQfinish(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_telephony_sql_batch_stores_each_webhook_and_call_once),
        cmocka_unit_test(test_telephony_sql_batch_locks_callers_in_order),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
