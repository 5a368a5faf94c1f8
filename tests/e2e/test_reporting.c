/* Reporting end to end on the real binary, PostgreSQL and nmc-fakes: a
 * missed call opens a conversation; two appointments are booked (one by the
 * caller's phone), one is cancelled; the events are then replayed by
 * resetting their outbox rows. Counters, the ledger, the attribution and the
 * daily rollup must count everything exactly once; the report route answers
 * the rollup for the caller's tenant only and refuses bad ranges. The SLO
 * gauge reads at most the newest 20,000 first responses of its 15 minutes,
 * and is right as soon as an instance starts. */
#include "tests/e2e/first_sms_e2e.h"

#define BUSINESS_A "+15550007001"
#define BUSINESS_B "+15550007002"
#define CALLER "+15550107001"
#define OTHER "+15550107002"
#define CALLER2 "+15550107003"
#define PRICE 15000
#define TZ "America/New_York"

static char tenant_a[40], tenant_b[40], key_a[128], key_b[128];

/* POST /v1/admin/tenants; id and "X-API-Key: ..." header out. */
static void tenant_create(const char *name, const char *number, char id[40], char key_hdr[128])
{
    char body[512], resp[4096];
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"timezone\":\"" TZ "\",\"phone_numbers\":[\"%s\"],\"compliance_status\":\"approved\"}",
             name, number);
    int st = e2e_admin("POST", "/v1/admin/tenants", body, resp, sizeof resp);
    if (st != 201)
        fail_msg("POST /v1/admin/tenants: %d %s", st, resp);
    json_t *j = json_loads(resp, 0, NULL);
    assert_non_null(json_string_value(json_object_get(j, "api_key")));
    snprintf(id, 40, "%s", json_string_value(json_object_get(j, "id")));
    snprintf(key_hdr, 128, "X-API-Key: %s", json_string_value(json_object_get(j, "api_key")));
    json_decref(j);
}

/* A tenant API request; the JSON answer (caller decrefs) when out is not NULL. */
static int api(const char *key_hdr, const char *method, const char *target, const char *body, json_t **out,
               const char *extra)
{
    static char resp[E2E_RESP_MAX];
    const char *headers[] = { key_hdr, extra, NULL };
    int st = e2e_http(E.nmc.port, method, target, headers, body ? "application/json" : NULL, body, resp, sizeof resp);
    if (out != NULL)
        *out = json_loads(resp, 0, NULL);
    return st;
}

static char *must_id(const char *key_hdr, const char *method, const char *target, const char *body, int want,
                     const char *extra)
{
    json_t *j = NULL;
    int st = api(key_hdr, method, target, body, &j, extra);
    if (st != want) {
        char *s = j ? json_dumps(j, 0) : NULL;
        fail_msg("%s %s: want %d, got %d %s", method, target, want, st, s ? s : "");
    }
    const char *id = json_string_value(json_object_get(j, "id"));
    assert_non_null(id);
    char *copy = strdup(id);
    json_decref(j);
    return copy;
}

/* Waits up to 15 s until the SQL count is want. */
static void wait_count(int64_t want, const char *sql)
{
    for (int i = 0; i < 300; i++) {
        if (pgtest_int(E.pg, sql) == want)
            return;
        e2e_sleep_ms(50);
    }
    fail_msg("timed out waiting for %lld: %s (now %lld)", (long long)want, sql, (long long)pgtest_int(E.pg, sql));
}

static char *book(const char *item, const char *res, int day, const char *phone)
{
    char target[256], body[512], key[80];
    char start[40];
    e2e_sql_text(start, sizeof start,
                 "SELECT to_char((((now() AT TIME ZONE '" TZ "')::date + %d) + time '10:00') AT TIME ZONE '" TZ
                 "' AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", day);
    snprintf(body, sizeof body,
             "{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\",\"customer_phone\":\"%s\"}", res, item,
             start, phone);
    char *hold = must_id(key_a, "POST", "/v1/scheduling/holds", body, 201, NULL);
    snprintf(body, sizeof body, "{\"hold_id\":\"%s\"}", hold);
    snprintf(key, sizeof key, "Idempotency-Key: rep-%s", hold);
    snprintf(target, sizeof target, "/v1/scheduling/bookings");
    char *appt = must_id(key_a, "POST", target, body, 201, key);
    free(hold);
    return appt;
}

