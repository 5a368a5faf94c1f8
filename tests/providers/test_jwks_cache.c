/* providers/jwks_cache.c: fetching the JWKS through the real curl-multi
 * client against a tiny HTTP server on the same loop, with the owner actor
 * feeding completions back. Wall clock frozen (TTL and rate limit); keys and
 * tokens from the python co-process of tests/support/jwt_keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "providers/http.h"
#include "providers/jwt.h"
#include "runtime/actor.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "tests/support/jwt_keys/jwt_test_util.h"

#define T0 1900000000000LL /* ms; frozen */
#define COOKIE 0xc0ffeeULL
#define ISS "https://clerk.example.test"
#define AUD "nmc-api"

/* ---- a one-route HTTP server: answers every request with status/body ---- */

struct srv {
    uv_tcp_t tcp;
    int port;
    int hits;
    int status;
    char *body;
    char request_line[128];
};

struct sconn {
    uv_tcp_t tcp;
    struct srv *s;
    struct nmc_buf in;
    int answered;
};

struct swrite {
    uv_write_t req;
    char *data;
};

static void on_sconn_close(uv_handle_t *h)
{
    struct sconn *c = nmc_container_of(h, struct sconn, tcp);

    nmc_buf_free(&c->in);
    free(c);
}

static void on_swritten(uv_write_t *req, int status)
{
    struct swrite *w = nmc_container_of(req, struct swrite, req);

    uv_close((uv_handle_t *)req->handle, on_sconn_close);
    free(w->data);
    free(w);
}

static void answer(struct sconn *c)
{
    struct srv *s = c->s;
    struct nmc_buf out = {0};
    struct swrite *w = nmc_xcalloc(1, sizeof(*w));
    uv_buf_t b;

    s->hits++;
    nmc_strlcpy(s->request_line, c->in.data, sizeof(s->request_line));
    s->request_line[strcspn(s->request_line, "\r")] = '\0';
    assert_int_equal(nmc_buf_printf(&out, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                                          "Connection: close\r\n\r\n%s", s->status, strlen(s->body), s->body), 0);
    w->data = nmc_buf_steal(&out, &b.len);
    b.base = w->data;
    c->answered = 1;
    assert_int_equal(uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_swritten), 0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    static char chunk[4096];

    b->base = chunk;
    b->len = sizeof(chunk);
}

static void on_sread(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct sconn *c = nmc_container_of(st, struct sconn, tcp);

    if (n < 0) {
        if (!c->answered && !uv_is_closing((uv_handle_t *)st))
            uv_close((uv_handle_t *)st, on_sconn_close);
        return;
    }
    assert_int_equal(nmc_buf_append(&c->in, b->base, (size_t)n), 0);
    if (!c->answered && strstr(c->in.data, "\r\n\r\n") != NULL) {
        uv_read_stop(st);
        answer(c);
    }
}

static void on_sconnect(uv_stream_t *server, int status)
{
    struct srv *s = nmc_container_of(server, struct srv, tcp);
    struct sconn *c = nmc_xcalloc(1, sizeof(*c));

    c->s = s;
    c->in.max = 65536;
    uv_tcp_init(server->loop, &c->tcp);
    assert_int_equal(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_sread);
}

static void srv_start(uv_loop_t *loop, struct srv *s)
{
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof(bound);

    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_init(loop, &s->tcp), 0);
    assert_int_equal(uv_tcp_bind(&s->tcp, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->tcp, 16, on_sconnect), 0);
    assert_int_equal(uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&bound, &len), 0);
    s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void srv_serve(struct srv *s, int status, const char *body)
{
    free(s->body);
    s->body = nmc_xstrdup(body);
    s->status = status;
}

/* ---- the world: loop, runtime, HTTP client, owner actor ---- */

struct owner {
    struct nmc_prov_jwks_cache *cache; /* NULL: completions are dropped */
    int completions;
    int last_rc;
    int dropped_err;
    uint64_t cookie;
};

