/* http/server.c, conn.c, response.c over real loopback sockets: keep-alive,
 * pipelining (with a deferred first answer), limits, timeouts, smuggling
 * attempts, 404/405, stale reply handles, correlation ids, trace parents,
 * access log, metrics, graceful shutdown. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "http/server.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/trace.h"
#include "tests/http/harness.h"
#include "tests/support/http_client.h"

#define T 2000 /* ms: generous deadline for anything that should be quick */

static struct harness H;

/* ---- routes ---- */

static void on_healthz(struct nmc_http_req *req, void *ud)
{
    nmc_http_respond_json(req, 200, "{\"status\":\"ok\"}");
}

/* Answers with what the server parsed, so tests compare one string. */
static void on_echo(struct nmc_http_req *req, void *ud)
{
    const char *xt = nmc_http_req_header(req, "X-Test");
    char *q = nmc_http_req_query(req, "q");
    json_t *o = json_pack("{s:s, s:s, s:s, s:s%, s:s?, s:s?, s:s?}", "method", req->method, "path", req->path,
                          "route", req->route, "body", req->body, req->body_len, "x_test", xt, "q", q, "id",
                          nmc_http_req_param(req, "id"));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);

    nmc_http_respond(req, 200, "application/json", s, strlen(s), NULL);
    free(s);
    free(q);
    json_decref(o);
}

struct later {
    uv_timer_t timer;
    struct nmc_http_handle h;
    int rc;
};

static void on_later_closed(uv_handle_t *t)
{
    free(t->data);
}

static void on_later(uv_timer_t *t)
{
    struct later *l = t->data;

    l->rc = nmc_http_reply(l->h, 200, "text/plain", "slow", 4, NULL);
    uv_close((uv_handle_t *)t, on_later_closed);
}

/* Deferred: answered 50 ms later from a timer, through the handle. */
static void on_slow(struct nmc_http_req *req, void *ud)
{
    struct later *l = calloc(1, sizeof(*l));

    l->h = nmc_http_req_handle(req);
    uv_timer_init((uv_loop_t *)ud, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, on_later, 50, 0);
}

static void on_fast(struct nmc_http_req *req, void *ud)
{
    const char *n = nmc_http_req_param(req, "n");

    nmc_http_respond(req, 200, "text/plain", n, strlen(n), NULL);
}

static struct nmc_http_handle held;
static int held_set;

static void on_hold(struct nmc_http_req *req, void *ud)
{
    held = nmc_http_req_handle(req);
    held_set = 1;
}

static void on_noanswer(struct nmc_http_req *req, void *ud)
{
}

static void on_badheader(struct nmc_http_req *req, void *ud)
{
    static const char *const hdrs[] = {"X-Evil: a\r\nSet-Cookie: b", NULL};

    nmc_http_respond(req, 200, "text/plain", "x", 1, hdrs);
}

static void on_created(struct nmc_http_req *req, void *ud)
{
    static const char *const hdrs[] = {"Location: /items/1", NULL};

    nmc_http_respond(req, 201, "application/json", "{}", 2, hdrs);
}

static void routes(struct nmc_http_server *s)
{
    assert_int_equal(nmc_http_server_route(s, "GET", "/healthz", on_healthz, NULL), 0);
    assert_int_equal(nmc_http_server_route(s, "GET", "/echo", on_echo, NULL), 0);
    assert_int_equal(nmc_http_server_route(s, "POST", "/echo", on_echo, NULL), 0);
    assert_int_equal(nmc_http_server_route(s, "GET", "/slow", on_slow, &H.loop), 0);
    assert_int_equal(nmc_http_server_route(s, "GET", "/fast/{n}", on_fast, NULL), 0);
    assert_int_equal(nmc_http_server_route(s, "GET", "/hold", on_hold, NULL), 0);
    assert_int_equal(nmc_http_server_route(s, "GET", "/noanswer", on_noanswer, NULL), 0);
    assert_int_equal(nmc_http_server_route(s, "GET", "/badheader", on_badheader, NULL), 0);
    assert_int_equal(nmc_http_server_route(s, "POST", "/items", on_created, NULL), 0);
    assert_int_equal(nmc_http_server_route(s, "GET", "/items/{id}", on_echo, NULL), 0);
    assert_int_equal(nmc_http_server_route(s, "PUT", "/items/{id}", on_echo, NULL), 0);
    assert_int_equal(nmc_http_server_route(s, "GET", "/items/me", on_echo, NULL), 0);
}

static const struct nmc_http_server_opts default_opts = {
    .bind_addr = "127.0.0.1",
    .max_body_bytes = 1024 * 1024,
    .header_timeout_ms = 5000,
    .idle_timeout_ms = 5000,
    .max_connections = 64,
};

/* ---- captured spans (exported on the loop thread, read after stop) ---- */

static pthread_mutex_t span_mu = PTHREAD_MUTEX_INITIALIZER;
static struct nmc_span last_span;
static char last_attrs[NMC_TRACE_MAX_ATTRS][2][80];
static int nspans;

