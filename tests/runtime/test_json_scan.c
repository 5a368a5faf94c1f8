/* Tests for runtime/json_scan.c: what it accepts, what it reads, and where
 * it agrees with jansson at the edges (tests/fuzz/fuzz_json_scan.c
 * compares the two on arbitrary input). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/common.h"
#include "runtime/json_scan.h"

#define CAP 16

static int scan(const char *text, const char *key, char *val, enum nmc_json_got *got)
{
    const char *keys[1] = { key };
    return nmc_json_object_strings(text, strlen(text), keys, 1, val, CAP, got);
}

static void test_json_scan_reads_top_level_strings(void **state)
{
    (void)state;
    static const struct {
        const char *text, *key;
        enum nmc_json_got got;
        const char *val;
    } cases[] = {
        {"{\"a\":\"x\"}", "a", NMC_JSON_STRING, "x"},
        {" \t\r\n{ \"a\" : \"x\" , \"b\" : 1 } \n", "a", NMC_JSON_STRING, "x"},
        {"{\"a\":\"\"}", "a", NMC_JSON_STRING, ""},
        {"{\"b\":\"x\"}", "a", NMC_JSON_ABSENT, ""},
        {"{}", "a", NMC_JSON_ABSENT, ""},
        {"{\"a\":1}", "a", NMC_JSON_ABSENT, ""},
        {"{\"a\":null}", "a", NMC_JSON_ABSENT, ""},
        {"{\"a\":[\"x\"]}", "a", NMC_JSON_ABSENT, ""},
        {"{\"a\":{\"a\":\"x\"}}", "a", NMC_JSON_ABSENT, ""},    /* members of nested objects are not read */
        {"{\"b\":{\"a\":\"x\"},\"a\":\"y\"}", "a", NMC_JSON_STRING, "y"},
        {"{\"a\":\"x\",\"a\":\"y\"}", "a", NMC_JSON_STRING, "y"}, /* the last of a name, as jansson */
        {"{\"a\":\"x\",\"a\":2}", "a", NMC_JSON_ABSENT, ""},
        {"{\"a\":\"0123456789abcde\"}", "a", NMC_JSON_STRING, "0123456789abcde"}, /* 15 bytes: fits */
        {"{\"a\":\"0123456789abcdef\"}", "a", NMC_JSON_TOO_LONG, ""},             /* 16: does not */
        {"{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "a", NMC_JSON_STRING, "\"\\/\b\f\n\r\t"},
        {"{\"a\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}", "a", NMC_JSON_STRING, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"},
        {"{\"\\u0061\":\"x\"}", "a", NMC_JSON_STRING, "x"}, /* names are compared unescaped */
        {"{\"a\":-0.5e+10,\"b\":true,\"c\":false,\"d\":[1,[2,{}],[]],\"e\":{\"f\":null},\"a\":\"z\"}", "a",
         NMC_JSON_STRING, "z"},
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(cases); i++) {
        char val[CAP];
        enum nmc_json_got got;
        if (scan(cases[i].text, cases[i].key, val, &got) != 0)
            fail_msg("%s: rejected", cases[i].text);
        if (got != cases[i].got || strcmp(val, cases[i].val) != 0)
            fail_msg("%s: got %d \"%s\", want %d \"%s\"", cases[i].text, (int)got, val, (int)cases[i].got,
                     cases[i].val);
    }
}

