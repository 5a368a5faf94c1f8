/* Tests for runtime/log.c: every line is one valid JSON object with the
 * required fields of spec 000 3.1, and the redaction rules of spec 000 3.2 /
 * spec 003 hold. Lines are captured with open_memstream and read back with
 * jansson; the redaction cases are a table of inputs and expected values. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/actor.h"
#include "runtime/clock.h"
#include "runtime/log.h"

#define FROZEN_MS 1795428000123LL /* 2026-11-23T10:00:00.123Z */

struct capture {
    char *buf;
    size_t len;
    FILE *f;
};

static void cap_start(struct capture *c, enum nmc_log_level level, int body_prefix)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    assert_non_null(c->f);
    nmc_log_setup(level, body_prefix, c->f);
}

/* Closes the capture and returns its lines parsed (a JSON array). Fails the
 * test unless every line is one JSON object ending in '\n'. */
static json_t *cap_lines(struct capture *c)
{
    nmc_log_setup(NMC_LOG_INFO, 0, stderr);
    assert_int_equal(fclose(c->f), 0);
    json_t *lines = json_array();
    char *p = c->buf;
    while (p < c->buf + c->len) {
        char *nl = memchr(p, '\n', (size_t)(c->buf + c->len - p));
        assert_non_null(nl); /* every line is terminated */
        json_error_t err;
        json_t *o = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
        if (o == NULL)
            fail_msg("invalid JSON line: %s (%.*s)", err.text, (int)(nl - p), p);
        assert_true(json_is_object(o));
        json_array_append_new(lines, o);
        p = nl + 1;
    }
    free(c->buf);
    return lines;
}

/* The single line a capture must hold. */
static json_t *cap_one(struct capture *c)
{
    json_t *lines = cap_lines(c);
    assert_int_equal(json_array_size(lines), 1);
    json_t *o = json_incref(json_array_get(lines, 0));
    json_decref(lines);
    return o;
}

