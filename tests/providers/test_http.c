/* Tests for providers/http.c against a scripted HTTP/1.1 responder that
 * runs on the same libuv loop (loopback, keep-alive), with completions
 * received by a real actor. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>
#include <uv.h>

#include "providers/breaker.h"
#include "providers/http.h"
#include "providers/http_result.h"
#include "runtime/actor.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/metrics.h"

/* ---- scripted responder ------------------------------------------------ */

#define MAX_STEPS 8
#define HANG (-1)

struct step {
    int status;         /* HANG: never answer */
    const char *body;
    const char *extra;  /* extra header lines ("Name: v\r\n") or NULL */
};

struct responder {
    uv_tcp_t listener;
    int port;
    struct step steps[MAX_STEPS];
    int nsteps, next;
    int requests;
    int accepted;
    char last_request[4096];
    int open_handles;
};

struct rconn {
    uv_tcp_t tcp;
    struct responder *r;
    struct nmc_buf in;
};

static void on_rhandle_closed(uv_handle_t *h)
{
    struct responder *r = h->data;
    r->open_handles--;
    if (h != (uv_handle_t *)&r->listener) {
        struct rconn *c = nmc_container_of((uv_tcp_t *)h, struct rconn, tcp);
        nmc_buf_free(&c->in);
        free(c);
    }
}

static void on_rwritten(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void answer(struct rconn *c, const struct step *s)
{
    struct nmc_buf out = {0};
    uv_write_t *w = nmc_xcalloc(1, sizeof(*w));
    uv_buf_t b;

    nmc_buf_printf(&out, "HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s", s->status,
                   strlen(s->body), s->extra ? s->extra : "", s->body);
    w->data = nmc_buf_steal(&out, &b.len);
    b.base = w->data;
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_rwritten);
}

static const char *find_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return hay;
    return NULL;
}

/* Answers every complete request in the buffer (header block + Content-Length). */
static void serve(struct rconn *c)
{
    for (;;) {
        char *end = strstr(c->in.data ? c->in.data : "", "\r\n\r\n");
        const char *cl;
        size_t blen = 0, total;
        if (end == NULL)
            return;
        cl = find_ci(c->in.data, "content-length:");
        if (cl != NULL && cl < end)
            blen = (size_t)strtoul(cl + 15, NULL, 10);
        total = (size_t)(end + 4 - c->in.data) + blen;
        if (c->in.len < total)
            return;
        struct responder *r = c->r;
        nmc_strlcpy(r->last_request, c->in.data, total + 1 < sizeof(r->last_request) ? total + 1 : sizeof(r->last_request));
        r->requests++;
        memmove(c->in.data, c->in.data + total, c->in.len - total + 1);
        c->in.len -= total;
        const struct step *s = &r->steps[r->next < r->nsteps ? r->next++ : r->nsteps - 1];
        if (s->status != HANG)
            answer(c, s);
    }
}

static void on_ralloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(sz);
    b->len = sz;
}

static void on_rread(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct rconn *c = nmc_container_of((uv_tcp_t *)s, struct rconn, tcp);

    if (n > 0) {
        assert_int_equal(nmc_buf_append(&c->in, b->base, (size_t)n), 0);
        serve(c);
    } else if (n < 0 && !uv_is_closing((uv_handle_t *)s)) {
        uv_close((uv_handle_t *)s, on_rhandle_closed);
    }
    free(b->base);
}

static void on_rconn(uv_stream_t *l, int status)
{
    struct responder *r = l->data;
    struct rconn *c = nmc_xcalloc(1, sizeof(*c));

    assert_int_equal(status, 0);
    c->r = r;
    r->accepted++;
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = r;
    r->open_handles++;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_ralloc, on_rread);
}

static void responder_start(uv_loop_t *loop, struct responder *r)
{
    struct sockaddr_in a;
    int len = sizeof(a);

    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(loop, &r->listener);
    r->listener.data = r;
    r->open_handles = 1;
    assert_int_equal(uv_tcp_bind(&r->listener, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&r->listener, 16, on_rconn), 0);
    uv_tcp_getsockname(&r->listener, (struct sockaddr *)&a, &len);
    r->port = ntohs(a.sin_port);
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, h->data ? on_rhandle_closed : NULL);
}

/* ---- fixture: loop, runtime, an actor that keeps its completions -------- */

struct fx {
    uv_loop_t loop;
    struct nmc_rt *rt;
    struct nmc_actor *actor;
    struct nmc_prov_http *http;
    struct responder r;
    struct nmc_msg *got[4];
    int ngot;
    char url[128];
};

