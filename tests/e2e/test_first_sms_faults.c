/* End to end: the first SMS through Twilio faults (owner: sms engineer),
 * with the real nmc binary, PostgreSQL and nmc-fakes.
 *   - status callbacks out of order (delivered, sent, queued) leave the
 *     message delivered; failed never regresses; a late callback's error
 *     code stays off a message it did not move; a replayed callback is
 *     counted once in twilio_message_status_total{status};
 *   - Twilio answers 500, then recovers: exactly one SMS;
 *   - a send that Twilio accepted but whose answer was lost (timeout after
 *     accept) is adopted through the Messages list, never sent twice; one
 *     that Twilio never got is sent, even when the list holds an earlier
 *     message of ours with the same text;
 *   - Twilio down: nmc keeps every intent, retries with backoff, the
 *     breaker opens (provider_circuit_state), and when Twilio is back every
 *     missed call gets exactly one SMS, nothing dead-lettered;
 *   - an outage longer than OUTBOX_MAX_ATTEMPTS: replies are held at the
 *     last attempt and released periodically, never dead-lettered, and each
 *     is sent exactly once when Twilio is back.
 * nmc-fakes is restarted on the same port with other fault flags per test. */
#include "tests/e2e/first_sms_e2e.h"
#include "runtime/clock.h"

#define BUSINESS "+15550003000"
#define QUIET_MS 700

static char tenant[40];

static void call_from(const char *caller)
{
    char sid[40];
    snprintf(sid, sizeof sid, "CAfault%06d%s", ++E.seq, caller + 8);
    assert_int_equal(e2e_missed_call(sid, caller, BUSINESS), 200);
}

/* Our message id and Twilio's SID of caller's first reply, once Twilio
 * accepted it and nmc recorded that. */
static void first_reply_ids(const char *caller, char mid[40], char sid[40])
{
    for (int i = 0; i < 400; i++) {
        e2e_sql_text(sid, 40, "SELECT provider_sid FROM messages WHERE to_e164 = '%s' AND kind = 'first_reply'",
                     caller);
        if (sid[0] != '\0')
            break;
        e2e_sleep_ms(25);
    }
    assert_true(sid[0] != '\0');
    e2e_sql_text(mid, 40, "SELECT id FROM messages WHERE to_e164 = '%s' AND kind = 'first_reply'", caller);
}

/* A missed call from a new caller, its first SMS at the emulator, and the
 * ids of that reply. */
static void missed_call_answered(char caller[20], char mid[40], char sid[40])
{
    e2e_caller(caller);
    call_from(caller);
    assert_int_equal(e2e_wait_sms(caller, 1, 10000), 1);
    first_reply_ids(caller, mid, sid);
}

static void message_status(const char *mid, char out[24])
{
    e2e_sql_text(out, 24, "SELECT status FROM messages WHERE id = '%s'", mid);
}

static double status_metric(const char *status)
{
    char series[96];
    snprintf(series, sizeof series, "twilio_message_status_total{status=\"%s\"}", status);
    return e2e_metric(series);
}

static int64_t fakes_stat(const char *name)
{
    char resp[2048];
    assert_int_equal(nmc_fakes_proc_request(&E.fakes, "GET", "/_fakes/stats", NULL, resp, sizeof resp), 200);
    json_t *j = json_loads(resp, 0, NULL);
    int64_t v = (int64_t)json_integer_value(json_object_get(j, name));
    json_decref(j);
    return v;
}

/* Every send carries our id in its StatusCallback URL (?mid=); a callback
 * without it (not one of our sends' callbacks) is stored and answered 200,
 * and changes no message: messages are found by our id only (migration
 * 0040 dropped the index on provider_sid). */
static void test_first_sms_faults_status_callback_without_our_id_changes_nothing(void **state)
{
    (void)state;
    char caller[20], mid[40], sid[40], st[24];
    missed_call_answered(caller, mid, sid);
    struct e2e_kv kv[] = { { "AccountSid", "ACtest" }, { "MessageSid", sid }, { "MessageStatus", "sent" } };
    assert_int_equal(e2e_webhook("/webhooks/twilio/message-status", kv, NMC_ARRAY_SIZE(kv)), 200);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM webhook_events WHERE event_id LIKE 'status:%s:%%'", sid), 1);
    message_status(mid, st);
    assert_string_equal(st, "queued");
    assert_int_equal(e2e_status_callback(mid, sid, "delivered", NULL), 200); /* with it: applied */
    message_status(mid, st);
    assert_string_equal(st, "delivered");
}