static int setup(void **state)
{
    (void)state;
    nmc_clock_freeze(FROZEN_MS);
    nmc_log_set_env(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nmc_clock_unfreeze();
    nmc_log_setup(NMC_LOG_INFO, 0, NULL);
    return 0;
}

/* ---- redaction table ----------------------------------------------------- */

enum adder { A_STR, A_INT, A_PHONE, A_EMAIL, A_BODY, A_DETAIL };

struct field_case {
    const char *name;
    enum nmc_log_level logger, record;
    int body_prefix;
    enum adder adder;
    const char *key;
    const char *value;
    const char *want;    /* expected value as JSON text; NULL: key absent */
    int body_truncated;  /* "body_truncated":true expected */
};

#define S50 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
#define E10 "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9" /* é x10 */
#define A48 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const struct field_case field_cases[] = {
    /* phones: the record's level decides */
    { "phone info", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_PHONE, "from", "+14155551234", "\"***1234\"", 0 },
    { "phone warn", NMC_LOG_INFO, NMC_LOG_WARN, 0, A_PHONE, "from", "+14155551234", "\"***1234\"", 0 },
    { "phone error", NMC_LOG_INFO, NMC_LOG_ERROR, 0, A_PHONE, "from", "+14155551234", "\"***1234\"", 0 },
    { "phone info record, debug logger", NMC_LOG_DEBUG, NMC_LOG_INFO, 0, A_PHONE, "from", "+14155551234",
      "\"***1234\"", 0 },
    { "phone debug", NMC_LOG_DEBUG, NMC_LOG_DEBUG, 0, A_PHONE, "from", "+14155551234", "\"+14155551234\"", 0 },
    { "phone trace", NMC_LOG_TRACE, NMC_LOG_TRACE, 0, A_PHONE, "from", "+14155551234", "\"+14155551234\"", 0 },
    { "phone formatted", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_PHONE, "to", "+1 (415) 555-9876", "\"***9876\"", 0 },
    { "phone 5 chars", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_PHONE, "to", "12345", "\"***2345\"", 0 },
    { "phone 4 chars", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_PHONE, "to", "1234", "\"***\"", 0 },
    { "phone 1 char", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_PHONE, "to", "7", "\"***\"", 0 },
    { "phone empty", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_PHONE, "to", "", "\"***\"", 0 },
    { "phone null", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_PHONE, "to", NULL, "null", 0 },
    /* emails */
    { "email info", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_EMAIL, "email", "jane.doe@example.com", "\"***.com\"", 0 },
    { "email debug", NMC_LOG_DEBUG, NMC_LOG_DEBUG, 0, A_EMAIL, "email", "jane.doe@example.com",
      "\"jane.doe@example.com\"", 0 },
    { "email multibyte tail", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_EMAIL, "email", "x@b\xC3\xBC\xC3\xA7h\xC3\xA9r",
      "\"***\xC3\xA7h\xC3\xA9r\"", 0 },
    { "email short", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_EMAIL, "email", "a@b", "\"***\"", 0 },
    /* bodies: off by default, then 50 characters, never half a character */
    { "body off", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_BODY, "body", "Hello there", NULL, 0 },
    { "body off at debug", NMC_LOG_DEBUG, NMC_LOG_DEBUG, 0, A_BODY, "body", "Hello there", NULL, 0 },
    { "body short", NMC_LOG_INFO, NMC_LOG_INFO, 1, A_BODY, "body", "Hello there", "\"Hello there\"", 0 },
    { "body exactly 50", NMC_LOG_INFO, NMC_LOG_INFO, 1, A_BODY, "body", S50, "\"" S50 "\"", 0 },
    { "body 51 cut", NMC_LOG_INFO, NMC_LOG_INFO, 1, A_BODY, "body", S50 "Y", "\"" S50 "\"", 1 },
    { "body 2-byte chars cut at 50 chars", NMC_LOG_INFO, NMC_LOG_INFO, 1, A_BODY, "body",
      E10 E10 E10 E10 E10 E10, "\"" E10 E10 E10 E10 E10 "\"", 1 },
    { "body 3-byte char at the boundary", NMC_LOG_INFO, NMC_LOG_INFO, 1, A_BODY, "body",
      A48 "b\xE2\x82\xAC" "cd", "\"" A48 "b\xE2\x82\xAC\"", 1 },
    { "body 4-byte chars at the boundary", NMC_LOG_INFO, NMC_LOG_INFO, 1, A_BODY, "body",
      A48 "\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80", "\"" A48 "\xF0\x9F\x98\x80\xF0\x9F\x98\x80\"", 1 },
    { "body null", NMC_LOG_INFO, NMC_LOG_INFO, 1, A_BODY, "body", NULL, "null", 0 },
    /* secret-looking keys, whatever the adder */
    { "token str", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "auth_token", "abc", "\"[REDACTED]\"", 0 },
    { "secret str", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "client_secret", "abc", "\"[REDACTED]\"", 0 },
    { "password any case", NMC_LOG_DEBUG, NMC_LOG_DEBUG, 0, A_STR, "DB_Password", "hunter2", "\"[REDACTED]\"", 0 },
    { "authorization header", NMC_LOG_INFO, NMC_LOG_WARN, 0, A_STR, "Authorization", "Basic dXNlcjpwYXNz",
      "\"[REDACTED]\"", 0 },
    { "api_key", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "x_api_key", "sk_live_1", "\"[REDACTED]\"", 0 },
    { "api_key as int", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_INT, "api_key", "12345", "\"[REDACTED]\"", 0 },
    { "token as phone at debug", NMC_LOG_DEBUG, NMC_LOG_DEBUG, 0, A_PHONE, "token_phone", "+14155551234",
      "\"[REDACTED]\"", 0 },
    { "secret as body", NMC_LOG_INFO, NMC_LOG_INFO, 1, A_BODY, "secret_body", "psst", "\"[REDACTED]\"", 0 },
    { "token counts are not secrets", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_INT, "prompt_tokens", "42", "42", 0 },
    { "plain key untouched", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "provider", "twilio", "\"twilio\"", 0 },
    /* stack/detail only when the LOGGER runs at DEBUG or TRACE */
    { "detail at debug logger", NMC_LOG_DEBUG, NMC_LOG_ERROR, 0, A_DETAIL, "stack", "at step 3", "\"at step 3\"", 0 },
    { "detail at trace logger", NMC_LOG_TRACE, NMC_LOG_INFO, 0, A_DETAIL, "stack", "at step 3", "\"at step 3\"", 0 },
    { "detail at info logger", NMC_LOG_INFO, NMC_LOG_ERROR, 0, A_DETAIL, "stack", "at step 3", NULL, 0 },
    /* hostile strings stay valid JSON and round-trip */
    { "quotes and backslash", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "v", "a\"b\\c", "\"a\\\"b\\\\c\"", 0 },
    { "newline injection", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "v", "x\n{\"level\":\"error\"}",
      "\"x\\n{\\\"level\\\":\\\"error\\\"}\"", 0 },
    { "control bytes", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "v", "\x01\x1f\t\r\b\f\x7f", "\"\\u0001\\u001f\\t\\r\\b\\f\\u007f\"",
      0 },
    { "invalid utf-8 bytes", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "v", "\xff\xfe" "ab", "\"\\ufffd\\ufffdab\"", 0 },
    { "overlong slash", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "v", "\xc0\xaf", "\"\\ufffd\\ufffd\"", 0 },
    { "surrogate", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "v", "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"", 0 },
    { "truncated sequence", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "v", "ab\xe2\x82", "\"ab\\ufffd\\ufffd\"", 0 },
    { "above U+10FFFF", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "v", "\xf4\x90\x80\x80",
      "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", 0 },
    { "valid multibyte kept", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "v", "caf\xC3\xA9 \xF0\x9F\x93\x9E",
      "\"caf\xC3\xA9 \xF0\x9F\x93\x9E\"", 0 },
    { "hostile key", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "we\"ird\nkey", "v", "\"v\"", 0 },
    { "null string", NMC_LOG_INFO, NMC_LOG_INFO, 0, A_STR, "v", NULL, "null", 0 },
};

static void add_field(struct nmc_log_rec *r, const struct field_case *fc)
{
    int64_t iv = 0;
    switch (fc->adder) {
    case A_STR: nmc_log_str(r, fc->key, fc->value); break;
    case A_INT:
        assert_int_equal(nmc_parse_i64(fc->value, INT64_MIN, INT64_MAX, &iv), 0);
        nmc_log_int(r, fc->key, iv);
        break;
    case A_PHONE: nmc_log_phone(r, fc->key, fc->value); break;
    case A_EMAIL: nmc_log_email(r, fc->key, fc->value); break;
    case A_BODY: nmc_log_body(r, fc->key, fc->value); break;
    case A_DETAIL: nmc_log_detail(r, fc->value); break;
    }
}

static void run_field_case(const struct field_case *fc)
{
    struct capture c;
    cap_start(&c, fc->logger, fc->body_prefix);
    struct nmc_log_rec *r = nmc_log_begin(fc->record, "telephony", "case");
    assert_non_null(r);
    add_field(r, fc);
    nmc_log_end(r);
    json_t *o = cap_one(&c);
    json_t *got = json_object_get(o, fc->key);
    if (fc->want == NULL) {
        if (got != NULL)
            fail_msg("%s: key %s present", fc->name, fc->key);
    } else {
        json_t *want = json_loads(fc->want, JSON_DECODE_ANY, NULL);
        assert_non_null(want);
        if (got == NULL || !json_equal(got, want)) {
            char *g = got ? json_dumps(got, JSON_ENCODE_ANY) : NULL;
            fail_msg("%s: got %s, want %s", fc->name, g ? g : "(absent)", fc->want);
        }
        json_decref(want);
    }
    json_t *bt = json_object_get(o, "body_truncated");
    if (fc->body_truncated ? !json_is_true(bt) : bt != NULL)
        fail_msg("%s: body_truncated %s", fc->name, bt ? "present" : "absent");
    json_decref(o);
}

static void test_log_adders_redaction_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NMC_ARRAY_SIZE(field_cases); i++)
        run_field_case(&field_cases[i]);
}

