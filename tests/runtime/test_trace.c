/* Tests for runtime/trace.c: W3C traceparent parsing (strict, version 00)
 * and formatting, span trees, the exporter hook and the default exporter
 * (a DEBUG log line per span, read back with jansson). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/clock.h"
#include "runtime/log.h"
#include "runtime/trace.h"

#define GOOD "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

/* What the test exporter saw: copies, since the span is only borrowed. */
struct seen {
    int calls;
    char name[64];
    struct nmc_trace_ctx ctx;
    uint8_t parent[8];
    int error;
    char status[64];
    size_t nattrs;
    char attrs[NMC_TRACE_MAX_ATTRS][2][64];
    int64_t duration_ns;
};

static void on_export(const struct nmc_span *s, void *ud)
{
    struct seen *w = ud;
    w->calls++;
    nmc_strlcpy(w->name, s->name, sizeof(w->name));
    w->ctx = s->ctx;
    memcpy(w->parent, s->parent_span_id, 8);
    w->error = s->error;
    nmc_strlcpy(w->status, s->status_message ? s->status_message : "", sizeof(w->status));
    w->nattrs = s->nattrs;
    for (size_t i = 0; i < s->nattrs; i++) {
        nmc_strlcpy(w->attrs[i][0], s->attrs[i].key, 64);
        nmc_strlcpy(w->attrs[i][1], s->attrs[i].value, 64);
    }
    w->duration_ns = s->end_ns - s->start_ns;
}

