/* End to end: the gates in front of the first SMS (owner: sms engineer),
 * with the real nmc binary, PostgreSQL and nmc-fakes.
 *   - compliance: a tenant not approved gets no first SMS (logged, counted
 *     in first_sms_blocked_total{reason="compliance"}); the reply is held
 *     and PATCH compliance_status=approved (ComplianceStatusChanged) sends
 *     it exactly once; a hold older than NMC_SMS_COMPLIANCE_HOLD_MAX_MINUTES
 *     is never sent;
 *   - opt-out: after STOP no first SMS;
 *   - every gate is the tenant's: a caller's repeat window and opt-out at
 *     one business, or one tenant's pending compliance, change nothing at
 *     another;
 *   - keyword replies of a tenant not approved (the STOP confirmation, the
 *     HELP answer) are recorded and never sent, also when one held for the
 *     pause is released after the approval was revoked, while the keyword
 *     takes effect (counted in sms_keyword_replies_blocked_total);
 *   - PAUSE_OUTBOUND_SMS=true at start holds every send, and the API
 *     cannot lift it (either switch pauses); a restart without it sends each
 *     exactly once, a STOP that arrived while paused wins over the held first
 *     reply; then true/false through the API on the running server,
 *     including quick flips; each bad flags request gets a 4xx and changes
 *     nothing;
 *   - the switch is the fleet's (ops_flags): a pause set through one
 *     instance holds the sends of a second one within a notification (well
 *     under its 5 s poll), survives that instance's restart (which releases
 *     nothing) and its crash (kill -9), and a resume through the second
 *     sends each exactly once, also when a CallDetected the crashed
 *     instance had not marked dispatched comes back (after its 1 s lease)
 *     together with the release: only the job that claims a released send
 *     sends it.
 * nmc starts paused, so the pause test runs first. */
#include "tests/e2e/first_sms_e2e.h"
#include "tests/support/json_schema.h"

#define QUIET_MS 700 /* after the expected SMS, how long nothing else may arrive */

static int pause_flag(int paused)
{
    char resp[512];
    return e2e_admin("POST", "/v1/admin/flags", paused ? "{\"pause_outbound_sms\":true}" : "{\"pause_outbound_sms\":false}",
                     resp, sizeof resp);
}

static void approved_tenant(const char *number, char id[40])
{
    char name[64];
    snprintf(name, sizeof name, "Gate Plumbing %d", ++E.seq);
    e2e_create_tenant(name, number, "approved", id);
}

static void call_from(const char *caller, const char *business)
{
    char sid[40];
    snprintf(sid, sizeof sid, "CAgate%06d%s", ++E.seq, caller + 8);
    assert_int_equal(e2e_missed_call(sid, caller, business), 200);
}

/* Waits until every caller has exactly one SMS, then that none gets a second. */
static void expect_one_each(char callers[][20], int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(e2e_wait_sms(callers[i], 1, 10000), 1);
    e2e_sleep_ms(QUIET_MS);
    for (int i = 0; i < n; i++)
        assert_int_equal(e2e_sms_count(callers[i]), 1);
}

static int64_t held_count(const char *tenant)
{
    return e2e_sql_int("SELECT count(*) FROM messages WHERE tenant_id = '%s' AND status = 'held'", tenant);
}

static void wait_held(const char *tenant, int64_t want)
{
    for (int i = 0; i < 400 && held_count(tenant) < want; i++)
        e2e_sleep_ms(25);
    assert_int_equal(held_count(tenant), want);
}

/* Waits until every outbox event is marked dispatched. */
static void wait_all_dispatched(void)
{
    const char *undispatched = "SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL";
    for (int i = 0; i < 500 && pgtest_int(E.pg, undispatched) != 0; i++)
        usleep(20000);
    assert_int_equal(pgtest_int(E.pg, undispatched), 0);
}

/* SIGTERM, and the instance exits 0. */
static void stop_ok(struct nmc_proc *p)
{
    int code = -1;
    long ms = 0;
    assert_int_equal(nmc_proc_stop(p, &code, &ms), 0);
    assert_int_equal(code, 0);
}

/* GET /v1/admin/flags on the instance on port, parsed. */
static json_t *flags_at(int port)
{
    char resp[1024];
    int st = e2e_admin_at(port, "GET", "/v1/admin/flags", NULL, resp, sizeof resp);
    if (st != 200)
        fail_msg("GET /v1/admin/flags: %d %s", st, resp);
    json_t *j = json_loads(resp, 0, NULL);
    assert_non_null(j);
    return j;
}

static int paused_here(int port)
{
    json_t *j = flags_at(port);
    int v = json_is_true(json_object_get(j, "paused_on_this_instance"));
    json_decref(j);
    return v;
}