/* ---- required fields and their order -------------------------------------- */

static void assert_keys_in_order(json_t *o, const char *const *keys, size_t n)
{
    void *it = json_object_iter(o);
    for (size_t i = 0; i < n; i++, it = json_object_iter_next(o, it)) {
        assert_non_null(it);
        assert_string_equal(json_object_iter_key(it), keys[i]);
    }
    assert_null(it);
}

static void test_log_end_required_fields_null_ids(void **state)
{
    (void)state;
    struct capture c;
    cap_start(&c, NMC_LOG_INFO, 0);
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_INFO, "infra", "boot");
    nmc_log_int(r, "port", 8080);
    nmc_log_end(r);
    json_t *o = cap_one(&c);
    static const char *const keys[] = { "timestamp", "level", "module", "event", "tenant_id", "correlation_id",
                                        "port" };
    assert_keys_in_order(o, keys, NMC_ARRAY_SIZE(keys));
    assert_string_equal(json_string_value(json_object_get(o, "timestamp")), "2026-11-23T10:00:00.123Z");
    assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(o, "module")), "infra");
    assert_string_equal(json_string_value(json_object_get(o, "event")), "boot");
    assert_true(json_is_null(json_object_get(o, "tenant_id")));
    assert_true(json_is_null(json_object_get(o, "correlation_id")));
    json_decref(o);
}

