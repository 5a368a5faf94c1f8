/* Catalog end to end (spec 000 section 4.4) on the real binary: CRUD
 * invariants (name unique per tenant ignoring case, price and duration
 * bounds, unknown keys), matching ranks over HTTP (length > priority >
 * exact name), quoting (values match the database; inactive -> 410), the
 * CatalogUpdated events in the outbox (schema, one per change), and cache
 * invalidation: a change is visible at once to matching and to the
 * scheduling actor's availability search. */
#include "tests/e2e/test_scheduling_support.h"

#define TZ "America/Los_Angeles"

static struct e2e_tenant T;

static int setup(void **state)
{
    e2e_start(NULL);
    e2e_tenant_create("Catalog Co", TZ, &T);
    return 0;
}

static int teardown(void **state)
{
    e2e_stop();
    return 0;
}

static char *create(const char *body)
{
    json_t *j = e2e_must(201, T.key_hdr, "POST", "/v1/catalog/items", body);
    char *id = nmc_xstrdup(e2e_str(j, "id"));
    json_decref(j);
    return id;
}

static void test_catalog_crud_invariants(void **state)
{
    static const struct {
        const char *body;
        int status;
    } cases[] = {
        {"{\"name\":\"Gutter cleaning\",\"price_cents\":-1,\"duration_minutes\":60}", 400},
        {"{\"name\":\"Gutter cleaning\",\"price_cents\":100000001,\"duration_minutes\":60}", 400},
        {"{\"name\":\"Gutter cleaning\",\"price_cents\":1.5,\"duration_minutes\":60}", 400},
        {"{\"name\":\"Gutter cleaning\",\"price_cents\":100,\"duration_minutes\":14}", 400},
        {"{\"name\":\"Gutter cleaning\",\"price_cents\":100,\"duration_minutes\":481}", 400},
        {"{\"name\":\"   \",\"price_cents\":100,\"duration_minutes\":60}", 400},
        {"{\"price_cents\":100,\"duration_minutes\":60}", 400},
        {"{\"name\":\"Gutter cleaning\",\"duration_minutes\":60}", 400},
        {"{\"name\":\"Gutter cleaning\",\"price_cents\":100,\"duration_minutes\":60,\"colour\":\"red\"}", 400},
        {"{\"name\":\"Gutter cleaning\",\"price_cents\":100,\"duration_minutes\":60,\"aliases\":\"gutter\"}", 400},
        {"{\"name\":\"Gutter cleaning\",\"price_cents\":100,\"duration_minutes\":60,\"aliases\":[\"!!\"]}", 400},
        {"{\"name\":\"Gutter cleaning\",\"price_cents\":100,\"duration_minutes\":60,\"priority\":1001}", 400},
        {"{\"name\":\"Gutter cleaning\",\"price_cents\":100,\"duration_minutes\":60,\"active\":1}", 400},
        {"[1,2]", 400},
        {"{\"name\":", 400},
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(cases); i++) {
        int st = e2e_req(T.key_hdr, "POST", "/v1/catalog/items", cases[i].body, NULL);
        if (st != cases[i].status)
            fail_msg("%s: want %d, got %d", cases[i].body, cases[i].status, st);
    }
    /* bounds are inclusive; names are trimmed; aliases lower-cased and deduplicated */
    json_t *j = e2e_must(201, T.key_hdr, "POST", "/v1/catalog/items",
                         "{\"name\":\"  Gutter Cleaning \",\"price_cents\":100000000,\"duration_minutes\":480,"
                         "\"aliases\":[\"Gutters\",\"gutters\",\"Downspout\"]}");
    char *id = nmc_xstrdup(e2e_str(j, "id"));
    assert_string_equal(e2e_str(j, "name"), "Gutter Cleaning");
    assert_int_equal(json_array_size(json_object_get(j, "aliases")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "aliases"), 0)), "gutters");
    json_decref(j);
    free(create("{\"name\":\"Roof repair\",\"price_cents\":0,\"duration_minutes\":15}"));
    /* unique ignoring case, on create and on rename */
    json_t *e = e2e_must(409, T.key_hdr, "POST", "/v1/catalog/items",
                         "{\"name\":\"GUTTER cleaning\",\"price_cents\":1,\"duration_minutes\":30}");
    assert_string_equal(e2e_code(e), "name_taken");
    json_decref(e);
    char *roof = create("{\"name\":\"Roof inspection\",\"price_cents\":5000,\"duration_minutes\":45}");
    char *path = e2e_fmt("/v1/catalog/items/%s", roof);
    json_decref(e2e_must(409, T.key_hdr, "PATCH", path, "{\"name\":\"roof repair\"}"));
    json_decref(e2e_must(400, T.key_hdr, "PATCH", path, "{}"));
    json_decref(e2e_must(400, T.key_hdr, "PATCH", path, "{\"duration_minutes\":500}"));
    j = e2e_must(200, T.key_hdr, "PATCH", path, "{\"description\":\"Attic too\",\"priority\":-3}");
    assert_string_equal(e2e_str(j, "description"), "Attic too");
    assert_int_equal(json_integer_value(json_object_get(j, "priority")), -3);
    assert_int_equal(json_integer_value(json_object_get(j, "price_cents")), 5000); /* untouched */
    json_decref(j);
    /* soft delete: gone from the API, the name is free again */
    char *gpath = e2e_fmt("/v1/catalog/items/%s", id);
    assert_int_equal(e2e_req(T.key_hdr, "DELETE", gpath, NULL, NULL), 204);
    assert_int_equal(e2e_req(T.key_hdr, "DELETE", gpath, NULL, NULL), 404);
    assert_int_equal(e2e_req(T.key_hdr, "GET", gpath, NULL, NULL), 404);
    free(create("{\"name\":\"gutter cleaning\",\"price_cents\":1,\"duration_minutes\":30}"));
    json_t *l = e2e_must(200, T.key_hdr, "GET", "/v1/catalog/items", NULL);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 3);
    json_decref(l);
    json_decref(e2e_must(400, T.key_hdr, "GET", "/v1/catalog/items?active=maybe", NULL));
    assert_int_equal(e2e_req(T.key_hdr, "GET", "/v1/catalog/items/123", NULL, NULL), 404);
    free(gpath);
    free(path);
    free(roof);
    free(id);
}

