/* http/body.c: form-urlencoded parsing, percent coding, JSON objects with
 * line/column errors, unknown-key checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "http/body.h"

static void test_http_body_form_parse_twilio_like(void **state)
{
    static const char body[] = "CallSid=CA123&From=%2B15551234567&To=%2B15557654321&CallStatus=no-answer"
                               "&Caller+Name=Jane+Doe&Empty=&Flag&&Dup=1&Dup=2";
    struct nmc_form f;

    assert_int_equal(nmc_form_parse(body, strlen(body), 32, &f), 0);
    assert_int_equal(f.n, 9);
    assert_string_equal(nmc_form_get(&f, "From"), "+15551234567");
    assert_string_equal(nmc_form_get(&f, "CallStatus"), "no-answer");
    assert_string_equal(nmc_form_get(&f, "Caller Name"), "Jane Doe");
    assert_string_equal(nmc_form_get(&f, "Empty"), "");
    assert_string_equal(nmc_form_get(&f, "Flag"), "");
    assert_string_equal(nmc_form_get(&f, "Dup"), "1");
    assert_null(nmc_form_get(&f, "Missing"));
    assert_string_equal(f.pairs[0].name, "CallSid"); /* body order kept */
    assert_string_equal(f.pairs[8].value, "2");
    nmc_form_free(&f);
}

static void test_http_body_form_parse_value_with_equals(void **state)
{
    struct nmc_form f;

    assert_int_equal(nmc_form_parse("a=b=c&x=%3D", 11, 8, &f), 0);
    assert_string_equal(nmc_form_get(&f, "a"), "b=c");
    assert_string_equal(nmc_form_get(&f, "x"), "=");
    nmc_form_free(&f);
}

static void test_http_body_form_parse_malformed_eparse(void **state)
{
    static const char *const bad[] = {"a=%", "a=%4", "a=%zz", "a=%4g", "%=1", "a=%00", "a%00=1"};
    struct nmc_form f;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(nmc_form_parse(bad[i], strlen(bad[i]), 8, &f), NMC_EPARSE);
        assert_int_equal(f.n, 0);
        assert_null(f.pairs);
    }
    /* a raw NUL inside the body */
    assert_int_equal(nmc_form_parse("a=b\0c", 5, 8, &f), NMC_EPARSE);
}

static void test_http_body_form_parse_too_many_pairs_etoobig(void **state)
{
    struct nmc_form f;

    assert_int_equal(nmc_form_parse("a=1&b=2&c=3", 11, 2, &f), NMC_ETOOBIG);
    assert_int_equal(f.n, 0);
    assert_int_equal(nmc_form_parse("a=1&b=2&c=3", 11, 3, &f), 0);
    nmc_form_free(&f);
}

static void test_http_body_form_parse_empty_body(void **state)
{
    struct nmc_form f;

    assert_int_equal(nmc_form_parse("", 0, 8, &f), 0);
    assert_int_equal(f.n, 0);
    assert_null(nmc_form_get(&f, "a"));
    nmc_form_free(&f);
    nmc_form_free(NULL);
}

static void test_http_body_url_encode_reserved_and_utf8(void **state)
{
    char *s = nmc_url_encode("a b+c/d?e=f&g~h_i.j-k\xc3\xa9");

    assert_string_equal(s, "a%20b%2Bc%2Fd%3Fe%3Df%26g~h_i.j-k%C3%A9");
    free(s);
    s = nmc_url_encode("");
    assert_string_equal(s, "");
    free(s);
}

static void test_http_body_url_encode_roundtrip(void **state)
{
    char in[256], out[256 * 3 + 1];
    char *enc;
    size_t i, n;

    for (i = 0; i < 255; i++)
        in[i] = (char)(i + 1);
    in[255] = '\0';
    enc = nmc_url_encode(in);
    assert_int_equal(nmc_url_decode(enc, strlen(enc), 0, out, &n), 0);
    assert_int_equal(n, 255);
    assert_memory_equal(out, in, 255);
    free(enc);
}