static void test_first_sms_gates_pause_at_start_holds_and_resume_sends_once(void **state)
{
    (void)state;
    char tenant[40], callers[5][20], stopper[20], body[2048];
    /* never set through the API: held by the instance's PAUSE_OUTBOUND_SMS=true */
    json_t *f = flags_at(E.nmc.port);
    assert_true(json_is_false(json_object_get(f, "pause_outbound_sms")));
    assert_true(json_is_null(json_object_get(f, "updated_at")));
    assert_true(json_is_true(json_object_get(f, "environment_pause")));
    assert_true(json_is_true(json_object_get(f, "paused_on_this_instance")));
    json_decref(f);
    approved_tenant("+15550002001", tenant);
    double held0 = e2e_metric("sms_held_total");
    for (int i = 0; i < 5; i++) {
        e2e_caller(callers[i]);
        call_from(callers[i], "+15550002001");
    }
    e2e_caller(stopper); /* missed call, then STOP, both while paused */
    call_from(stopper, "+15550002001");
    wait_held(tenant, 6);
    assert_int_equal(e2e_inbound_sms("SMgatestop01", stopper, "+15550002001", "STOP"), 200);
    wait_held(tenant, 7); /* the STOP confirmation is held as well */
    e2e_sleep_ms(QUIET_MS);
    for (int i = 0; i < 5; i++)
        assert_int_equal(e2e_sms_count(callers[i]), 0);
    assert_int_equal(e2e_sms_count(stopper), 0);
    assert_true(e2e_metric("sms_held_total") >= held0 + 7);

    /* the API cannot lift the environment's pause (the runbook's kill switch) */
    char resp[512];
    assert_int_equal(e2e_admin("POST", "/v1/admin/flags", "{\"pause_outbound_sms\":false}", resp, sizeof resp), 200);
    f = json_loads(resp, 0, NULL);
    assert_non_null(f);
    assert_true(json_is_false(json_object_get(f, "pause_outbound_sms")));
    assert_true(json_is_string(json_object_get(f, "updated_at")));
    assert_true(json_is_true(json_object_get(f, "environment_pause")));
    assert_true(json_is_true(json_object_get(f, "paused_on_this_instance")));
    json_decref(f);
    e2e_sleep_ms(QUIET_MS);
    for (int i = 0; i < 5; i++)
        assert_int_equal(e2e_sms_count(callers[i]), 0);
    assert_int_equal(held_count(tenant), 7);

    /* restarted without it (config:set PAUSE_OUTBOUND_SMS=false): the held
     * sends leave at start, once each */
    stop_ok(&E.nmc);
    nmc_proc_setenv(&E.nmc, "PAUSE_OUTBOUND_SMS", "false");
    assert_int_equal(nmc_proc_start(&E.nmc, NULL), 0);
    assert_false(paused_here(E.nmc.port));
    expect_one_each(callers, 5);
    assert_int_equal(e2e_wait_sms(stopper, 1, 10000), 1);
    e2e_sleep_ms(QUIET_MS);
    assert_int_equal(e2e_sms_count_body(stopper, body, sizeof body), 1);
    assert_non_null(strstr(body, "unsubscribed")); /* the confirmation, never the first reply */
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM messages WHERE to_e164 = '%s' AND kind = 'first_reply'"
                                 " AND status = 'failed'", stopper), 1);
    assert_int_equal(held_count(tenant), 0);
    assert_int_equal(pause_flag(0), 200); /* resuming twice releases nothing twice */
    e2e_sleep_ms(QUIET_MS);
    for (int i = 0; i < 5; i++)
        assert_int_equal(e2e_sms_count(callers[i]), 1);
}

static void test_first_sms_gates_pause_on_running_server_then_resume(void **state)
{
    (void)state;
    char tenant[40], callers[3][20];
    approved_tenant("+15550002002", tenant);
    assert_int_equal(pause_flag(1), 200);
    for (int i = 0; i < 3; i++) {
        e2e_caller(callers[i]);
        call_from(callers[i], "+15550002002");
    }
    wait_held(tenant, 3);
    e2e_sleep_ms(QUIET_MS);
    for (int i = 0; i < 3; i++)
        assert_int_equal(e2e_sms_count(callers[i]), 0);
    assert_int_equal(pause_flag(0), 200);
    expect_one_each(callers, 3);
}

/* Released sends that meet a new pause go back on hold and leave with the
 * next resume: none is lost, none doubled. */
