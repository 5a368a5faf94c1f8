/* Scheduling end to end on the real binary and PostgreSQL: resources,
 * availability (taken time, busy blocks, DST days keep local hours), holds
 * (TTL from HOLD_TTL_MINUTES, overlap refused by the database), bookings
 * (idempotency, price snapshot, 410 after expiry), cancel and reschedule,
 * the events' schemas, and hold GC under its advisory lock.
 *
 * Hold expiry: the server decides with the database's now(), so the test
 * "freezes" nothing; it moves a hold's expires_at into the past with SQL
 * (UPDATE sched_slots SET expires_at = now() - interval '1 second'),
 * which is exactly the state a hold reaches when its TTL runs out. */
#include "tests/e2e/test_scheduling_support.h"

#define TZ "America/New_York"

static struct e2e_tenant T;
static char *g_item, *g_res;

static int setup(void **state)
{
    static const char *const env[] = {"HOLD_TTL_MINUTES", "7", "SEARCH_GRANULARITY_MINUTES", "15", NULL};
    e2e_start(env);
    e2e_tenant_create("Acme Plumbing", TZ, &T);
    g_item = e2e_item_create(&T, "Drain cleaning", 15000, 60);
    g_res = e2e_resource_create(&T, "Bob", "08:00", "17:00");
    return 0;
}

static int teardown(void **state)
{
    free(g_item);
    free(g_res);
    e2e_stop();
    return 0;
}

static char *hold_body(const char *res, const char *item, const char *start)
{
    return e2e_fmt("{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\"}", res, item, start);
}

/* Holds start (must answer want); returns the hold id or NULL. */
static char *hold(const char *res, const char *start, int want)
{
    char *body = hold_body(res, g_item, start);
    json_t *j = e2e_must(want, T.key_hdr, "POST", "/v1/scheduling/holds", body);
    char *id = want == 201 ? nmc_xstrdup(e2e_str(j, "id")) : NULL;
    json_decref(j);
    free(body);
    return id;
}

static json_t *book(const char *hold_id, const char *key, int want)
{
    char *body = e2e_fmt("{\"hold_id\":\"%s\"}", hold_id);
    char *hdr = e2e_fmt("Idempotency-Key: %s", key);
    json_t *j = NULL;
    int st = e2e_req2(T.key_hdr, hdr, "POST", "/v1/scheduling/bookings", body, &j);
    if (st != want)
        fail_msg("booking %s with key %s: want %d, got %d (%s)", hold_id, key, want, st, e2e_code(j));
    free(hdr);
    free(body);
    return j;
}

static size_t avail_count(const char *from, const char *to, json_t **out)
{
    char *path = e2e_fmt("/v1/scheduling/availability?item_id=%s&from=%s&to=%s&resource_id=%s", g_item, from, to,
                         g_res);
    json_t *j = e2e_must(200, T.key_hdr, "GET", path, NULL);
    size_t n = json_array_size(json_object_get(j, "slots"));
    free(path);
    if (out != NULL)
        *out = j;
    else
        json_decref(j);
    return n;
}

