/* No double booking under concurrency (ADR-0006, spec 000 section 4.3), on
 * the real server and PostgreSQL with 50 client threads:
 *   - 50 holds of the same slot at once: exactly one 201, 49 times 409;
 *   - 50 bookings of one hold with different keys: one 201, the rest 409;
 *     20 with the same key: all 201 with the same appointment;
 *   - a property test: random busy blocks, then 50 clients making random
 *     hold / book / replay / expire / release attempts on three resources;
 *     every answer must be 201/204/409/410, and afterwards SQL finds no two
 *     live slots and no two booked appointments overlapping on a resource,
 *     nothing booked over a busy block, and one appointment per 201.
 * The seed is printed; NMC_SCHED_SEED reproduces a run. Threads never call
 * cmocka asserts: they record, the main thread checks. Hold expiry is
 * simulated by moving expires_at into the past with SQL (the server decides
 * with the database's now()). */
#include <pthread.h>
#include <time.h>

#include "tests/e2e/test_scheduling_support.h"

#define TZ "America/Chicago"
#define CLIENTS 50
#define OPS_PER_CLIENT 12
#define NRES 3
#define NITEMS 4

static struct e2e_tenant T;
static char *g_res[NRES], *g_items[NITEMS];
static const int g_minutes[NITEMS] = {30, 60, 90, 120};

static int setup(void **state)
{
    e2e_start(NULL);
    e2e_tenant_create("Concurrent Co", TZ, &T);
    for (int i = 0; i < NITEMS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "Service %d", g_minutes[i]);
        g_items[i] = e2e_item_create(&T, name, 1000 * (i + 1), g_minutes[i]);
    }
    for (int i = 0; i < NRES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "Tech %d", i);
        g_res[i] = e2e_resource_create(&T, name, "07:00", "19:00");
    }
    return 0;
}

static int teardown(void **state)
{
    for (int i = 0; i < NITEMS; i++)
        free(g_items[i]);
    for (int i = 0; i < NRES; i++)
        free(g_res[i]);
    e2e_stop();
    return 0;
}

/* ---- one request per thread, all released at once ---- */

struct burst {
    pthread_barrier_t barrier;
    const char *path;
    const char *body;
    const char *extra[CLIENTS]; /* per-thread extra header (Idempotency-Key) */
    int status[CLIENTS];
    char id[CLIENTS][40];
    char code[CLIENTS][40];
};

struct burst_arg {
    struct burst *b;
    int i;
};

static void *burst_thread(void *p)
{
    struct burst_arg *a = p;
    struct burst *b = a->b;
    const char *hdrs[] = {T.key_hdr, b->extra[a->i]};
    struct nmc_test_http_resp r;
    pthread_barrier_wait(&b->barrier);
    b->status[a->i] = e2e_raw("POST", b->path, hdrs, 2, b->body, &r);
    if (b->status[a->i] > 0) {
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "id"));
        nmc_strlcpy(b->id[a->i], id != NULL ? id : "", sizeof(b->id[a->i]));
        nmc_strlcpy(b->code[a->i], e2e_code(j), sizeof(b->code[a->i]));
        json_decref(j);
        nmc_test_http_resp_free(&r);
    }
    return NULL;
}

static void run_burst(struct burst *b, int n)
{
    pthread_t th[CLIENTS];
    struct burst_arg args[CLIENTS];
    assert_int_equal(pthread_barrier_init(&b->barrier, NULL, (unsigned)n), 0);
    for (int i = 0; i < n; i++) {
        args[i] = (struct burst_arg){b, i};
        assert_int_equal(pthread_create(&th[i], NULL, burst_thread, &args[i]), 0);
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&b->barrier);
}

static int count_status(const struct burst *b, int n, int status)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += b->status[i] == status;
    return c;
}

static void test_scheduling_fifty_holds_on_one_slot_one_wins(void **state)
{
    char *start = e2e_future(10, "10:00", TZ);
    char *body = e2e_fmt("{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\"}", g_res[0], g_items[1], start);
    struct burst *b = calloc(1, sizeof(*b));
    b->path = "/v1/scheduling/holds";
    b->body = body;
    run_burst(b, CLIENTS);
    assert_int_equal(count_status(b, CLIENTS, 201), 1);
    assert_int_equal(count_status(b, CLIENTS, 409), CLIENTS - 1);
    for (int i = 0; i < CLIENTS; i++)
        if (b->status[i] == 409)
            assert_string_equal(b->code[i], "slot_taken");
    char *sql = e2e_fmt("SELECT count(*) FROM sched_slots WHERE resource_id = '%s'", g_res[0]);
    assert_int_equal(e2e_sql_int(sql), 1);
    free(sql);
    free(body);
    free(b);
    free(start);
}