static void test_json_scan_rejects_what_jansson_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", " ", "[]", "[\"a\"]", "\"a\"", "1", "null",    /* not an object */
        "{", "{\"a\"", "{\"a\":", "{\"a\":\"x\"", "{\"a\":\"x\",}", "{,}", "{\"a\" \"x\"}", "{a:1}",
        "{\"a\":\"x\"} {}", "{\"a\":\"x\"}]", "{\"a\":[1,]}", "{\"a\":[1 2]}", "{\"a\":}",
        "{\"a\":01}", "{\"a\":-}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{\"a\":+1}", "{\"a\":0x1}",
        "{\"a\":tru}", "{\"a\":truex}", "{\"a\":True}", "{\"a\":nul}",
        "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u0000\"}", "{\"\\u0000\":1}",
        "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\\ud800x\"}",
        "{\"a\":\"tab\there\"}", "{\"a\":\"\xc3\x28\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xc0\xaf\"}",
        "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":1}\xc3\xa9",
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(bad); i++) {
        char val[CAP];
        enum nmc_json_got got;
        json_error_t err;
        json_t *j = json_loads(bad[i], 0, &err);
        int jansson_object = json_is_object(j);
        json_decref(j);
        if (jansson_object)
            fail_msg("%s: jansson takes it as an object, the table is wrong", bad[i]);
        if (scan(bad[i], "a", val, &got) != NMC_EINVAL)
            fail_msg("%s: accepted", bad[i]);
    }
    /* a NUL byte is never JSON text, and the length is the caller's */
    static const char nul[] = "{\"a\":\"x\0\"}";
    const char *keys[1] = { "a" };
    char val[CAP];
    enum nmc_json_got got;
    assert_int_equal(nmc_json_object_strings(nul, sizeof nul - 1, keys, 1, val, CAP, &got), NMC_EINVAL);
    assert_int_equal(nmc_json_object_strings("{\"a\":\"x\"}", 8, keys, 1, val, CAP, &got), NMC_EINVAL);
    assert_int_equal(nmc_json_object_strings(NULL, 0, keys, 1, val, CAP, &got), NMC_EINVAL);
    assert_int_equal(nmc_json_object_strings("{}", 2, NULL, 0, NULL, 0, NULL), 0);
}

/* '{"a":' + n - 1 opening brackets + a value + the closing ones: n + 1 values deep */
static char *nested(size_t n, const char *value)
{
    size_t vl = strlen(value), len = 5 + (n - 1) * 2 + vl + 1;
    char *s = malloc(len + 1);
    assert_non_null(s);
    memcpy(s, "{\"a\":", 5);
    memset(s + 5, '[', n - 1);
    memcpy(s + 5 + n - 1, value, vl);
    memset(s + 5 + n - 1 + vl, ']', n - 1);
    s[len - 1] = '}';
    s[len] = '\0';
    return s;
}

static void test_json_scan_depth_limit_is_janssons(void **state)
{
    (void)state;
    /* jansson counts every value, scalars too: around its limit both agree */
    static const char *const values[] = { "1", "[]", "\"x\"", "{}" };
    for (size_t v = 0; v < NMC_ARRAY_SIZE(values); v++) {
        for (size_t n = NMC_JSON_MAX_DEPTH - 2; n <= NMC_JSON_MAX_DEPTH + 1; n++) {
            char *s = nested(n, values[v]);
            json_error_t err;
            json_t *j = json_loads(s, 0, &err);
            char val[CAP];
            enum nmc_json_got got;
            int rc = scan(s, "a", val, &got);
            if ((j != NULL) != (rc == 0))
                fail_msg("%zu deep, innermost %s: jansson %s, scanner %s", n, values[v], j != NULL ? "accepts" : "rejects",
                         rc == 0 ? "accepts" : "rejects");
            json_decref(j);
            free(s);
        }
    }
    /* and the limit is reached: the deepest accepted and the first rejected differ by one */
    char *ok = nested(NMC_JSON_MAX_DEPTH - 1, "[]"), *deep = nested(NMC_JSON_MAX_DEPTH, "[]");
    char val[CAP];
    enum nmc_json_got got;
    assert_int_equal(scan(ok, "a", val, &got), 0);
    assert_int_equal(scan(deep, "a", val, &got), NMC_EINVAL);
    free(ok);
    free(deep);
}

static void test_json_scan_several_keys(void **state)
{
    (void)state;
    const char *text = "{\"tenant_id\":\"t\",\"x\":{\"detected_at\":\"no\"},\"detected_at\":\"2026\",\"z\":\"\"}";
    const char *keys[3] = { "tenant_id", "detected_at", "missing" };
    char vals[3][CAP];
    enum nmc_json_got got[3];
    memset(vals, 'q', sizeof vals);
    assert_int_equal(nmc_json_object_strings(text, strlen(text), keys, 3, &vals[0][0], CAP, got), 0);
    assert_int_equal(got[0], NMC_JSON_STRING);
    assert_string_equal(vals[0], "t");
    assert_int_equal(got[1], NMC_JSON_STRING);
    assert_string_equal(vals[1], "2026");
    assert_int_equal(got[2], NMC_JSON_ABSENT);
    assert_string_equal(vals[2], "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_scan_reads_top_level_strings),
        cmocka_unit_test(test_json_scan_rejects_what_jansson_rejects),
        cmocka_unit_test(test_json_scan_depth_limit_is_janssons),
        cmocka_unit_test(test_json_scan_several_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
