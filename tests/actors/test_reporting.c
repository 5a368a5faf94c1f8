/* Reporting's pure parts: the report range check and the statement built
 * for each domain event (what reaches the database, what is refused as a
 * permanent failure). The database side is covered by
 * tests/e2e/test_reporting.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "actors/reporting/reporting.h"

#define TENANT "0925854d-97a1-483f-9a21-bdc199d330db"
#define EVENT "5b0f3f8e-4f5e-4a43-9c44-3f7c8c1b2d11"
#define APPT "9ea7d1b5-a96d-45d4-ae01-2bf589c888dd"
#define CONV "d9123e59-40ba-4082-8c1b-9b40ee2a4741"

static struct nmc_domain_event event(const char *name, const char *payload)
{
    struct nmc_domain_event ev;
    memset(&ev, 0, sizeof ev);
    ev.outbox_id = 7;
    nmc_strlcpy(ev.event_id, EVENT, sizeof ev.event_id);
    nmc_strlcpy(ev.event_name, name, sizeof ev.event_name);
    ev.schema_version = 1;
    ev.payload_json = (char *)payload;
    return ev;
}

static void test_reporting_parse_range_accepts_up_to_92_days(void **state)
{
    (void)state;
    char err[128];
    assert_int_equal(nmc_reporting_parse_range("2026-11-23", "2026-11-23", err, sizeof err), 0);
    assert_int_equal(nmc_reporting_parse_range("2026-01-01", "2026-04-02", err, sizeof err), 0);
    assert_int_equal(nmc_reporting_parse_range("2024-02-29", "2024-03-01", err, sizeof err), 0);
    assert_int_equal(nmc_reporting_parse_range("2025-12-31", "2026-01-01", err, sizeof err), 0);
}

static void test_reporting_parse_range_rejects_with_clear_error(void **state)
{
    (void)state;
    static const struct {
        const char *from, *to, *msg;
    } bad[] = {
        {"2026-01-01", "2026-04-03", "at most 92 days"},
        {"2026-03-02", "2026-03-01", "not be before"},
        {"2026-02-29", "2026-03-01", "from must be"},
        {"2026-3-01", "2026-03-01", "from must be"},
        {"2026-03-01", "2026-03-01T00:00:00Z", "to must be"},
        {"2026-13-01", "2026-13-02", "from must be"},
        {"1969-12-31", "1970-01-01", "from must be"},
        {"2026-03-01", "2026-03-3x", "to must be"},
        {"", "2026-03-01", "from must be"},
        {NULL, "2026-03-01", "required"},
        {"2026-03-01", NULL, "required"},
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(bad); i++) {
        char err[128] = "";
        assert_int_equal(nmc_reporting_parse_range(bad[i].from, bad[i].to, err, sizeof err), NMC_EINVAL);
        if (strstr(err, bad[i].msg) == NULL)
            fail_msg("range %s..%s: message \"%s\" lacks \"%s\"", bad[i].from ? bad[i].from : "(null)",
                     bad[i].to ? bad[i].to : "(null)", err, bad[i].msg);
    }
}

static void test_reporting_event_build_booked_carries_price_snapshot(void **state)
{
    (void)state;
    struct nmc_domain_event ev = event("AppointmentBooked",
        "{\"tenant_id\":\"" TENANT "\",\"appointment_id\":\"" APPT "\",\"price_cents\":15000,"
        "\"customer_phone\":\"+15550107001\",\"conversation_id\":null,\"booked_at\":\"2026-11-23T11:41:16Z\"}");
    struct nmc_reporting_event e;
    char err[200];
    assert_int_equal(nmc_reporting_event_build(&ev, &e, err, sizeof err), 0);
    assert_int_equal(e.projector, NMC_REPORTING_APPOINTMENTS);
    assert_int_equal(e.kind, 1);
    assert_int_equal(e.stmt.nparams, 8);
    assert_string_equal(e.stmt.params[0], EVENT);
    assert_string_equal(e.stmt.params[2], TENANT);
    assert_string_equal(e.stmt.params[3], APPT);
    assert_string_equal(e.stmt.params[4], "15000");
    assert_string_equal(e.stmt.params[5], "+15550107001");
    assert_null(e.stmt.params[6]);
    assert_string_equal(e.stmt.params[7], "2026-11-23T11:41:16Z");
    assert_non_null(strstr(e.stmt.sql, "reporting_processed_events"));
    nmc_reporting_event_clear(&e);
}

static void test_reporting_event_build_cancelled_and_activity(void **state)
{
    (void)state;
    struct nmc_reporting_event e;
    char err[200];
    struct nmc_domain_event ev = event("AppointmentCancelled",
        "{\"tenant_id\":\"" TENANT "\",\"appointment_id\":\"" APPT "\",\"price_cents\":15000,"
        "\"cancelled_at\":\"2026-11-23T12:00:00Z\",\"conversation_id\":\"" CONV "\"}");
    assert_int_equal(nmc_reporting_event_build(&ev, &e, err, sizeof err), 0);
    assert_int_equal(e.kind, 2);
    assert_int_equal(e.stmt.nparams, 5);
    assert_string_equal(e.stmt.params[4], "2026-11-23T12:00:00Z");
    nmc_reporting_event_clear(&e);
    ev = event("FirstReplySent", "{\"tenant_id\":\"" TENANT "\",\"triggered_at\":\"2026-11-23T04:59:59.5Z\"}");
    assert_int_equal(nmc_reporting_event_build(&ev, &e, err, sizeof err), 0);
    assert_int_equal(e.projector, NMC_REPORTING_ACTIVITY);
    assert_int_equal(e.stmt.nparams, 4);
    assert_string_equal(e.stmt.params[3], "2026-11-23T04:59:59.5Z");
    /* activity only marks the day (idempotent by its key): no ledger row */
    assert_null(strstr(e.stmt.sql, "reporting_processed_events"));
    assert_non_null(strstr(e.stmt.sql, "reporting_dirty_days"));
    nmc_reporting_event_clear(&e);
    /* escapes are read as JSON reads them; the last member of a name counts */
    ev = event("CallDetected", "{\"tenant_id\":\"00000000-0000-4000-8000-000000000000\",\"from\":\"+1\\u00e9\","
                               "\"tenant\\u005fid\":\"" TENANT "\",\"detected_at\":\"2026-11-23T04:59:59\\/Z\","
                               "\"detected_at\":\"2026-11-23T05:00:00Z\"}");
    assert_int_equal(nmc_reporting_event_build(&ev, &e, err, sizeof err), 0);
    assert_string_equal(e.stmt.params[2], TENANT);
    assert_string_equal(e.stmt.params[3], "2026-11-23T05:00:00Z");
    nmc_reporting_event_clear(&e);
    ev = event("SmsOptedOut", "{}");
    assert_int_equal(nmc_reporting_event_build(&ev, &e, err, sizeof err), NMC_ENOTFOUND);
    nmc_reporting_event_clear(&e);
}