static void on_msg(struct nmc_actor *self, struct nmc_msg *msg, void *state)
{
    struct fx *f = state;
    (void)self;
    nmc_rt_msg_keep(msg);
    assert_true(f->ngot < 4);
    f->got[f->ngot++] = msg;
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: no completion within 10 s");
}

/* Runs the loop until n completions arrived. */
static void run_until(struct fx *f, int n)
{
    uv_timer_t dog;
    uv_timer_init(&f->loop, &dog);
    uv_timer_start(&dog, on_watchdog, 10000, 0);
    while (f->ngot < n)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&dog, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static struct nmc_prov_http_result *result(struct fx *f, int i)
{
    assert_true(i < f->ngot);
    assert_int_equal(f->got[i]->type, NMC_MSG_PROV_HTTP);
    return f->got[i]->payload;
}

static void fx_script(struct fx *f, const struct step *steps, int n)
{
    memcpy(f->r.steps, steps, (size_t)n * sizeof(*steps));
    f->r.nsteps = n;
}

static int setup(void **state)
{
    struct fx *f = nmc_xcalloc(1, sizeof(*f));
    struct nmc_prov_http_opts o = {.timeout_ms = 2000, .backoff_base_ms = 10, .backoff_max_ms = 50};

    nmc_metrics_reset();
    nmc_rng_seed(42);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(nmc_rt_create(&f->loop, 0, &f->rt), 0);
    assert_int_equal(nmc_rt_actor_create(f->rt, "http-test", on_msg, f, 0, &f->actor), 0);
    assert_int_equal(nmc_prov_http_create(&f->loop, &o, &f->http), 0);
    responder_start(&f->loop, &f->r);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/v1/ping", f->r.port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    for (int i = 0; i < f->ngot; i++)
        nmc_rt_msg_free(f->got[i]);
    nmc_prov_http_destroy(f->http);
    nmc_rt_destroy(f->rt);
    uv_walk(&f->loop, on_walk_close, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    nmc_metrics_reset();
    return 0;
}

static double requests_metric(const char *status)
{
    const char *v[3] = {"test", "ping", status};
    return nmc_metrics_value(nmc_metrics_counter("integration_http_requests_total", "", "provider,endpoint,status"), v);
}

static double latency_count(void)
{
    const char *v[2] = {"test", "ping"};
    return nmc_metrics_value(nmc_metrics_histogram("integration_http_latency_ms", "", "provider,endpoint", NULL, 0), v);
}

static struct nmc_prov_http_req req_for(struct fx *f)
{
    return (struct nmc_prov_http_req){.provider = "test", .endpoint = "ping", .url = f->url};
}

/* ---- tests ---------------------------------------------------------------- */

static void test_http_send_success(void **state)
{
    struct fx *f = *state;
    const struct step s[] = {{200, "hello", "X-Test:  yes \r\n"}};
    const char *hdrs[] = {"X-Extra: 1", NULL};
    struct nmc_prov_http_req req = req_for(f);
    struct nmc_msg parent = {0};
    struct nmc_prov_http_result *res;

    fx_script(f, s, 1);
    nmc_strlcpy(parent.correlation_id, "11111111-2222-4333-8444-555555555555", sizeof(parent.correlation_id));
    req.body = "a=1&b=2";
    req.body_len = 7;
    req.userpwd = "user:pass";
    req.headers = hdrs;
    req.parent = &parent;
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 77, NULL), 0);
    assert_int_equal(f->ngot, 0); /* never from inside the call */
    run_until(f, 1);
    res = result(f, 0);
    assert_int_equal(res->err, 0);
    assert_int_equal(res->kind, NMC_PROV_HTTP_OK);
    assert_int_equal(res->status, 200);
    assert_string_equal(res->body, "hello");
    assert_string_equal(nmc_prov_http_result_header(res, "x-test"), "yes");
    assert_int_equal(res->attempts, 1);
    assert_int_equal(f->got[0]->cookie, 77);
    assert_string_equal(f->got[0]->correlation_id, parent.correlation_id);
    assert_non_null(strstr(f->r.last_request, "POST /v1/ping HTTP/1.1"));
    assert_non_null(strstr(f->r.last_request, "Authorization: Basic dXNlcjpwYXNz"));
    assert_non_null(strstr(f->r.last_request, "traceparent: 00-"));
    assert_non_null(strstr(f->r.last_request, "X-Extra: 1"));
    assert_non_null(strstr(f->r.last_request, "\r\n\r\na=1&b=2"));
    assert_true(requests_metric("200") == 1.0);
    assert_true(latency_count() == 1.0);
    assert_int_equal(nmc_prov_http_pending(f->http), 0);
}

