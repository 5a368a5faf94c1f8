/* End to end: the outbox fast path (owner: perf engineer), with the real
 * nmc binary, PostgreSQL and nmc-fakes.
 *   - a missed call's CallDetected is inserted leased to the instance and
 *     handed to the outbox after COMMIT: the SMS leaves with the slow poll
 *     an hour away, outbox_handoffs_total counts it, the row keeps one
 *     attempt and is marked dispatched (lease released) shortly after, and
 *     nothing is delivered again once the lease would have lapsed;
 *   - an event leased to an instance that died before handing it over is
 *     left alone while the lease holds, then claimed by the poll and texted
 *     exactly once;
 *   - a web-only instance (--role web) inserts its events unleased and a
 *     separate worker instance delivers them (NOTIFY); nothing is handed
 *     over on the web instance;
 *   - SIGTERM right after the webhooks were answered: the instance sends
 *     their SMS and settles every event it took before it exits (0), so
 *     nothing waits for a lease after a rolling restart. */
#include "tests/e2e/first_sms_e2e.h"

#define BUSINESS "+15550006000"
#define HOUR_MS "3600000"

static char tenant[40];

static int setup(void **state)
{
    (void)state;
    e2e_setup(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_teardown();
    return 0;
}

static void stop_nmc(void);

static void start_nmc(const char *poll_ms, const char *role)
{
    if (E.nmc.pid > 0) /* an earlier test failed before stopping it */
        stop_nmc();
    nmc_proc_setenv(&E.nmc, "OUTBOX_POLL_INTERVAL_MS", poll_ms);
    nmc_proc_setenv(&E.nmc, "NMC_OUTBOX_LEASE_MS", "1000");
    assert_int_equal(nmc_proc_start(&E.nmc, role), 0);
    if (tenant[0] == '\0')
        e2e_create_tenant("Handoff Plumbing", BUSINESS, "approved", tenant);
}

static void stop_nmc(void)
{
    int code = -1;
    long ms = 0;
    assert_int_equal(nmc_proc_stop(&E.nmc, &code, &ms), 0);
    assert_int_equal(code, 0);
}

/* Polls sql until it yields want or ms pass; returns the last value. */
static int64_t wait_sql(int64_t want, int ms, const char *sql)
{
    int64_t v = e2e_sql_int("%s", sql);
    for (int i = 0; i < ms / 20 && v != want; i++) {
        e2e_sleep_ms(20);
        v = e2e_sql_int("%s", sql);
    }
    return v;
}

static void call(const char *prefix, char caller[20])
{
    char sid[40];
    e2e_caller(caller);
    snprintf(sid, sizeof sid, "%s%06d", prefix, E.seq);
    assert_int_equal(e2e_missed_call(sid, caller, BUSINESS), 200);
}

static void test_outbox_handoff_delivers_without_claim(void **state)
{
    (void)state;
    start_nmc(HOUR_MS, NULL); /* after the start-up claim only the fast path can deliver in time */
    double handed0 = e2e_metric("outbox_handoffs_total{event_name=\"CallDetected\"}");
    double started0 = e2e_metric("outbox_handoffs_total{event_name=\"ConversationStarted\"}");
    double replied0 = e2e_metric("outbox_handoffs_total{event_name=\"FirstReplySent\"}");
    char callers[3][20];
    for (int i = 0; i < 3; i++)
        call("CAhandoff", callers[i]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(e2e_wait_sms(callers[i], 1, 5000), 1);
    assert_true(e2e_metric("outbox_handoffs_total{event_name=\"CallDetected\"}") >= handed0 + 3);
    assert_int_equal(wait_sql(3, 3000,
                              "SELECT count(*) FROM outbox_events WHERE event_name = 'CallDetected'"
                              " AND payload->>'call_sid' LIKE 'CAhandoff%' AND dispatched_at IS NOT NULL"
                              " AND locked_by IS NULL AND locked_until IS NULL AND attempts = 1"),
                     3);
    /* the conversation's own events take the fast path too (migration 0032) */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox_events WHERE dispatched_at IS NOT NULL AND attempts = 1"
             " AND ((event_name = 'ConversationStarted' AND payload->>'caller' IN ('%s', '%s', '%s'))"
             " OR (event_name = 'FirstReplySent' AND payload->>'to' IN ('%s', '%s', '%s')))",
             callers[0], callers[1], callers[2], callers[0], callers[1], callers[2]);
    assert_int_equal(wait_sql(6, 3000, sql), 6);
    assert_true(e2e_metric("outbox_handoffs_total{event_name=\"ConversationStarted\"}") >= started0 + 3);
    assert_true(e2e_metric("outbox_handoffs_total{event_name=\"FirstReplySent\"}") >= replied0 + 3);
    e2e_sleep_ms(1500); /* past the 1 s lease: nothing is delivered again */
    for (int i = 0; i < 3; i++)
        assert_int_equal(e2e_sms_count(callers[i]), 1);
    stop_nmc();
}

static void test_outbox_handoff_lost_is_claimed_after_lease(void **state)
{
    (void)state;
    start_nmc("100", NULL);
    char caller[20], sid[40], sql[2048];
    e2e_caller(caller);
    snprintf(sid, sizeof sid, "CAorphan%06d", E.seq);
    /* what a crash between COMMIT and the handoff leaves behind */
    snprintf(sql, sizeof sql,
             "INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id,"
             " causation_id, locked_by, locked_until, attempts)"
             " VALUES ('CallDetected', 1, jsonb_build_object('tenant_id', '%s', 'call_sid', '%s', 'from', '%s',"
             " 'to', '%s', 'call_status', 'no-answer', 'duration_seconds', 0, 'missed_call_id', 1,"
             " 'detected_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')),"
             " '%s', 'orphan', 'test', 'dead-instance', now() + interval '800 milliseconds', 1)",
             tenant, sid, caller, BUSINESS, tenant);
    PGresult *r = PQexec(E.pg, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    e2e_sleep_ms(400);
    assert_int_equal(e2e_sms_count(caller), 0); /* the lease holds: the poll leaves it alone */
    assert_int_equal(e2e_wait_sms(caller, 1, 5000), 1);
    assert_int_equal(wait_sql(1, 3000,
                              "SELECT count(*) FROM outbox_events WHERE causation_id = 'test'"
                              " AND dispatched_at IS NOT NULL AND attempts = 2"),
                     1);
    e2e_sleep_ms(500);
    assert_int_equal(e2e_sms_count(caller), 1);
    stop_nmc();
}

static void test_outbox_handoff_sigterm_settles_before_exit(void **state)
{
    (void)state;
    start_nmc(HOUR_MS, NULL); /* no claim poll: only this instance's own drain can settle its events */
    char callers[5][20];
    for (int i = 0; i < 5; i++)
        call("CAdrain", callers[i]);
    stop_nmc(); /* SIGTERM as soon as the last webhook is answered; exit 0 */
    for (int i = 0; i < 5; i++)
        assert_int_equal(e2e_sms_count(callers[i]), 1);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL"), 0);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events WHERE locked_by IS NOT NULL"), 0);
}

