/* Tests for runtime/common.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "runtime/common.h"

static void test_common_strerror_names_every_code(void **state)
{
    int e;

    for (e = NMC_ENOMEM; e > NMC_ELAST; e--) {
        const char *s = nmc_strerror(e);
        assert_non_null(s);
        assert_true(strncmp(s, "NMC_E", 5) == 0);
        assert_non_null(nmc_errcode(e));
        assert_true(strcmp(nmc_errcode(e), "internal") != 0);
    }
    assert_non_null(strstr(nmc_strerror(NMC_EUNIQUE), "unique"));
}

static void test_common_strerror_passes_uv_codes(void **state)
{
    assert_string_equal(nmc_strerror(UV_ECONNREFUSED), uv_strerror(UV_ECONNREFUSED));
    assert_string_equal(nmc_strerror(0), "success");
    assert_non_null(nmc_strerror(NMC_ELAST));
    assert_non_null(nmc_strerror(-30000));
    assert_non_null(nmc_strerror(42));
}

static void test_common_errcode_stable_codes(void **state)
{
    assert_string_equal(nmc_errcode(0), "ok");
    assert_string_equal(nmc_errcode(NMC_EUNIQUE), "unique_violation");
    assert_string_equal(nmc_errcode(NMC_EEXCLUSION), "exclusion_violation");
    assert_string_equal(nmc_errcode(NMC_ETIMEDOUT), "timeout");
    assert_string_equal(nmc_errcode(NMC_ENOTFOUND), "not_found");
    assert_string_equal(nmc_errcode(NMC_ECONNLOST), "connection_lost");
    assert_string_equal(nmc_errcode(NMC_EINVAL), "invalid");
    assert_string_equal(nmc_errcode(NMC_ETOOBIG), "too_big");
    assert_string_equal(nmc_errcode(NMC_EFULL), "queue_full");
    assert_string_equal(nmc_errcode(UV_ETIMEDOUT), "timeout");
    assert_string_equal(nmc_errcode(UV_ECONNRESET), "connection_lost");
    assert_string_equal(nmc_errcode(UV_EACCES), "io_error");
    assert_string_equal(nmc_errcode(NMC_ELAST), "internal");
    assert_string_equal(nmc_errcode(7), "internal");
}

static void test_common_xalloc_returns_usable_memory(void **state)
{
    char *p = nmc_xmalloc(0);
    char *q = nmc_xcalloc(4, 8);
    char *s = nmc_xstrndup("abcdef", 3);
    char *t = nmc_xstrdup("hello");
    int i;

    for (i = 0; i < 32; i++)
        assert_int_equal(q[i], 0);
    q = nmc_xrealloc(q, 1024);
    q[1023] = 'x';
    assert_string_equal(s, "abc");
    assert_string_equal(t, "hello");
    free(p);
    free(q);
    free(s);
    free(t);
    s = nmc_xstrndup("ab", 10);
    assert_string_equal(s, "ab");
    free(s);
}

static void test_common_strlcpy_truncates_and_terminates(void **state)
{
    char dst[4];

    assert_int_equal(nmc_strlcpy(dst, "abcdef", sizeof(dst)), 6);
    assert_string_equal(dst, "abc");
    assert_int_equal(nmc_strlcpy(dst, "ab", sizeof(dst)), 2);
    assert_string_equal(dst, "ab");
    assert_int_equal(nmc_strlcpy(dst, "abc", sizeof(dst)), 3);
    assert_string_equal(dst, "abc");
    dst[0] = 'z';
    assert_int_equal(nmc_strlcpy(dst, "q", 0), 1);
    assert_int_equal(dst[0], 'z');
}

static void test_common_ct_equal_compares_content_and_length(void **state)
{
    assert_int_equal(nmc_ct_equal("abc", 3, "abc", 3), 1);
    assert_int_equal(nmc_ct_equal("abc", 3, "abd", 3), 0);
    assert_int_equal(nmc_ct_equal("xbc", 3, "abc", 3), 0);
    assert_int_equal(nmc_ct_equal("abc", 3, "abcd", 4), 0);
    assert_int_equal(nmc_ct_equal("abcd", 4, "abc", 3), 0);
    assert_int_equal(nmc_ct_equal("", 0, "", 0), 1);
    assert_int_equal(nmc_ct_equal("a", 1, "", 0), 0);
    assert_int_equal(nmc_ct_equal("", 0, "a", 1), 0);
    assert_int_equal(nmc_ct_equal("a\0b", 3, "a\0c", 3), 0);
}

static void test_common_parse_i64_accepts_whole_numbers(void **state)
{
    int64_t v = 0;

    assert_int_equal(nmc_parse_i64("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(nmc_parse_i64("-42", -100, 100, &v), 0);
    assert_int_equal(v, -42);
    assert_int_equal(nmc_parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(nmc_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(nmc_parse_i64("007", 0, 10, &v), 0);
    assert_int_equal(v, 7);
}

static void test_common_parse_i64_rejects_junk_and_range(void **state)
{
    static const char *bad[] = {"", " 1", "1 ", "+1", "1a", "a1", "-", "--1", "0x10", "1.5",
                                "9223372036854775808", "-9223372036854775809",
                                "99999999999999999999999", "1e3", "\t5"};
    int64_t v = 99;
    size_t i;

    for (i = 0; i < NMC_ARRAY_SIZE(bad); i++)
        assert_int_equal(nmc_parse_i64(bad[i], INT64_MIN, INT64_MAX, &v), NMC_EINVAL);
    assert_int_equal(v, 99);
    assert_int_equal(nmc_parse_i64("11", 0, 10, &v), NMC_EINVAL);
    assert_int_equal(nmc_parse_i64("-1", 0, 10, &v), NMC_EINVAL);
    assert_int_equal(nmc_parse_i64(NULL, 0, 10, &v), NMC_EINVAL);
    assert_int_equal(v, 99);
}

/* + then 7..15 digits, the first not 0. The first rows came from the
 * telephony test, the boundaries from the identity test (both modules had a
 * copy or wrapper of this function; they call it directly now). */
