/* runtime/cidr.c: parsing and matching of the /metrics allow-list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "runtime/cidr.h"

static void test_cidr_list_parse_bad_entries_name_the_entry(void **state)
{
    static const char *const bad[] = {"10.0.0.0/33", "abc", "10.0.0.1/", "::1/129", "1.2.3.4/x", "300.1.1.1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct nmc_cidr_list l;
        char err[128] = "";
        assert_int_equal(nmc_cidr_list_parse(bad[i], &l, err, sizeof(err)), NMC_EINVAL);
        assert_non_null(strstr(err, "not an IP address"));
        assert_int_equal(l.n, 0);
    }
}

static void test_cidr_list_match_table(void **state)
{
    struct nmc_cidr_list l;
    char err[128];
    assert_int_equal(nmc_cidr_list_parse(" 10.0.0.0/8, 192.168.1.7 ,::1/128,2001:db8::/32", &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 4);
    static const struct { const char *ip; int want; } rows[] = {
        {"10.1.2.3", 1}, {"11.0.0.1", 0}, {"192.168.1.7", 1}, {"192.168.1.8", 0},
        {"::1", 1}, {"::2", 0}, {"2001:db8:1::5", 1}, {"2001:db9::1", 0},
        {"::ffff:10.9.9.9", 1}, {"not-an-ip", 0}, {"", 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(nmc_cidr_list_match(&l, rows[i].ip), rows[i].want);
    nmc_cidr_list_free(&l);
}

static void test_cidr_list_match_prefix_boundaries(void **state)
{
    struct nmc_cidr_list l;
    char err[128];
    assert_int_equal(nmc_cidr_list_parse("172.16.0.0/12,0.0.0.0/0", &l, err, sizeof(err)), 0);
    assert_int_equal(nmc_cidr_list_match(&l, "172.31.255.255"), 1);
    assert_int_equal(nmc_cidr_list_match(&l, "8.8.8.8"), 1); /* /0 matches every IPv4 */
    assert_int_equal(nmc_cidr_list_match(&l, "::1"), 0);     /* but no IPv6 */
    nmc_cidr_list_free(&l);
    assert_int_equal(nmc_cidr_list_parse("172.16.0.0/12", &l, err, sizeof(err)), 0);
    assert_int_equal(nmc_cidr_list_match(&l, "172.32.0.0"), 0);
    assert_int_equal(nmc_cidr_list_match(&l, "172.15.255.255"), 0);
    nmc_cidr_list_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr_list_parse_bad_entries_name_the_entry),
        cmocka_unit_test(test_cidr_list_match_table),
        cmocka_unit_test(test_cidr_list_match_prefix_boundaries),
    };
    return cmocka_run_group_tests_name("runtime_cidr", tests, NULL, NULL);
}