static void test_http_body_url_decode_plus_modes(void **state)
{
    char out[16];
    size_t n;

    assert_int_equal(nmc_url_decode("a+b%20c", 7, 1, out, &n), 0);
    assert_string_equal(out, "a b c");
    assert_int_equal(n, 5);
    assert_int_equal(nmc_url_decode("a+b", 3, 0, out, NULL), 0);
    assert_string_equal(out, "a+b");
    assert_int_equal(nmc_url_decode("%41%62", 6, 0, out, NULL), 0);
    assert_string_equal(out, "Ab");
    assert_int_equal(nmc_url_decode("ab%", 3, 0, out, NULL), NMC_EPARSE);
}

static void test_http_body_json_parse_object_ok(void **state)
{
    char err[160];
    json_t *o = nmc_json_parse_object("{\"a\":1,\"b\":\"x\"}", 15, err, sizeof(err));

    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "a")), 1);
    json_decref(o);
}

static void test_http_body_json_parse_error_line_column(void **state)
{
    static const char body[] = "{\n  \"a\": 1,\n  \"b\": tru\n}";
    char err[160];

    assert_null(nmc_json_parse_object(body, strlen(body), err, sizeof(err)));
    assert_non_null(strstr(err, "line 3"));
    assert_non_null(strstr(err, "column"));
}

static void test_http_body_json_parse_not_object_or_empty(void **state)
{
    char err[160];

    assert_null(nmc_json_parse_object("[1,2]", 5, err, sizeof(err)));
    assert_non_null(strstr(err, "expected a JSON object"));
    assert_null(nmc_json_parse_object("", 0, err, sizeof(err)));
    assert_non_null(strstr(err, "empty body"));
    assert_null(nmc_json_parse_object("{} x", 4, err, sizeof(err)));
    assert_null(nmc_json_parse_object("{\"a\":1,\"a\":2}", 13, err, sizeof(err))); /* duplicate key */
    assert_null(nmc_json_parse_object("{\"a\":\"\\u0000\"}", 14, err, sizeof(err)));  /* NUL in a string */
}

static void test_http_body_json_check_keys_unknown_einval(void **state)
{
    static const char *const allowed[] = {"name", "phone", NULL};
    char err[160];
    json_t *o = json_pack("{s:s, s:s}", "name", "A", "phone", "+1");

    assert_int_equal(nmc_json_check_keys(o, allowed, err, sizeof(err)), 0);
    json_object_set_new(o, "admin", json_true());
    assert_int_equal(nmc_json_check_keys(o, allowed, err, sizeof(err)), NMC_EINVAL);
    assert_non_null(strstr(err, "\"admin\""));
    json_decref(o);
    o = json_array();
    assert_int_equal(nmc_json_check_keys(o, allowed, err, sizeof(err)), NMC_EINVAL);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_body_form_parse_twilio_like),
        cmocka_unit_test(test_http_body_form_parse_value_with_equals),
        cmocka_unit_test(test_http_body_form_parse_malformed_eparse),
        cmocka_unit_test(test_http_body_form_parse_too_many_pairs_etoobig),
        cmocka_unit_test(test_http_body_form_parse_empty_body),
        cmocka_unit_test(test_http_body_url_encode_reserved_and_utf8),
        cmocka_unit_test(test_http_body_url_encode_roundtrip),
        cmocka_unit_test(test_http_body_url_decode_plus_modes),
        cmocka_unit_test(test_http_body_json_parse_object_ok),
        cmocka_unit_test(test_http_body_json_parse_error_line_column),
        cmocka_unit_test(test_http_body_json_parse_not_object_or_empty),
        cmocka_unit_test(test_http_body_json_check_keys_unknown_einval),
    };

    return cmocka_run_group_tests_name("http_body", tests, NULL, NULL);
}