static void test_first_sms_faults_status_callbacks_out_of_order_never_regress(void **state)
{
    (void)state;
    char caller[20], mid[40], sid[40], st[24];
    missed_call_answered(caller, mid, sid);
    double d0 = status_metric("delivered"), s0 = status_metric("sent"), q0 = status_metric("queued");
    assert_int_equal(e2e_status_callback(mid, sid, "delivered", NULL), 200);
    assert_int_equal(e2e_status_callback(mid, sid, "sent", NULL), 200);
    assert_int_equal(e2e_status_callback(mid, sid, "queued", NULL), 200);
    assert_int_equal(e2e_status_callback(mid, sid, "delivered", NULL), 200); /* Twilio retries a callback */
    message_status(mid, st);
    assert_string_equal(st, "delivered");
    assert_true(status_metric("delivered") == d0 + 1);
    assert_true(status_metric("sent") == s0 + 1);
    assert_true(status_metric("queued") == q0 + 1);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM webhook_events WHERE event_id LIKE 'status:%s:%%'", sid), 3);

    missed_call_answered(caller, mid, sid);
    double f0 = status_metric("failed");
    assert_int_equal(e2e_status_callback(mid, sid, "failed", "30003"), 200);
    assert_int_equal(e2e_status_callback(mid, sid, "sent", NULL), 200);
    assert_int_equal(e2e_status_callback(mid, sid, "delivered", NULL), 200);
    assert_int_equal(e2e_status_callback(mid, sid, "failed", "30003"), 200);
    message_status(mid, st);
    assert_string_equal(st, "failed");
    e2e_sql_text(st, sizeof st, "SELECT error_code FROM messages WHERE id = '%s'", mid);
    assert_string_equal(st, "30003");
    assert_true(status_metric("failed") == f0 + 1);
    assert_int_equal(e2e_sms_count(caller), 1);

    /* a late failure's error code stays off a delivered message */
    missed_call_answered(caller, mid, sid);
    assert_int_equal(e2e_status_callback(mid, sid, "delivered", NULL), 200);
    assert_int_equal(e2e_status_callback(mid, sid, "undelivered", "30005"), 200);
    message_status(mid, st);
    assert_string_equal(st, "delivered");
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM messages WHERE id = '%s' AND error_code IS NULL", mid), 1);
}

static void test_first_sms_faults_twilio_5xx_then_success_sends_once(void **state)
{
    (void)state;
    char caller[20], st[24];
    e2e_restart_fakes((const char *const[]){ "--fail-rate", "1", NULL });
    e2e_caller(caller);
    call_from(caller);
    for (int i = 0; i < 400 && fakes_stat("injected_5xx") < 2; i++)
        e2e_sleep_ms(25);
    assert_true(fakes_stat("injected_5xx") >= 2); /* the first try and at least one retry got 500 */
    assert_int_equal(fakes_stat("accepted"), 0);
    e2e_sql_text(st, sizeof st, "SELECT status FROM messages WHERE to_e164 = '%s'", caller);
    assert_string_equal(st, "retry");
    e2e_restart_fakes(NULL);
    assert_int_equal(e2e_wait_sms(caller, 1, 20000), 1);
    e2e_sleep_ms(QUIET_MS);
    assert_int_equal(e2e_sms_count(caller), 1);
    assert_true(e2e_sql_int("SELECT attempts FROM messages WHERE to_e164 = '%s'", caller) >= 3);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events_errors"), 0);
}

static void test_first_sms_faults_answer_lost_after_accept_is_adopted(void **state)
{
    (void)state;
    char caller[20], st[24];
    e2e_restart_fakes((const char *const[]){ "--timeout-rate", "1", "--timeout-after-accept", NULL });
    double amb0 = e2e_metric("sms_ambiguous_sends_total");
    e2e_caller(caller);
    call_from(caller);
    assert_int_equal(e2e_wait_sms(caller, 1, 10000), 1); /* accepted, but nmc never hears back */
    for (int i = 0; i < 800; i++) {
        e2e_sql_text(st, sizeof st, "SELECT COALESCE(provider_sid, '') FROM messages WHERE to_e164 = '%s'", caller);
        if (st[0] != '\0')
            break;
        e2e_sleep_ms(25);
    }
    assert_true(st[0] != '\0'); /* adopted from the Messages list */
    e2e_sleep_ms(QUIET_MS);
    assert_int_equal(e2e_sms_count(caller), 1);
    assert_int_equal(fakes_stat("accepted"), 1);
    assert_true(e2e_metric("sms_ambiguous_sends_total") >= amb0 + 1);
    e2e_restart_fakes(NULL);
}

/* A send of unknown outcome to a caller who already has a message with the
 * same text (a second STOP confirmation): Twilio lists only the earlier
 * one, which is ours already, so the new one is sent, never adopted in its
 * place (docs/decisions/ambiguous-sms.md). */