/* A finished call's handle serves the next call (reset, not rebuilt): the
 * next request carries nothing of the one before it. */
static void test_http_reused_handle_starts_clean(void **state)
{
    struct fx *f = *state;
    const struct step s[] = {{200, "one", NULL}, {200, "two", NULL}};
    const char *hdrs[] = {"X-Extra: 1", NULL};
    struct nmc_prov_http_req post = req_for(f), get = req_for(f);

    fx_script(f, s, 2);
    post.body = "a=1";
    post.body_len = 3;
    post.userpwd = "user:pass";
    post.headers = hdrs;
    assert_int_equal(nmc_prov_http_send(f->http, &post, f->actor, 1, NULL), 0);
    run_until(f, 1);
    assert_non_null(strstr(f->r.last_request, "Authorization: Basic"));
    assert_int_equal(nmc_prov_http_send(f->http, &get, f->actor, 2, NULL), 0);
    run_until(f, 2);
    assert_string_equal(result(f, 1)->body, "two");
    assert_non_null(strstr(f->r.last_request, "GET /v1/ping HTTP/1.1"));
    assert_null(strstr(f->r.last_request, "Authorization:"));
    assert_null(strstr(f->r.last_request, "X-Extra:"));
    assert_null(strstr(f->r.last_request, "Content-Length:"));
    assert_non_null(strstr(f->r.last_request, "traceparent: 00-"));
    assert_int_equal(f->r.accepted, 1); /* and the connection is still the multi's to reuse */
}

static void test_http_send_5xx_then_success_retries(void **state)
{
    struct fx *f = *state;
    const struct step s[] = {{503, "busy", NULL}, {500, "oops", NULL}, {201, "made", NULL}};
    struct nmc_prov_http_req req = req_for(f);
    struct nmc_prov_http_result *res;

    fx_script(f, s, 3);
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, NULL), 0);
    run_until(f, 1);
    res = result(f, 0);
    assert_int_equal(res->status, 201);
    assert_int_equal(res->err, 0);
    assert_int_equal(res->attempts, 3);
    assert_int_equal(f->r.requests, 3);
    assert_int_equal(f->r.accepted, 1); /* keep-alive: one connection for all attempts */
    assert_true(requests_metric("503") == 1.0);
    assert_true(requests_metric("500") == 1.0);
    assert_true(requests_metric("201") == 1.0);
    assert_true(latency_count() == 3.0);
}

static void test_http_send_retries_exhausted_keep_last_answer(void **state)
{
    struct fx *f = *state;
    const struct step s[] = {{502, "bad gateway", NULL}};
    struct nmc_prov_http_req req = req_for(f);
    struct nmc_prov_http_result *res;

    fx_script(f, s, 1);
    req.max_attempts = 2;
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, NULL), 0);
    run_until(f, 1);
    res = result(f, 0);
    assert_int_equal(res->kind, NMC_PROV_HTTP_5XX);
    assert_int_equal(res->err, NMC_EPROVIDER);
    assert_int_equal(res->status, 502);
    assert_string_equal(res->body, "bad gateway");
    assert_int_equal(res->attempts, 2);
}

static void test_http_send_4xx_not_retried(void **state)
{
    struct fx *f = *state;
    const struct step s[] = {{400, "{\"code\":21211}", NULL}, {200, "no", NULL}};
    struct nmc_prov_http_req req = req_for(f);
    struct nmc_prov_http_result *res;

    fx_script(f, s, 2);
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, NULL), 0);
    run_until(f, 1);
    res = result(f, 0);
    assert_int_equal(res->kind, NMC_PROV_HTTP_4XX);
    assert_int_equal(res->status, 400);
    assert_int_equal(res->attempts, 1);
    assert_int_equal(f->r.requests, 1);
    assert_string_equal(res->body, "{\"code\":21211}");
}

static void test_http_send_429_retried(void **state)
{
    struct fx *f = *state;
    const struct step s[] = {{429, "slow down", "Retry-After: 0\r\n"}, {200, "ok", NULL}};
    struct nmc_prov_http_req req = req_for(f);

    fx_script(f, s, 2);
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, NULL), 0);
    run_until(f, 1);
    assert_int_equal(result(f, 0)->status, 200);
    assert_int_equal(result(f, 0)->attempts, 2);
}