static uv_loop_t loop;
static uv_timer_t tick;
static struct nmc_rt *rt;
static struct nmc_prov_http *http;
static struct nmc_actor *owner_actor;
static struct owner own;
static struct srv srv;
static struct jt_py py;
static char url[128];
static char *doc_k1, *doc_k1k2; /* JWKS documents */

static void on_owner(struct nmc_actor *self, struct nmc_msg *msg, void *state)
{
    struct owner *o = state;

    if (msg->type != NMC_MSG_PROV_JWKS)
        return;
    o->completions++;
    o->cookie = msg->cookie;
    if (o->cache != NULL)
        o->last_rc = nmc_prov_jwks_cache_on_fetched(o->cache, msg);
    else
        o->dropped_err = ((const struct nmc_prov_jwks_fetch *)msg->payload)->err;
}

static void on_tick(uv_timer_t *t)
{
}

/* Runs the loop until the owner has seen n completions in all (5 s cap). */
static void run_until(int n)
{
    uint64_t start = nmc_clock_mono_ns();

    while (own.completions < n && nmc_clock_mono_ns() - start < 5000000000ULL)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(own.completions, n);
}

static char *jwks_doc(const char *a, const char *b)
{
    char *ja = jt_read_jwk(&py, a), *jb = b != NULL ? jt_read_jwk(&py, b) : NULL;
    struct nmc_buf doc = {0};

    assert_non_null(ja);
    assert_int_equal(nmc_buf_printf(&doc, "{\"keys\":[%s%s%s]}", ja, jb ? "," : "", jb ? jb : ""), 0);
    free(ja);
    free(jb);
    return nmc_buf_steal(&doc, NULL);
}

static int group_setup(void **state)
{
    struct nmc_prov_http_opts hopts = {.timeout_ms = 3000, .connect_timeout_ms = 1000, .backoff_base_ms = 10};

    nmc_log_setup(NMC_LOG_ERROR, 0, stderr);
    if (jt_start(&py) != 0)
        return -1;
    doc_k1 = jwks_doc("k1", NULL);
    doc_k1k2 = jwks_doc("k1", "k2");
    uv_loop_init(&loop);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 20, 20); /* run_until never sleeps long */
    srv_start(&loop, &srv);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/.well-known/jwks.json", srv.port);
    if (nmc_rt_create(&loop, 0, &rt) || nmc_prov_http_create(&loop, &hopts, &http))
        return -1;
    return nmc_rt_actor_create(rt, "jwks-owner", on_owner, &own, 0, &owner_actor);
}

static void on_close_free_nothing(uv_handle_t *h)
{
}

static int group_teardown(void **state)
{
    nmc_prov_http_destroy(http);
    nmc_rt_destroy(rt);
    uv_close((uv_handle_t *)&tick, on_close_free_nothing);
    uv_close((uv_handle_t *)&srv.tcp, on_close_free_nothing);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(srv.body);
    free(doc_k1);
    free(doc_k1k2);
    jt_stop(&py);
    nmc_clock_unfreeze();
    return 0;
}

/* A fresh cache (1 attempt per fetch) and owner counters, clock at T0. */
static int setup(void **state)
{
    struct nmc_prov_jwks_cache_opts o = {.url = url, .cookie = COOKIE, .max_attempts = 1};

    memset(&own, 0, sizeof(own));
    srv.hits = 0;
    srv_serve(&srv, 200, doc_k1);
    nmc_clock_freeze(T0);
    return nmc_prov_jwks_cache_create(http, owner_actor, &o, &own.cache);
}

static int teardown(void **state)
{
    nmc_prov_jwks_cache_destroy(own.cache);
    own.cache = NULL;
    return 0;
}

/* Fetches once and checks the keys were installed. */
static void fetch_ok(int nth)
{
    assert_int_equal(nmc_prov_jwks_cache_refresh(own.cache), 1);
    run_until(nth);
    assert_int_equal(own.last_rc, 0);
}