static void test_first_sms_faults_lookup_never_adopts_an_earlier_reply_with_the_same_text(void **state)
{
    (void)state;
    /* a seed for nmc-fakes' fault draws: the first send accepted, the
     * second never answered nor recorded, the third accepted */
    uint64_t seed = 0;
    for (uint64_t s = 1; s < 100000 && seed == 0; s++) {
        nmc_rng_seed(s);
        double a = nmc_rng_unit(), b = nmc_rng_unit(), c = nmc_rng_unit();
        if (a >= 0.5 && b < 0.5 && c >= 0.5)
            seed = s;
    }
    assert_true(seed != 0);
    char seedarg[24], caller[20], sid[40];
    snprintf(seedarg, sizeof seedarg, "%llu", (unsigned long long)seed);
    e2e_restart_fakes((const char *const[]){ "--timeout-rate", "0.5", "--seed", seedarg, NULL });
    e2e_caller(caller);
    snprintf(sid, sizeof sid, "SMsame1%s", caller + 2);
    assert_int_equal(e2e_inbound_sms(sid, caller, BUSINESS, "STOP"), 200);
    assert_int_equal(e2e_wait_sms(caller, 1, 10000), 1);
    snprintf(sid, sizeof sid, "SMsame2%s", caller + 2);
    assert_int_equal(e2e_inbound_sms(sid, caller, BUSINESS, "STOP"), 200);
    assert_int_equal(e2e_wait_sms(caller, 2, 20000), 2); /* after the timeout, the lookup and the resend */
    e2e_sleep_ms(QUIET_MS);
    assert_int_equal(e2e_sms_count(caller), 2);
    assert_int_equal(e2e_sql_int("SELECT count(DISTINCT provider_sid) FROM messages WHERE to_e164 = '%s'"
                                 " AND kind = 'opt_out_confirm'", caller),
                     2);
    assert_int_equal(fakes_stat("injected_timeouts"), 1);
    e2e_restart_fakes(NULL);
}

/* n intents of the last minute kept while Twilio is down: none given up
 * and none accepted by a Twilio that is down. Each is 'retry' or held at
 * its event's last attempt, or for a moment 'pending' (an attempt between
 * its claim and its mark) or 'ambiguous' (a pooled connection reset
 * mid-request: asked again when Twilio is back). Counting 'retry' (and
 * 'held') alone failed in CI: 22 of 25, then 4 of 5. Names the statuses
 * when it fails. */
static void assert_intents_kept(int n)
{
    char statuses[512];
    e2e_sql_text(statuses, sizeof statuses,
                 "SELECT string_agg(status || coalesce('/' || hold_reason, '') || ' ' || n, ', ' ORDER BY status)"
                 " FROM (SELECT status, hold_reason, count(*) AS n FROM messages WHERE tenant_id = '%s'"
                 " AND to_e164 LIKE '+1555%%' AND created_at > now() - interval '1 minute'"
                 " GROUP BY status, hold_reason) s", tenant);
    int64_t kept = e2e_sql_int("SELECT count(*) FROM messages WHERE tenant_id = '%s' AND to_e164 LIKE '+1555%%'"
                               " AND created_at > now() - interval '1 minute' AND provider_sid IS NULL"
                               " AND (status IN ('retry', 'pending', 'ambiguous') OR hold_reason = 'provider')",
                               tenant);
    if (kept != n)
        fail_msg("%lld of %d intents kept; statuses: %s", (long long)kept, n, statuses);
}