static void test_catalog_match_ranks_length_priority_exact_name(void **state)
{
    char *a = create("{\"name\":\"Water heater service\",\"price_cents\":20000,\"duration_minutes\":120,"
                     "\"aliases\":[\"water heater leak\",\"no hot water\"],\"priority\":-5}");
    char *b = create("{\"name\":\"Leak fix\",\"price_cents\":9000,\"duration_minutes\":60,"
                     "\"aliases\":[\"leak\"],\"priority\":100}");
    char *c = create("{\"name\":\"Boiler\",\"price_cents\":9000,\"duration_minutes\":60,"
                     "\"aliases\":[\"heater\"],\"priority\":7}");
    char *d = create("{\"name\":\"Heater\",\"price_cents\":9000,\"duration_minutes\":60,\"priority\":7}");
    char *inactive = create("{\"name\":\"Heater leak special\",\"price_cents\":1,\"duration_minutes\":60,"
                            "\"active\":false}");
    json_t *j = e2e_must(200, T.key_hdr, "POST", "/v1/catalog/match",
                         "{\"text\":\"Help! My WATER HEATER LEAK is flooding\",\"limit\":10}");
    json_t *m = json_object_get(j, "matches");
    assert_int_equal(json_array_size(m), 4); /* inactive items never match */
    const char *want[] = {a, d, c, b};
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(e2e_str(json_array_get(m, i), "item_id"), want[i]);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(m, 0), "match_length")), 17);
    assert_true(json_is_true(json_object_get(json_array_get(m, 1), "exact_name")));
    assert_false(json_is_true(json_object_get(json_array_get(m, 2), "exact_name")));
    json_decref(j);
    j = e2e_must(200, T.key_hdr, "POST", "/v1/catalog/match", "{\"text\":\"heater\",\"limit\":1}");
    assert_int_equal(json_array_size(json_object_get(j, "matches")), 1);
    json_decref(j);
    json_decref(e2e_must(400, T.key_hdr, "POST", "/v1/catalog/match", "{\"text\":\"\"}"));
    json_decref(e2e_must(400, T.key_hdr, "POST", "/v1/catalog/match", "{\"text\":\"x\",\"limit\":0}"));
    json_decref(e2e_must(400, T.key_hdr, "POST", "/v1/catalog/match", "{\"query\":\"x\"}"));
    /* the match cache follows changes at once */
    char *path = e2e_fmt("/v1/catalog/items/%s", b);
    json_decref(e2e_must(200, T.key_hdr, "PATCH", path, "{\"aliases\":[\"flooding basement\"]}"));
    j = e2e_must(200, T.key_hdr, "POST", "/v1/catalog/match", "{\"text\":\"my basement is flooding basement\"}");
    assert_string_equal(e2e_str(json_array_get(json_object_get(j, "matches"), 0), "item_id"), b);
    json_decref(j);
    free(path);
    free(a);
    free(b);
    free(c);
    free(d);
    free(inactive);
}