static int setup(void **state)
{
    (void)state;
    e2e_setup(NULL);
    nmc_proc_setenv(&E.nmc, "NMC_REPORTING_SWEEP_MS", "1000"); /* a day marked by hand is found within 1 s */
    nmc_proc_setenv(&E.nmc, "NMC_REPORTING_ROLLUP_MS", "1000"); /* and a day marked by an event too */
    assert_int_equal(nmc_proc_start(&E.nmc, NULL), 0);
    tenant_create("Reporting A", BUSINESS_A, tenant_a, key_a);
    tenant_create("Reporting B", BUSINESS_B, tenant_b, key_b);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_teardown();
    return 0;
}

static void check_metrics(double booked, double revenue, double cancelled)
{
    assert_true(e2e_metric("kpi_appointments_booked_total") == booked);
    assert_true(e2e_metric("kpi_attributed_revenue_cents_total") == revenue);
    assert_true(e2e_metric("kpi_appointments_cancelled_total") == cancelled);
    assert_true(e2e_metric("kpi_conversations_started_total") == 1);
    assert_true(e2e_metric("kpi_first_replies_sent_total") == 1);
}

/* The rollup row of tenant A's local today, as "calls,convs,replies,booked,cancelled,revenue,has_p50,has_p95". */
static void rollup_text(char *out, size_t len)
{
    e2e_sql_text(out, len,
                 "SELECT concat_ws(',', calls_detected, conversations_started, first_replies, appointments_booked,"
                 " appointments_cancelled, attributed_revenue_cents, first_response_p50_seconds IS NOT NULL,"
                 " first_response_p95_seconds >= first_response_p50_seconds) FROM reporting_daily"
                 " WHERE tenant_id = '%s' AND day = (now() AT TIME ZONE '" TZ "')::date", tenant_a);
}

static void wait_rollup(const char *want)
{
    char got[200] = "";
    for (int i = 0; i < 300; i++) {
        rollup_text(got, sizeof got);
        if (strcmp(got, want) == 0)
            return;
        e2e_sleep_ms(50);
    }
    fail_msg("rollup: want %s, got %s", want, got);
}

static void replay(const char *names)
{
    char q[512];
    snprintf(q, sizeof q,
             "UPDATE outbox_events SET dispatched_at = NULL, attempts = 0, available_at = now(), locked_by = NULL,"
             " locked_until = NULL WHERE event_name IN (%s)", names);
    pgtest_exec(E.pg, q);
    snprintf(q, sizeof q, "SELECT count(*) FROM outbox_events WHERE event_name IN (%s) AND dispatched_at IS NULL",
             names);
    wait_count(0, q);
}