static int setup(void **state)
{
    (void)state;
    nmc_trace_set_exporter(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nmc_trace_set_exporter(NULL);
    nmc_clock_unfreeze();
    nmc_log_setup(NMC_LOG_INFO, 0, NULL);
    return 0;
}

/* ---- traceparent -------------------------------------------------------- */

static void test_trace_parse_traceparent_round_trip(void **state)
{
    (void)state;
    struct nmc_trace_ctx c;
    assert_int_equal(nmc_trace_parse_traceparent(GOOD, strlen(GOOD), &c), 0);
    static const uint8_t tid[16] = { 0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                     0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36 };
    static const uint8_t sid[8] = { 0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7 };
    assert_memory_equal(c.trace_id, tid, 16);
    assert_memory_equal(c.span_id, sid, 8);
    assert_int_equal(c.flags, 1);
    assert_true(nmc_trace_ctx_valid(&c));
    char out[56];
    nmc_trace_format_traceparent(&c, out);
    assert_string_equal(out, GOOD);

    static const char unsampled[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    assert_int_equal(nmc_trace_parse_traceparent(unsampled, strlen(unsampled), &c), 0);
    assert_int_equal(c.flags, 0);
    nmc_trace_format_traceparent(&c, out);
    assert_string_equal(out, unsampled);
}

static void test_trace_parse_traceparent_len_bounds_input(void **state)
{
    (void)state;
    /* the header value need not be NUL-terminated: len is what counts */
    char buf[80];
    memcpy(buf, GOOD, 55);
    memcpy(buf + 55, "-ignored", 9);
    struct nmc_trace_ctx c;
    assert_int_equal(nmc_trace_parse_traceparent(buf, 55, &c), 0);
}

static void test_trace_parse_traceparent_invalid_table(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "00",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* only version 00 */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* ff is forbidden */
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* uppercase */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero span id */
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  /* short trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",  /* short span id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",   /* short flags */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* separators */
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* trailing data */
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
        "00-4bf92f3577b34da6a3ce929d0e0e47z6-00f067aa0ba902b7-01", /* non-hex */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba9-2b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-\xff\xff",
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(bad); i++) {
        struct nmc_trace_ctx c;
        memset(&c, 0xAB, sizeof(c));
        struct nmc_trace_ctx before = c;
        if (nmc_trace_parse_traceparent(bad[i], strlen(bad[i]), &c) != NMC_EPARSE)
            fail_msg("accepted: \"%s\"", bad[i]);
        assert_memory_equal(&c, &before, sizeof(c)); /* out untouched */
    }
    struct nmc_trace_ctx c;
    assert_int_equal(nmc_trace_parse_traceparent(NULL, 55, &c), NMC_EPARSE);
}

static void test_trace_ctx_valid_zero_and_null(void **state)
{
    (void)state;
    struct nmc_trace_ctx c;
    memset(&c, 0, sizeof(c));
    assert_false(nmc_trace_ctx_valid(&c));
    assert_false(nmc_trace_ctx_valid(NULL));
    c.trace_id[15] = 1;
    assert_false(nmc_trace_ctx_valid(&c)); /* span id still zero */
    c.span_id[0] = 1;
    assert_true(nmc_trace_ctx_valid(&c));
}

/* ---- spans -------------------------------------------------------------- */

static void test_trace_span_start_root_and_children(void **state)
{
    (void)state;
    struct nmc_span *root = nmc_trace_span_start("webhook.twilio.voice_status", NULL);
    assert_true(nmc_trace_ctx_valid(&root->ctx));
    assert_int_equal(root->ctx.flags & 1, 1);
    static const uint8_t zero[8] = { 0 };
    assert_memory_equal(root->parent_span_id, zero, 8);

    struct nmc_span *child = nmc_trace_span_start("outbox.dispatch", &root->ctx);
    struct nmc_span *grand = nmc_trace_span_start("conversation.first_reply", &child->ctx);
    assert_memory_equal(child->ctx.trace_id, root->ctx.trace_id, 16);
    assert_memory_equal(grand->ctx.trace_id, root->ctx.trace_id, 16);
    assert_memory_equal(child->parent_span_id, root->ctx.span_id, 8);
    assert_memory_equal(grand->parent_span_id, child->ctx.span_id, 8);
    assert_memory_not_equal(child->ctx.span_id, root->ctx.span_id, 8);
    assert_memory_not_equal(grand->ctx.span_id, child->ctx.span_id, 8);

    /* a parsed remote parent continues its trace and keeps its flags */
    struct nmc_trace_ctx remote;
    static const char unsampled[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    assert_int_equal(nmc_trace_parse_traceparent(unsampled, strlen(unsampled), &remote), 0);
    struct nmc_span *srv = nmc_trace_span_start("http.request", &remote);
    assert_memory_equal(srv->ctx.trace_id, remote.trace_id, 16);
    assert_memory_equal(srv->parent_span_id, remote.span_id, 8);
    assert_int_equal(srv->ctx.flags, 0);

    /* an invalid parent starts a new trace */
    struct nmc_trace_ctx zeroctx;
    memset(&zeroctx, 0, sizeof(zeroctx));
    struct nmc_span *fresh = nmc_trace_span_start("x", &zeroctx);
    assert_true(nmc_trace_ctx_valid(&fresh->ctx));
    assert_memory_equal(fresh->parent_span_id, zero, 8);

    struct seen w = { 0 };
    struct nmc_trace_exporter e = { on_export, &w };
    nmc_trace_set_exporter(&e);
    nmc_trace_span_end(fresh);
    nmc_trace_span_end(srv);
    nmc_trace_span_end(grand);
    nmc_trace_span_end(child);
    nmc_trace_span_end(root);
    nmc_trace_span_end(NULL);
    assert_int_equal(w.calls, 5);
    assert_string_equal(w.name, "webhook.twilio.voice_status");
}

static void test_trace_span_end_exporter_gets_attrs_and_error(void **state)
{
    (void)state;
    struct seen w = { 0 };
    struct nmc_trace_exporter e = { on_export, &w };
    nmc_trace_set_exporter(&e);
    nmc_clock_freeze(1795428000000LL);
    struct nmc_span *s = nmc_trace_span_start("scheduling.book", NULL);
    char corr[] = "corr-1";
    nmc_trace_span_attr(s, "correlation_id", corr);
    corr[0] = 'X'; /* the span keeps its own copy */
    nmc_trace_span_attr_int(s, "attempt", -3);
    nmc_trace_span_attr(s, "event_id", NULL);
    nmc_trace_span_error(s, "first");
    nmc_trace_span_error(s, "exclusion violation");
    nmc_clock_advance(7);
    nmc_trace_span_end(s);
    assert_int_equal(w.calls, 1);
    assert_string_equal(w.name, "scheduling.book");
    assert_int_equal(w.error, 1);
    assert_string_equal(w.status, "exclusion violation");
    assert_int_equal(w.nattrs, 3);
    assert_string_equal(w.attrs[0][0], "correlation_id");
    assert_string_equal(w.attrs[0][1], "corr-1");
    assert_string_equal(w.attrs[1][1], "-3");
    assert_string_equal(w.attrs[2][1], "");
    assert_true(w.duration_ns == 7 * 1000000LL);
}

static void test_trace_span_attr_past_max_dropped(void **state)
{
    (void)state;
    struct seen w = { 0 };
    struct nmc_trace_exporter e = { on_export, &w };
    nmc_trace_set_exporter(&e);
    struct nmc_span *s = nmc_trace_span_start("x", NULL);
    for (int i = 0; i < NMC_TRACE_MAX_ATTRS + 3; i++)
        nmc_trace_span_attr_int(s, "k", i);
    nmc_trace_span_end(s);
    assert_int_equal(w.nattrs, NMC_TRACE_MAX_ATTRS);
    assert_int_equal(w.error, 0);
    char last[8];
    snprintf(last, sizeof(last), "%d", NMC_TRACE_MAX_ATTRS - 1);
    assert_string_equal(w.attrs[NMC_TRACE_MAX_ATTRS - 1][1], last);
}

/* ---- default exporter --------------------------------------------------- */

static json_t *log_span(enum nmc_log_level level, void (*fill)(struct nmc_span *root))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    nmc_log_setup(level, 0, f);
    nmc_clock_freeze(1795428000000LL);
    struct nmc_span *root = nmc_trace_span_start("webhook.twilio.sms_inbound", NULL);
    fill(root);
    nmc_log_setup(NMC_LOG_INFO, 0, NULL);
    fclose(f);
    json_t *arr = json_array();
    for (char *line = buf, *nl; (nl = memchr(line, '\n', (size_t)(buf + len - line))) != NULL; line = nl + 1) {
        json_t *o = json_loadb(line, (size_t)(nl - line), JSON_REJECT_DUPLICATES, NULL);
        assert_non_null(o);
        json_array_append_new(arr, o);
    }
    free(buf);
    return arr;
}

static void fill_two(struct nmc_span *root)
{
    struct nmc_span *child = nmc_trace_span_start("outbox.dispatch", &root->ctx);
    nmc_trace_span_attr(child, "event_id", "ev-9");
    nmc_trace_span_attr(child, "correlation_id", "corr-7");
    nmc_trace_span_attr(child, "tenant_id", "ten-3");
    nmc_trace_span_attr(child, "auth_token", "sk_live");
    nmc_trace_span_error(child, "provider 503");
    nmc_clock_advance(3);
    nmc_trace_span_end(child);
    nmc_clock_advance(2);
    nmc_trace_span_end(root);
}

static void test_trace_default_exporter_logs_at_debug(void **state)
{
    (void)state;
    json_t *lines = log_span(NMC_LOG_DEBUG, fill_two);
    assert_int_equal(json_array_size(lines), 2);
    json_t *child = json_array_get(lines, 0), *root = json_array_get(lines, 1);
    assert_string_equal(json_string_value(json_object_get(child, "level")), "debug");
    assert_string_equal(json_string_value(json_object_get(child, "event")), "span");
    assert_string_equal(json_string_value(json_object_get(child, "name")), "outbox.dispatch");
    assert_string_equal(json_string_value(json_object_get(child, "status")), "error");
    assert_string_equal(json_string_value(json_object_get(child, "status_message")), "provider 503");
    assert_string_equal(json_string_value(json_object_get(child, "correlation_id")), "corr-7");
    assert_string_equal(json_string_value(json_object_get(child, "tenant_id")), "ten-3");
    assert_true(json_number_value(json_object_get(child, "duration_ms")) == 3);
    const char *tid = json_string_value(json_object_get(child, "trace_id"));
    assert_non_null(tid);
    assert_int_equal(strlen(tid), 32);
    assert_int_equal(strspn(tid, "0123456789abcdef"), 32);
    assert_string_equal(tid, json_string_value(json_object_get(root, "trace_id")));
    assert_string_equal(json_string_value(json_object_get(child, "parent_span_id")),
                        json_string_value(json_object_get(root, "span_id")));
    assert_int_equal(strlen(json_string_value(json_object_get(root, "span_id"))), 16);
    assert_true(json_is_null(json_object_get(root, "parent_span_id")));
    assert_string_equal(json_string_value(json_object_get(root, "status")), "ok");
    assert_null(json_object_get(root, "status_message"));
    assert_true(json_number_value(json_object_get(root, "duration_ms")) == 5);
    json_t *attrs = json_object_get(child, "attributes");
    assert_true(json_is_object(attrs));
    assert_string_equal(json_string_value(json_object_get(attrs, "event_id")), "ev-9");
    assert_string_equal(json_string_value(json_object_get(attrs, "auth_token")), "[REDACTED]");
    assert_int_equal(json_object_size(json_object_get(root, "attributes")), 0);
    json_decref(lines);
}

static void test_trace_default_exporter_silent_at_info(void **state)
{
    (void)state;
    json_t *lines = log_span(NMC_LOG_INFO, fill_two);
    assert_int_equal(json_array_size(lines), 0);
    json_decref(lines);
}

static void fill_replaced(struct nmc_span *root)
{
    struct seen w = { 0 };
    struct nmc_trace_exporter e = { on_export, &w };
    nmc_trace_set_exporter(&e);
    nmc_trace_span_end(root);
    nmc_trace_set_exporter(NULL);
    assert_int_equal(w.calls, 1);
}

static void test_trace_set_exporter_replaces_default(void **state)
{
    (void)state;
    json_t *lines = log_span(NMC_LOG_DEBUG, fill_replaced); /* no log line: the replacement got it */
    assert_int_equal(json_array_size(lines), 0);
    json_decref(lines);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_trace_parse_traceparent_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_parse_traceparent_len_bounds_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_parse_traceparent_invalid_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_ctx_valid_zero_and_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_span_start_root_and_children, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_span_end_exporter_gets_attrs_and_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_span_attr_past_max_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_default_exporter_logs_at_debug, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_default_exporter_silent_at_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trace_set_exporter_replaces_default, setup, teardown),
    };
    return cmocka_run_group_tests_name("runtime_trace", tests, NULL, NULL);
}