static void test_log_ids_after_fields_still_in_head(void **state)
{
    (void)state;
    struct capture c;
    cap_start(&c, NMC_LOG_INFO, 0);
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_WARN, "outbox", "dispatch.failed");
    nmc_log_str(r, "event_name", "CallDetected");
    nmc_log_int(r, "attempts", 3);
    nmc_log_ids(r, "t-1", "c-1", "k-1");
    nmc_log_end(r);
    json_t *o = cap_one(&c);
    static const char *const keys[] = { "timestamp", "level", "module", "event", "tenant_id",
                                        "correlation_id", "causation_id", "event_name", "attempts" };
    assert_keys_in_order(o, keys, NMC_ARRAY_SIZE(keys));
    assert_string_equal(json_string_value(json_object_get(o, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(o, "tenant_id")), "t-1");
    assert_string_equal(json_string_value(json_object_get(o, "causation_id")), "k-1");
    json_decref(o);
}

static void test_log_ctx_copies_message_ids(void **state)
{
    (void)state;
    struct nmc_msg m;
    memset(&m, 0, sizeof(m));
    nmc_strlcpy(m.tenant_id, "11111111-1111-4111-8111-111111111111", sizeof(m.tenant_id));
    nmc_strlcpy(m.correlation_id, "22222222-2222-4222-8222-222222222222", sizeof(m.correlation_id));
    struct capture c;
    cap_start(&c, NMC_LOG_INFO, 0);
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_ERROR, "conversation", "first_reply.failed");
    nmc_log_ctx(r, &m);
    nmc_log_error(r, NMC_ETIMEDOUT, NULL);
    nmc_log_end(r);
    json_t *o = cap_one(&c);
    assert_string_equal(json_string_value(json_object_get(o, "tenant_id")), m.tenant_id);
    assert_string_equal(json_string_value(json_object_get(o, "correlation_id")), m.correlation_id);
    assert_null(json_object_get(o, "causation_id")); /* unknown: omitted */
    assert_string_equal(json_string_value(json_object_get(o, "error_code")), nmc_errcode(NMC_ETIMEDOUT));
    assert_string_equal(json_string_value(json_object_get(o, "error_message")), nmc_strerror(NMC_ETIMEDOUT));
    json_decref(o);
}

static void test_log_set_env_adds_env_after_event(void **state)
{
    (void)state;
    struct capture c;
    cap_start(&c, NMC_LOG_INFO, 0);
    nmc_log_set_env("staging");
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_INFO, "infra", "boot");
    nmc_log_end(r);
    nmc_log_set_env(NULL);
    json_t *o = cap_one(&c);
    static const char *const keys[] = { "timestamp", "level", "module", "event", "env", "tenant_id",
                                        "correlation_id" };
    assert_keys_in_order(o, keys, NMC_ARRAY_SIZE(keys));
    assert_string_equal(json_string_value(json_object_get(o, "env")), "staging");
    json_decref(o);
}