static void test_scheduling_fifty_bookings_of_one_hold(void **state)
{
    char *start = e2e_future(10, "14:00", TZ);
    char *body = e2e_fmt("{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\"}", g_res[0], g_items[0], start);
    json_t *h = e2e_must(201, T.key_hdr, "POST", "/v1/scheduling/holds", body);
    char *bbody = e2e_fmt("{\"hold_id\":\"%s\"}", e2e_str(h, "id"));
    struct burst *b = calloc(1, sizeof(*b));
    char keys[CLIENTS][32];
    b->path = "/v1/scheduling/bookings";
    b->body = bbody;
    for (int i = 0; i < CLIENTS; i++) {
        snprintf(keys[i], sizeof(keys[i]), "Idempotency-Key: race-%d", i);
        b->extra[i] = keys[i];
    }
    run_burst(b, CLIENTS);
    assert_int_equal(count_status(b, CLIENTS, 201), 1);
    assert_int_equal(count_status(b, CLIENTS, 409), CLIENTS - 1);
    json_decref(h);
    free(body);
    free(bbody);
    /* the same key 20 times at once: one booking, twenty identical answers */
    free(start);
    start = e2e_future(10, "16:00", TZ);
    body = e2e_fmt("{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\"}", g_res[0], g_items[0], start);
    h = e2e_must(201, T.key_hdr, "POST", "/v1/scheduling/holds", body);
    bbody = e2e_fmt("{\"hold_id\":\"%s\"}", e2e_str(h, "id"));
    memset(b, 0, sizeof(*b));
    b->path = "/v1/scheduling/bookings";
    b->body = bbody;
    for (int i = 0; i < 20; i++)
        b->extra[i] = "Idempotency-Key: same-key";
    run_burst(b, 20);
    assert_int_equal(count_status(b, 20, 201), 20);
    for (int i = 1; i < 20; i++)
        assert_string_equal(b->id[i], b->id[0]);
    char *sql = e2e_fmt("SELECT count(*) FROM sched_appointments WHERE hold_id = '%s'", e2e_str(h, "id"));
    assert_int_equal(e2e_sql_int(sql), 1);
    free(sql);
    json_decref(h);
    free(body);
    free(bbody);
    free(b);
    free(start);
}

/* ---- the property test ---- */

enum { OUT_OK, OUT_UNEXPECTED };

struct client {
    int index;
    unsigned seed;
    char day[2][16];             /* local dates of the two days under test */
    PGconn *pg;
    int holds_ok, holds_409, books_ok, books_409, books_410, replays, released, expired_410_expected;
    int unexpected;
    char unexpected_what[200];
    char (*booked_ids)[40];      /* appointment ids from first-time 201s */
    int nbooked;
};

static void note_unexpected(struct client *c, const char *what, int status, const char *code)
{
    if (c->unexpected++ == 0)
        snprintf(c->unexpected_what, sizeof(c->unexpected_what), "%s answered %d %s", what, status, code);
}

static int post(struct client *c, const char *path, const char *body, const char *key, char id[40], char code[40])
{
    char hdr[80];
    const char *hdrs[] = {T.key_hdr, key != NULL ? hdr : NULL};
    struct nmc_test_http_resp r;
    if (key != NULL)
        snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", key);
    int st = e2e_raw("POST", path, hdrs, 2, body, &r);
    id[0] = code[0] = '\0';
    if (st > 0) {
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        nmc_strlcpy(id, json_string_value(json_object_get(j, "id")) ? json_string_value(json_object_get(j, "id")) : "",
                    40);
        nmc_strlcpy(code, e2e_code(j), 40);
        json_decref(j);
        nmc_test_http_resp_free(&r);
    }
    return st;
}