static void test_reporting_event_build_rejects_malformed_payloads(void **state)
{
    (void)state;
    static const struct {
        const char *name, *payload, *field;
    } bad[] = {
        {"AppointmentBooked", "not json", "the payload"},
        {"AppointmentBooked", "{\"appointment_id\":\"" APPT "\",\"price_cents\":1,\"booked_at\":\"2026-11-23T11:41:16Z\"}",
         "tenant_id"},
        {"AppointmentBooked", "{\"tenant_id\":\"" TENANT "\",\"appointment_id\":\"" APPT "\",\"booked_at\":"
         "\"2026-11-23T11:41:16Z\"}", "price_cents"},
        {"AppointmentBooked", "{\"tenant_id\":\"" TENANT "\",\"appointment_id\":\"" APPT "\",\"price_cents\":-5,"
         "\"booked_at\":\"2026-11-23T11:41:16Z\"}", "price_cents"},
        {"AppointmentBooked", "{\"tenant_id\":\"" TENANT "\",\"appointment_id\":\"x\",\"price_cents\":5,"
         "\"booked_at\":\"2026-11-23T11:41:16Z\"}", "appointment_id"},
        {"AppointmentBooked", "{\"tenant_id\":\"" TENANT "\",\"appointment_id\":\"" APPT "\",\"price_cents\":5,"
         "\"conversation_id\":\"nope\",\"booked_at\":\"2026-11-23T11:41:16Z\"}", "conversation_id"},
        {"AppointmentBooked", "{\"tenant_id\":\"" TENANT "\",\"appointment_id\":\"" APPT "\",\"price_cents\":5,"
         "\"booked_at\":\"yesterday\"}", "booked_at"},
        {"AppointmentCancelled", "{\"tenant_id\":\"" TENANT "\",\"appointment_id\":\"" APPT "\"}", "cancelled_at"},
        {"ConversationStarted", "{\"tenant_id\":\"" TENANT "\",\"opened_at\":42}", "opened_at"},
        {"CallDetected", "{\"tenant_id\":\"not-a-uuid\",\"detected_at\":\"2026-11-23T11:41:16Z\"}", "tenant_id"},
        /* activity events are read in place (runtime/json_scan.h), with the same verdicts */
        {"CallDetected", "not json", "the payload"},
        {"CallDetected", "", "the payload"},
        {"CallDetected", "[\"" TENANT "\"]", "the payload"},
        {"CallDetected", "{\"tenant_id\":\"" TENANT "\",\"detected_at\":\"2026-11-23T11:41:16Z\"", "the payload"},
        {"CallDetected", "{\"tenant_id\":\"" TENANT "\",\"detected_at\":\"2026-11-23T11:41:16Z\"} {}", "the payload"},
        {"CallDetected", "{\"tenant_id\":\"" TENANT "\",\"detected_at\":\"2026-11-23T11:41:16Z\",\"x\":01}",
         "the payload"},
        {"CallDetected", "{\"detected_at\":\"2026-11-23T11:41:16Z\",\"nested\":{\"tenant_id\":\"" TENANT "\"}}",
         "tenant_id"},
        {"CallDetected", "{\"tenant_id\":\"" TENANT "\",\"detected_at\":\"2026-11-23T11:41:16Z\",\"tenant_id\":null}",
         "tenant_id"},
        {"CallDetected", "{\"tenant_id\":\"" TENANT "\",\"detected_at\":\"2026-11-23T11:41:16Z"
         "00000000000000000000000000000000000000000000000000\"}", "detected_at"},
        {"FirstReplySent", "{\"tenant_id\":\"" TENANT "\",\"triggered_at\":\"\"}", "triggered_at"},
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(bad); i++) {
        struct nmc_domain_event ev = event(bad[i].name, bad[i].payload);
        struct nmc_reporting_event e;
        char err[200] = "";
        assert_int_equal(nmc_reporting_event_build(&ev, &e, err, sizeof err), NMC_EINVAL);
        if (strstr(err, bad[i].field) == NULL)
            fail_msg("%s %s: error \"%s\" does not name %s", bad[i].name, bad[i].payload, err, bad[i].field);
        nmc_reporting_event_clear(&e);
    }
}