static void test_first_sms_gates_quick_pause_flips_lose_nothing(void **state)
{
    (void)state;
    char tenant[40], callers[8][20];
    approved_tenant("+15550002003", tenant);
    assert_int_equal(pause_flag(1), 200);
    for (int i = 0; i < 8; i++) {
        e2e_caller(callers[i]);
        call_from(callers[i], "+15550002003");
    }
    wait_held(tenant, 8);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(pause_flag(0), 200);
        assert_int_equal(pause_flag(1), 200);
    }
    e2e_sleep_ms(QUIET_MS);
    assert_int_equal(pause_flag(0), 200);
    expect_one_each(callers, 8);
    assert_int_equal(held_count(tenant), 0);
}

/* Each bad flags request: a 4xx with a JSON error, and the switch unchanged. */
static void test_first_sms_gates_bad_flag_requests_change_nothing(void **state)
{
    (void)state;
    char resp[1024];
    const char *headers[] = { NULL };
    assert_int_equal(e2e_http(E.nmc.port, "POST", "/v1/admin/flags", headers, "application/json",
                              "{\"pause_outbound_sms\":true}", resp, sizeof resp), 401); /* no admin key */
    assert_int_equal(e2e_http(E.nmc.port, "GET", "/v1/admin/flags", headers, NULL, NULL, resp, sizeof resp), 401);
    static const char *const bad[] = { "{\"pause_outbound_sms\":\"yes\"}", "{\"pause_outbound_sms\":1}",
                                       "{}", "{\"pause_outbound_sms\":true,\"other\":1}", "[true]", "{nope" };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(bad); i++) {
        assert_int_equal(e2e_admin("POST", "/v1/admin/flags", bad[i], resp, sizeof resp), 400);
        assert_non_null(strstr(resp, "\"error\""));
    }
    assert_false(paused_here(E.nmc.port));
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM ops_flags WHERE enabled"), 0);
}

/* A second instance B on the same database and emulator. */
static void start_second(struct nmc_proc *b, char base[64])
{
    nmc_proc_init(b, E.db_url);
    nmc_proc_setenv(b, "TWILIO_API_BASE", E.fakes.base_url);
    nmc_proc_setenv(b, "TWILIO_AUTH_TOKEN", E2E_TOKEN);
    nmc_proc_setenv(b, "OUTBOX_POLL_INTERVAL_MS", "200");
    /* a crashed instance leaves its claimed events to their lease: A takes
     * them over after 1 s instead of 30 */
    nmc_proc_setenv(b, "NMC_OUTBOX_LEASE_MS", "1000");
    snprintf(base, 64, "http://127.0.0.1:%d", b->port);
    nmc_proc_setenv(b, "PUBLIC_BASE_URL", base);
    assert_int_equal(nmc_proc_start(b, NULL), 0);
}

/* Polls until the instance on port is (un)paused; the ms it took. */
static int64_t wait_paused_here(int port, int want)
{
    int64_t t0 = e2e_now_ms();
    while (paused_here(port) != want && e2e_now_ms() - t0 < 10000)
        e2e_sleep_ms(10);
    assert_int_equal(paused_here(port), want);
    return e2e_now_ms() - t0;
}

