/* The request parser fed in pieces over a real loopback socket: one byte
 * per write, and every split position of GET, POST with Content-Length,
 * chunked POST and a pipelined pair. Whatever the fragmentation, the
 * handler must see the same request; folding and smuggling attempts must be
 * refused however they are cut. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include "http/server.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "tests/http/harness.h"
#include "tests/support/http_client.h"

#define T 2000

static struct harness H;

static void on_echo(struct nmc_http_req *req, void *ud)
{
    char *q = nmc_http_req_query(req, "q");
    json_t *o = json_pack("{s:s, s:s, s:s?, s:s%, s:s?, s:s?, s:i}", "method", req->method, "path", req->path, "q",
                          q, "body", req->body, req->body_len, "x_test", nmc_http_req_header(req, "x-test"), "host",
                          nmc_http_req_header(req, "Host"), "n", (json_int_t)req->nheaders);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

    if (s) /* mutated input may not be UTF-8, which jansson refuses */
        nmc_http_respond(req, 200, "application/json", s, strlen(s), NULL);
    else
        nmc_http_respond_error(req, 400, "bad_request", "not UTF-8");
    free(s);
    free(q);
    json_decref(o);
}

static void routes(struct nmc_http_server *s)
{
    assert_int_equal(nmc_http_server_route(s, "GET", "/echo", on_echo, NULL), 0);
    assert_int_equal(nmc_http_server_route(s, "POST", "/echo", on_echo, NULL), 0);
}

struct sample {
    const char *raw;
    const char *want;
};

static const struct sample samples[] = {
    {"GET /echo?q=a%20b+c HTTP/1.1\r\nHost: example\r\nX-Test: hello world\r\n\r\n",
     "{\"body\":\"\",\"host\":\"example\",\"method\":\"GET\",\"n\":2,\"path\":\"/echo\",\"q\":\"a b c\","
     "\"x_test\":\"hello world\"}"},
    {"POST /echo HTTP/1.1\r\nHost: example\r\nContent-Type: text/plain\r\nX-Test:   p  \r\nContent-Length: 11\r\n\r\n"
     "hello=world",
     "{\"body\":\"hello=world\",\"host\":\"example\",\"method\":\"POST\",\"n\":4,\"path\":\"/echo\",\"q\":null,"
     "\"x_test\":\"p\"}"},
    {"POST /echo HTTP/1.1\r\nHost: example\r\nTransfer-Encoding: chunked\r\nX-Test: c\r\n\r\n"
     "5\r\nhello\r\n6;name=val\r\n=world\r\nA\r\n0123456789\r\n0\r\nTrailer-A: x\r\n\r\n",
     "{\"body\":\"hello=world0123456789\",\"host\":\"example\",\"method\":\"POST\",\"n\":3,\"path\":\"/echo\","
     "\"q\":null,\"x_test\":\"c\"}"},
};

static const struct nmc_http_server_opts opts = {
    .bind_addr = "127.0.0.1",
    .max_body_bytes = 64 * 1024,
    .header_timeout_ms = 10000,
    .idle_timeout_ms = 10000,
    .max_connections = 16,
};

static int setup(void **state)
{
    nmc_metrics_reset();
    nmc_log_setup(NMC_LOG_WARN, 0, NULL);
    return harness_start(&H, &opts, routes);
}

static int teardown(void **state)
{
    return harness_stop(&H);
}