static void test_scheduling_resources_validate_and_answer(void **state)
{
    static const char *const bad[] = {
        "{\"name\":\"X\",\"business_hours\":{\"mon\":[[\"08:00\",\"12:00\"],[\"11:00\",\"13:00\"]]}}",
        "{\"name\":\"X\",\"business_hours\":{\"mon\":[[\"08:00\",\"25:00\"]]}}",
        "{\"name\":\"X\",\"business_hours\":{\"monday\":[[\"08:00\",\"12:00\"]]}}",
        "{\"name\":\"X\",\"business_hours\":{\"mon\":[[\"12:00\",\"08:00\"]]}}",
        "{\"name\":\"X\",\"business_hours\":[]}",
        "{\"business_hours\":{}}",
        "{\"name\":\"\",\"business_hours\":{}}",
        "{\"name\":\"X\",\"business_hours\":{},\"color\":\"red\"}",
        "{\"name\":\"X\",\"business_hours\":{},\"active\":\"yes\"}",
        "not json",
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(bad); i++) {
        json_t *j = NULL;
        int st = e2e_req(T.key_hdr, "POST", "/v1/scheduling/resources", bad[i], &j);
        if (st != 400)
            fail_msg("resource body %s: want 400, got %d", bad[i], st);
        assert_true(strncmp(e2e_code(j), "invalid_", 8) == 0);
        json_decref(j);
    }
    json_t *j = e2e_must(201, T.key_hdr, "POST", "/v1/scheduling/resources",
                         "{\"name\":\"Night owl\",\"business_hours\":{\"sat\":[[\"20:00\",\"24:00\"]]},\"active\":false}");
    char *id = nmc_xstrdup(e2e_str(j, "id"));
    assert_false(json_is_true(json_object_get(j, "active")));
    json_decref(j);
    char *path = e2e_fmt("/v1/scheduling/resources/%s", id);
    j = e2e_must(200, T.key_hdr, "PATCH", path, "{\"business_hours\":{\"sun\":[[\"00:00\",\"24:00\"]]}}");
    assert_non_null(json_object_get(json_object_get(j, "business_hours"), "sun"));
    assert_null(json_object_get(json_object_get(j, "business_hours"), "sat"));
    json_decref(j);
    json_decref(e2e_must(200, T.key_hdr, "GET", path, NULL));
    j = e2e_must(200, T.key_hdr, "GET", "/v1/scheduling/resources?active=false", NULL);
    assert_int_equal(json_array_size(json_object_get(j, "resources")), 1);
    json_decref(j);
    json_decref(e2e_must(404, T.key_hdr, "GET", "/v1/scheduling/resources/00000000-0000-4000-8000-000000000000", NULL));
    json_decref(e2e_must(404, T.key_hdr, "GET", "/v1/scheduling/resources/not-a-uuid", NULL));
    json_decref(e2e_must(400, T.key_hdr, "PATCH", path, "{}"));
    free(path);
    free(id);
}

/* 08:00-12:00 local holds 13 one-hour starts on the 15-minute grid; a hold
 * at 09:00 removes the 7 starts that overlap it (half-open ranges: 08:00
 * and 10:00 survive), a busy block 10:30-11:00 three more. */
static void test_scheduling_availability_excludes_holds_and_busy_blocks(void **state)
{
    char *from = e2e_future(3, "08:00", TZ), *to = e2e_future(3, "12:00", TZ);
    char *nine = e2e_future(3, "09:00", TZ), *b1 = e2e_future(3, "10:30", TZ), *b2 = e2e_future(3, "11:00", TZ);
    json_t *j;
    assert_int_equal(avail_count(from, to, &j), 13);
    json_t *first = json_array_get(json_object_get(j, "slots"), 0);
    assert_string_equal(e2e_str(first, "start"), from);
    assert_string_equal(e2e_str(j, "timezone"), TZ);
    assert_int_equal(json_integer_value(json_object_get(j, "granularity_minutes")), 15);
    json_decref(j);
    char *h = hold(g_res, nine, 201);
    assert_int_equal(avail_count(from, to, NULL), 6);
    char *sql = e2e_fmt("INSERT INTO sched_busy_blocks (tenant_id, resource_id, period, source, external_id) "
                        "VALUES ('%s', '%s', tstzrange('%s', '%s'), 'google', 'evt-1')", T.id, g_res, b1, b2);
    pgtest_exec(E.pg, sql);
    assert_int_equal(avail_count(from, to, NULL), 2);
    /* the window is checked before anything runs */
    char *path = e2e_fmt("/v1/scheduling/availability?item_id=%s&from=%s&to=%s", g_item, to, from);
    json_decref(e2e_must(400, T.key_hdr, "GET", path, NULL));
    free(path);
    path = e2e_fmt("/v1/scheduling/availability?item_id=%s&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", g_item);
    json_decref(e2e_must(400, T.key_hdr, "GET", path, NULL));
    free(path);
    path = e2e_fmt("/v1/scheduling/availability?item_id=%s&from=yesterday&to=%s", g_item, to);
    json_decref(e2e_must(400, T.key_hdr, "GET", path, NULL));
    free(path);
    path = e2e_fmt("/v1/scheduling/availability?item_id=00000000-0000-4000-8000-000000000000&from=%s&to=%s", from, to);
    json_decref(e2e_must(404, T.key_hdr, "GET", path, NULL));
    free(path);
    json_decref(e2e_must(400, T.key_hdr, "GET", "/v1/scheduling/availability?from=x", NULL));
    free(sql);
    free(h);
    free(from);
    free(to);
    free(nine);
    free(b1);
    free(b2);
}