static void test_first_sms_faults_twilio_down_breaker_opens_nothing_lost(void **state)
{
    (void)state;
    enum { N = 25 };
    char callers[N][20];
    int port = E.fakes.port;
    double opened0 = e2e_metric("provider_circuit_transitions_total{provider=\"twilio\",state=\"open\"}");
    nmc_fakes_proc_stop(&E.fakes);
    for (int i = 0; i < N; i++) {
        e2e_caller(callers[i]);
        call_from(callers[i]);
    }
    int seen_open = 0;
    for (int i = 0; i < 400 && !seen_open; i++) {
        seen_open = e2e_metric("provider_circuit_state{provider=\"twilio\"}") == 2;
        if (!seen_open)
            e2e_sleep_ms(25);
    }
    assert_true(seen_open);
    assert_true(e2e_metric("provider_circuit_transitions_total{provider=\"twilio\",state=\"open\"}") >= opened0 + 1);
    e2e_sleep_ms(3000); /* down a while longer: half-open probes fail and it opens again */
    /* every intent kept, retried with backoff (not at the 200 ms poll rate), none given up */
    assert_intents_kept(N);
    int64_t max_attempts = e2e_sql_int("SELECT max(attempts) FROM outbox_events WHERE event_name = 'CallDetected'"
                                       " AND dispatched_at IS NULL");
    assert_true(max_attempts >= 3);
    assert_true(max_attempts <= 8);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events_errors"), 0);

    assert_int_equal(nmc_fakes_proc_start(&E.fakes, port, NULL), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(e2e_wait_sms(callers[i], 1, 45000), 1);
    e2e_sleep_ms(QUIET_MS);
    json_t *by_to = e2e_sms_by_to();
    for (int i = 0; i < N; i++)
        assert_int_equal(json_integer_value(json_object_get(by_to, callers[i])), 1);
    assert_int_equal(json_object_size(by_to), N);
    json_decref(by_to);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events_errors"), 0);
    for (int i = 0; i < 400 && e2e_metric("provider_circuit_state{provider=\"twilio\"}") != 0; i++)
        e2e_sleep_ms(25);
    assert_true(e2e_metric("provider_circuit_state{provider=\"twilio\"}") == 0);
}

/* A Twilio outage longer than the outbox's attempts: each reply is held at
 * its event's last attempt (not dead-lettered), released again every
 * NMC_SMS_PROVIDER_HOLD_RETRY_MS, and sent exactly once when Twilio is back. */
static void test_first_sms_faults_long_outage_holds_at_last_attempt_then_sends_once(void **state)
{
    (void)state;
    enum { N = 5 };
    char callers[N][20];
    int code = 0, port = E.fakes.port;
    long ms = 0;
    assert_int_equal(nmc_proc_stop(&E.nmc, &code, &ms), 0);
    nmc_proc_setenv(&E.nmc, "OUTBOX_MAX_ATTEMPTS", "2");
    nmc_proc_setenv(&E.nmc, "NMC_SMS_PROVIDER_HOLD_RETRY_MS", "1500");
    assert_int_equal(nmc_proc_start(&E.nmc, NULL), 0);
    nmc_fakes_proc_stop(&E.fakes);
    for (int i = 0; i < N; i++) {
        e2e_caller(callers[i]);
        call_from(callers[i]);
    }
    for (int i = 0; i < 400 && e2e_metric("sms_provider_holds_total{result=\"released\"}") < N; i++)
        e2e_sleep_ms(25);
    assert_true(e2e_metric("sms_provider_holds_total{result=\"held\"}") >= N);
    assert_true(e2e_metric("sms_provider_holds_total{result=\"released\"}") >= N);
    e2e_sleep_ms(2000); /* a few more cycles of attempts, holds and releases */
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events_errors"), 0);
    assert_intents_kept(N);

    assert_int_equal(nmc_fakes_proc_start(&E.fakes, port, NULL), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(e2e_wait_sms(callers[i], 1, 20000), 1);
    e2e_sleep_ms(QUIET_MS + 1500); /* one more release period: nothing goes twice */
    for (int i = 0; i < N; i++)
        assert_int_equal(e2e_sms_count(callers[i]), 1);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events_errors"), 0);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM messages WHERE status = 'held'"), 0);
}

static int setup(void **state)
{
    (void)state;
    e2e_setup(NULL);
    nmc_proc_setenv(&E.nmc, "PROVIDER_TIMEOUT_MS", "1500");
    nmc_proc_setenv(&E.nmc, "NMC_SMS_AMBIGUOUS_WAIT_MS", "60000");
    nmc_proc_setenv(&E.nmc, "NMC_TWILIO_BREAKER_OPEN_MS", "2000");
    nmc_proc_setenv(&E.nmc, "NMC_TWILIO_BREAKER_CLOSE_AFTER_MS", "1000");
    nmc_proc_setenv(&E.nmc, "NMC_TWILIO_BREAKER_HALF_OPEN_PERCENT", "50");
    assert_int_equal(nmc_proc_start(&E.nmc, NULL), 0);
    e2e_create_tenant("Fault Plumbing", BUSINESS, "approved", tenant);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_teardown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_sms_faults_status_callbacks_out_of_order_never_regress),
        cmocka_unit_test(test_first_sms_faults_status_callback_without_our_id_changes_nothing),
        cmocka_unit_test(test_first_sms_faults_twilio_5xx_then_success_sends_once),
        cmocka_unit_test(test_first_sms_faults_answer_lost_after_accept_is_adopted),
        cmocka_unit_test(test_first_sms_faults_lookup_never_adopts_an_earlier_reply_with_the_same_text),
        cmocka_unit_test(test_first_sms_faults_twilio_down_breaker_opens_nothing_lost),
        cmocka_unit_test(test_first_sms_faults_long_outage_holds_at_last_attempt_then_sends_once),
    };
    return cmocka_run_group_tests_name("e2e_first_sms_faults", tests, setup, teardown);
}