static void test_catalog_quote_values_and_410_when_inactive(void **state)
{
    char *id = create("{\"name\":\"AC tune-up\",\"price_cents\":12345,\"duration_minutes\":75}");
    char *q = e2e_fmt("/v1/catalog/items/%s/quote", id), *path = e2e_fmt("/v1/catalog/items/%s", id);
    json_t *j = e2e_must(200, T.key_hdr, "GET", q, NULL);
    char *sql = e2e_fmt("SELECT price_cents FROM catalog_items WHERE id = '%s'", id);
    assert_int_equal(json_integer_value(json_object_get(j, "price_cents")), e2e_sql_int(sql));
    free(sql);
    sql = e2e_fmt("SELECT duration_minutes FROM catalog_items WHERE id = '%s'", id);
    assert_int_equal(json_integer_value(json_object_get(j, "duration_minutes")), e2e_sql_int(sql));
    assert_string_equal(e2e_str(j, "currency"), "USD");
    json_decref(j);
    json_decref(e2e_must(200, T.key_hdr, "PATCH", path, "{\"active\":false}"));
    j = e2e_must(410, T.key_hdr, "GET", q, NULL);
    assert_string_equal(e2e_code(j), "item_inactive");
    json_decref(j);
    json_decref(e2e_must(200, T.key_hdr, "GET", path, NULL)); /* still readable */
    json_t *l = e2e_must(200, T.key_hdr, "GET", "/v1/catalog/items?active=false", NULL);
    assert_true(json_array_size(json_object_get(l, "items")) >= 1);
    json_decref(l);
    assert_int_equal(e2e_req(T.key_hdr, "DELETE", path, NULL, NULL), 204);
    json_decref(e2e_must(404, T.key_hdr, "GET", q, NULL));
    json_decref(e2e_must(404, T.key_hdr, "GET", "/v1/catalog/items/00000000-0000-4000-8000-000000000000/quote", NULL));
    free(sql);
    free(q);
    free(path);
    free(id);
}

/* The scheduling actor caches item durations; a catalog change reaches it
 * before the PATCH answers, so the next search uses the new duration. */
static void test_catalog_change_invalidates_scheduling_cache(void **state)
{
    char *item = create("{\"name\":\"Window washing\",\"price_cents\":3000,\"duration_minutes\":60}");
    char *res = e2e_resource_create(&T, "Wendy", "08:00", "12:00");
    char *from = e2e_future(2, "08:00", TZ), *to = e2e_future(2, "12:00", TZ);
    char *avail = e2e_fmt("/v1/scheduling/availability?item_id=%s&from=%s&to=%s&resource_id=%s", item, from, to, res);
    json_t *j = e2e_must(200, T.key_hdr, "GET", avail, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "slots")), 13);
    json_decref(j);
    j = e2e_must(200, T.key_hdr, "GET", avail, NULL); /* served with the cached duration */
    assert_int_equal(json_array_size(json_object_get(j, "slots")), 13);
    json_decref(j);
    char *path = e2e_fmt("/v1/catalog/items/%s", item);
    json_decref(e2e_must(200, T.key_hdr, "PATCH", path, "{\"duration_minutes\":120}"));
    j = e2e_must(200, T.key_hdr, "GET", avail, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "duration_minutes")), 120);
    assert_int_equal(json_array_size(json_object_get(j, "slots")), 9);
    json_decref(j);
    json_decref(e2e_must(200, T.key_hdr, "PATCH", path, "{\"active\":false}"));
    json_decref(e2e_must(410, T.key_hdr, "GET", avail, NULL));
    free(path);
    free(avail);
    free(from);
    free(to);
    free(item);
    free(res);
}

static void test_catalog_events_one_per_change_and_valid(void **state)
{
    int64_t created = e2e_sql_int("SELECT count(*) FROM outbox_events WHERE event_name = 'CatalogUpdated' "
                                  "AND payload->>'change' = 'created'");
    int64_t items = e2e_sql_int("SELECT count(*) FROM catalog_items");
    assert_int_equal(created, items);
    assert_true(e2e_sql_int("SELECT count(*) FROM outbox_events WHERE event_name = 'CatalogUpdated' "
                            "AND payload->>'change' = 'deleted'") >= 2);
    /* the event carries the item as it was written, in the same transaction */
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events e JOIN catalog_items i "
                                 "ON i.id = (e.payload->>'item_id')::uuid WHERE e.event_name = 'CatalogUpdated' "
                                 "AND e.tenant_id <> i.tenant_id"), 0);
    assert_true(e2e_events_valid("CatalogUpdated") >= 10);
    /* catalog and scheduling subscribe to CatalogUpdated and acknowledge it */
    const char *pending = "SELECT count(*) FROM outbox_events WHERE event_name = 'CatalogUpdated' "
                          "AND dispatched_at IS NULL";
    for (int i = 0; i < 100 && e2e_sql_int(pending) > 0; i++)
        usleep(100 * 1000);
    assert_int_equal(e2e_sql_int(pending), 0);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events_errors"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog_crud_invariants),
        cmocka_unit_test(test_catalog_match_ranks_length_priority_exact_name),
        cmocka_unit_test(test_catalog_quote_values_and_410_when_inactive),
        cmocka_unit_test(test_catalog_change_invalidates_scheduling_cache),
        cmocka_unit_test(test_catalog_events_one_per_change_and_valid),
    };
    return cmocka_run_group_tests_name("e2e_catalog", tests, setup, teardown);
}