static void test_first_sms_gates_pause_is_fleet_wide(void **state)
{
    (void)state;
    char tenant[40], callers[3][20], base[64], sid[40];
    const char *number = "+15550002009";
    struct nmc_proc b;
    approved_tenant(number, tenant);
    start_second(&b, base);
    assert_false(paused_here(b.port));

    /* paused through A: B holds its sends as soon as the notification lands */
    assert_int_equal(pause_flag(1), 200);
    assert_true(wait_paused_here(b.port, 1) < 2000); /* B's safety-net poll is 5 s */
    json_t *f = flags_at(b.port);
    assert_true(json_is_true(json_object_get(f, "pause_outbound_sms")));
    assert_true(json_is_false(json_object_get(f, "environment_pause")));
    json_decref(f);
    for (int i = 0; i < 3; i++) {
        e2e_caller(callers[i]);
        snprintf(sid, sizeof sid, "CAfleet%06d%s", ++E.seq, callers[i] + 8);
        assert_int_equal(e2e_missed_call_at(b.port, base, sid, callers[i], number), 200);
    }
    wait_held(tenant, 3);

    /* B crashes and comes back while the fleet is paused: it reads the
     * switch before it is ready and releases nothing (it used to release
     * every held send); what B#1 had taken and not settled returns after its
     * 1 s lease, possibly together with the release below */
    nmc_proc_kill9(&b);
    assert_int_equal(nmc_proc_start(&b, NULL), 0);
    assert_true(paused_here(b.port));
    e2e_sleep_ms(QUIET_MS);
    assert_int_equal(held_count(tenant), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(e2e_sms_count(callers[i]), 0);

    /* resumed through B: A follows, and each held send leaves once */
    assert_int_equal(e2e_admin_at(b.port, "POST", "/v1/admin/flags", "{\"pause_outbound_sms\":false}", NULL, 0),
                     200);
    assert_true(wait_paused_here(E.nmc.port, 0) < 2000);
    expect_one_each(callers, 3);
    assert_int_equal(held_count(tenant), 0);
    stop_ok(&b);
    nmc_proc_free(&b);
    /* anything B#1 left unsettled has been delivered by now (lease) */
    wait_all_dispatched();
    for (int i = 0; i < 3; i++)
        assert_int_equal(e2e_sms_count(callers[i]), 1);
}

/* The race the claim closes, made on purpose: one released send ('retry')
 * and two events that drive it, claimed in the same poll, so two jobs load
 * it at once. Exactly one SMS; the loser is counted. */
static void test_first_sms_gates_released_send_reaching_two_jobs_is_sent_once(void **state)
{
    (void)state;
    char tenant[40], caller[20], mid[40];
    const char *number = "+15550002010";
    approved_tenant(number, tenant);
    assert_int_equal(pause_flag(1), 200);
    e2e_caller(caller);
    call_from(caller, number);
    wait_held(tenant, 1);
    e2e_sql_text(mid, sizeof mid, "SELECT id FROM messages WHERE tenant_id = '%s' AND status = 'held'", tenant);
    double lost0 = e2e_metric("sms_release_claims_lost_total");
    /* released by hand, with two events that only become due after the resume */
    e2e_sql_int("WITH m AS (UPDATE messages SET status = 'retry', hold_reason = NULL WHERE id = '%s'"
                " RETURNING id, tenant_id, kind)"
                " INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, causation_id,"
                " available_at)"
                " SELECT 'SmsSendReleased', 1, jsonb_build_object('tenant_id', m.tenant_id, 'message_id', m.id,"
                " 'kind', m.kind, 'released_at', nmc_utc_text(now())), m.tenant_id, 'test-race',"
                " now() + interval '600 milliseconds' FROM m, generate_series(1, 2) RETURNING 1",
                mid);
    assert_int_equal(pause_flag(0), 200); /* releases nothing: the row is 'retry' already */
    assert_int_equal(e2e_wait_sms(caller, 1, 10000), 1);
    e2e_sleep_ms(QUIET_MS);
    assert_int_equal(e2e_sms_count(caller), 1);
    for (int i = 0; i < 100 && e2e_metric("sms_release_claims_lost_total") < lost0 + 1; i++)
        e2e_sleep_ms(20);
    assert_true(e2e_metric("sms_release_claims_lost_total") >= lost0 + 1);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events WHERE causation_id = 'test-race'"
                                 " AND dispatched_at IS NOT NULL"), 2);
}

static void test_first_sms_gates_opted_out_caller_gets_no_first_sms(void **state)
{
    (void)state;
    char tenant[40], caller[20], body[2048];
    approved_tenant("+15550002004", tenant);
    e2e_caller(caller);
    assert_int_equal(e2e_inbound_sms("SMgatestop02", caller, "+15550002004", "stop"), 200);
    assert_int_equal(e2e_wait_sms(caller, 1, 10000), 1);
    double blocked0 = e2e_metric("first_sms_blocked_total{reason=\"opted_out\"}");
    call_from(caller, "+15550002004");
    call_from(caller, "+15550002004");
    for (int i = 0; i < 400 && e2e_metric("first_sms_blocked_total{reason=\"opted_out\"}") < blocked0 + 2; i++)
        e2e_sleep_ms(25);
    assert_true(e2e_metric("first_sms_blocked_total{reason=\"opted_out\"}") >= blocked0 + 2);
    e2e_sleep_ms(QUIET_MS);
    assert_int_equal(e2e_sms_count_body(caller, body, sizeof body), 1);
    assert_non_null(strstr(body, "unsubscribed"));
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM messages WHERE to_e164 = '%s' AND kind = 'first_reply'",
                                 caller), 0);
}

static int log_mentions(const char *a, const char *b)
{
    FILE *fp = fopen(E.nmc.log_path, "r");
    char line[4096];
    int found = 0;
    assert_non_null(fp);
    while (!found && fgets(line, sizeof line, fp) != NULL)
        found = strstr(line, a) != NULL && strstr(line, b) != NULL;
    fclose(fp);
    return found;
}