static void test_log_adders_typed_values(void **state)
{
    (void)state;
    struct capture c;
    cap_start(&c, NMC_LOG_INFO, 0);
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_INFO, "infra", "http.request");
    nmc_log_str(r, "method", "POST");
    nmc_log_int(r, "status", 201);
    nmc_log_int(r, "big", INT64_MIN);
    nmc_log_double(r, "latency_ms", 1.25);
    nmc_log_double(r, "nan", 0.0 / 0.0);
    nmc_log_bool(r, "dedupe", 1);
    nmc_log_strn(r, "route", "/v1/bookingsXXXX", 12);
    nmc_log_msgf(r, "%d of %s", 3, "4");
    nmc_log_end(r);
    json_t *o = cap_one(&c);
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 201);
    assert_true(json_integer_value(json_object_get(o, "big")) == INT64_MIN);
    assert_true(json_real_value(json_object_get(o, "latency_ms")) == 1.25);
    assert_true(json_is_null(json_object_get(o, "nan")));
    assert_true(json_is_true(json_object_get(o, "dedupe")));
    assert_string_equal(json_string_value(json_object_get(o, "route")), "/v1/bookings");
    assert_string_equal(json_string_value(json_object_get(o, "message")), "3 of 4");
    json_decref(o);
}

static void test_log_strn_embedded_nul_escaped(void **state)
{
    (void)state;
    struct capture c;
    cap_start(&c, NMC_LOG_INFO, 0);
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_INFO, "infra", "x");
    nmc_log_strn(r, "v", "a\0b", 3);
    nmc_log_end(r);
    json_t *o = cap_one(&c);
    json_t *v = json_object_get(o, "v");
    assert_int_equal(json_string_length(v), 3);
    assert_memory_equal(json_string_value(v), "a\0b", 3);
    json_decref(o);
}

static void test_log_str_long_value_cut_on_char_boundary(void **state)
{
    (void)state;
    size_t n = NMC_LOG_MAX_VALUE + 100;
    char *big = malloc(n + 1);
    assert_non_null(big);
    big[0] = 'x'; /* then 2-byte characters, so the cap falls mid-character */
    for (size_t i = 1; i + 1 < n; i += 2)
        memcpy(big + i, "\xC3\xA9", 2);
    big[n - (n % 2 == 0 ? 1 : 0)] = '\0';
    struct capture c;
    cap_start(&c, NMC_LOG_INFO, 0);
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_INFO, "infra", "x");
    nmc_log_str(r, "v", big);
    nmc_log_end(r);
    free(big);
    json_t *o = cap_one(&c);
    const char *v = json_string_value(json_object_get(o, "v"));
    assert_non_null(v);
    assert_true(strlen(v) <= NMC_LOG_MAX_VALUE);
    assert_true(strlen(v) >= NMC_LOG_MAX_VALUE - 1);
    assert_null(strstr(v, "\xEF\xBF\xBD")); /* no replacement char: the cut was clean */
    assert_true(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);
}

static void test_log_obj_nested_and_secret_object(void **state)
{
    (void)state;
    struct capture c;
    cap_start(&c, NMC_LOG_DEBUG, 0);
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_DEBUG, "infra", "span");
    nmc_log_obj_begin(r, "attributes");
    nmc_log_str(r, "event_id", "e1");
    nmc_log_str(r, "refresh_token", "rt");
    nmc_log_obj_end(r);
    nmc_log_obj_begin(r, "credentials_secret");
    nmc_log_str(r, "user", "u");
    nmc_log_obj_begin(r, "inner");
    nmc_log_str(r, "x", "y");
    nmc_log_obj_end(r);
    nmc_log_obj_end(r);
    nmc_log_obj_begin(r, "left_open");
    nmc_log_int(r, "n", 1);
    nmc_log_end(r); /* closes left_open */
    json_t *o = cap_one(&c);
    json_t *a = json_object_get(o, "attributes");
    assert_string_equal(json_string_value(json_object_get(a, "event_id")), "e1");
    assert_string_equal(json_string_value(json_object_get(a, "refresh_token")), "[REDACTED]");
    assert_string_equal(json_string_value(json_object_get(o, "credentials_secret")), "[REDACTED]");
    assert_null(json_object_get(o, "user"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "left_open"), "n")), 1);
    json_decref(o);
}