static void book_hold(struct client *c, const char *hold_id, int op)
{
    char body[80], key[48], id[40], code[40], id2[40];
    snprintf(body, sizeof(body), "{\"hold_id\":\"%s\"}", hold_id);
    snprintf(key, sizeof(key), "c%d-op%d", c->index, op);
    int st = post(c, "/v1/scheduling/bookings", body, key, id, code);
    if (st == 201) {
        c->books_ok++;
        nmc_strlcpy(c->booked_ids[c->nbooked++], id, 40);
        if (rand_r(&c->seed) % 4 == 0) { /* a retry with the same key must give the same booking */
            int st2 = post(c, "/v1/scheduling/bookings", body, key, id2, code);
            if (st2 != 201 || strcmp(id, id2) != 0)
                note_unexpected(c, "booking replay", st2, code);
            c->replays++;
        }
    } else if (st == 409) {
        c->books_409++;
    } else if (st == 410) {
        c->books_410++;
    } else {
        note_unexpected(c, "booking", st, code);
    }
}

static void expire_hold(struct client *c, const char *hold_id)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "UPDATE sched_slots SET expires_at = now() - interval '1 second' "
                               "WHERE id = '%s' AND kind = 'hold'", hold_id);
    PQclear(PQexec(c->pg, sql));
}

static void one_op(struct client *c, int op)
{
    char body[256], id[40], code[40], start[40];
    int res = rand_r(&c->seed) % NRES, item = rand_r(&c->seed) % NITEMS, day = rand_r(&c->seed) % 2;
    int minute = 6 * 60 + (rand_r(&c->seed) % (13 * 4)) * 15; /* 06:00..18:45 local: some outside 07-19 */
    char *sql = e2e_fmt("SELECT to_char(('%s'::date + make_interval(mins => %d)) AT TIME ZONE '%s' "
                        "AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", c->day[day], minute, TZ);
    PGresult *r = PQexec(c->pg, sql);
    nmc_strlcpy(start, PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "", sizeof(start));
    PQclear(r);
    free(sql);
    snprintf(body, sizeof(body), "{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\"}", g_res[res],
             g_items[item], start);
    int st = post(c, "/v1/scheduling/holds", body, NULL, id, code);
    if (st == 409) {
        c->holds_409++;
        return;
    }
    if (st != 201) {
        note_unexpected(c, "hold", st, code);
        return;
    }
    c->holds_ok++;
    int dice = rand_r(&c->seed) % 20;
    if (dice < 3) { /* the hold runs out before the booking: must be 410 */
        expire_hold(c, id);
        c->expired_410_expected++;
        int before = c->books_410;
        book_hold(c, id, op);
        if (c->books_410 != before + 1)
            note_unexpected(c, "booking an expired hold", 0, "not 410");
    } else if (dice < 17) {
        book_hold(c, id, op);
    } else if (dice < 19) {
        char path[80];
        snprintf(path, sizeof(path), "/v1/scheduling/holds/%s", id);
        const char *hdrs[] = {T.key_hdr};
        st = e2e_raw("DELETE", path, hdrs, 1, NULL, NULL);
        if (st != 204)
            note_unexpected(c, "release", st, "");
        c->released++;
    } /* else: leave the hold alive */
}

static void *client_thread(void *p)
{
    struct client *c = p;
    c->pg = PQconnectdb(E.db);
    for (int op = 0; op < OPS_PER_CLIENT && PQstatus(c->pg) == CONNECTION_OK; op++)
        one_op(c, op);
    if (PQstatus(c->pg) != CONNECTION_OK)
        note_unexpected(c, "libpq connect", -1, PQerrorMessage(c->pg));
    PQfinish(c->pg);
    return NULL;
}

static void insert_busy_blocks(unsigned *seed, const char *day0, int n)
{
    for (int i = 0; i < n; i++) {
        int res = rand_r(seed) % NRES, day = rand_r(seed) % 2;
        int start = 7 * 60 + (rand_r(seed) % (12 * 12)) * 5, len = 15 + (rand_r(seed) % 34) * 5;
        char *sql = e2e_fmt("INSERT INTO sched_busy_blocks (tenant_id, resource_id, period, source, external_id) "
                            "SELECT '%s', '%s', tstzrange(s, s + make_interval(mins => %d)), 'google', 'blk-%d' "
                            "FROM (SELECT ('%s'::date + %d + make_interval(mins => %d)) AT TIME ZONE '%s' AS s) x",
                            T.id, g_res[res], len, i, day0, day, start, TZ);
        pgtest_exec(E.pg, sql);
        free(sql);
    }
}