static char *token_by(const char *key)
{
    char claims[256];
    char *t;

    snprintf(claims, sizeof(claims), "{\"sub\":\"user_1\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld}", ISS, AUD,
             T0 / 1000 + 600);
    t = jt_sign(&py, key, "RS256", NULL, NULL, claims);
    assert_non_null(t);
    return t;
}

/* ---- tests ---- */

static void test_jwks_cache_refresh_fetches_and_installs(void **state)
{
    struct nmc_prov_jwks_cache_stats st;
    struct nmc_prov_jwks *ks;

    assert_null(nmc_prov_jwks_cache_keys(own.cache)); /* starts the first fetch */
    run_until(1);
    assert_int_equal(own.last_rc, 0);
    assert_int_equal(own.cookie, COOKIE);
    assert_int_equal(srv.hits, 1);
    assert_string_equal(srv.request_line, "GET /.well-known/jwks.json HTTP/1.1");
    ks = nmc_prov_jwks_cache_keys(own.cache);
    assert_non_null(ks);
    assert_int_equal(nmc_prov_jwks_count(ks), 1);
    assert_non_null(nmc_prov_jwks_find(ks, "k1", 2));
    nmc_prov_jwks_cache_stats(own.cache, &st);
    assert_int_equal(st.fetches, 1);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.fetched_at_ms, T0);
    assert_int_equal(st.in_flight, 0);
}

static void test_jwks_cache_refresh_rate_limited(void **state)
{
    fetch_ok(1);
    assert_int_equal(nmc_prov_jwks_cache_refresh(own.cache), 0);
    nmc_clock_advance(29999);
    assert_int_equal(nmc_prov_jwks_cache_refresh(own.cache), 0);
    nmc_clock_advance(1);
    srv_serve(&srv, 200, doc_k1k2);
    fetch_ok(2);
    assert_int_equal(srv.hits, 2);
    assert_int_equal(nmc_prov_jwks_count(nmc_prov_jwks_cache_keys(own.cache)), 2);
}

/* Until a first key set is installed, the shorter empty interval applies;
 * once keys are there, min_interval_ms does again. */
static void test_jwks_cache_refresh_rate_limited_sooner_without_keys(void **state)
{
    struct nmc_prov_jwks_cache_opts o = {.url = url, .max_attempts = 1, .min_interval_ms = 5000,
                                         .min_interval_empty_ms = 1000};
    struct nmc_prov_jwks_cache *c = NULL;

    assert_int_equal(nmc_prov_jwks_cache_create(http, owner_actor, &o, &c), 0);
    nmc_prov_jwks_cache_destroy(own.cache);
    own.cache = c;
    srv_serve(&srv, 503, "{}");
    assert_int_equal(nmc_prov_jwks_cache_refresh(c), 1);
    run_until(1);
    assert_int_equal(own.last_rc, NMC_EPROVIDER);
    nmc_clock_advance(999);
    assert_int_equal(nmc_prov_jwks_cache_refresh(c), 0);
    nmc_clock_advance(1);
    srv_serve(&srv, 200, doc_k1);
    assert_int_equal(nmc_prov_jwks_cache_refresh(c), 1);
    run_until(2);
    assert_int_equal(own.last_rc, 0);
    nmc_clock_advance(1000);
    assert_int_equal(nmc_prov_jwks_cache_refresh(c), 0); /* keys now: 5 s */
    nmc_clock_advance(4000);
    assert_int_equal(nmc_prov_jwks_cache_refresh(c), 1);
    run_until(3);
    assert_int_equal(srv.hits, 3);
}