static void test_outbox_handoff_web_role_leaves_events_to_workers(void **state)
{
    (void)state;
    struct nmc_proc worker;
    nmc_proc_init(&worker, E.db_url);
    nmc_proc_setenv(&worker, "TWILIO_API_BASE", E.fakes.base_url);
    nmc_proc_setenv(&worker, "TWILIO_AUTH_TOKEN", E2E_TOKEN);
    nmc_proc_setenv(&worker, "PUBLIC_BASE_URL", E.public_base);
    nmc_proc_setenv(&worker, "OUTBOX_POLL_INTERVAL_MS", HOUR_MS); /* only the web instance's NOTIFY is fast */
    assert_int_equal(nmc_proc_start(&worker, "worker"), 0);
    start_nmc(HOUR_MS, "web");
    double handed0 = e2e_metric("outbox_handoffs_total{event_name=\"CallDetected\"}");
    char caller[20];
    call("CAweb", caller);
    assert_int_equal(e2e_wait_sms(caller, 1, 5000), 1);
    assert_true(e2e_metric("outbox_handoffs_total{event_name=\"CallDetected\"}") == handed0);
    assert_int_equal(wait_sql(1, 3000,
                              "SELECT count(*) FROM outbox_events WHERE event_name = 'CallDetected'"
                              " AND payload->>'call_sid' LIKE 'CAweb%' AND dispatched_at IS NOT NULL"
                              " AND attempts = 1"),
                     1);
    e2e_sleep_ms(500);
    assert_int_equal(e2e_sms_count(caller), 1);
    stop_nmc();
    int code = -1;
    long ms = 0;
    assert_int_equal(nmc_proc_stop(&worker, &code, &ms), 0);
    nmc_proc_free(&worker);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbox_handoff_delivers_without_claim),
        cmocka_unit_test(test_outbox_handoff_lost_is_claimed_after_lease),
        cmocka_unit_test(test_outbox_handoff_sigterm_settles_before_exit),
        cmocka_unit_test(test_outbox_handoff_web_role_leaves_events_to_workers),
    };
    return cmocka_run_group_tests_name("outbox_handoff", tests, setup, teardown);
}