static void check_invariants(void)
{
    /* nothing live overlaps (the constraint makes this hold for every row) */
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM sched_slots a JOIN sched_slots b ON a.tenant_id = b.tenant_id "
                                 "AND a.resource_id = b.resource_id AND a.id < b.id AND a.period && b.period"), 0);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM sched_appointments a JOIN sched_appointments b "
                                 "ON a.tenant_id = b.tenant_id AND a.resource_id = b.resource_id AND a.id < b.id "
                                 "AND a.period && b.period WHERE a.status = 'booked' AND b.status = 'booked'"), 0);
    /* nothing was held or booked over an external busy block */
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM sched_slots s JOIN sched_busy_blocks b ON "
                                 "b.tenant_id = s.tenant_id AND b.resource_id = s.resource_id AND b.period && s.period"),
                     0);
    /* every booked appointment owns its slot row, and only those */
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM sched_appointments a WHERE a.status = 'booked' AND NOT EXISTS "
                                 "(SELECT 1 FROM sched_slots s WHERE s.id = a.hold_id AND s.kind = 'appointment' "
                                 "AND s.period = a.period AND s.resource_id = a.resource_id)"), 0);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM sched_slots WHERE kind = 'appointment'"),
                     e2e_sql_int("SELECT count(*) FROM sched_appointments WHERE status = 'booked'"));
}

static void test_scheduling_property_random_holds_and_bookings_never_overlap(void **state)
{
    const char *env_seed = getenv("NMC_SCHED_SEED");
    unsigned seed = env_seed != NULL ? (unsigned)strtoul(env_seed, NULL, 10) : (unsigned)time(NULL);
    printf("property seed: NMC_SCHED_SEED=%u\n", seed);
    char *day0 = e2e_sql("SELECT ((now() AT TIME ZONE '" TZ "')::date + 20)::text");
    char *day1 = e2e_sql("SELECT ((now() AT TIME ZONE '" TZ "')::date + 21)::text");
    insert_busy_blocks(&seed, day0, 30);
    static struct client clients[CLIENTS];
    static char ids[CLIENTS][OPS_PER_CLIENT][40];
    pthread_t th[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        memset(&clients[i], 0, sizeof(clients[i]));
        clients[i].index = i;
        clients[i].seed = seed * 7919u + (unsigned)i;
        clients[i].booked_ids = ids[i];
        nmc_strlcpy(clients[i].day[0], day0, sizeof(clients[i].day[0]));
        nmc_strlcpy(clients[i].day[1], day1, sizeof(clients[i].day[1]));
        assert_int_equal(pthread_create(&th[i], NULL, client_thread, &clients[i]), 0);
    }
    int holds_ok = 0, holds_409 = 0, books_ok = 0, books_409 = 0, books_410 = 0, expired = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(th[i], NULL);
        struct client *c = &clients[i];
        if (c->unexpected)
            fail_msg("client %d: %d unexpected answers, first: %s (seed %u)", i, c->unexpected, c->unexpected_what,
                     seed);
        holds_ok += c->holds_ok;
        holds_409 += c->holds_409;
        books_ok += c->books_ok;
        books_409 += c->books_409;
        books_410 += c->books_410;
        expired += c->expired_410_expected;
    }
    printf("holds 201=%d 409=%d; bookings 201=%d 409=%d 410=%d (expired on purpose: %d)\n", holds_ok, holds_409,
           books_ok, books_409, books_410, expired);
    assert_true(holds_ok > 0 && holds_409 > 0 && books_ok > 0); /* the run exercised contention */
    assert_int_equal(books_410, expired);                      /* 410 exactly for the expired holds */
    check_invariants();
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM sched_appointments WHERE status = 'booked' AND "
                                 "period && tstzrange(now() + interval '19 days', now() + interval '23 days')"),
                     books_ok);
    /* each first-time 201 is its own appointment */
    for (int i = 0; i < CLIENTS; i++)
        for (int k = 0; k < clients[i].nbooked; k++) {
            char *sql = e2e_fmt("SELECT count(*) FROM sched_appointments WHERE id = '%s' AND status = 'booked'",
                                clients[i].booked_ids[k]);
            assert_int_equal(e2e_sql_int(sql), 1);
            free(sql);
        }
    assert_true(e2e_events_valid("AppointmentBooked") >= books_ok);
    free(day0);
    free(day1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scheduling_fifty_holds_on_one_slot_one_wins),
        cmocka_unit_test(test_scheduling_fifty_bookings_of_one_hold),
        cmocka_unit_test(test_scheduling_property_random_holds_and_bookings_never_overlap),
    };
    return cmocka_run_group_tests_name("e2e_scheduling_concurrency", tests, setup, teardown);
}
