/* The conversation's tenant cache: local day/time as the database writes
 * it, store/get/expiry/forget, DST-unsafe offsets not cached. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "actors/conversation/tenant_cache.h"

#define T1 "00000000-0000-4000-8000-000000000001"
#define T2 "00000000-0000-4000-8000-000000000002"

static void test_local_dow_time_table(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        int32_t off;
        const char *want;
    } rows[] = {
        {0, 0, "4 00:00"}, /* 1970-01-01 Thursday */
        {1795430400000, 0, "1 10:40"}, /* 2026-11-23 10:40Z, a Monday */
        {1795430400000, -18000, "1 05:40"}, /* New York (EST) */
        {1795430400000, -39600, "7 23:40"}, /* Pago Pago, UTC-11: the day before */
        {1795405200000, -39600, "7 16:40"}, /* Pago Pago: Sunday afternoon */
        {1795430400000, 19800, "1 16:10"}, /* Kolkata, +05:30 */
        {1795430400999, 0, "1 10:40"}, /* milliseconds are truncated */
        {1795478340000, 0, "1 23:59"}, /* last minute of the day */
        {1795478400000, 0, "2 00:00"}, /* midnight rolls the day */
        {1795996740000, 0, "7 23:59"}, /* Sunday night */
        {1795995000000, 3600, "1 00:30"}, /* Sunday 23:30Z + 1 h: Monday */
        {-1000, 0, "3 23:59"}, /* before the epoch: Wednesday */
    };
    char out[8];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        nmc_tenant_local_dow_time(rows[i].ms, rows[i].off, out);
        assert_string_equal(out, rows[i].want);
    }
}

static void test_cache_put_get_expire_forget(void **state)
{
    (void)state;
    struct nmc_tenant_cache *c = nmc_tenant_cache_new();
    assert_null(nmc_tenant_cache_get(c, T1, 1000));
    nmc_tenant_cache_put(c, T1, "742", "Acme Plumbing", "{\"a\":1}", 3600, 3600, 1000);
    const struct nmc_tenant_entry *e = nmc_tenant_cache_get(c, T1, 1000);
    assert_non_null(e);
    assert_string_equal(e->version, "742");
    assert_string_equal(e->name, "Acme Plumbing");
    json_t *want = json_loads("{\"a\":1}", 0, NULL);
    assert_true(json_equal(e->doc, want)); /* the settings, parsed once, when stored */
    json_decref(want);
    assert_int_equal(e->offset_s, 3600);
    assert_null(nmc_tenant_cache_get(c, T2, 1000));                     /* another tenant */
    assert_non_null(nmc_tenant_cache_get(c, T1, 1000 + NMC_TENANT_CACHE_TTL_MS - 1));
    assert_null(nmc_tenant_cache_get(c, T1, 1000 + NMC_TENANT_CACHE_TTL_MS)); /* expired */
    nmc_tenant_cache_put(c, T1, "743", "Acme", "{}", 0, 0, 2000);       /* replaced */
    assert_string_equal(nmc_tenant_cache_get(c, T1, 2000)->version, "743");
    nmc_tenant_cache_put(c, T2, "9", "Bad JSON Co", "not json", 0, 0, 2000); /* kept; renders as {} */
    assert_non_null(nmc_tenant_cache_get(c, T2, 2000));
    assert_null(nmc_tenant_cache_get(c, T2, 2000)->doc);
    nmc_tenant_cache_forget(c, T2);
    nmc_tenant_cache_forget(c, T2);                                     /* not there: no effect */
    assert_non_null(nmc_tenant_cache_get(c, T1, 2000));
    nmc_tenant_cache_forget(c, T1);
    assert_null(nmc_tenant_cache_get(c, T1, 2000));
    nmc_tenant_cache_free(c);
}

static void test_cache_refuses_dst_change_and_bad_fields(void **state)
{
    (void)state;
    struct nmc_tenant_cache *c = nmc_tenant_cache_new();
    nmc_tenant_cache_put(c, T1, "1", "A", "{}", -5 * 3600, -4 * 3600, 0); /* offset changes within 15 min */
    assert_null(nmc_tenant_cache_get(c, T1, 0));
    nmc_tenant_cache_put(c, T1, "1", "A", NULL, 0, 0, 0);
    assert_null(nmc_tenant_cache_get(c, T1, 0));
    char long_name[300];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    nmc_tenant_cache_put(c, T1, "1", long_name, "{}", 0, 0, 0);
    assert_null(nmc_tenant_cache_get(c, T1, 0));
    nmc_tenant_cache_put(c, "", "1", "A", "{}", 0, 0, 0);
    assert_null(nmc_tenant_cache_get(c, "", 0));
    nmc_tenant_cache_free(c);
    nmc_tenant_cache_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_dow_time_table),
        cmocka_unit_test(test_cache_put_get_expire_forget),
        cmocka_unit_test(test_cache_refuses_dst_change_and_bad_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