static void test_reporting_bookings_counted_once_and_attributed(void **state)
{
    (void)state;
    char q[512];
    assert_int_equal(e2e_missed_call("CArep0001", CALLER, BUSINESS_A), 200);
    snprintf(q, sizeof q, "SELECT count(*) FROM first_responses WHERE tenant_id = '%s' AND first_queued_at IS NOT NULL",
             tenant_a);
    wait_count(1, q);
    char *item = must_id(key_a, "POST", "/v1/catalog/items",
                         "{\"name\":\"Drain cleaning\",\"price_cents\":15000,\"duration_minutes\":60}", 201, NULL);
    char *res = must_id(key_a, "POST", "/v1/scheduling/resources",
                        "{\"name\":\"Bob\",\"business_hours\":{\"mon\":[[\"08:00\",\"17:00\"]],\"tue\":[[\"08:00\","
                        "\"17:00\"]],\"wed\":[[\"08:00\",\"17:00\"]],\"thu\":[[\"08:00\",\"17:00\"]],\"fri\":[["
                        "\"08:00\",\"17:00\"]],\"sat\":[[\"08:00\",\"17:00\"]],\"sun\":[[\"08:00\",\"17:00\"]]}}",
                        201, NULL);
    char *attributed = book(item, res, 1, CALLER);
    char *plain = book(item, res, 2, OTHER);
    /* The catalog price changes after booking: revenue keeps the snapshot. */
    char target[256];
    snprintf(target, sizeof target, "/v1/catalog/items/%s", item);
    json_t *j = NULL;
    assert_int_equal(api(key_a, "PATCH", target, "{\"price_cents\":99900}", &j, NULL), 200);
    json_decref(j);
    wait_count(2, "SELECT count(*) FROM reporting_appointments");
    snprintf(target, sizeof target, "/v1/scheduling/appointments/%s", plain);
    assert_int_equal(api(key_a, "PATCH", target, "{\"status\":\"cancelled\"}", &j, NULL), 200);
    json_decref(j);
    wait_count(1, "SELECT count(*) FROM reporting_appointments WHERE cancelled_at IS NOT NULL");

    snprintf(q, sizeof q,
             "SELECT count(*) FROM reporting_attributions x JOIN conversations c ON c.id = x.conversation_id"
             " JOIN missed_calls m ON m.id = x.missed_call_id WHERE x.appointment_id = '%s' AND x.price_cents = %d"
             " AND c.caller_e164 = '" CALLER "' AND m.call_sid = 'CArep0001'", attributed, PRICE);
    if (pgtest_int(E.pg, q) != 1) {
        char dbg[2048];
        e2e_sql_text(dbg, sizeof dbg, "SELECT concat((SELECT json_agg(x)::text FROM reporting_attributions x), ' | ',"
                     " (SELECT json_agg(c)::text FROM conversations c), ' | ', (SELECT json_agg(a)::text FROM"
                     " reporting_appointments a), ' | ', (SELECT json_agg(m)::text FROM missed_calls m))");
        fail_msg("attribution of %s missing: %s", attributed, dbg);
    }
    assert_int_equal(pgtest_int(E.pg, "SELECT count(*) FROM reporting_attributions"), 1);
    wait_rollup("1,1,1,2,1,15000,t,t");
    check_metrics(2, PRICE, 1);
    int64_t ledger = pgtest_int(E.pg, "SELECT count(*) FROM reporting_processed_events");

    replay("'AppointmentBooked','AppointmentCancelled','ConversationStarted','FirstReplySent','CallDetected'");
    check_metrics(2, PRICE, 1);
    assert_int_equal(pgtest_int(E.pg, "SELECT count(*) FROM reporting_processed_events"), ledger);
    assert_int_equal(pgtest_int(E.pg, "SELECT count(*) FROM reporting_attributions"), 1);
    assert_int_equal(pgtest_int(E.pg, "SELECT count(*) FROM outbox_events_errors"), 0);
    wait_rollup("1,1,1,2,1,15000,t,t");
    assert_true(e2e_metric("reporting_projector_lag_seconds") >= 0);
    free(attributed);
    free(plain);
    free(item);
    free(res);
}

/* Spec 4.8: the day's quantiles are recomputed (UPSERT, one row per day) when
 * a new first response lands, equal to the quantiles over the tracker's rows;
 * a tracker row still waiting for its reply gives no latency. */
