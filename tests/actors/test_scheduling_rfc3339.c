/* Unit tests of nmc_scheduling_parse_rfc3339 (actors/scheduling/routes.c):
 * the strict date-time parser every scheduling input time goes through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "actors/scheduling/scheduling.h"

static int64_t parse(const char *s)
{
    int64_t ms = -1;
    assert_int_equal(nmc_scheduling_parse_rfc3339(s, &ms), 0);
    return ms;
}

static void test_scheduling_parse_rfc3339_offsets_and_fractions(void **state)
{
    assert_int_equal(parse("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse("2026-03-08T08:00:00-04:00"), 1772971200000LL);
    assert_int_equal(parse("2026-03-08T12:00:00Z"), 1772971200000LL);
    assert_int_equal(parse("2026-03-08t12:00:00z"), 1772971200000LL);
    assert_int_equal(parse("2026-03-08T17:30:00+05:30"), 1772971200000LL);
    assert_int_equal(parse("2026-03-08T12:00:00.5Z"), 1772971200500LL);
    assert_int_equal(parse("2026-03-08T12:00:00.123456789Z"), 1772971200123LL);
    assert_int_equal(parse("2024-02-29T00:00:00Z"), 1709164800000LL); /* leap day */
    assert_int_equal(parse("2000-02-29T23:59:59Z"), 951868799000LL);
}

static void test_scheduling_parse_rfc3339_rejects_malformed(void **state)
{
    static const char *const bad[] = {
        NULL, "", "2026-03-08", "2026-03-08T12:00:00", "2026-03-08 12:00:00Z", "2026-3-08T12:00:00Z",
        "2026-03-08T12:00Z", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z", "2026-03-08T24:00:00Z", "2026-03-08T12:60:00Z", "2026-03-08T12:00:60Z",
        "2026-03-08T12:00:00.Z", "2026-03-08T12:00:00.1234567890Z", "2026-03-08T12:00:00+0500",
        "2026-03-08T12:00:00+24:00", "2026-03-08T12:00:00+05:60", "2026-03-08T12:00:00Zjunk",
        "1969-12-31T23:59:59Z", "1970-01-01T00:30:00+01:00", "+2026-03-08T12:00:00Z", "２026-03-08T12:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;
        if (nmc_scheduling_parse_rfc3339(bad[i], &ms) != NMC_EINVAL)
            fail_msg("accepted \"%s\"", bad[i] ? bad[i] : "(null)");
        assert_int_equal(ms, 42);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scheduling_parse_rfc3339_offsets_and_fractions),
        cmocka_unit_test(test_scheduling_parse_rfc3339_rejects_malformed),
    };
    return cmocka_run_group_tests_name("scheduling_rfc3339", tests, NULL, NULL);
}