static void expect_answer(struct nmc_test_http_conn *c, const char *want)
{
    struct nmc_test_http_resp r;

    assert_int_equal(nmc_test_http_read(c, T, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, want);
    nmc_test_http_resp_free(&r);
}

static void expect_400_close(struct nmc_test_http_conn *c)
{
    struct nmc_test_http_resp r;

    assert_int_equal(nmc_test_http_read(c, T, &r), 0);
    assert_int_equal(r.status, 400);
    nmc_test_http_resp_free(&r);
    assert_int_equal(nmc_test_http_wait_close(c, T), 0);
}

/* One send per byte with a pause, so the server's reads see single bytes.
 * A failing send means the server closed: the caller reads the answer. */
static void send_bytewise(struct nmc_test_http_conn *c, const char *raw)
{
    size_t i, n = strlen(raw);

    for (i = 0; i < n; i++) {
        if (nmc_test_http_send(c, raw + i, 1) != 0)
            return;
        usleep(300);
    }
}

static void send_split(struct nmc_test_http_conn *c, const char *raw, size_t at)
{
    assert_int_equal(nmc_test_http_send(c, raw, at), 0);
    usleep(1000);
    assert_int_equal(nmc_test_http_send_str(c, raw + at), 0);
}

/* All three samples on one keep-alive connection, so parser state also
 * carries correctly from one message to the next. */
static void test_http_parser_bytewise_one_byte_per_write(void **state)
{
    struct nmc_test_http_conn c;
    size_t i;

    assert_int_equal(nmc_test_http_connect(&c, H.port, T), 0);
    for (i = 0; i < NMC_ARRAY_SIZE(samples); i++) {
        print_message("sample %zu\n", i);
        send_bytewise(&c, samples[i].raw);
        expect_answer(&c, samples[i].want);
    }
    nmc_test_http_close(&c);
}

static void split_everywhere(const struct sample *s)
{
    struct nmc_test_http_conn c;
    size_t at, n = strlen(s->raw);

    assert_int_equal(nmc_test_http_connect(&c, H.port, T), 0);
    for (at = 1; at < n; at++) {
        send_split(&c, s->raw, at);
        expect_answer(&c, s->want);
    }
    nmc_test_http_close(&c);
}

static void test_http_parser_bytewise_split_get(void **state)
{
    split_everywhere(&samples[0]);
}

static void test_http_parser_bytewise_split_post_content_length(void **state)
{
    split_everywhere(&samples[1]);
}

static void test_http_parser_bytewise_split_chunked(void **state)
{
    split_everywhere(&samples[2]);
}

/* Two requests in one stream, cut anywhere: both answered, in order. */
static void test_http_parser_bytewise_split_pipelined_pair(void **state)
{
    struct nmc_test_http_conn c;
    char raw[1024];
    size_t at, n;

    n = (size_t)snprintf(raw, sizeof(raw), "%s%s", samples[2].raw, samples[0].raw);
    assert_int_equal(nmc_test_http_connect(&c, H.port, T), 0);
    for (at = 1; at < n; at++) {
        send_split(&c, raw, at);
        expect_answer(&c, samples[2].want);
        expect_answer(&c, samples[0].want);
    }
    nmc_test_http_close(&c);
}

static const char *const refused[] = {
    "GET /echo HTTP/1.1\r\nX-A: a\r\n folded\r\n\r\n",
    "GET /echo HTTP/1.1\r\nX-A: a\r\n\tfolded\r\n\r\n",
    "GET /echo HTTP/1.1\r\nHost : x\r\n\r\n",
    "GET /echo HTTP/1.1\r\nX-Abc: \rxTransfer-Encoding: chunked\r\n\r\n",
    "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
    "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n",
};

static void test_http_parser_bytewise_smuggling_refused_one_byte_per_write(void **state)
{
    struct nmc_test_http_conn c;
    size_t i;

    for (i = 0; i < NMC_ARRAY_SIZE(refused); i++) {
        print_message("case %zu\n", i);
        assert_int_equal(nmc_test_http_connect(&c, H.port, T), 0);
        send_bytewise(&c, refused[i]);
        expect_400_close(&c);
        nmc_test_http_close(&c);
    }
}

/* Folding cut between the CRLF and the SP (the byte that makes it a fold
 * arrives in a later read than the line end). */
static void test_http_parser_bytewise_fold_split_everywhere_refused(void **state)
{
    struct nmc_test_http_conn c;
    size_t at, n = strlen(refused[0]);

    for (at = 1; at < n; at++) {
        assert_int_equal(nmc_test_http_connect(&c, H.port, T), 0);
        assert_int_equal(nmc_test_http_send(&c, refused[0], at), 0);
        usleep(1000);
        (void)nmc_test_http_send_str(&c, refused[0] + at);
        expect_400_close(&c);
        nmc_test_http_close(&c);
    }
}

/* Deterministic mutations of the samples (a byte replaced by CR, LF, NUL,
 * SP, HT, ':' and the like), sent in two pieces and half-closed: whatever
 * the server makes of them it must answer or close, never hang or crash,
 * and keep serving afterwards. ASan checks the memory side. */
static void test_http_parser_bytewise_mutations_never_crash(void **state)
{
    static const char repl[] = {'\r', '\n', '\0', ' ', '\t', ':', '%', '0', 'f', ';', '\x7f', '\xff'};
    unsigned seed = 12345;
    char raw[512];
    int i, k;

    for (i = 0; i < 300; i++) {
        struct nmc_test_http_conn c;
        struct nmc_test_http_resp r;
        const char *src = samples[rand_r(&seed) % NMC_ARRAY_SIZE(samples)].raw;
        size_t n = strlen(src), at;
        int rc;

        memcpy(raw, src, n);
        for (k = 0; k < 1 + rand_r(&seed) % 3; k++)
            raw[rand_r(&seed) % n] = repl[rand_r(&seed) % sizeof(repl)];
        at = 1 + (size_t)rand_r(&seed) % (n - 1);
        assert_int_equal(nmc_test_http_connect(&c, H.port, T), 0);
        if (nmc_test_http_send(&c, raw, at) == 0 && nmc_test_http_send(&c, raw + at, n - at) == 0)
            (void)nmc_test_http_shutdown_write(&c);
        while ((rc = nmc_test_http_read(&c, T, &r)) == 0) {
            assert_true(r.status == 200 || r.status == 400 || r.status == 404 || r.status == 405 ||
                        r.status == 413 || r.status == 431);
            nmc_test_http_resp_free(&r);
        }
        assert_int_not_equal(rc, -ETIMEDOUT);
        nmc_test_http_close(&c);
    }
    {
        struct nmc_test_http_resp r;
        assert_int_equal(nmc_test_http_request(H.port, samples[0].raw, T, &r), 0);
        assert_string_equal(r.body, samples[0].want);
        nmc_test_http_resp_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_parser_bytewise_one_byte_per_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_parser_bytewise_split_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_parser_bytewise_split_post_content_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_parser_bytewise_split_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_parser_bytewise_split_pipelined_pair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_parser_bytewise_smuggling_refused_one_byte_per_write, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_http_parser_bytewise_fold_split_everywhere_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_parser_bytewise_mutations_never_crash, setup, teardown),
    };

    return cmocka_run_group_tests_name("http_parser_bytewise", tests, NULL, NULL);
}
