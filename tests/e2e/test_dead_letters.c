/* End to end: `nmc outbox dead-letters` and `nmc outbox requeue` (owner:
 * sms engineer), with the real nmc binary, PostgreSQL and nmc-fakes.
 *   - a missed call whose CallDetected was dead-lettered before any
 *     instance delivered it (moved by the dispatcher's own statement, as
 *     after OUTBOX_MAX_ATTEMPTS failures) gets no SMS while it is dead;
 *     the CLI lists it and the outbox_dead_letters gauge counts it; requeued
 *     (the gauge back to 0), it is delivered by the running instance
 *     and the caller gets exactly one first SMS; requeueing it again is
 *     refused (no longer a dead letter) and sends nothing;
 *   - bad arguments get exit code 2 and a message naming the problem, and
 *     change nothing; an unreachable database gets exit code 1. */
#include "tests/e2e/first_sms_e2e.h"

#include "actors/outbox/outbox_sql.h"

#define BUSINESS "+15550006100"

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

static int outbox_cli(const char *const *args, char *out, size_t outlen)
{
    const char *argv[16] = { "outbox" };
    size_t n = 1;
    for (size_t i = 0; args[i] != NULL && n + 1 < NMC_ARRAY_SIZE(argv); i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return nmc_proc_run(&E.nmc, argv, out, outlen);
}

static void test_dead_letters_requeue_sends_the_first_sms_once(void **state)
{
    (void)state;
    static char out[1 << 16];
    char tenant[40], caller[20];
    /* a web-only instance records the call; no instance here dispatches */
    assert_int_equal(nmc_proc_start(&E.nmc, "web"), 0);
    e2e_create_tenant("Dead Letter Plumbing", BUSINESS, "approved", tenant);
    e2e_caller(caller);
    assert_int_equal(e2e_missed_call("CAdead000001", caller, BUSINESS), 200);
    int code = -1;
    long ms = 0;
    assert_int_equal(nmc_proc_stop(&E.nmc, &code, &ms), 0);
    assert_int_equal(code, 0);
    int64_t id = e2e_sql_int("SELECT id FROM outbox_events WHERE event_name = 'CallDetected' AND dispatched_at IS NULL");
    char ids[32], sql[256];
    snprintf(ids, sizeof ids, "{%lld}", (long long)id);
    const char *p[2] = { ids, "{\"consumer conversation: database unavailable (attempt 10 of 10)\"}" };
    PGresult *r = PQexecParams(E.pg, NMC_OUTBOX_SQL_DEAD, 2, NULL, p, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);

    /* a full instance runs: a dead letter is not delivered */
    assert_int_equal(nmc_proc_start(&E.nmc, NULL), 0);
    e2e_sleep_ms(1000); /* five slow polls (OUTBOX_POLL_INTERVAL_MS=200) */
    assert_int_equal(e2e_sms_count(caller), 0);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM messages WHERE to_e164 = '%s'", caller), 0);
    assert_true(e2e_metric("outbox_dead_letters") == 1); /* the gauge the alert NmcOutboxDeadLetters reads */

    assert_int_equal(outbox_cli((const char *const[]){ "dead-letters", NULL }, out, sizeof out), 0);
    snprintf(sql, sizeof sql, "{\"id\" : %lld, ", (long long)id);
    assert_non_null(strstr(out, sql));
    assert_non_null(strstr(out, "\"event_name\" : \"CallDetected\""));
    assert_non_null(strstr(out, "database unavailable (attempt 10 of 10)"));
    assert_non_null(strstr(out, "nmc outbox dead-letters: 1 dead letter(s)"));

    assert_int_equal(outbox_cli((const char *const[]){ "requeue", "--all", "--event", "CallDetected", NULL }, out,
                                sizeof out),
                     0);
    assert_non_null(strstr(out, "nmc outbox requeue: 1 requeued"));
    assert_int_equal(e2e_wait_sms(caller, 1, 10000), 1);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events_errors"), 0);
    for (int i = 0; i < 100 && e2e_metric("outbox_dead_letters") != 0; i++)
        e2e_sleep_ms(20);
    assert_true(e2e_metric("outbox_dead_letters") == 0); /* and the alert resolves */
    /* delivered and settled like any event */
    for (int i = 0; i < 250 && e2e_sql_int("SELECT count(*) FROM outbox_events WHERE id = %lld AND dispatched_at"
                                           " IS NOT NULL", (long long)id) == 0; i++)
        e2e_sleep_ms(20);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events WHERE id = %lld AND dispatched_at IS NOT NULL",
                                 (long long)id),
                     1);

    /* again: no longer a dead letter; refused, nothing sent */
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    assert_int_equal(outbox_cli((const char *const[]){ "requeue", ids, NULL }, out, sizeof out), 2);
    snprintf(sql, sizeof sql, "no dead letter with id %lld (nothing requeued)", (long long)id);
    assert_non_null(strstr(out, sql));
    e2e_sleep_ms(500);
    assert_int_equal(e2e_sms_count(caller), 1);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM messages WHERE to_e164 = '%s'", caller), 1);
    assert_int_equal(outbox_cli((const char *const[]){ "dead-letters", NULL }, out, sizeof out), 0);
    assert_non_null(strstr(out, "nmc outbox dead-letters: 0 dead letter(s)"));
    assert_int_equal(nmc_proc_stop(&E.nmc, &code, &ms), 0);
    assert_int_equal(code, 0);
}

struct bad {
    const char *args[6];
    const char *says;
};

static void test_dead_letters_cli_bad_arguments(void **state)
{
    (void)state;
    static char out[1 << 14];
    static const struct bad bad[] = {
        { { NULL }, "expected 'dead-letters' or 'requeue'" },
        { { "purge", NULL }, "unknown subcommand 'purge'" },
        { { "requeue", NULL }, "give the ids to requeue, or --all" },
        { { "requeue", "12abc", NULL }, "expected a dead letter's id (a positive integer), --all or --event, got '12abc'" },
        { { "requeue", "0", NULL }, "got '0'" },
        { { "requeue", "5", "--all", NULL }, "give ids or --all, not both" },
        { { "requeue", "5", "--event", "CallDetected", NULL }, "--event goes with --all" },
        { { "requeue", "--all", "--event", "call_detected", NULL }, "--event: not an event name" },
        { { "requeue", "--all", "--limit", "5", NULL }, "--limit is for dead-letters" },
        { { "requeue", "999999999", NULL }, "no dead letter with id 999999999 (nothing requeued)" },
        { { "dead-letters", "--limit", "0", NULL }, "--limit: expected 1..10000, got '0'" },
        { { "dead-letters", "--limit", "10001", NULL }, "--limit: expected 1..10000" },
        { { "dead-letters", "--limit", NULL }, "missing value after '--limit'" },
        { { "dead-letters", "--all", NULL }, "unknown argument '--all'" },
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(bad); i++) {
        int rc = outbox_cli(bad[i].args, out, sizeof out);
        if (rc != 2 || strstr(out, bad[i].says) == NULL)
            fail_msg("case %zu: exit %d, wanted 2 and \"%s\" in:\n%s", i, rc, bad[i].says, out);
    }
    /* the database unreachable: a runtime failure, exit 1 */
    struct nmc_proc down;
    nmc_proc_init(&down, "host=127.0.0.1 port=1 dbname=nmc connect_timeout=2");
    int rc = nmc_proc_run(&down, (const char *const[]){ "outbox", "dead-letters", NULL }, out, sizeof out);
    nmc_proc_free(&down);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "cannot connect to the database"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_letters_requeue_sends_the_first_sms_once),
        cmocka_unit_test(test_dead_letters_cli_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