static void on_span(const struct nmc_span *s, void *ud)
{
    size_t i;

    pthread_mutex_lock(&span_mu);
    last_span = *s;
    for (i = 0; i < s->nattrs; i++) {
        snprintf(last_attrs[i][0], sizeof(last_attrs[i][0]), "%s", s->attrs[i].key);
        snprintf(last_attrs[i][1], sizeof(last_attrs[i][1]), "%s", s->attrs[i].value);
    }
    last_span.status_message = NULL;
    nspans++;
    pthread_mutex_unlock(&span_mu);
}

static const char *span_attr(const char *key)
{
    size_t i;

    for (i = 0; i < last_span.nattrs; i++)
        if (strcmp(last_attrs[i][0], key) == 0)
            return last_attrs[i][1];
    return NULL;
}

static FILE *logf_;

static int setup(void **state)
{
    static const struct nmc_trace_exporter ex = {on_span, NULL};

    nmc_metrics_reset();
    logf_ = tmpfile();
    nmc_log_setup(NMC_LOG_INFO, 0, logf_);
    nmc_trace_set_exporter(&ex);
    nspans = 0;
    held_set = 0;
    return harness_start(&H, &default_opts, routes);
}

static int teardown(void **state)
{
    int rc = harness_stop(&H);

    nmc_trace_set_exporter(NULL);
    nmc_log_setup(NMC_LOG_WARN, 0, NULL);
    fclose(logf_);
    return rc;
}

static char *read_log(void)
{
    long n;
    char *s;

    nmc_log_flush();
    fflush(logf_);
    n = ftell(logf_);
    s = calloc(1, (size_t)n + 1);
    rewind(logf_);
    if (fread(s, 1, (size_t)n, logf_) != (size_t)n)
        fail();
    return s;
}

/* ---- helpers ---- */

static void expect_status(struct nmc_test_http_conn *c, int status, struct nmc_test_http_resp *r)
{
    assert_int_equal(nmc_test_http_read(c, T, r), 0);
    assert_int_equal(r->status, status);
}

static void expect_error(struct nmc_test_http_conn *c, int status, const char *code)
{
    struct nmc_test_http_resp r;
    json_t *j;

    expect_status(c, status, &r);
    assert_string_equal(nmc_test_http_resp_header(&r, "content-type"), "application/json");
    j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")), code);
    assert_true(json_is_string(json_object_get(json_object_get(j, "error"), "message")));
    json_decref(j);
    nmc_test_http_resp_free(&r);
}

