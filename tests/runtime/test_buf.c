/* Tests for runtime/buf.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/buf.h"

static void test_buf_append_grows_and_terminates(void **state)
{
    struct nmc_buf b = {0};
    int i;

    for (i = 0; i < 1000; i++)
        assert_int_equal(nmc_buf_append(&b, "ab", 2), 0);
    assert_int_equal(b.len, 2000);
    assert_int_equal(b.data[2000], '\0');
    assert_int_equal(memcmp(b.data + 1998, "ab", 2), 0);
    assert_int_equal(nmc_buf_append(&b, NULL, 0), 0);
    nmc_buf_free(&b);
    assert_null(b.data);
    nmc_buf_free(&b);
}

static void test_buf_append_past_max_fails_unchanged(void **state)
{
    struct nmc_buf b = {.max = 5};

    assert_int_equal(nmc_buf_puts(&b, "abc"), 0);
    assert_int_equal(nmc_buf_puts(&b, "def"), NMC_ETOOBIG);
    assert_string_equal(b.data, "abc");
    assert_int_equal(nmc_buf_puts(&b, "de"), 0);
    assert_string_equal(b.data, "abcde");
    assert_int_equal(nmc_buf_append(&b, "x", 1), NMC_ETOOBIG);
    assert_int_equal(nmc_buf_append(&b, "x", SIZE_MAX), NMC_ETOOBIG);
    assert_int_equal(nmc_buf_printf(&b, "%d", 1), NMC_ETOOBIG);
    assert_int_equal(nmc_buf_json_str(&b, ""), NMC_ETOOBIG);
    assert_string_equal(b.data, "abcde");
    nmc_buf_free(&b);
    assert_int_equal(b.max, 5);
}

static void test_buf_printf_formats(void **state)
{
    struct nmc_buf b = {0};
    char big[300];

    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(nmc_buf_printf(&b, "%s=%d;", "n", 42), 0);
    assert_int_equal(nmc_buf_printf(&b, "%s", big), 0);
    assert_int_equal(b.len, 5 + 299);
    assert_int_equal(strncmp(b.data, "n=42;zz", 7), 0);
    assert_int_equal(strlen(b.data), b.len);
    nmc_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    nmc_buf_free(&b);
}

static void test_buf_json_str_escapes(void **state)
{
    struct nmc_buf b = {0};

    assert_int_equal(nmc_buf_json_str(&b, "a\"b\\c\n\r\t\b\f\x01\x1f\x7f/"), 0);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f/\"");
    nmc_buf_reset(&b);
    assert_int_equal(nmc_buf_json_strn(&b, "a\0b", 3), 0);
    assert_string_equal(b.data, "\"a\\u0000b\"");
    nmc_buf_free(&b);
}

static void test_buf_json_str_utf8_passthrough_and_invalid(void **state)
{
    struct nmc_buf b = {0};

    /* é, €, 😀 pass through untouched */
    assert_int_equal(nmc_buf_json_str(&b, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), 0);
    assert_string_equal(b.data, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    nmc_buf_reset(&b);
    /* lone continuation, overlong '/', surrogate, truncated sequence, 0xff */
    assert_int_equal(nmc_buf_json_str(&b, "\x80" "\xc0\xaf" "\xed\xa0\x80" "\xe2\x82" "\xff"), 0);
    assert_string_equal(b.data, "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
    nmc_buf_free(&b);
}

static void test_buf_json_str_cap_restores(void **state)
{
    struct nmc_buf b = {.max = 8};

    assert_int_equal(nmc_buf_puts(&b, "x"), 0);
    assert_int_equal(nmc_buf_json_str(&b, "\n\n\n"), NMC_ETOOBIG);
    assert_string_equal(b.data, "x");
    assert_int_equal(b.len, 1);
    assert_int_equal(nmc_buf_json_str(&b, "abcde"), 0);
    assert_string_equal(b.data, "x\"abcde\"");
    nmc_buf_free(&b);
}

static void test_buf_steal_hands_over_storage(void **state)
{
    struct nmc_buf b = {0};
    size_t len = 99;
    char *s = nmc_buf_steal(&b, &len);

    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    free(s);
    assert_int_equal(nmc_buf_puts(&b, "hello"), 0);
    s = nmc_buf_steal(&b, &len);
    assert_string_equal(s, "hello");
    assert_int_equal(len, 5);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_grows_and_terminates),
        cmocka_unit_test(test_buf_append_past_max_fails_unchanged),
        cmocka_unit_test(test_buf_printf_formats),
        cmocka_unit_test(test_buf_json_str_escapes),
        cmocka_unit_test(test_buf_json_str_utf8_passthrough_and_invalid),
        cmocka_unit_test(test_buf_json_str_cap_restores),
        cmocka_unit_test(test_buf_steal_hands_over_storage),
    };
    return cmocka_run_group_tests_name("runtime_buf", tests, NULL, NULL);
}