static int activity_key_of(const char *tenant, const char *when, char *key, size_t n)
{
    char payload[300], err[200];
    snprintf(payload, sizeof payload, "{\"tenant_id\":\"%s\",\"detected_at\":\"%s\"}", tenant, when);
    struct nmc_domain_event ev = event("CallDetected", payload);
    struct nmc_reporting_event e;
    assert_int_equal(nmc_reporting_event_build(&ev, &e, err, sizeof err), 0);
    int rc = nmc_reporting_activity_key(&e, key, n);
    nmc_reporting_event_clear(&e);
    return rc;
}

static void test_reporting_activity_key_is_tenant_and_utc_quarter_hour(void **state)
{
    (void)state;
    char a[128], b[128];
    /* one quarter hour, one tenant: one key (one statement marks the day) */
    assert_int_equal(activity_key_of(TENANT, "2026-11-23T15:00:00.000Z", a, sizeof a), 1);
    assert_int_equal(activity_key_of(TENANT, "2026-11-23T15:14:59.999Z", b, sizeof b), 1);
    assert_string_equal(a, b);
    /* across a quarter hour (a zone at +05:45 or +00:15 may change day there): two keys */
    assert_int_equal(activity_key_of(TENANT, "2026-11-23T15:15:00.000Z", b, sizeof b), 1);
    assert_string_not_equal(a, b);
    assert_int_equal(activity_key_of(TENANT, "2026-11-23T16:00:00Z", b, sizeof b), 1);
    assert_string_not_equal(a, b);
    /* another tenant: another key */
    assert_int_equal(activity_key_of("11111111-1111-1111-1111-111111111111", "2026-11-23T15:00:00.000Z", b,
                                     sizeof b), 1);
    assert_string_not_equal(a, b);
    /* no room for the key: none */
    assert_int_equal(activity_key_of(TENANT, "2026-11-23T15:00:00.000Z", b, 8), 0);
    /* a time not in the producers' UTC shape gets no key: its mark goes alone */
    struct nmc_reporting_event e;
    char err[200];
    struct nmc_domain_event ev0 = event("CallDetected",
        "{\"tenant_id\":\"" TENANT "\",\"detected_at\":\"2026-11-23T15:00:00Z\"}");
    assert_int_equal(nmc_reporting_event_build(&ev0, &e, err, sizeof err), 0);
    static const char *const odd[] = { "2026-11-23T15:00:00+01:00", "2026-11-23 15:00:00Z", "2026-11-23T15:7",
                                       "2026-11-23T15:60:00Z", "2026-11-23" };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        e.stmt.params[3] = odd[i];
        assert_int_equal(nmc_reporting_activity_key(&e, b, sizeof b), 0);
    }
    nmc_reporting_event_clear(&e);
    /* not an activity mark: no key */
    struct nmc_domain_event ev = event("AppointmentCancelled",
        "{\"tenant_id\":\"" TENANT "\",\"appointment_id\":\"" APPT "\",\"price_cents\":15000,"
        "\"cancelled_at\":\"2026-11-23T12:00:00Z\",\"conversation_id\":\"" CONV "\"}");
    assert_int_equal(nmc_reporting_event_build(&ev, &e, err, sizeof err), 0);
    assert_int_equal(nmc_reporting_activity_key(&e, a, sizeof a), 0);
    nmc_reporting_event_clear(&e);
}