static void test_http_send_timeout(void **state)
{
    struct fx *f = *state;
    const struct step s[] = {{HANG, "", NULL}};
    struct nmc_prov_http_req req = req_for(f);
    struct nmc_prov_http_result *res;

    fx_script(f, s, 1);
    req.timeout_ms = 150;
    req.max_attempts = 2;
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, NULL), 0);
    run_until(f, 1);
    res = result(f, 0);
    assert_int_equal(res->kind, NMC_PROV_HTTP_TIMEOUT);
    assert_int_equal(res->err, NMC_ETIMEDOUT);
    assert_int_equal(res->attempts, 2);
    assert_int_equal(f->r.requests, 2);
    assert_true(res->latency_ms >= 140);
    assert_true(requests_metric("timeout") == 2.0);
}

static void test_http_send_connect_refused(void **state)
{
    struct fx *f = *state;
    struct nmc_prov_http_req req = req_for(f);
    struct nmc_prov_http_result *res;
    char url[64];

    /* The responder's port once it is closed refuses connections. */
    uv_close((uv_handle_t *)&f->r.listener, on_rhandle_closed);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", f->r.port);
    req.url = url;
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, NULL), 0);
    run_until(f, 1);
    res = result(f, 0);
    assert_int_equal(res->kind, NMC_PROV_HTTP_CONNECT);
    assert_int_equal(res->err, UV_ECONNREFUSED);
    assert_int_equal(res->attempts, 3);
    assert_true(requests_metric("connect_error") == 3.0);
}

static void test_http_send_body_over_cap(void **state)
{
    struct fx *f = *state;
    struct nmc_prov_http_opts o = {.max_response_bytes = 16};
    struct nmc_prov_http *small = NULL;
    const struct step s[] = {{200, "0123456789abcdefXYZ", NULL}};
    struct nmc_prov_http_req req = req_for(f);

    fx_script(f, s, 1);
    assert_int_equal(nmc_prov_http_create(&f->loop, &o, &small), 0);
    assert_int_equal(nmc_prov_http_send(small, &req, f->actor, 0, NULL), 0);
    run_until(f, 1);
    assert_int_equal(result(f, 0)->kind, NMC_PROV_HTTP_TOOBIG);
    assert_int_equal(result(f, 0)->err, NMC_ETOOBIG);
    assert_int_equal(result(f, 0)->attempts, 1);
    nmc_prov_http_destroy(small);
}

static void test_http_send_circuit_open_refused(void **state)
{
    struct fx *f = *state;
    struct nmc_prov_breaker_opts bo;
    struct nmc_prov_breaker *b = NULL;
    const struct step s[] = {{200, "ok", NULL}};
    struct nmc_prov_http_req req = req_for(f);

    fx_script(f, s, 1);
    nmc_prov_breaker_opts_twilio(&bo, 0);
    bo.provider = "test";
    assert_int_equal(nmc_prov_breaker_create(&bo, &b), 0);
    for (int i = 0; i < 20; i++)
        nmc_prov_breaker_record(b, 1, 10);
    assert_int_equal(nmc_prov_breaker_state(b), NMC_PROV_BREAKER_OPEN);
    req.breaker = b;
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, NULL), 0);
    run_until(f, 1);
    assert_int_equal(result(f, 0)->err, NMC_ECIRCUIT);
    assert_int_equal(result(f, 0)->kind, NMC_PROV_HTTP_CIRCUIT);
    assert_int_equal(result(f, 0)->attempts, 0);
    assert_int_equal(f->r.requests, 0);
    assert_true(requests_metric("circuit_open") == 1.0);
    nmc_prov_breaker_destroy(b);
}

static void test_http_cancel_delivers_canceled(void **state)
{
    struct fx *f = *state;
    const struct step s[] = {{HANG, "", NULL}};
    struct nmc_prov_http_req req = req_for(f);
    uint64_t id = 0;

    fx_script(f, s, 1);
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, &id), 0);
    while (f->r.requests == 0)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(nmc_prov_http_cancel(f->http, id), 0);
    assert_int_equal(nmc_prov_http_cancel(f->http, id), NMC_ENOTFOUND);
    run_until(f, 1);
    assert_int_equal(result(f, 0)->err, NMC_ECANCELED);
    assert_int_equal(nmc_prov_http_pending(f->http), 0);
}

static void test_http_destroy_cancels_pending(void **state)
{
    struct fx *f = *state;
    const struct step s[] = {{HANG, "", NULL}};
    struct nmc_prov_http_req req = req_for(f);

    fx_script(f, s, 1);
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, NULL), 0);
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, NULL), 0);
    while (f->r.requests < 2)
        uv_run(&f->loop, UV_RUN_ONCE);
    nmc_prov_http_destroy(f->http);
    f->http = NULL;
    run_until(f, 2);
    assert_int_equal(result(f, 0)->err, NMC_ECANCELED);
    assert_int_equal(result(f, 1)->err, NMC_ECANCELED);
}