static void test_reporting_rollup_recomputes_quantiles_with_new_data(void **state)
{
    (void)state;
    char q[1024], want[200], got[200];
    assert_int_equal(e2e_missed_call("CArep0002", CALLER2, BUSINESS_A), 200);
    snprintf(q, sizeof q, "SELECT count(*) FROM first_responses WHERE tenant_id = '%s' AND first_queued_at IS NOT NULL",
             tenant_a);
    wait_count(2, q);
    wait_rollup("2,2,2,2,1,15000,t,t");
    snprintf(q, sizeof q,
             "SELECT count(*) FROM reporting_daily r, LATERAL (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x)"
             " p50, percentile_cont(0.95) WITHIN GROUP (ORDER BY x) p95 FROM (SELECT extract(epoch FROM"
             " first_queued_at - triggered_at)::float8 x FROM first_responses WHERE tenant_id = '%s'"
             " AND first_queued_at IS NOT NULL) s) f"
             " WHERE r.tenant_id = '%s' AND abs(r.first_response_p50_seconds - f.p50) < 1e-9"
             " AND abs(r.first_response_p95_seconds - f.p95) < 1e-9", tenant_a, tenant_a);
    assert_int_equal(pgtest_int(E.pg, q), 1);
    snprintf(q, sizeof q, "SELECT count(*) FROM reporting_daily WHERE tenant_id = '%s'", tenant_a);
    assert_int_equal(pgtest_int(E.pg, q), 1);
    /* The second reply not accepted yet: the day counts one measured latency, and it is the first one. */
    snprintf(q, sizeof q,
             "UPDATE first_responses f SET first_queued_at = NULL FROM conversations c WHERE c.id = f.conversation_id"
             " AND c.caller_e164 = '" CALLER2 "';"
             " INSERT INTO reporting_dirty_days (tenant_id, day) VALUES ('%s', (now() AT TIME ZONE '" TZ "')::date)",
             tenant_a);
    pgtest_exec(E.pg, q);
    wait_rollup("2,2,1,2,1,15000,t,t");
    e2e_sql_text(want, sizeof want,
                 "SELECT extract(epoch FROM first_queued_at - triggered_at)::float8 FROM first_responses"
                 " WHERE tenant_id = '%s' AND first_queued_at IS NOT NULL", tenant_a);
    e2e_sql_text(got, sizeof got, "SELECT first_response_p95_seconds FROM reporting_daily WHERE tenant_id = '%s'",
                 tenant_a);
    assert_string_equal(got, want);
}

static void test_reporting_daily_route_answers_own_tenant(void **state)
{
    (void)state;
    char today[16], target[128];
    e2e_sql_text(today, sizeof today, "SELECT (now() AT TIME ZONE '" TZ "')::date::text");
    snprintf(target, sizeof target, "/v1/reports/daily?from=%s&to=%s", today, today);
    json_t *j = NULL;
    assert_int_equal(api(key_a, "GET", target, NULL, &j, NULL), 200);
    json_t *d = json_array_get(json_object_get(j, "days"), 0);
    assert_int_equal(json_array_size(json_object_get(j, "days")), 1);
    assert_string_equal(json_string_value(json_object_get(d, "day")), today);
    assert_int_equal(json_integer_value(json_object_get(d, "appointments_booked")), 2);
    assert_int_equal(json_integer_value(json_object_get(d, "appointments_cancelled")), 1);
    assert_int_equal(json_integer_value(json_object_get(d, "attributed_revenue_cents")), PRICE);
    assert_int_equal(json_integer_value(json_object_get(d, "calls_detected")), 2);
    assert_int_equal(json_integer_value(json_object_get(d, "first_replies")), 1);
    assert_true(json_is_number(json_object_get(d, "first_response_p95_seconds")));
    json_decref(j);

    assert_int_equal(api(key_b, "GET", target, NULL, &j, NULL), 200);
    d = json_array_get(json_object_get(j, "days"), 0);
    assert_int_equal(json_integer_value(json_object_get(d, "appointments_booked")), 0);
    assert_int_equal(json_integer_value(json_object_get(d, "calls_detected")), 0);
    assert_true(json_is_null(json_object_get(d, "first_response_p95_seconds")));
    json_decref(j);

    assert_int_equal(api(key_a, "GET", "/v1/reports/daily?from=2026-01-01&to=2026-04-02", NULL, &j, NULL), 200);
    assert_int_equal(json_array_size(json_object_get(j, "days")), 92);
    json_decref(j);
    static const char *const bad[] = {
        "/v1/reports/daily?from=2026-01-01&to=2026-04-03", "/v1/reports/daily?from=2026-02-30&to=2026-03-01",
        "/v1/reports/daily?from=2026-03-02&to=2026-03-01", "/v1/reports/daily?from=2026-3-1&to=2026-03-01",
        "/v1/reports/daily?to=2026-03-01", "/v1/reports/daily?from=yesterday&to=2026-03-01",
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(bad); i++) {
        assert_int_equal(api(key_a, "GET", bad[i], NULL, &j, NULL), 400);
        const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        assert_non_null(msg);
        json_decref(j);
    }
    assert_int_equal(api(NULL, "GET", target, NULL, NULL, NULL), 401);
    assert_int_equal(api("X-API-Key: nope", "GET", target, NULL, NULL, NULL), 401);
}