static void test_jwks_cache_refresh_once_in_flight(void **state)
{
    struct nmc_prov_jwks_cache_stats st;

    assert_int_equal(nmc_prov_jwks_cache_refresh(own.cache), 1);
    nmc_clock_advance(60000); /* the rate limit has passed, but one is in flight */
    assert_int_equal(nmc_prov_jwks_cache_refresh(own.cache), 0);
    assert_null(nmc_prov_jwks_cache_keys(own.cache));
    nmc_prov_jwks_cache_stats(own.cache, &st);
    assert_int_equal(st.in_flight, 1);
    run_until(1);
    assert_int_equal(srv.hits, 1);
}

static void test_jwks_cache_keys_refetched_after_ttl(void **state)
{
    struct nmc_prov_jwks *before;
    struct nmc_prov_jwks_cache_stats st;

    fetch_ok(1);
    before = nmc_prov_jwks_cache_keys(own.cache);
    nmc_clock_advance(NMC_PROV_JWKS_DEFAULT_TTL_MS - 1);
    assert_ptr_equal(nmc_prov_jwks_cache_keys(own.cache), before);
    nmc_prov_jwks_cache_stats(own.cache, &st);
    assert_int_equal(st.in_flight, 0);
    nmc_clock_advance(1);
    srv_serve(&srv, 200, doc_k1k2);
    /* Stale keys keep serving while the refetch runs. */
    assert_ptr_equal(nmc_prov_jwks_cache_keys(own.cache), before);
    nmc_prov_jwks_cache_stats(own.cache, &st);
    assert_int_equal(st.in_flight, 1);
    run_until(2);
    assert_int_equal(nmc_prov_jwks_count(nmc_prov_jwks_cache_keys(own.cache)), 2);
    assert_int_equal(srv.hits, 2);
}

static void test_jwks_cache_on_fetched_failure_keeps_keys(void **state)
{
    struct nmc_prov_jwks *before;
    struct nmc_prov_jwks_cache_stats st;

    fetch_ok(1);
    before = nmc_prov_jwks_cache_keys(own.cache);
    srv_serve(&srv, 500, "{}");
    nmc_clock_advance(30000);
    assert_int_equal(nmc_prov_jwks_cache_refresh(own.cache), 1);
    run_until(2);
    assert_int_equal(own.last_rc, NMC_EPROVIDER);
    srv_serve(&srv, 200, "{\"keys\":");
    nmc_clock_advance(30000);
    assert_int_equal(nmc_prov_jwks_cache_refresh(own.cache), 1);
    run_until(3);
    assert_int_equal(own.last_rc, NMC_EPARSE);
    srv_serve(&srv, 200, "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"x\"}]}");
    nmc_clock_advance(30000);
    assert_int_equal(nmc_prov_jwks_cache_refresh(own.cache), 1);
    run_until(4);
    assert_int_equal(own.last_rc, NMC_ENOTFOUND);
    assert_ptr_equal(nmc_prov_jwks_cache_keys(own.cache), before);
    nmc_prov_jwks_cache_stats(own.cache, &st);
    assert_int_equal(st.fetches, 4);
    assert_int_equal(st.failures, 3);
    assert_int_equal(st.fetched_at_ms, T0);
}

static void test_jwks_cache_on_fetched_connection_refused(void **state)
{
    struct nmc_prov_jwks_cache_opts o = {.url = "http://127.0.0.1:1/.well-known/jwks.json", .max_attempts = 1};
    struct nmc_prov_jwks_cache *c = NULL;

    assert_int_equal(nmc_prov_jwks_cache_create(http, owner_actor, &o, &c), 0);
    nmc_prov_jwks_cache_destroy(own.cache);
    own.cache = c;
    assert_int_equal(nmc_prov_jwks_cache_refresh(c), 1);
    run_until(1);
    assert_int_not_equal(own.last_rc, 0);
    assert_null(nmc_prov_jwks_cache_keys(c)); /* too soon for another fetch */
}