static void test_first_sms_gates_compliance_holds_until_approved_then_sends_once(void **state)
{
    (void)state;
    char tenant[40], callers[2][20], stale[20], target[80], resp[4096];
    e2e_create_tenant("Pending Plumbing", "+15550002005", "pending", tenant);
    double blocked0 = e2e_metric("first_sms_blocked_total{reason=\"compliance\"}");
    for (int i = 0; i < 2; i++) {
        e2e_caller(callers[i]);
        call_from(callers[i], "+15550002005");
    }
    call_from(callers[0], "+15550002005"); /* calls again: the repeat window keeps it to one reply */
    e2e_caller(stale);
    call_from(stale, "+15550002005");
    wait_held(tenant, 3);
    for (int i = 0; i < 400 && e2e_metric("first_sms_blocked_total{reason=\"compliance\"}") < blocked0 + 3; i++)
        e2e_sleep_ms(25);
    assert_true(e2e_metric("first_sms_blocked_total{reason=\"compliance\"}") >= blocked0 + 3);
    assert_true(log_mentions("first_reply.blocked", "\"compliance\""));
    e2e_sleep_ms(QUIET_MS);
    assert_int_equal(e2e_sms_count(callers[0]), 0);
    assert_int_equal(e2e_sms_count(callers[1]), 0);
    assert_int_equal(e2e_sms_count(stale), 0);
    /* the third caller's call is older than the 24 h bound by the time of the approval */
    char q[256];
    snprintf(q, sizeof q, "UPDATE messages SET created_at = now() - interval '25 hours' WHERE to_e164 = '%s'", stale);
    pgtest_exec(E.pg, q);

    snprintf(target, sizeof target, "/v1/admin/tenants/%s", tenant);
    assert_int_equal(e2e_admin("PATCH", target, "{\"compliance_status\":\"approved\"}", resp, sizeof resp), 200);
    expect_one_each(callers, 2);
    assert_int_equal(e2e_sms_count(stale), 0);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM messages WHERE to_e164 = '%s' AND status = 'failed'"
                                 " AND error_message LIKE 'not sent: compliance approved more than%%'", stale), 1);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events WHERE event_name = 'ComplianceStatusChanged'"
                                 " AND tenant_id = '%s' AND payload->>'to' = 'approved'", tenant), 1);
    /* revoked and approved again, and the missed call replayed: nothing is sent twice */
    assert_int_equal(e2e_admin("PATCH", target, "{\"compliance_status\":\"pending\"}", resp, sizeof resp), 200);
    assert_int_equal(e2e_admin("PATCH", target, "{\"compliance_status\":\"approved\"}", resp, sizeof resp), 200);
    e2e_sleep_ms(QUIET_MS);
    assert_int_equal(e2e_sms_count(callers[0]), 1);
    assert_int_equal(e2e_sms_count(callers[1]), 1);
    assert_int_equal(e2e_sms_count(stale), 0);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events WHERE event_name = 'ComplianceStatusChanged'"
                                 " AND tenant_id = '%s' AND dispatched_at IS NULL", tenant), 0);
}

/* Approved, then a call, then revoked: the new tenant state blocks at once. */
static void test_first_sms_gates_compliance_rejected_blocks(void **state)
{
    (void)state;
    char tenant[40], caller[20], target[80], resp[4096];
    approved_tenant("+15550002006", tenant);
    snprintf(target, sizeof target, "/v1/admin/tenants/%s", tenant);
    assert_int_equal(e2e_admin("PATCH", target, "{\"compliance_status\":\"rejected\"}", resp, sizeof resp), 200);
    e2e_caller(caller);
    call_from(caller, "+15550002006");
    wait_held(tenant, 1);
    e2e_sleep_ms(QUIET_MS);
    assert_int_equal(e2e_sms_count(caller), 0);
}

static void test_first_sms_gates_emitted_payloads_match_catalog(void **state)
{
    (void)state;
    PGresult *r = PQexec(E.pg, "SELECT event_name, schema_version, payload::text FROM outbox_events UNION ALL"
                               " SELECT event_name, schema_version, payload::text FROM outbox_events_errors");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    int released = 0, compliance = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        char err[512];
        released += strcmp(PQgetvalue(r, i, 0), "SmsSendReleased") == 0;
        compliance += strcmp(PQgetvalue(r, i, 0), "ComplianceStatusChanged") == 0;
        if (json_schema_validate_event(PQgetvalue(r, i, 0), (int)strtol(PQgetvalue(r, i, 1), NULL, 10),
                                       PQgetvalue(r, i, 2), err, sizeof err) != 0) {
            char name[64];
            snprintf(name, sizeof name, "%s", PQgetvalue(r, i, 0));
            PQclear(r);
            fail_msg("%s: %s", name, err);
        }
    }
    PQclear(r);
    assert_true(released > 0);
    assert_true(compliance > 0);
}