static void test_reporting_malformed_event_dead_lettered_and_counted(void **state)
{
    (void)state;
    char q[512];
    snprintf(q, sizeof q,
             "INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id)"
             " VALUES ('AppointmentBooked', 1,"
             " '{\"tenant_id\":\"%s\",\"appointment_id\":\"00000000-0000-4000-8000-000000000001\","
             "\"booked_at\":\"2026-01-01T10:00:00Z\"}', '%s')", tenant_a, tenant_a);
    pgtest_exec(E.pg, q);
    wait_count(1, "SELECT count(*) FROM outbox_events_errors WHERE event_name = 'AppointmentBooked'");
    assert_true(e2e_metric("reporting_projection_errors_total{projector=\"appointments\"}") == 1);
    assert_true(e2e_metric("kpi_appointments_booked_total") == 2);
}

/* Inserts an outbox event for tenant A (payload printf-style). */
static void emit(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(const char *name, const char *fmt, ...)
{
    char payload[1024], q[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(payload, sizeof payload, fmt, ap);
    va_end(ap);
    snprintf(q, sizeof q,
             "INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id) VALUES ('%s', 1, '%s', '%s')",
             name, payload, tenant_a);
    pgtest_exec(E.pg, q);
}

/* A cancellation that overtakes its booking is retried (not lost, not dead-
 * lettered) and applied once the booking is projected; a second booking
 * event for the same appointment (new event_id) counts nothing. */
static void test_reporting_cancel_before_booking_retried_then_applied(void **state)
{
    (void)state;
    char now[40];
    const char *appt = "00000000-0000-4000-8000-0000000000a1";
    e2e_sql_text(now, sizeof now, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
    double booked = e2e_metric("kpi_appointments_booked_total");
    double revenue = e2e_metric("kpi_attributed_revenue_cents_total");
    double cancelled = e2e_metric("kpi_appointments_cancelled_total");
    emit("AppointmentCancelled", "{\"tenant_id\":\"%s\",\"appointment_id\":\"%s\",\"price_cents\":5000,"
         "\"cancelled_at\":\"%s\"}", tenant_a, appt, now);
    wait_count(1, "SELECT count(*) FROM outbox_events WHERE event_name = 'AppointmentCancelled'"
                  " AND dispatched_at IS NULL AND attempts >= 1 AND last_error LIKE '%not projected yet%'");
#define BOOKING "{\"tenant_id\":\"%s\",\"appointment_id\":\"%s\",\"price_cents\":5000," \
                "\"customer_phone\":\"" CALLER "\",\"conversation_id\":null,\"booked_at\":\"%s\"}"
    emit("AppointmentBooked", BOOKING, tenant_a, appt, now);
    emit("AppointmentBooked", BOOKING, tenant_a, appt, now);
    wait_count(0, "SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL");
    assert_int_equal(pgtest_int(E.pg, "SELECT count(*) FROM reporting_appointments WHERE appointment_id ="
                                      " '00000000-0000-4000-8000-0000000000a1' AND cancelled_at IS NOT NULL"), 1);
    assert_true(e2e_metric("kpi_appointments_booked_total") == booked + 1);
    assert_true(e2e_metric("kpi_attributed_revenue_cents_total") == revenue + 5000);
    assert_true(e2e_metric("kpi_appointments_cancelled_total") == cancelled + 1);
    assert_int_equal(pgtest_int(E.pg, "SELECT count(*) FROM outbox_events_errors WHERE event_name ="
                                      " 'AppointmentCancelled'"), 0);
    wait_rollup("2,2,1,3,2,15000,t,t");
}

/* Ledger rows older than 35 days are pruned by the rollup's transaction;
 * younger ones stay. */
static void test_reporting_ledger_pruned_after_35_days(void **state)
{
    (void)state;
    int64_t all = pgtest_int(E.pg, "SELECT count(*) FROM reporting_processed_events");
    int64_t old = pgtest_int(E.pg, "SELECT count(*) FROM reporting_processed_events WHERE event_name = 'AppointmentCancelled'");
    assert_true(old >= 1);
    assert_true(all > old);
    /* activity events (CallDetected, ConversationStarted, FirstReplySent) keep no ledger row */
    assert_int_equal(pgtest_int(E.pg, "SELECT count(*) FROM reporting_processed_events WHERE event_name NOT IN"
                                      " ('AppointmentBooked', 'AppointmentCancelled')"), 0);
    pgtest_exec(E.pg, "UPDATE reporting_processed_events SET processed_at = now() - interval '36 days'"
                      " WHERE event_name = 'AppointmentCancelled'");
    wait_count(all - old, "SELECT count(*) FROM reporting_processed_events");
}

/* n first replies (dedupe keys prefix:1..n) queued latency_s after their
 * trigger, the newest ago_s seconds ago and 1 ms apart, copied from an
 * existing first reply (its tenant and conversation). */
static void insert_first_responses(const char *prefix, int latency_s, int n, int ago_s)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO messages (tenant_id, conversation_id, direction, kind, dedupe_key, from_e164, to_e164, body,"
             " status, trigger, triggered_at, first_queued_at)"
             " SELECT m.tenant_id, m.conversation_id, 'outbound', 'first_reply', '%s:' || g, m.from_e164, m.to_e164,"
             " m.body, 'queued', 'missed_call', q.at - interval '%d seconds', q.at"
             " FROM (SELECT * FROM messages WHERE kind = 'first_reply' LIMIT 1) m, generate_series(1, %d) g,"
             " LATERAL (SELECT now() - interval '%d seconds' - g * interval '1 millisecond' AS at) q",
             prefix, latency_s, n, ago_s);
    pgtest_exec(E.pg, sql);
}

/* 5,000 first responses of 100 s, then 20,000 newer ones of 1 s, all within
 * the last 15 minutes: the gauge reads the newest 20,000 (P95 1 s, not 100 s
 * as over the whole window) and reports the cap in its sample count. Last:
 * these rows would move tenant A's daily quantiles. */
static void test_reporting_slo_gauge_reads_the_newest_samples(void **state)
{
    (void)state;
    insert_first_responses("slo-old", 100, 5000, 540);
    insert_first_responses("slo-new", 1, 20000, 240);
    int code = -1;
    long ms = 0;
    assert_int_equal(nmc_proc_stop(&E.nmc, &code, &ms), 0);
    assert_int_equal(code, 0);
    assert_int_equal(nmc_proc_start(&E.nmc, NULL), 0);
    for (int i = 0; i < 250 && e2e_metric("slo_first_sms_window_samples") != 20000; i++)
        e2e_sleep_ms(20);
    assert_true(e2e_metric("slo_first_sms_window_samples") == 20000);
    double p95 = e2e_metric("slo_first_sms_p95_seconds");
    assert_true(p95 > 0.99 && p95 < 1.01);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reporting_bookings_counted_once_and_attributed),
        cmocka_unit_test(test_reporting_rollup_recomputes_quantiles_with_new_data),
        cmocka_unit_test(test_reporting_daily_route_answers_own_tenant),
        cmocka_unit_test(test_reporting_malformed_event_dead_lettered_and_counted),
        cmocka_unit_test(test_reporting_cancel_before_booking_retried_then_applied),
        cmocka_unit_test(test_reporting_ledger_pruned_after_35_days),
        cmocka_unit_test(test_reporting_slo_gauge_reads_the_newest_samples),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