static void test_common_is_e164_table(void **state)
{
    static const struct {
        const char *s;
        int ok;
    } rows[] = {
        {"+15550001000", 1}, {"+4930123456", 1}, {"+442071838750", 1}, {"15550001000", 0}, {"+05550001000", 0},
        {"+1555", 0}, {"+1555000100012345", 0}, {"+1555a001000", 0}, {"anonymous", 0},
        {"+1234567", 1}, {"+123456789012345", 1}, {"+123456", 0}, {"+1234567890123456", 0},
        {"+1 555 000 1000", 0}, {"", 0}, {"+", 0},
    };
    size_t i;

    for (i = 0; i < NMC_ARRAY_SIZE(rows); i++)
        if (nmc_is_e164(rows[i].s) != rows[i].ok)
            fail_msg("\"%s\": want %d", rows[i].s, rows[i].ok);
    assert_int_equal(nmc_is_e164(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common_strerror_names_every_code),
        cmocka_unit_test(test_common_strerror_passes_uv_codes),
        cmocka_unit_test(test_common_errcode_stable_codes),
        cmocka_unit_test(test_common_xalloc_returns_usable_memory),
        cmocka_unit_test(test_common_strlcpy_truncates_and_terminates),
        cmocka_unit_test(test_common_ct_equal_compares_content_and_length),
        cmocka_unit_test(test_common_parse_i64_accepts_whole_numbers),
        cmocka_unit_test(test_common_parse_i64_rejects_junk_and_range),
        cmocka_unit_test(test_common_is_e164_table),
    };
    return cmocka_run_group_tests_name("runtime_common", tests, NULL, NULL);
}