/* The next date (strictly in the future) in month whose local midnight
 * offset differs from the next day's: a DST change day in TZ. */
static char *next_dst_day(int month)
{
    char *sql = e2e_fmt("SELECT min(d)::date::text FROM generate_series(now()::date + 1, now()::date + 800, "
                        "interval '1 day') AS d WHERE extract(month FROM d) = %d AND "
                        "((d::date)::timestamp AT TIME ZONE '%s') + interval '1 day' <> "
                        "((d::date + 1)::timestamp AT TIME ZONE '%s')", month, TZ, TZ);
    char *v = e2e_sql(sql);
    free(sql);
    assert_non_null(v);
    return v;
}

/* UTC text of local time day hh:mm in TZ. */
static char *local_utc(const char *day, const char *hhmm)
{
    char *sql = e2e_fmt("SELECT to_char(('%s'::date + '%s'::time) AT TIME ZONE '%s' AT TIME ZONE 'UTC', "
                        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", day, hhmm, TZ);
    char *v = e2e_sql(sql);
    free(sql);
    return v;
}

static void check_dst_day(const char *day)
{
    char *from = local_utc(day, "00:00");
    char *sql = e2e_fmt("SELECT to_char(('%s'::date + 1 + '00:00'::time) AT TIME ZONE '%s' AT TIME ZONE 'UTC', "
                        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", day, TZ);
    char *to = e2e_sql(sql);
    char *open = local_utc(day, "08:00"), *last_start = local_utc(day, "16:00"), *close = local_utc(day, "17:00");
    json_t *j;
    /* 9 local hours, one-hour item, 15-minute grid: (540 - 60) / 15 + 1 */
    assert_int_equal(avail_count(from, to, &j), 33);
    json_t *slots = json_object_get(j, "slots");
    assert_string_equal(e2e_str(json_array_get(slots, 0), "start"), open);
    assert_string_equal(e2e_str(json_array_get(slots, 32), "start"), last_start);
    assert_string_equal(e2e_str(json_array_get(slots, 32), "end"), close);
    json_decref(j);
    free(sql);
    free(from);
    free(to);
    free(open);
    free(last_start);
    free(close);
}

static void test_scheduling_availability_dst_days_keep_local_hours(void **state)
{
    /* The dates, straight through the SQL that expands hours: 9 h each. */
    static const char *const days[] = {"2026-03-08", "2026-11-01", "2026-03-07"};
    for (size_t i = 0; i < NMC_ARRAY_SIZE(days); i++) {
        char *sql = e2e_fmt("SELECT extract(epoch FROM upper(w) - lower(w))::int FROM sched_business_windows("
                            "'{\"sun\":[[\"08:00\",\"17:00\"]],\"sat\":[[\"08:00\",\"17:00\"]]}', '%s', "
                            "'%sT00:00:00-05:00', '%sT23:00:00-05:00')", TZ, days[i], days[i]);
        assert_int_equal(e2e_sql_int(sql), 9 * 3600);
        free(sql);
    }
    assert_int_equal(e2e_sql_int("SELECT extract(hour FROM lower(w) AT TIME ZONE 'UTC')::int FROM "
                                 "sched_business_windows('{\"sun\":[[\"08:00\",\"17:00\"]]}', '" TZ "', "
                                 "'2026-03-08T06:00:00Z', '2026-03-09T04:00:00Z')"), 12); /* 08:00 EDT */
    assert_int_equal(e2e_sql_int("SELECT extract(hour FROM lower(w) AT TIME ZONE 'UTC')::int FROM "
                                 "sched_business_windows('{\"sun\":[[\"08:00\",\"17:00\"]]}', '" TZ "', "
                                 "'2026-11-01T06:00:00Z', '2026-11-02T04:00:00Z')"), 13); /* 08:00 EST */
    /* And the availability API on the next real transitions (the database's
     * now() must be before them: slots are never in the past). */
    char *spring = next_dst_day(3), *fall = next_dst_day(11);
    check_dst_day(spring);
    check_dst_day(fall);
    free(spring);
    free(fall);
}

static void test_scheduling_hold_ttl_and_overlap(void **state)
{
    char *s10 = e2e_future(4, "10:00", TZ), *s1030 = e2e_future(4, "10:30", TZ), *s11 = e2e_future(4, "11:00", TZ);
    char *late = e2e_future(4, "16:30", TZ), *night = e2e_future(4, "20:00", TZ);
    double ok0 = e2e_metric("scheduling_hold_success_total"), bad0 = e2e_metric("scheduling_hold_conflict_total");
    char *body = hold_body(g_res, g_item, s10);
    json_t *j = e2e_must(201, T.key_hdr, "POST", "/v1/scheduling/holds", body);
    char *sql = e2e_fmt("SELECT extract(epoch FROM expires_at - created_at)::int FROM sched_slots WHERE id = '%s'",
                        e2e_str(j, "id"));
    assert_int_equal(e2e_sql_int(sql), 7 * 60); /* HOLD_TTL_MINUTES=7, database time */
    assert_string_equal(e2e_str(j, "start"), s10);
    assert_string_equal(e2e_str(j, "end"), s11);
    json_decref(j);
    json_t *e = e2e_must(409, T.key_hdr, "POST", "/v1/scheduling/holds", body);
    assert_string_equal(e2e_code(e), "slot_taken");
    json_decref(e);
    free(hold(g_res, s1030, 409));
    free(hold(g_res, s11, 201));       /* [10:00,11:00) and [11:00,12:00) touch, do not overlap */
    free(body);
    body = hold_body(g_res, g_item, late);
    e = e2e_must(409, T.key_hdr, "POST", "/v1/scheduling/holds", body);
    assert_string_equal(e2e_code(e), "slot_unavailable"); /* would end 17:30, after closing */
    json_decref(e);
    free(hold(g_res, night, 409));
    free(hold(g_res, "2020-01-01T10:00:00Z", 400));
    free(body);
    body = hold_body(g_res, "00000000-0000-4000-8000-000000000000", s10);
    json_decref(e2e_must(404, T.key_hdr, "POST", "/v1/scheduling/holds", body));
    free(body);
    body = e2e_fmt("{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\",\"customer_phone\":\"555-1234\"}",
                   g_res, g_item, s10);
    json_decref(e2e_must(400, T.key_hdr, "POST", "/v1/scheduling/holds", body));
    free(body);
    body = e2e_fmt("{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\",\"extra\":1}", g_res, g_item, s10);
    json_decref(e2e_must(400, T.key_hdr, "POST", "/v1/scheduling/holds", body));
    assert_true(e2e_metric("scheduling_hold_success_total") >= ok0 + 2);
    assert_true(e2e_metric("scheduling_hold_conflict_total") >= bad0 + 4);
    free(body);
    free(sql);
    free(s10);
    free(s1030);
    free(s11);
    free(late);
    free(night);
}

static void test_scheduling_booking_idempotent_with_price_snapshot(void **state)
{
    char *s = e2e_future(5, "09:00", TZ), *s2 = e2e_future(5, "13:00", TZ);
    char *h = hold(g_res, s, 201), *h2 = hold(g_res, s2, 201);
    json_t *a = book(h, "book-key-1", 201);
    const char *appt = e2e_str(a, "id");
    assert_string_equal(e2e_str(a, "status"), "booked");
    assert_string_equal(e2e_str(a, "hold_id"), h);
    assert_int_equal(json_integer_value(json_object_get(a, "price_cents")), 15000);
    /* the same key again: the same booking, marked as a replay */
    const char *hdrs[] = {T.key_hdr, "Idempotency-Key: book-key-1"};
    char *body = e2e_fmt("{\"hold_id\":\"%s\"}", h);
    struct nmc_test_http_resp r;
    assert_int_equal(e2e_raw("POST", "/v1/scheduling/bookings", hdrs, 2, body, &r), 201);
    json_t *again = json_loadb(r.body, r.body_len, 0, NULL);
    assert_string_equal(e2e_str(again, "id"), appt);
    assert_string_equal(nmc_test_http_resp_header(&r, "Idempotent-Replayed"), "true");
    nmc_test_http_resp_free(&r);
    json_decref(again);
    json_t *e = book(h, "book-key-2", 409);
    assert_string_equal(e2e_code(e), "hold_already_booked");
    json_decref(e);
    e = book(h2, "book-key-1", 409);
    assert_string_equal(e2e_code(e), "idempotency_key_reused");
    json_decref(e);
    json_decref(e2e_must(400, T.key_hdr, "POST", "/v1/scheduling/bookings", body)); /* no Idempotency-Key */
    json_decref(book("00000000-0000-4000-8000-000000000000", "book-key-3", 404));
    /* the price snapshot survives a price change */
    char *item_path = e2e_fmt("/v1/catalog/items/%s", g_item);
    json_decref(e2e_must(200, T.key_hdr, "PATCH", item_path, "{\"price_cents\":20000}"));
    char *appt_path = e2e_fmt("/v1/scheduling/appointments/%s", appt);
    json_t *g = e2e_must(200, T.key_hdr, "GET", appt_path, NULL);
    assert_int_equal(json_integer_value(json_object_get(g, "price_cents")), 15000);
    json_decref(g);
    char *sql = e2e_fmt("SELECT count(*) FROM outbox_events WHERE event_name = 'AppointmentBooked' "
                        "AND payload->>'appointment_id' = '%s' AND (payload->>'price_cents')::int = 15000", appt);
    assert_int_equal(e2e_sql_int(sql), 1); /* one event despite the replays */
    json_decref(e2e_must(200, T.key_hdr, "PATCH", item_path, "{\"price_cents\":15000}"));
    free(sql);
    free(appt_path);
    free(item_path);
    free(body);
    json_decref(a);
    free(h);
    free(h2);
    free(s);
    free(s2);
}

static void test_scheduling_expired_hold_answers_410(void **state)
{
    char *s = e2e_future(6, "09:00", TZ), *s2 = e2e_future(6, "09:30", TZ), *from = e2e_future(6, "08:00", TZ);
    char *to = e2e_future(6, "11:00", TZ);
    char *h = hold(g_res, s, 201);
    size_t taken = avail_count(from, to, NULL);
    char *sql = e2e_fmt("UPDATE sched_slots SET expires_at = now() - interval '1 second' WHERE id = '%s'", h);
    pgtest_exec(E.pg, sql);
    json_t *e = book(h, "expired-1", 410);
    assert_string_equal(e2e_code(e), "hold_expired");
    json_decref(e);
    assert_true(avail_count(from, to, NULL) > taken); /* an expired hold blocks nothing */
    /* a new overlapping hold replaces it in the same transaction... */
    char *h2 = hold(g_res, s2, 201);
    free(sql);
    sql = e2e_fmt("SELECT count(*) FROM sched_expired_holds WHERE id = '%s'", h);
    assert_int_equal(e2e_sql_int(sql), 1);
    /* ...and the old hold still answers 410, not 404 */
    e = book(h, "expired-2", 410);
    assert_string_equal(e2e_code(e), "hold_expired");
    json_decref(e);
    json_decref(book(h2, "expired-3", 201));
    free(sql);
    free(h);
    free(h2);
    free(s);
    free(s2);
    free(from);
    free(to);
}

static void test_scheduling_cancel_and_reschedule(void **state)
{
    char *s = e2e_future(7, "09:00", TZ), *moved = e2e_future(7, "14:00", TZ), *busy = e2e_future(7, "11:00", TZ);
    char *night = e2e_future(7, "19:00", TZ);
    char *h = hold(g_res, s, 201);
    json_t *a = book(h, "resched-1", 201);
    char *path = e2e_fmt("/v1/scheduling/appointments/%s", e2e_str(a, "id"));
    char *other = hold(g_res, busy, 201);
    char *body = e2e_fmt("{\"start\":\"%s\"}", busy);
    json_t *e = e2e_must(409, T.key_hdr, "PATCH", path, body);
    assert_string_equal(e2e_code(e), "slot_taken");
    json_decref(e);
    free(body);
    body = e2e_fmt("{\"start\":\"%s\"}", night);
    e = e2e_must(409, T.key_hdr, "PATCH", path, body);
    assert_string_equal(e2e_code(e), "slot_unavailable");
    json_decref(e);
    json_decref(e2e_must(400, T.key_hdr, "PATCH", path, "{\"start\":\"2020-01-01T10:00:00Z\"}"));
    json_decref(e2e_must(400, T.key_hdr, "PATCH", path, "{\"status\":\"booked\"}"));
    json_decref(e2e_must(400, T.key_hdr, "PATCH", path, "{\"status\":\"cancelled\",\"start\":\"2030-01-01T10:00:00Z\"}"));
    free(body);
    body = e2e_fmt("{\"start\":\"%s\"}", moved);
    json_t *m = e2e_must(200, T.key_hdr, "PATCH", path, body);
    assert_string_equal(e2e_str(m, "start"), moved);
    json_decref(m);
    free(hold(g_res, s, 201)); /* the old time is free again */
    json_t *c = e2e_must(200, T.key_hdr, "PATCH", path, "{\"status\":\"cancelled\",\"reason\":\"customer called\"}");
    assert_string_equal(e2e_str(c, "status"), "cancelled");
    assert_string_equal(e2e_str(c, "cancel_reason"), "customer called");
    json_decref(c);
    json_decref(e2e_must(200, T.key_hdr, "PATCH", path, "{\"status\":\"cancelled\"}")); /* idempotent */
    char *sql = e2e_fmt("SELECT count(*) FROM outbox_events WHERE event_name = 'AppointmentCancelled' "
                        "AND payload->>'appointment_id' = '%s'", e2e_str(a, "id"));
    assert_int_equal(e2e_sql_int(sql), 1);
    e = e2e_must(409, T.key_hdr, "PATCH", path, body);
    assert_string_equal(e2e_code(e), "appointment_cancelled");
    json_decref(e);
    free(hold(g_res, moved, 201)); /* cancelling freed the slot */
    char *from = e2e_future(7, "00:00", TZ), *to = e2e_future(8, "00:00", TZ);
    char *list = e2e_fmt("/v1/scheduling/appointments?from=%s&to=%s&status=cancelled", from, to);
    json_t *l = e2e_must(200, T.key_hdr, "GET", list, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "appointments")), 1);
    json_decref(l);
    free(list);
    list = e2e_fmt("/v1/scheduling/appointments?from=%s&to=%s&status=booked", from, to);
    l = e2e_must(200, T.key_hdr, "GET", list, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "appointments")), 0);
    json_decref(l);
    json_decref(e2e_must(400, T.key_hdr, "GET", "/v1/scheduling/appointments?from=2026-01-01T00:00:00Z", NULL));
    free(list);
    free(from);
    free(to);
    free(sql);
    free(body);
    free(other);
    free(path);
    json_decref(a);
    free(h);
    free(s);
    free(moved);
    free(busy);
    free(night);
}