/* n CallDetected marks for tenant (%d in it replaced by i % tenants) at
 * minute (i % minutes) of one hour; built into evs, freed by plan_free. */
static struct nmc_reporting_event *plan_events(size_t n, int tenants, int minutes)
{
    struct nmc_reporting_event *evs = calloc(n, sizeof *evs);
    assert_non_null(evs);
    for (size_t i = 0; i < n; i++) {
        char payload[300], err[200];
        snprintf(payload, sizeof payload,
                 "{\"tenant_id\":\"0925854d-97a1-483f-9a21-%012d\",\"detected_at\":\"2026-11-23T15:%02d:00Z\"}",
                 (int)(i % (size_t)tenants), (int)(i % (size_t)minutes));
        struct nmc_domain_event ev = event("CallDetected", payload);
        assert_int_equal(nmc_reporting_event_build(&ev, &evs[i], err, sizeof err), 0);
    }
    return evs;
}

static size_t plan(struct nmc_reporting_event *evs, size_t n, size_t *stmt_of, size_t *nstmts)
{
    const struct nmc_reporting_event **p = calloc(n, sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = &evs[i];
    size_t taken = nmc_reporting_batch_plan(p, n, stmt_of, nstmts);
    free(p);
    return taken;
}

static void plan_free(struct nmc_reporting_event *evs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        nmc_reporting_event_clear(&evs[i]);
    free(evs);
}

/* A projection batch is bounded by statements, not events: marks of one
 * tenant and quarter hour share a statement (a batch of 64 events used to
 * fall behind 6,000 events/s), other events take one each, statements are
 * numbered in order of first use, and the event cap holds. */
static void test_reporting_batch_plan_shares_statements_and_respects_both_caps(void **state)
{
    (void)state;
    static size_t stmt_of[NMC_REPORTING_BATCH_EVENTS];
    size_t nstmts = 99;
    /* one tenant, one quarter hour: 500 events, one statement */
    struct nmc_reporting_event *evs = plan_events(500, 1, 15);
    assert_int_equal(plan(evs, 500, stmt_of, &nstmts), 500);
    assert_int_equal(nstmts, 1);
    for (size_t i = 0; i < 500; i++)
        assert_int_equal(stmt_of[i], 0);
    plan_free(evs, 500);
    /* two quarter hours alternating: two statements, shared in turn */
    evs = plan_events(10, 1, 30); /* minutes 0..9: all in the first quarter hour */
    assert_int_equal(plan(evs, 10, stmt_of, &nstmts), 10);
    assert_int_equal(nstmts, 1);
    plan_free(evs, 10);
    evs = plan_events(40, 1, 20); /* minutes 0..19: quarter hours 0 and 1 */
    assert_int_equal(plan(evs, 40, stmt_of, &nstmts), 40);
    assert_int_equal(nstmts, 2);
    assert_int_equal(stmt_of[0], 0);
    assert_int_equal(stmt_of[15], 1);
    assert_int_equal(stmt_of[20], 0);
    assert_int_equal(stmt_of[35], 1);
    plan_free(evs, 40);
    /* 100 tenants, distinct keys: the statement cap stops the batch at 64, in order */
    evs = plan_events(100, 100, 1);
    assert_int_equal(plan(evs, 100, stmt_of, &nstmts), NMC_REPORTING_BATCH_STMTS);
    assert_int_equal(nstmts, NMC_REPORTING_BATCH_STMTS);
    for (size_t i = 0; i < NMC_REPORTING_BATCH_STMTS; i++)
        assert_int_equal(stmt_of[i], i);
    plan_free(evs, 100);
    /* 64 tenants then more events of the first ones: the batch goes on past
     * 64 events as long as they share a taken statement */
    evs = plan_events(200, 64, 1);
    assert_int_equal(plan(evs, 200, stmt_of, &nstmts), 200);
    assert_int_equal(nstmts, 64);
    assert_int_equal(stmt_of[199], 199 % 64);
    plan_free(evs, 200);
    /* the event cap */
    size_t big = NMC_REPORTING_BATCH_EVENTS + 100;
    evs = plan_events(big, 1, 1);
    static size_t big_stmt_of[NMC_REPORTING_BATCH_EVENTS + 100];
    assert_int_equal(plan(evs, big, big_stmt_of, &nstmts), NMC_REPORTING_BATCH_EVENTS);
    assert_int_equal(nstmts, 1);
    plan_free(evs, big);
    /* events without a key (an appointment) take a statement each */
    struct nmc_domain_event ev = event("AppointmentBooked",
        "{\"tenant_id\":\"" TENANT "\",\"appointment_id\":\"" APPT "\",\"price_cents\":15000,"
        "\"customer_phone\":\"+15550107001\",\"conversation_id\":null,\"booked_at\":\"2026-11-23T11:41:16Z\"}");
    struct nmc_reporting_event appt[3];
    char err[200];
    for (int i = 0; i < 3; i++)
        assert_int_equal(nmc_reporting_event_build(&ev, &appt[i], err, sizeof err), 0);
    const struct nmc_reporting_event *p[3] = { &appt[0], &appt[1], &appt[2] };
    assert_int_equal(nmc_reporting_batch_plan(p, 3, stmt_of, &nstmts), 3);
    assert_int_equal(nstmts, 3);
    for (int i = 0; i < 3; i++)
        nmc_reporting_event_clear(&appt[i]);
    /* nothing waiting: nothing taken */
    assert_int_equal(nmc_reporting_batch_plan(p, 0, stmt_of, &nstmts), 0);
    assert_int_equal(nstmts, 0);
}

/* The rollup's duty cycle: the next one waits 19 times as long as the last
 * took (at most 5% of the time), so a busy tenant's huge day cannot keep
 * PostgreSQL recomputing; a quick rollup barely delays the next. */
static void test_reporting_rollup_resume_caps_the_duty_cycle(void **state)
{
    (void)state;
    assert_int_equal(nmc_reporting_rollup_resume_ms(1000, 0), 1000);
    assert_int_equal(nmc_reporting_rollup_resume_ms(1000, 2), 1038);
    assert_int_equal(nmc_reporting_rollup_resume_ms(10000, 3000), 67000); /* 3 s of work: idle 57 s */
    assert_int_equal(nmc_reporting_rollup_resume_ms(1000, -5), 1000);     /* a clock step back: no wait */
    int64_t took = 250, done = 5000, next = nmc_reporting_rollup_resume_ms(done, took);
    assert_true((double)took / (double)(next - done + took) <= 0.05 + 1e-9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reporting_parse_range_accepts_up_to_92_days),
        cmocka_unit_test(test_reporting_parse_range_rejects_with_clear_error),
        cmocka_unit_test(test_reporting_event_build_booked_carries_price_snapshot),
        cmocka_unit_test(test_reporting_event_build_cancelled_and_activity),
        cmocka_unit_test(test_reporting_event_build_rejects_malformed_payloads),
        cmocka_unit_test(test_reporting_activity_key_is_tenant_and_utc_quarter_hour),
        cmocka_unit_test(test_reporting_batch_plan_shares_statements_and_respects_both_caps),
        cmocka_unit_test(test_reporting_rollup_resume_caps_the_duty_cycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