static void test_jwks_cache_verify_unknown_kid_refetches(void **state)
{
    struct nmc_prov_jwt_policy p = {.issuer = ISS, .audience = AUD, .leeway_s = -1};
    struct nmc_prov_jwt_claims c;
    char *by_k2 = token_by("k2"), *by_k3 = token_by("k3");
    int pending = -1;

    fetch_ok(1);
    srv_serve(&srv, 200, doc_k1k2); /* k2 appears at the provider */
    /* Within the rate limit: refused at once, nothing to wait for. */
    assert_int_equal(nmc_prov_jwks_cache_verify(own.cache, &p, by_k2, strlen(by_k2), &c, &pending),
                     NMC_PROV_JWT_EUNKNOWN_KID);
    assert_int_equal(pending, 0);
    nmc_clock_advance(30000);
    assert_int_equal(nmc_prov_jwks_cache_verify(own.cache, &p, by_k2, strlen(by_k2), &c, &pending),
                     NMC_PROV_JWT_EUNKNOWN_KID);
    assert_int_equal(pending, 1);
    run_until(2);
    assert_int_equal(nmc_prov_jwks_cache_verify(own.cache, &p, by_k2, strlen(by_k2), &c, &pending), 0);
    assert_int_equal(pending, 0);
    assert_string_equal(c.kid, "k2");
    /* An unknown kid right after: the rate limit holds, one fetch only. */
    assert_int_equal(nmc_prov_jwks_cache_verify(own.cache, &p, by_k3, strlen(by_k3), NULL, &pending),
                     NMC_PROV_JWT_EUNKNOWN_KID);
    assert_int_equal(pending, 0);
    assert_int_equal(srv.hits, 2);
    free(by_k2);
    free(by_k3);
}

static void test_jwks_cache_verify_before_first_fetch(void **state)
{
    struct nmc_prov_jwt_policy p = {.issuer = ISS, .audience = AUD, .leeway_s = -1};
    char *by_k1 = token_by("k1");
    int pending = 0;

    assert_int_equal(nmc_prov_jwks_cache_verify(own.cache, &p, by_k1, strlen(by_k1), NULL, &pending),
                     NMC_PROV_JWT_EUNKNOWN_KID);
    assert_int_equal(pending, 1);
    run_until(1);
    assert_int_equal(nmc_prov_jwks_cache_verify(own.cache, &p, by_k1, strlen(by_k1), NULL, &pending), 0);
    assert_int_equal(srv.hits, 1);
    free(by_k1);
}

static void test_jwks_cache_destroy_in_flight(void **state)
{
    assert_int_equal(nmc_prov_jwks_cache_refresh(own.cache), 1);
    nmc_prov_jwks_cache_destroy(own.cache);
    own.cache = NULL; /* the owner now drops completions */
    run_until(1);
    assert_int_equal(own.dropped_err, NMC_ECANCELED);
}

static void test_jwks_cache_create_refuses_bad_args(void **state)
{
    struct nmc_prov_jwks_cache_opts o = {.url = ""};
    struct nmc_prov_jwks_cache *c = (struct nmc_prov_jwks_cache *)1;

    assert_int_equal(nmc_prov_jwks_cache_create(http, owner_actor, &o, &c), NMC_EINVAL);
    assert_null(c);
    o.url = url;
    assert_int_equal(nmc_prov_jwks_cache_create(NULL, owner_actor, &o, &c), NMC_EINVAL);
    assert_int_equal(nmc_prov_jwks_cache_create(http, NULL, &o, &c), NMC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jwks_cache_refresh_fetches_and_installs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwks_cache_refresh_rate_limited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwks_cache_refresh_rate_limited_sooner_without_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwks_cache_refresh_once_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwks_cache_keys_refetched_after_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwks_cache_on_fetched_failure_keeps_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwks_cache_on_fetched_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwks_cache_verify_unknown_kid_refetches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwks_cache_verify_before_first_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwks_cache_destroy_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwks_cache_create_refuses_bad_args, setup, teardown),
    };
    return cmocka_run_group_tests_name("providers_jwks_cache", tests, group_setup, group_teardown);
}