struct shaped {
    long status;
    char body[16];
};

static void *shape_it(struct nmc_prov_http_result *res, nmc_payload_free_cb *pf)
{
    struct shaped *s = nmc_xcalloc(1, sizeof(*s));
    s->status = res->status;
    nmc_strlcpy(s->body, res->body, sizeof(s->body));
    nmc_prov_http_result_free(res);
    *pf = free;
    return s;
}

static void test_http_send_shape_delivers_own_type(void **state)
{
    struct fx *f = *state;
    const struct step s[] = {{202, "shaped", NULL}};
    struct nmc_prov_http_req req = req_for(f);
    struct shaped *got;

    fx_script(f, s, 1);
    req.shape = shape_it;
    req.msg_type = NMC_MSG_MODULE + 5;
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, NULL), 0);
    run_until(f, 1);
    assert_int_equal(f->got[0]->type, NMC_MSG_MODULE + 5);
    got = f->got[0]->payload;
    assert_int_equal(got->status, 202);
    assert_string_equal(got->body, "shaped");
}

static void test_http_send_bad_args(void **state)
{
    struct fx *f = *state;
    struct nmc_prov_http_req req = req_for(f);

    assert_int_equal(nmc_prov_http_send(f->http, &req, NULL, 0, NULL), NMC_EINVAL);
    req.url = NULL;
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, NULL), NMC_EINVAL);
    req = req_for(f);
    req.shape = shape_it; /* without a message type */
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, NULL), NMC_EINVAL);
    req = req_for(f);
    req.url = "ftp://127.0.0.1/x"; /* accepted, fails as a completion */
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, NULL), 0);
    run_until(f, 1);
    assert_int_equal(result(f, 0)->kind, NMC_PROV_HTTP_OTHER);
    assert_int_equal(result(f, 0)->attempts, 1);
    assert_int_equal(nmc_prov_http_pending(f->http), 0);
}

static void test_http_backoff_ms_deterministic_and_bounded(void **state)
{
    uint64_t a[5], b[5];
    (void)state;
    nmc_rng_seed(7);
    for (int i = 0; i < 5; i++)
        a[i] = nmc_prov_http_backoff_ms(i + 1, 100, 1000);
    nmc_rng_seed(7);
    for (int i = 0; i < 5; i++)
        b[i] = nmc_prov_http_backoff_ms(i + 1, 100, 1000);
    assert_memory_equal(a, b, sizeof(a));
    assert_in_range(a[0], 50, 99);
    assert_in_range(a[1], 100, 199);
    assert_in_range(a[2], 200, 399);
    assert_in_range(a[3], 400, 799);
    assert_in_range(a[4], 500, 999); /* capped at 1000 */
}

/* The header block as libcurl hands it over: status lines skipped, names
 * lower-cased, values trimmed; a line without a name or with a NUL inside
 * (found by tests/fuzz/fuzz_provider_response.c: its value used to be cut at
 * the NUL, keeping the space before it) is skipped. */
static void test_http_result_parse_headers(void **state)
{
    static const char block[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
                                "Content-Type:  application/json \r\n"
                                "X-Twilio-Request-Id:\tRQ1\r\n"
                                ": no name\r\n"
                                "no colon\r\n"
                                "X-Nul: a \0b\r\n"
                                "Retry-After: 3\n"
                                "\r\n";
    struct nmc_prov_http_result *r = calloc(1, sizeof *r);
    (void)state;
    assert_non_null(r);
    nmc_prov_http_result_parse_headers(r, block, sizeof block - 1);
    assert_int_equal(r->nheaders, 3);
    assert_string_equal(r->headers[0].name, "content-type");
    assert_string_equal(r->headers[0].value, "application/json");
    assert_string_equal(r->headers[1].name, "x-twilio-request-id");
    assert_string_equal(r->headers[1].value, "RQ1");
    assert_string_equal(nmc_prov_http_result_header(r, "Retry-After"), "3");
    assert_null(nmc_prov_http_result_header(r, "x-nul"));
    nmc_prov_http_result_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_send_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_reused_handle_starts_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_send_5xx_then_success_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_send_retries_exhausted_keep_last_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_send_4xx_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_send_429_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_send_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_send_connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_send_body_over_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_send_circuit_open_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_cancel_delivers_canceled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_destroy_cancels_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_send_shape_delivers_own_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_send_bad_args, setup, teardown),
        cmocka_unit_test(test_http_backoff_ms_deterministic_and_bounded),
        cmocka_unit_test(test_http_result_parse_headers),
    };
    return cmocka_run_group_tests_name("providers_http", tests, NULL, NULL);
}