static void connect_send(struct nmc_test_http_conn *c, const char *raw)
{
    assert_int_equal(nmc_test_http_connect(c, H.port, T), 0);
    assert_int_equal(nmc_test_http_send_str(c, raw), 0);
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- basics ---- */

static void test_http_server_respond_healthz_ok(void **state)
{
    struct nmc_test_http_resp r;

    assert_int_equal(nmc_test_http_request(H.port, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", T, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.reason, "OK");
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    assert_string_equal(nmc_test_http_resp_header(&r, "content-length"), "15");
    assert_string_equal(nmc_test_http_resp_header(&r, "content-type"), "application/json");
    assert_int_equal(strlen(nmc_test_http_resp_header(&r, "x-correlation-id")), 36);
    assert_null(nmc_test_http_resp_header(&r, "connection"));
    nmc_test_http_resp_free(&r);
}

static void test_http_server_keepalive_sequential_then_close(void **state)
{
    struct nmc_test_http_conn c;
    struct nmc_test_http_resp r;
    int i;

    assert_int_equal(nmc_test_http_connect(&c, H.port, T), 0);
    for (i = 0; i < 5; i++) {
        assert_int_equal(nmc_test_http_send_str(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
        expect_status(&c, 200, &r);
        nmc_test_http_resp_free(&r);
    }
    assert_int_equal(nmc_test_http_send_str(&c, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"), 0);
    expect_status(&c, 200, &r);
    assert_string_equal(nmc_test_http_resp_header(&r, "connection"), "close");
    nmc_test_http_resp_free(&r);
    assert_int_equal(nmc_test_http_wait_close(&c, T), 0);
    nmc_test_http_close(&c);
}

static void test_http_server_keepalive_http10_closes_unless_asked(void **state)
{
    struct nmc_test_http_conn c;
    struct nmc_test_http_resp r;

    connect_send(&c, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    expect_status(&c, 200, &r);
    assert_string_equal(nmc_test_http_resp_header(&r, "connection"), "keep-alive");
    nmc_test_http_resp_free(&r);
    assert_int_equal(nmc_test_http_send_str(&c, "GET /healthz HTTP/1.0\r\n\r\n"), 0);
    expect_status(&c, 200, &r);
    assert_string_equal(nmc_test_http_resp_header(&r, "connection"), "close");
    nmc_test_http_resp_free(&r);
    assert_int_equal(nmc_test_http_wait_close(&c, T), 0);
    nmc_test_http_close(&c);
}

/* ---- pipelining ---- */

static void expect_body(struct nmc_test_http_conn *c, const char *body)
{
    struct nmc_test_http_resp r;

    expect_status(c, 200, &r);
    assert_string_equal(r.body, body);
    nmc_test_http_resp_free(&r);
}

static void test_http_server_pipeline_three_in_one_write_in_order(void **state)
{
    struct nmc_test_http_conn c;

    connect_send(&c, "GET /fast/1 HTTP/1.1\r\n\r\nGET /fast/2 HTTP/1.1\r\n\r\nGET /fast/3 HTTP/1.1\r\n\r\n");
    expect_body(&c, "1");
    expect_body(&c, "2");
    expect_body(&c, "3");
    nmc_test_http_close(&c);
}

static void test_http_server_pipeline_deferred_first_answered_first(void **state)
{
    struct nmc_test_http_conn c;

    connect_send(&c, "GET /slow HTTP/1.1\r\n\r\nGET /fast/2 HTTP/1.1\r\n\r\nGET /fast/3 HTTP/1.1\r\n\r\n");
    expect_body(&c, "slow");
    expect_body(&c, "2");
    expect_body(&c, "3");
    /* and the connection is still usable afterwards */
    assert_int_equal(nmc_test_http_send_str(&c, "GET /slow HTTP/1.1\r\n\r\nGET /fast/4 HTTP/1.1\r\n\r\n"), 0);
    expect_body(&c, "slow");
    expect_body(&c, "4");
    nmc_test_http_close(&c);
}

/* More requests than the per-connection pipeline holds: reading pauses and
 * resumes, nothing is lost or reordered. */
static void test_http_server_pipeline_deep_burst_all_answered(void **state)
{
    struct nmc_test_http_conn c;
    char raw[64 * 40], want[8];
    size_t len = 0;
    int i;

    for (i = 0; i < 40; i++)
        len += (size_t)snprintf(raw + len, sizeof(raw) - len, "GET /%s HTTP/1.1\r\n\r\n", i % 7 ? "fast/x" : "slow");
    connect_send(&c, raw);
    for (i = 0; i < 40; i++) {
        snprintf(want, sizeof(want), "%s", i % 7 ? "x" : "slow");
        expect_body(&c, want);
    }
    nmc_test_http_close(&c);
}

/* ---- limits ---- */

static void test_http_server_limit_body_413_server_stays_up(void **state)
{
    struct nmc_test_http_conn c;
    struct nmc_test_http_resp r;

    connect_send(&c, "POST /echo HTTP/1.1\r\nContent-Length: 2097152\r\n\r\n");
    expect_error(&c, 413, "payload_too_large");
    assert_int_equal(nmc_test_http_wait_close(&c, T), 0);
    nmc_test_http_close(&c);
    assert_int_equal(nmc_test_http_request(H.port, "GET /healthz HTTP/1.1\r\n\r\n", T, &r), 0);
    assert_int_equal(r.status, 200);
    nmc_test_http_resp_free(&r);
}

/* A client that sends the whole 2 MiB anyway still gets its 413. */
static void test_http_server_limit_body_413_with_body_sent(void **state)
{
    struct nmc_test_http_conn c;
    size_t n = 2 * 1024 * 1024;
    char *big = malloc(n);

    memset(big, 'a', n);
    connect_send(&c, "POST /echo HTTP/1.1\r\nContent-Length: 2097152\r\n\r\n");
    (void)nmc_test_http_send(&c, big, n); /* may fail with a reset: the server stops reading */
    expect_error(&c, 413, "payload_too_large");
    nmc_test_http_close(&c);
    free(big);
}

static void test_http_server_limit_chunked_body_413_as_it_grows(void **state)
{
    struct nmc_test_http_conn c;
    char chunk[64];
    int i;

    connect_send(&c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    snprintf(chunk, sizeof(chunk), "%x\r\n", 512 * 1024);
    for (i = 0; i < 3; i++) {
        char *data = malloc(512 * 1024 + 2);
        memset(data, 'b', 512 * 1024);
        memcpy(data + 512 * 1024, "\r\n", 2);
        if (nmc_test_http_send_str(&c, chunk) != 0 || nmc_test_http_send(&c, data, 512 * 1024 + 2) != 0) {
            free(data);
            break;
        }
        free(data);
    }
    expect_error(&c, 413, "payload_too_large");
    nmc_test_http_close(&c);
}

static void test_http_server_limit_header_431(void **state)
{
    struct nmc_test_http_conn c;
    char *raw = malloc(21 * 1024);
    size_t len;

    len = (size_t)snprintf(raw, 1024, "GET /healthz HTTP/1.1\r\nX-Big: ");
    memset(raw + len, 'h', 20 * 1024);
    len += 20 * 1024;
    memcpy(raw + len, "\r\n\r\n", 5);
    connect_send(&c, raw);
    expect_error(&c, 431, "header_too_large");
    assert_int_equal(nmc_test_http_wait_close(&c, T), 0);
    nmc_test_http_close(&c);
    free(raw);
}

/* Many small headers add up: the block is what counts, not one line. */
static void test_http_server_limit_header_431_many_lines(void **state)
{
    struct nmc_test_http_conn c;
    char line[256];
    int i;

    connect_send(&c, "GET /healthz HTTP/1.1\r\n");
    for (i = 0; i < 90; i++) {
        snprintf(line, sizeof(line), "X-H%02d: %0200d\r\n", i, 0);
        if (nmc_test_http_send_str(&c, line) != 0)
            break;
    }
    (void)nmc_test_http_send_str(&c, "\r\n");
    expect_error(&c, 431, "header_too_large");
    nmc_test_http_close(&c);
}

static void test_http_server_limit_header_count_431(void **state)
{
    struct nmc_test_http_conn c;
    char raw[4096];
    size_t len = 0;
    int i;

    len += (size_t)snprintf(raw, sizeof(raw), "GET /healthz HTTP/1.1\r\n");
    for (i = 0; i < 101; i++)
        len += (size_t)snprintf(raw + len, sizeof(raw) - len, "X-%d: v\r\n", i);
    snprintf(raw + len, sizeof(raw) - len, "\r\n");
    connect_send(&c, raw);
    expect_error(&c, 431, "header_too_large");
    nmc_test_http_close(&c);
}

/* No protocol switch is supported: the request is answered, then the
 * connection closes (the bytes after it belong to another protocol). */
static void test_http_server_keepalive_upgrade_answered_then_closed(void **state)
{
    struct nmc_test_http_conn c;
    struct nmc_test_http_resp r;

    connect_send(&c, "GET /healthz HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello");
    expect_status(&c, 200, &r);
    assert_string_equal(nmc_test_http_resp_header(&r, "connection"), "close");
    nmc_test_http_resp_free(&r);
    assert_int_equal(nmc_test_http_wait_close(&c, T), 0);
    nmc_test_http_close(&c);
}

static void test_http_server_limit_malformed_header_400(void **state)
{
    struct nmc_test_http_conn c;

    connect_send(&c, "GET /healthz HTTP/1.1\r\nThis is not a header\r\n\r\n");
    expect_error(&c, 400, "bad_request");
    assert_int_equal(nmc_test_http_wait_close(&c, T), 0);
    nmc_test_http_close(&c);
}

/* A malformed second request is answered after the first, then closed. */
static void test_http_server_limit_malformed_after_good_request(void **state)
{
    struct nmc_test_http_conn c;

    connect_send(&c, "GET /slow HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nBad Header\r\n\r\n");
    expect_body(&c, "slow");
    expect_error(&c, 400, "bad_request");
    assert_int_equal(nmc_test_http_wait_close(&c, T), 0);
    nmc_test_http_close(&c);
}

/* ---- smuggling attempts: each is 400 and close ---- */

static void test_http_server_smuggling_attempts_rejected(void **state)
{
    static const char *const cases[] = {
        "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST /echo HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc",
        "GET /echo HTTP/1.1\r\nX-A: a\r\n folded\r\n\r\n",
        "GET /echo HTTP/1.1\r\nX-A: a\r\n\tfolded\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET /echo HTTP/1.1\r\nX-Abc: \rxTransfer-Encoding: chunked\r\n\r\n",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET /echo HTTP/1.1\nHost: a\n\n",
        "GET http://evil/echo HTTP/1.1\r\n\r\n",
        "GET /%zz HTTP/1.1\r\n\r\n",
        "GET /a%00b HTTP/1.1\r\n\r\n",
    };
    size_t i;

    for (i = 0; i < NMC_ARRAY_SIZE(cases); i++) {
        struct nmc_test_http_conn c;
        print_message("case %zu\n", i);
        connect_send(&c, cases[i]);
        /* the smuggled follow-up must never be answered */
        (void)nmc_test_http_send_str(&c, "GET /healthz HTTP/1.1\r\n\r\n");
        expect_error(&c, 400, "bad_request");
        assert_int_equal(nmc_test_http_wait_close(&c, T), 0);
        nmc_test_http_close(&c);
    }
}

/* ---- timeouts ---- */

static int restart_with(const struct nmc_http_server_opts *o)
{
    assert_int_equal(harness_stop(&H), 0);
    return harness_start(&H, o, routes);
}

static void test_http_server_timeout_dribbling_header_cut_off(void **state)
{
    struct nmc_http_server_opts o = default_opts;
    struct nmc_test_http_conn c;
    int64_t t0, elapsed;
    int i, rc = 0;

    o.header_timeout_ms = 200;
    assert_int_equal(restart_with(&o), 0);
    connect_send(&c, "GET /healthz HTTP/1.1\r\n");
    t0 = mono_ms();
    for (i = 0; i < 100 && rc == 0; i++) { /* a header byte every 20 ms: progress, but slow */
        usleep(20 * 1000);
        rc = nmc_test_http_send_str(&c, "X");
        if (rc == 0 && nmc_test_http_wait_close(&c, 1) == 0)
            break;
    }
    if (rc == 0)
        assert_int_equal(nmc_test_http_wait_close(&c, T), 0);
    elapsed = mono_ms() - t0;
    assert_true(elapsed >= 150);
    assert_true(elapsed < 1500);
    nmc_test_http_close(&c);
}

static void test_http_server_timeout_idle_keepalive_closed(void **state)
{
    struct nmc_http_server_opts o = default_opts;
    struct nmc_test_http_conn c;
    struct nmc_test_http_resp r;
    int64_t t0;

    o.idle_timeout_ms = 200;
    assert_int_equal(restart_with(&o), 0);
    connect_send(&c, "GET /healthz HTTP/1.1\r\n\r\n");
    expect_status(&c, 200, &r);
    nmc_test_http_resp_free(&r);
    t0 = mono_ms();
    assert_int_equal(nmc_test_http_wait_close(&c, T), 0);
    assert_true(mono_ms() - t0 >= 150);
    nmc_test_http_close(&c);
}

/* ---- routing answers ---- */

static void test_http_server_route_unknown_404(void **state)
{
    struct nmc_test_http_conn c;

    connect_send(&c, "GET /nope HTTP/1.1\r\n\r\nGET /healthz/ HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n");
    expect_error(&c, 404, "not_found");
    expect_error(&c, 404, "not_found"); /* trailing slash is another path */
    expect_body(&c, "{\"status\":\"ok\"}"); /* a 404 keeps the connection */
    nmc_test_http_close(&c);
}

static void test_http_server_route_wrong_method_405_allow(void **state)
{
    struct nmc_test_http_conn c;
    struct nmc_test_http_resp r;

    connect_send(&c, "DELETE /items/7 HTTP/1.1\r\n\r\n");
    expect_status(&c, 405, &r);
    assert_string_equal(nmc_test_http_resp_header(&r, "allow"), "GET, PUT");
    assert_non_null(strstr(r.body, "\"method_not_allowed\""));
    nmc_test_http_resp_free(&r);
    nmc_test_http_close(&c);
}

/* HEAD is not routed, and its answer must carry no body, or the next
 * pipelined answer would be read as that body. */
static void test_http_server_route_head_405_without_body(void **state)
{
    struct nmc_test_http_conn c;
    struct nmc_test_http_resp r;

    connect_send(&c, "HEAD /healthz HTTP/1.1\r\n\r\nGET /fast/after HTTP/1.1\r\n\r\n");
    assert_int_equal(nmc_test_http_read_head(&c, T, &r), 0);
    assert_int_equal(r.status, 405);
    assert_string_equal(nmc_test_http_resp_header(&r, "allow"), "GET");
    assert_non_null(nmc_test_http_resp_header(&r, "content-length"));
    nmc_test_http_resp_free(&r);
    expect_body(&c, "after");
    nmc_test_http_close(&c);
}

static void test_http_server_route_params_decoded_exact_wins(void **state)
{
    struct nmc_test_http_conn c;

    connect_send(&c, "GET /items/a%20b%2Fc?q=x+y%21 HTTP/1.1\r\nX-Test: v1\r\n\r\n"
                     "GET /items/me HTTP/1.1\r\n\r\n");
    expect_body(&c, "{\"body\":\"\",\"id\":\"a b/c\",\"method\":\"GET\",\"path\":\"/items/a b/c\",\"q\":\"x y!\","
                    "\"route\":\"/items/{id}\",\"x_test\":\"v1\"}");
    expect_body(&c, "{\"body\":\"\",\"id\":null,\"method\":\"GET\",\"path\":\"/items/me\",\"q\":null,"
                    "\"route\":\"/items/me\",\"x_test\":null}");
    nmc_test_http_close(&c);
}

static void test_http_server_respond_extra_headers_and_201(void **state)
{
    struct nmc_test_http_resp r;

    assert_int_equal(nmc_test_http_request(H.port, "POST /items HTTP/1.1\r\nContent-Length: 0\r\n\r\n", T, &r), 0);
    assert_int_equal(r.status, 201);
    assert_string_equal(nmc_test_http_resp_header(&r, "location"), "/items/1");
    nmc_test_http_resp_free(&r);
}

static void test_http_server_respond_header_injection_500(void **state)
{
    struct nmc_test_http_resp r;

    assert_int_equal(nmc_test_http_request(H.port, "GET /badheader HTTP/1.1\r\n\r\n", T, &r), 0);
    assert_int_equal(r.status, 500);
    assert_null(nmc_test_http_resp_header(&r, "set-cookie"));
    nmc_test_http_resp_free(&r);
}

static void test_http_server_respond_handler_silent_500(void **state)
{
    struct nmc_test_http_resp r;

    assert_int_equal(nmc_test_http_request(H.port, "GET /noanswer HTTP/1.1\r\n\r\n", T, &r), 0);
    assert_int_equal(r.status, 500);
    nmc_test_http_resp_free(&r);
}

static void test_http_server_respond_chunked_body_and_continue(void **state)
{
    struct nmc_test_http_conn c;
    struct nmc_test_http_resp r;

    connect_send(&c, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n");
    expect_status(&c, 100, &r);
    nmc_test_http_resp_free(&r);
    assert_int_equal(nmc_test_http_send_str(&c, "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"), 0);
    expect_body(&c, "{\"body\":\"abcde\",\"id\":null,\"method\":\"POST\",\"path\":\"/echo\",\"q\":null,"
                    "\"route\":\"/echo\",\"x_test\":null}");
    nmc_test_http_close(&c);
}

/* ---- reply handles ---- */

struct reply_check {
    int rc;
    int req_null;
    size_t conns;
};

static void check_stale_handle(void *arg)
{
    struct reply_check *rc = arg;

    rc->conns = nmc_http_server_connections(H.server);
    if (rc->conns)
        return;
    rc->req_null = nmc_http_handle_req(held) == NULL;
    rc->rc = nmc_http_reply_json(held, 200, "{}");
}

static void count_conns(void *arg)
{
    *(size_t *)arg = nmc_http_server_connections(H.server);
}

static void test_http_server_reply_closed_connection_egone(void **state)
{
    struct nmc_test_http_conn c;
    struct reply_check rc = {0};
    size_t n = 1;
    int i;

    connect_send(&c, "GET /hold HTTP/1.1\r\n\r\n");
    for (i = 0; i < 200 && !held_set; i++)
        usleep(5000);
    assert_true(held_set);
    nmc_test_http_close(&c);
    for (i = 0; i < 200 && n; i++) {
        usleep(5000);
        harness_call(&H, count_conns, &n);
    }
    assert_int_equal(n, 0);
    harness_call(&H, check_stale_handle, &rc);
    assert_int_equal(rc.conns, 0);
    assert_true(rc.req_null);
    assert_int_equal(rc.rc, NMC_EGONE);
}

/* A handle answered once is spent: a second reply is refused. */
static void reply_twice(void *arg)
{
    int *rcs = arg;

    rcs[0] = nmc_http_reply_json(held, 200, "{\"n\":1}");
    rcs[1] = nmc_http_reply_json(held, 200, "{\"n\":2}");
}

static void test_http_server_reply_twice_second_egone(void **state)
{
    struct nmc_test_http_conn c;
    int rcs[2] = {1, 1}, i;

    connect_send(&c, "GET /hold HTTP/1.1\r\n\r\n");
    for (i = 0; i < 200 && !held_set; i++)
        usleep(5000);
    harness_call(&H, reply_twice, rcs);
    assert_int_equal(rcs[0], 0);
    assert_int_equal(rcs[1], NMC_EGONE);
    expect_body(&c, "{\"n\":1}");
    nmc_test_http_close(&c);
}

/* ---- correlation, tracing, logs, metrics ---- */

static void test_http_server_correlation_id_echoed_or_generated(void **state)
{
    struct nmc_test_http_resp r;
    const char *id;

    assert_int_equal(nmc_test_http_request(H.port, "GET /healthz HTTP/1.1\r\nX-Correlation-Id: abc-123\r\n\r\n", T, &r),
                     0);
    assert_string_equal(nmc_test_http_resp_header(&r, "x-correlation-id"), "abc-123");
    nmc_test_http_resp_free(&r);
    assert_int_equal(nmc_test_http_request(H.port,
                                           "GET /nope HTTP/1.1\r\nX-Correlation-Id: "
                                           "1b4e28ba-2fa1-11d2-883f-0016d3cca427\r\n\r\n",
                                           T, &r),
                     0);
    assert_string_equal(nmc_test_http_resp_header(&r, "x-correlation-id"), "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
    nmc_test_http_resp_free(&r);
    assert_int_equal(nmc_test_http_request(H.port, "GET /healthz HTTP/1.1\r\nX-Correlation-Id: bad id!\r\n\r\n", T, &r),
                     0);
    id = nmc_test_http_resp_header(&r, "x-correlation-id");
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '4');
    nmc_test_http_resp_free(&r);
}

static void test_http_server_trace_traceparent_parents_span(void **state)
{
    struct nmc_test_http_resp r;
    static const uint8_t trace[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                      0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    static const uint8_t parent[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};

    assert_int_equal(nmc_test_http_request(H.port,
                                           "GET /items/42 HTTP/1.1\r\nX-Correlation-Id: corr-1\r\n"
                                           "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n",
                                           T, &r),
                     0);
    assert_int_equal(r.status, 200);
    nmc_test_http_resp_free(&r);
    pthread_mutex_lock(&span_mu);
    assert_true(nspans >= 1);
    assert_string_equal(last_span.name, "http.request");
    assert_memory_equal(last_span.ctx.trace_id, trace, 16);
    assert_memory_equal(last_span.parent_span_id, parent, 8);
    assert_memory_not_equal(last_span.ctx.span_id, parent, 8);
    assert_string_equal(span_attr("http.method"), "GET");
    assert_string_equal(span_attr("http.route"), "/items/{id}");
    assert_string_equal(span_attr("http.status_code"), "200");
    assert_string_equal(span_attr("correlation_id"), "corr-1");
    pthread_mutex_unlock(&span_mu);
    /* an invalid traceparent starts a new trace */
    assert_int_equal(nmc_test_http_request(H.port, "GET /healthz HTTP/1.1\r\ntraceparent: 00-zz-00-01\r\n\r\n", T, &r),
                     0);
    nmc_test_http_resp_free(&r);
    pthread_mutex_lock(&span_mu);
    assert_memory_not_equal(last_span.ctx.trace_id, trace, 16);
    pthread_mutex_unlock(&span_mu);
}

static void test_http_server_access_log_skips_healthz(void **state)
{
    struct nmc_test_http_resp r;
    char *log;

    assert_int_equal(nmc_test_http_request(H.port, "GET /healthz HTTP/1.1\r\n\r\n", T, &r), 0);
    nmc_test_http_resp_free(&r);
    assert_int_equal(nmc_test_http_request(H.port, "GET /echo HTTP/1.1\r\nX-Correlation-Id: log-1\r\n\r\n", T, &r), 0);
    nmc_test_http_resp_free(&r);
    assert_int_equal(harness_stop(&H), 0); /* the loop thread is done writing */
    log = read_log();
    assert_non_null(strstr(log, "\"event\":\"http.request\""));
    assert_non_null(strstr(log, "\"route\":\"/echo\""));
    assert_non_null(strstr(log, "\"latency_ms\":"));
    assert_non_null(strstr(log, "\"correlation_id\":\"log-1\""));
    assert_null(strstr(log, "\"route\":\"/healthz\""));
    free(log);
    assert_int_equal(harness_start(&H, &default_opts, routes), 0);
}

static void test_http_server_metrics_duration_and_in_flight(void **state)
{
    static const char *const ok[] = {"/healthz", "GET", "200"};
    static const char *const nf[] = {"unmatched", "GET", "404"};
    static const char *const slow[] = {"/slow", "GET", "200"};
    struct nmc_metric *dur, *inflight;
    struct nmc_test_http_resp r;
    int i;

    for (i = 0; i < 3; i++) {
        assert_int_equal(nmc_test_http_request(H.port, "GET /healthz HTTP/1.1\r\n\r\n", T, &r), 0);
        nmc_test_http_resp_free(&r);
    }
    assert_int_equal(nmc_test_http_request(H.port, "GET /missing HTTP/1.1\r\n\r\n", T, &r), 0);
    nmc_test_http_resp_free(&r);
    assert_int_equal(nmc_test_http_request(H.port, "GET /slow HTTP/1.1\r\n\r\n", T, &r), 0);
    nmc_test_http_resp_free(&r);
    assert_int_equal(harness_stop(&H), 0);
    dur = nmc_metrics_histogram("http_request_duration_ms", "", "route,method,status", NULL, 0);
    inflight = nmc_metrics_gauge("http_requests_in_flight", "", NULL);
    assert_true(nmc_metrics_value(dur, ok) == 3);
    assert_true(nmc_metrics_value(dur, nf) == 1);
    assert_true(nmc_metrics_value(dur, slow) == 1);
    assert_true(nmc_metrics_quantile(dur, slow, 0.5) >= 25); /* deferred 50 ms */
    assert_true(nmc_metrics_value(inflight, NULL) == 0);
    assert_int_equal(harness_start(&H, &default_opts, routes), 0);
}

/* ---- connections, shutdown ---- */

static void test_http_server_max_connections_extra_closed(void **state)
{
    struct nmc_http_server_opts o = default_opts;
    struct nmc_test_http_conn a, b, x;
    struct nmc_test_http_resp r;

    o.max_connections = 2;
    assert_int_equal(restart_with(&o), 0);
    connect_send(&a, "GET /healthz HTTP/1.1\r\n\r\n");
    expect_status(&a, 200, &r);
    nmc_test_http_resp_free(&r);
    connect_send(&b, "GET /healthz HTTP/1.1\r\n\r\n");
    expect_status(&b, 200, &r);
    nmc_test_http_resp_free(&r);
    assert_int_equal(nmc_test_http_connect(&x, H.port, T), 0);
    (void)nmc_test_http_send_str(&x, "GET /healthz HTTP/1.1\r\n\r\n");
    assert_int_equal(nmc_test_http_wait_close(&x, T), 0);
    nmc_test_http_close(&x);
    nmc_test_http_close(&a);
    nmc_test_http_close(&b);
}

static void start_shutdown(void *arg)
{
    H.stop = 2; /* the harness must not shut down a second time */
    nmc_http_server_shutdown(H.server, 2000, harness_on_drained, &H);
}

static void test_http_server_shutdown_finishes_in_flight(void **state)
{
    struct nmc_test_http_conn busy, idle, late;
    struct nmc_test_http_resp r;

    connect_send(&idle, "GET /healthz HTTP/1.1\r\n\r\n");
    expect_status(&idle, 200, &r);
    nmc_test_http_resp_free(&r);
    connect_send(&busy, "GET /slow HTTP/1.1\r\n\r\n");
    usleep(10 * 1000);
    harness_call(&H, start_shutdown, NULL);
    assert_int_equal(nmc_test_http_wait_close(&idle, T), 0);
    expect_status(&busy, 200, &r);
    assert_string_equal(r.body, "slow");
    assert_string_equal(nmc_test_http_resp_header(&r, "connection"), "close");
    nmc_test_http_resp_free(&r);
    assert_int_equal(nmc_test_http_wait_close(&busy, T), 0);
    assert_true(nmc_test_http_connect(&late, H.port, 200) != 0 ||
                nmc_test_http_wait_close(&late, T) == 0);
    nmc_test_http_close(&late);
    nmc_test_http_close(&idle);
    nmc_test_http_close(&busy);
    pthread_join(H.thread, NULL); /* drained: the loop ran out of handles */
    assert_true(H.drained);
    nmc_http_server_free(H.server);
    assert_int_equal(uv_loop_close(&H.loop), 0);
    assert_int_equal(harness_start(&H, &default_opts, routes), 0);
}

static void test_http_server_shutdown_grace_forces_held(void **state)
{
    struct nmc_test_http_conn c;
    int i;

    connect_send(&c, "GET /hold HTTP/1.1\r\n\r\n");
    for (i = 0; i < 200 && !held_set; i++)
        usleep(5000);
    H.grace_ms = 100; /* the held request is never answered: grace closes it */
    assert_int_equal(harness_stop(&H), 0);
    assert_int_equal(nmc_test_http_wait_close(&c, T), 0);
    nmc_test_http_close(&c);
    assert_int_equal(harness_start(&H, &default_opts, routes), 0);
}

static void test_http_server_create_bad_opts_einval(void **state)
{
    struct nmc_http_server_opts o = default_opts;
    struct nmc_http_server *s = (struct nmc_http_server *)1;

    o.header_timeout_ms = 0;
    assert_int_equal(nmc_http_server_create(&H.loop, &o, &s), NMC_EINVAL);
    assert_null(s);
    o = default_opts;
    o.port = 70000;
    assert_int_equal(nmc_http_server_create(&H.loop, &o, &s), NMC_EINVAL);
}

static void test_http_server_route_invalid_pattern_einval(void **state)
{
    struct nmc_http_server *s;
    uv_loop_t loop;

    uv_loop_init(&loop);
    assert_int_equal(nmc_http_server_create(&loop, &default_opts, &s), 0);
    assert_int_equal(nmc_http_server_route(s, "GET", "nolead", on_healthz, NULL), NMC_EINVAL);
    assert_int_equal(nmc_http_server_route(s, "BREW", "/coffee", on_healthz, NULL), NMC_EINVAL);
    assert_int_equal(nmc_http_server_route(s, "GET", "/a", on_healthz, NULL), 0);
    assert_int_equal(nmc_http_server_route(s, "GET", "/a", on_healthz, NULL), NMC_EINVAL);
    nmc_http_server_free(s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_http_server_listen_port_in_use_fails_cleanly(void **state)
{
    struct nmc_http_server_opts o = default_opts;
    struct nmc_http_server *s;
    uv_loop_t loop;

    uv_loop_init(&loop);
    o.port = H.port;
    assert_int_equal(nmc_http_server_create(&loop, &o, &s), 0);
    assert_int_equal(nmc_http_server_listen(s), UV_EADDRINUSE);
    nmc_http_server_free(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T_(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T_(test_http_server_respond_healthz_ok),
        T_(test_http_server_keepalive_sequential_then_close),
        T_(test_http_server_keepalive_http10_closes_unless_asked),
        T_(test_http_server_pipeline_three_in_one_write_in_order),
        T_(test_http_server_pipeline_deferred_first_answered_first),
        T_(test_http_server_pipeline_deep_burst_all_answered),
        T_(test_http_server_limit_body_413_server_stays_up),
        T_(test_http_server_limit_body_413_with_body_sent),
        T_(test_http_server_limit_chunked_body_413_as_it_grows),
        T_(test_http_server_limit_header_431),
        T_(test_http_server_limit_header_431_many_lines),
        T_(test_http_server_limit_header_count_431),
        T_(test_http_server_keepalive_upgrade_answered_then_closed),
        T_(test_http_server_limit_malformed_header_400),
        T_(test_http_server_limit_malformed_after_good_request),
        T_(test_http_server_smuggling_attempts_rejected),
        T_(test_http_server_timeout_dribbling_header_cut_off),
        T_(test_http_server_timeout_idle_keepalive_closed),
        T_(test_http_server_route_unknown_404),
        T_(test_http_server_route_wrong_method_405_allow),
        T_(test_http_server_route_head_405_without_body),
        T_(test_http_server_route_params_decoded_exact_wins),
        T_(test_http_server_respond_extra_headers_and_201),
        T_(test_http_server_respond_header_injection_500),
        T_(test_http_server_respond_handler_silent_500),
        T_(test_http_server_respond_chunked_body_and_continue),
        T_(test_http_server_reply_closed_connection_egone),
        T_(test_http_server_reply_twice_second_egone),
        T_(test_http_server_correlation_id_echoed_or_generated),
        T_(test_http_server_trace_traceparent_parents_span),
        T_(test_http_server_access_log_skips_healthz),
        T_(test_http_server_metrics_duration_and_in_flight),
        T_(test_http_server_max_connections_extra_closed),
        T_(test_http_server_shutdown_finishes_in_flight),
        T_(test_http_server_shutdown_grace_forces_held),
        T_(test_http_server_create_bad_opts_einval),
        T_(test_http_server_route_invalid_pattern_einval),
        T_(test_http_server_listen_port_in_use_fails_cleanly),
#undef T_
    };

    return cmocka_run_group_tests_name("http_server", tests, NULL, NULL);
}