static void test_scheduling_hold_release(void **state)
{
    char *s = e2e_future(8, "09:00", TZ);
    char *h = hold(g_res, s, 201);
    char *path = e2e_fmt("/v1/scheduling/holds/%s", h);
    assert_int_equal(e2e_req(T.key_hdr, "DELETE", path, NULL, NULL), 204);
    assert_int_equal(e2e_req(T.key_hdr, "DELETE", path, NULL, NULL), 404);
    free(hold(g_res, s, 201));
    free(path);
    free(h);
    free(s);
}

static void test_scheduling_events_conform_to_schemas(void **state)
{
    assert_true(e2e_events_valid("AppointmentHeld") >= 5);
    assert_true(e2e_events_valid("AppointmentBooked") >= 2);
    assert_true(e2e_events_valid("AppointmentCancelled") >= 1);
    assert_true(e2e_events_valid("AppointmentRescheduled") >= 1);
    assert_true(e2e_events_valid("CatalogUpdated") >= 1);
}

/* With the GC lock held elsewhere the sweep skips its round; released, the
 * next instance sweeps every expired hold into tombstones. */
static void test_scheduling_hold_gc_one_instance_at_a_time(void **state)
{
    char *s = e2e_future(9, "09:00", TZ);
    free(hold(g_res, s, 201));
    pgtest_exec(E.pg, "UPDATE sched_slots SET expires_at = now() - interval '1 second' WHERE kind = 'hold'");
    int64_t expired = e2e_sql_int("SELECT count(*) FROM sched_slots WHERE kind = 'hold'");
    assert_true(expired >= 1);
    pgtest_exec(E.pg, "SELECT pg_advisory_lock(7236040001)");
    e2e_restart();
    for (int i = 0; i < 60 && e2e_metric("maintenance_hold_gc_runs_total{outcome=\"locked\"}") < 1; i++)
        usleep(100 * 1000);
    assert_true(e2e_metric("maintenance_hold_gc_runs_total{outcome=\"locked\"}") >= 1);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM sched_slots WHERE kind = 'hold'"), expired);
    pgtest_exec(E.pg, "SELECT pg_advisory_unlock(7236040001)");
    e2e_restart();
    for (int i = 0; i < 100 && e2e_sql_int("SELECT count(*) FROM sched_slots WHERE kind = 'hold'") > 0; i++)
        usleep(100 * 1000);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM sched_slots WHERE kind = 'hold'"), 0);
    assert_true(e2e_metric("maintenance_holds_expired_total") >= (double)expired);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scheduling_resources_validate_and_answer),
        cmocka_unit_test(test_scheduling_availability_excludes_holds_and_busy_blocks),
        cmocka_unit_test(test_scheduling_availability_dst_days_keep_local_hours),
        cmocka_unit_test(test_scheduling_hold_ttl_and_overlap),
        cmocka_unit_test(test_scheduling_booking_idempotent_with_price_snapshot),
        cmocka_unit_test(test_scheduling_expired_hold_answers_410),
        cmocka_unit_test(test_scheduling_cancel_and_reschedule),
        cmocka_unit_test(test_scheduling_hold_release),
        cmocka_unit_test(test_scheduling_events_conform_to_schemas),
        cmocka_unit_test(test_scheduling_hold_gc_one_instance_at_a_time),
    };
    return cmocka_run_group_tests_name("e2e_scheduling", tests, setup, teardown);
}