static int setup(void **state)
{
    (void)state;
    e2e_setup((const char *const[]){ "--status-callbacks", NULL });
    nmc_proc_setenv(&E.nmc, "PAUSE_OUTBOUND_SMS", "true");
    assert_int_equal(nmc_proc_start(&E.nmc, NULL), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_teardown();
    return 0;
}

/* The body of the first (only) SMS a new caller gets after a missed call. */
static void first_reply_of_new_caller(const char *business, char *body, size_t len)
{
    char caller[20];
    e2e_caller(caller);
    call_from(caller, business);
    assert_int_equal(e2e_wait_sms(caller, 1, 10000), 1);
    assert_int_equal(e2e_sms_count_body(caller, body, len), 1);
}

/* First replies render from a cached copy of the tenant (one round trip
 * fewer), which must never outlive a change: templates, business hours and
 * the name changed through the admin API, or by SQL without touching
 * updated_at, reach the very next call (the intent refuses a stale copy). */
static void test_first_sms_gates_tenant_changes_reach_the_next_call(void **state)
{
    (void)state;
    char tenant[40], target[80], resp[4096], body[2048], q[256];
    const char *number = "+15550002008";
    approved_tenant(number, tenant);
    snprintf(target, sizeof target, "/v1/admin/tenants/%s", tenant);
    assert_int_equal(e2e_admin("PATCH", target,
                               "{\"settings\":{\"business_hours\":{},"
                               "\"first_reply_template_in_hours\":\"IN-1 {business_name}\","
                               "\"first_reply_template_after_hours\":\"AFTER-1 {business_name}\"}}",
                               resp, sizeof resp), 200);
    double hit0 = e2e_metric("conversation_tenant_cache_total{result=\"hit\"}");
    double stale0 = e2e_metric("conversation_tenant_cache_total{result=\"stale\"}");
    first_reply_of_new_caller(number, body, sizeof body); /* reads the tenant, fills the cache */
    assert_non_null(strstr(body, "IN-1 Gate Plumbing"));
    double fused0 = e2e_metric("conversation_first_reply_intents_total{path=\"webhook_txn\"}");
    first_reply_of_new_caller(number, body, sizeof body); /* from the cache */
    assert_non_null(strstr(body, "IN-1 Gate Plumbing"));
    assert_true(e2e_metric("conversation_tenant_cache_total{result=\"hit\"}") >= hit0 + 1);
    /* with the tenant cached, the intent committed in the webhook's own
     * transaction, and CallDetected still reached every consumer: the
     * conversation's ack (it got no copy) let the outbox mark it dispatched */
    assert_true(e2e_metric("conversation_first_reply_intents_total{path=\"webhook_txn\"}") >= fused0 + 1);
    wait_all_dispatched();

    assert_int_equal(e2e_admin("PATCH", target, "{\"settings\":{\"first_reply_template_in_hours\":"
                                                "\"IN-2 {business_name}\"}}", resp, sizeof resp), 200);
    first_reply_of_new_caller(number, body, sizeof body);
    assert_non_null(strstr(body, "IN-2 Gate Plumbing"));
    assert_true(e2e_metric("conversation_tenant_cache_total{result=\"stale\"}") >= stale0 + 1);

    /* business hours that are never open (no range on any day): after hours */
    assert_int_equal(e2e_admin("PATCH", target, "{\"settings\":{\"business_hours\":{\"mon\":[]}}}", resp,
                               sizeof resp), 200);
    first_reply_of_new_caller(number, body, sizeof body);
    assert_non_null(strstr(body, "AFTER-1 Gate Plumbing"));

    snprintf(q, sizeof q, "UPDATE tenants SET name = 'Renamed Drains' WHERE id = '%s'", tenant);
    pgtest_exec(E.pg, q);
    first_reply_of_new_caller(number, body, sizeof body);
    assert_non_null(strstr(body, "AFTER-1 Renamed Drains"));
    assert_true(e2e_metric("conversation_tenant_cache_total{result=\"stale\"}") >= stale0 + 3);
}

/* HELP (and INFO) answers with the tenant's help_text when it set one,
 * rendered like the first reply's templates; without one, the default help
 * text. */
static void test_first_sms_gates_help_text_answers_help(void **state)
{
    (void)state;
    char tenant[40], target[80], resp[4096], body[2048], caller[20], sid[40];
    const char *number = "+15550002011";
    approved_tenant(number, tenant);
    e2e_caller(caller);
    snprintf(sid, sizeof sid, "SMhelpdefault%s", caller + 2);
    assert_int_equal(e2e_inbound_sms(sid, caller, number, "help"), 200);
    assert_int_equal(e2e_wait_sms(caller, 1, 10000), 1);
    assert_int_equal(e2e_sms_count_body(caller, body, sizeof body), 1);
    assert_non_null(strstr(body, "Reply STOP to unsubscribe"));

    snprintf(target, sizeof target, "/v1/admin/tenants/%s", tenant);
    assert_int_equal(e2e_admin("PATCH", target,
                               "{\"settings\":{\"help_text\":\"{business_name} help desk: call {business_phone}."
                               " Reply STOP to opt out.\"}}",
                               resp, sizeof resp),
                     200);
    snprintf(sid, sizeof sid, "SMhelpcustom%s", caller + 2);
    assert_int_equal(e2e_inbound_sms(sid, caller, number, " INFO "), 200);
    assert_int_equal(e2e_wait_sms(caller, 2, 10000), 2);
    assert_int_equal(e2e_sms_count_body(caller, body, sizeof body), 2);
    char want[256];
    snprintf(want, sizeof want, " help desk: call %s. Reply STOP to opt out.", number);
    assert_int_equal(strncmp(body, "Gate Plumbing ", 14), 0); /* the tenant's name, then its text */
    assert_non_null(strstr(body, want));
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM messages WHERE to_e164 = '%s' AND kind = 'help'", caller), 2);
}

/* Waits (up to 10 s) until the count the SQL (printf-style) reads is want. */
static void wait_count(int64_t want, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wait_count(int64_t want, const char *fmt, ...)
{
    char q[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    for (int i = 0; i < 400 && pgtest_int(E.pg, q) != want; i++)
        e2e_sleep_ms(25);
    assert_int_equal(pgtest_int(E.pg, q), want);
}

/* Migration 0045 (docs/decisions/keyword-replies-compliance.md): a tenant
 * not approved sends no keyword reply. STOP still opts the caller out (and
 * keeps the first reply held for compliance from being sent on approval);
 * the replies are recorded as failed, counted and logged, and the approval
 * sends none of them. A HELP answer held for the pause whose tenant is
 * revoked before the resume is not sent either. */
static void test_first_sms_gates_keyword_replies_need_compliance(void **state)
{
    (void)state;
    char tenant[40], stopper[20], helper[20], sid[48], target[80], resp[4096];
    const char *number = "+15550002012";
    e2e_create_tenant("Keyword Plumbing", number, "pending", tenant);
    double blocked0 = e2e_metric("sms_keyword_replies_blocked_total{reason=\"compliance\"}");
    e2e_caller(stopper);
    e2e_caller(helper);
    call_from(stopper, number); /* a first reply held for compliance */
    wait_held(tenant, 1);
    snprintf(sid, sizeof sid, "SMkwstop%s", stopper + 2);
    assert_int_equal(e2e_inbound_sms(sid, stopper, number, "STOP"), 200);
    snprintf(sid, sizeof sid, "SMkwhelp%s", helper + 2);
    assert_int_equal(e2e_inbound_sms(sid, helper, number, "help"), 200);
    wait_count(2,
               "SELECT count(*) FROM messages WHERE tenant_id = '%s' AND kind IN ('opt_out_confirm', 'help')"
               " AND status = 'failed' AND error_message = 'not sent: compliance pending'",
               tenant);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM sms_opt_outs WHERE tenant_id = '%s' AND phone_e164 = '%s'"
                                 " AND opted_out",
                                 tenant, stopper),
                     1);
    assert_true(e2e_metric("sms_keyword_replies_blocked_total{reason=\"compliance\"}") >= blocked0 + 2);
    assert_true(log_mentions("keyword_reply.blocked", "\"compliance\""));
    snprintf(target, sizeof target, "/v1/admin/tenants/%s", tenant);
    assert_int_equal(e2e_admin("PATCH", target, "{\"compliance_status\":\"approved\"}", resp, sizeof resp), 200);
    wait_count(1,
               "SELECT count(*) FROM messages WHERE tenant_id = '%s' AND kind = 'first_reply' AND status = 'failed'"
               " AND error_message = 'blocked: recipient opted out'",
               tenant);
    e2e_sleep_ms(QUIET_MS);
    assert_int_equal(e2e_sms_count(stopper), 0); /* neither the confirmation nor the held first reply */
    assert_int_equal(e2e_sms_count(helper), 0);

    /* approved and paused: HELP is held; revoked, then resumed: not sent */
    assert_int_equal(pause_flag(1), 200);
    snprintf(sid, sizeof sid, "SMkwhelp2%s", helper + 2);
    assert_int_equal(e2e_inbound_sms(sid, helper, number, "HELP"), 200);
    wait_count(1, "SELECT count(*) FROM messages WHERE dedupe_key = 'kw:%s' AND hold_reason = 'pause'", sid);
    assert_int_equal(e2e_admin("PATCH", target, "{\"compliance_status\":\"pending\"}", resp, sizeof resp), 200);
    assert_int_equal(pause_flag(0), 200);
    wait_count(1,
               "SELECT count(*) FROM messages WHERE dedupe_key = 'kw:%s' AND status = 'failed'"
               " AND error_message = 'not sent: compliance pending'",
               sid);
    e2e_sleep_ms(QUIET_MS);
    assert_int_equal(e2e_sms_count(helper), 0);
}

/* Messages nmc-fakes accepted from `from` to `to`. */
static int sms_from_to(const char *from, const char *to)
{
    json_t *doc, *msgs = e2e_sms_list(to, &doc), *m;
    assert_non_null(msgs);
    size_t i;
    int n = 0;
    json_array_foreach(msgs, i, m) {
        const char *f = json_string_value(json_object_get(m, "from"));
        n += f != NULL && strcmp(f, from) == 0;
    }
    json_decref(doc);
    return n;
}

/* Every gate is the tenant's: one caller's repeat window, opt-out and
 * conversation with one business say nothing about another business, and
 * one tenant's pending compliance holds only its own replies. */
static void test_first_sms_gates_rules_are_per_tenant(void **state)
{
    (void)state;
    const char *a = "+15550002013", *b = "+15550002014", *c = "+15550002015";
    char ta[40], tb[40], tc[40], x[20], y[20], z[20], sid[48];
    approved_tenant(a, ta);
    approved_tenant(b, tb);
    e2e_create_tenant("Pending Electric", c, "pending", tc);
    e2e_caller(x);
    e2e_caller(y);
    e2e_caller(z);

    /* the repeat window: x calls A, B, then A again */
    call_from(x, a);
    assert_int_equal(e2e_wait_sms(x, 1, 10000), 1);
    call_from(x, b);
    assert_int_equal(e2e_wait_sms(x, 2, 10000), 2);
    call_from(x, a);
    /* the opt-out: y texts STOP to A, then calls A and B */
    snprintf(sid, sizeof sid, "SMtenantstop%s", y + 2);
    assert_int_equal(e2e_inbound_sms(sid, y, a, "STOP"), 200);
    assert_int_equal(e2e_wait_sms(y, 1, 10000), 1); /* A's confirmation */
    call_from(y, a);
    call_from(y, b);
    assert_int_equal(e2e_wait_sms(y, 2, 10000), 2);
    /* compliance: z calls C (pending), then A */
    call_from(z, c);
    wait_held(tc, 1);
    call_from(z, a);
    assert_int_equal(e2e_wait_sms(z, 1, 10000), 1);
    e2e_sleep_ms(QUIET_MS);

    assert_int_equal(sms_from_to(a, x), 1);
    assert_int_equal(sms_from_to(b, x), 1);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM conversations WHERE caller_e164 = '%s' AND status = 'open'", x), 2);
    assert_int_equal(e2e_sql_int("SELECT missed_calls FROM conversations WHERE tenant_id = '%s' AND caller_e164 = '%s'"
                                 " AND status = 'open'",
                                 ta, x),
                     2);
    assert_int_equal(sms_from_to(a, y), 1); /* the confirmation, no first reply */
    assert_int_equal(sms_from_to(b, y), 1);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM sms_opt_outs WHERE phone_e164 = '%s' AND opted_out", y), 1);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM sms_opt_outs WHERE phone_e164 = '%s' AND tenant_id = '%s'", y,
                                 ta),
                     1);
    assert_int_equal(sms_from_to(a, z), 1);
    assert_int_equal(sms_from_to(c, z), 0);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM messages WHERE tenant_id = '%s' AND status = 'held'", tc), 1);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM messages WHERE tenant_id IN ('%s', '%s') AND status = 'held'",
                                 ta, tb),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_sms_gates_pause_at_start_holds_and_resume_sends_once),
        cmocka_unit_test(test_first_sms_gates_pause_on_running_server_then_resume),
        cmocka_unit_test(test_first_sms_gates_quick_pause_flips_lose_nothing),
        cmocka_unit_test(test_first_sms_gates_bad_flag_requests_change_nothing),
        cmocka_unit_test(test_first_sms_gates_pause_is_fleet_wide),
        cmocka_unit_test(test_first_sms_gates_released_send_reaching_two_jobs_is_sent_once),
        cmocka_unit_test(test_first_sms_gates_opted_out_caller_gets_no_first_sms),
        cmocka_unit_test(test_first_sms_gates_compliance_holds_until_approved_then_sends_once),
        cmocka_unit_test(test_first_sms_gates_compliance_rejected_blocks),
        cmocka_unit_test(test_first_sms_gates_emitted_payloads_match_catalog),
        cmocka_unit_test(test_first_sms_gates_tenant_changes_reach_the_next_call),
        cmocka_unit_test(test_first_sms_gates_help_text_answers_help),
        cmocka_unit_test(test_first_sms_gates_keyword_replies_need_compliance),
        cmocka_unit_test(test_first_sms_gates_rules_are_per_tenant),
    };
    return cmocka_run_group_tests_name("e2e_first_sms_gates", tests, setup, teardown);
}