/* ---- levels ------------------------------------------------------------- */

static void test_log_begin_level_filtering(void **state)
{
    (void)state;
    static const char *const names[] = { "trace", "debug", "info", "warn", "error" };
    for (int logger = NMC_LOG_TRACE; logger <= NMC_LOG_ERROR; logger++) {
        struct capture c;
        cap_start(&c, (enum nmc_log_level)logger, 0);
        for (int rec = NMC_LOG_TRACE; rec <= NMC_LOG_ERROR; rec++) {
            assert_int_equal(nmc_log_enabled((enum nmc_log_level)rec), rec >= logger);
            struct nmc_log_rec *r = nmc_log_begin((enum nmc_log_level)rec, "infra", "lvl");
            assert_true((r != NULL) == (rec >= logger));
            nmc_log_str(r, "x", "y"); /* adders accept NULL */
            nmc_log_end(r);
        }
        json_t *lines = cap_lines(&c);
        assert_int_equal(json_array_size(lines), (size_t)(NMC_LOG_ERROR - logger + 1));
        for (size_t i = 0; i < json_array_size(lines); i++)
            assert_string_equal(json_string_value(json_object_get(json_array_get(lines, i), "level")),
                                names[(size_t)logger + i]);
        json_decref(lines);
    }
}

static void test_log_level_parse_table(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        enum nmc_log_level want;
    } cases[] = {
        { "trace", 0, NMC_LOG_TRACE }, { "DEBUG", 0, NMC_LOG_DEBUG }, { "Info", 0, NMC_LOG_INFO },
        { "warn", 0, NMC_LOG_WARN },   { "warning", 0, NMC_LOG_WARN }, { "error", 0, NMC_LOG_ERROR },
        { "", NMC_EINVAL, 0 },         { "verbose", NMC_EINVAL, 0 },  { "info ", NMC_EINVAL, 0 },
        { NULL, NMC_EINVAL, 0 },
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(cases); i++) {
        enum nmc_log_level got = NMC_LOG_ERROR;
        assert_int_equal(nmc_log_level_parse(cases[i].in, &got), cases[i].rc);
        if (cases[i].rc == 0)
            assert_int_equal(got, cases[i].want);
    }
}

static void test_log_mask_last4_table(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        { "+14155551234", "***1234" }, { "12345", "***2345" }, { "1234", "***" }, { "", "***" },
        { NULL, "***" },               { "ab\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", "***\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9" },
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(cases); i++) {
        char out[32];
        nmc_log_mask_last4(cases[i].in, out, sizeof(out));
        assert_string_equal(out, cases[i].want);
    }
}

/* ---- output path -------------------------------------------------------- */

/* With no FILE configured, lines go to fd 1 with write(2). */
static void test_log_end_writes_stdout(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fds[1], STDOUT_FILENO) >= 0);
    nmc_log_setup(NMC_LOG_INFO, 0, NULL);
    for (int i = 0; i < 3; i++) {
        struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_INFO, "infra", "line");
        nmc_log_int(r, "i", i);
        nmc_log_end(r);
    }
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    close(fds[1]);
    char buf[4096];
    ssize_t n, total = 0;
    while ((n = read(fds[0], buf + total, sizeof(buf) - 1 - (size_t)total)) > 0)
        total += n;
    close(fds[0]);
    buf[total] = '\0';
    int lines = 0;
    for (char *line = buf, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1, lines++) {
        json_t *o = json_loadb(line, (size_t)(nl - line), 0, NULL);
        assert_non_null(o);
        assert_int_equal(json_integer_value(json_object_get(o, "i")), lines);
        json_decref(o);
    }
    assert_int_equal(lines, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_adders_redaction_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_end_required_fields_null_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_ids_after_fields_still_in_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_ctx_copies_message_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_set_env_adds_env_after_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_adders_typed_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_strn_embedded_nul_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_str_long_value_cut_on_char_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_obj_nested_and_secret_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_begin_level_filtering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_level_parse_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_mask_last4_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_end_writes_stdout, setup, teardown),
    };
    return cmocka_run_group_tests_name("runtime_log", tests, NULL, NULL);
}
