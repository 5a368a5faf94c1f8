/* libcurl multi on libuv (after curl's docs/examples/multi-uv.c): sockets
 * on uv_poll, curl's timeout on one non-repeating uv_timer, completions
 * drained from curl_multi_info_read() outside libcurl's callbacks. */
#include "providers/http.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <mbedtls/base64.h>
#include "providers/breaker.h"
#include "providers/http_result.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/trace.h"

#define MAX_HEADER_BYTES (64 * 1024)

/* A socket libcurl asked us to watch; freed in its close callback. */
struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct nmc_prov_http *client;
    struct sock *prev, *next;
};

struct call {
    struct nmc_prov_http *client;
    struct call *prev, *next;   /* client->calls: every pending call */
    struct call *wnext;         /* client->waiting: backing off, by due time */
    uint64_t due_ms;
    int in_multi;
    uint64_t id;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char *provider, *endpoint, *span_name;
    struct nmc_buf resp, hdrs;
    int too_big;
    char errbuf[CURL_ERROR_SIZE];
    int attempt, max_attempts;
    uint64_t start_ns, attempt_ns;
    struct nmc_span *span;
    struct nmc_prov_breaker *breaker;
    struct nmc_actor *reply_to;
    uint64_t cookie;
    struct nmc_msg parent;      /* header fields only (payload NULL) */
    int has_parent;
    nmc_prov_http_shape_cb shape;
    int msg_type;
    struct nmc_prov_http_result *last; /* last attempt's result while backing off */
};

#define IDLE_EASY_MAX 64

struct nmc_prov_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t curl_timer;
    uv_timer_t retry_timer;
    struct nmc_prov_http_opts o;
    char *user_agent;
    struct call *calls;
    size_t ncalls;
    struct call *waiting;
    struct sock *socks;
    uint64_t next_id;
    int closing;
    int open_handles;
    struct nmc_prov_breaker **breakers;
    size_t nbreakers;
    struct nmc_metric *requests, *latency;
    /* easy handles of finished calls, reset and kept for the next ones:
     * a new handle costs libcurl its set-up and a zeroed receive buffer */
    CURL *idle[IDLE_EASY_MAX];
    size_t nidle;
    /* the Basic auth header line of the last credentials seen (every
     * request of a provider carries the same ones) */
    char *auth_for, *auth_line;
};

static void finish(struct call *k, struct nmc_prov_http_result *res);
static void start_attempt(struct call *k);
static void attempt_done(struct call *k, CURLcode rc);

/* ---- libcurl <-> libuv glue ------------------------------------------ */

static void maybe_free_client(struct nmc_prov_http *c)
{
    if (c->closing && c->open_handles == 0) {
        free(c->user_agent);
        free(c->auth_for);
        free(c->auth_line);
        free(c);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct nmc_prov_http *c = h->data;
    c->open_handles--;
    maybe_free_client(c);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct sock *s = nmc_container_of((uv_poll_t *)h, struct sock, poll);
    struct nmc_prov_http *c = s->client;

    free(s);
    c->open_handles--;
    maybe_free_client(c);
}

static void sock_close(struct sock *s)
{
    struct nmc_prov_http *c = s->client;

    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* Completes every transfer libcurl reports done. */
static void drain_done(struct nmc_prov_http *c)
{
    CURLMsg *m;
    int left;

    while (c->multi != NULL && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
        char *priv = NULL;
        struct call *k;
        CURLcode rc = m->data.result;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        k = (struct call *)(void *)priv;
        curl_multi_remove_handle(c->multi, k->easy);
        k->in_multi = 0;
        attempt_done(k, rc);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = nmc_container_of(h, struct sock, poll);
    struct nmc_prov_http *c = s->client;
    int flags = 0, running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    drain_done(c);
}

/* Lets libcurl act on its due timeouts, which include transfers just
 * added: they start here. Completions are only queued to their actors. */
static void run_due(struct nmc_prov_http *c)
{
    int running;

    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_done(c);
}

static void on_curl_timeout(uv_timer_t *t)
{
    run_due(t->data);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arms our timer; calling back into
 * libcurl from here is forbidden. -1 stops it, 0 fires on the next turn. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct nmc_prov_http *c = userp;

    if (timeout_ms < 0)
        uv_timer_stop(&c->curl_timer);
    else
        uv_timer_start(&c->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static struct sock *sock_open(struct nmc_prov_http *c, curl_socket_t fd)
{
    struct sock *s = nmc_xcalloc(1, sizeof(*s));

    if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
        free(s);
        return NULL;
    }
    s->fd = fd;
    s->client = c;
    s->next = c->socks;
    if (c->socks)
        c->socks->prev = s;
    c->socks = s;
    c->open_handles++;
    curl_multi_assign(c->multi, fd, s);
    return s;
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching fd. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
    struct nmc_prov_http *c = userp;
    struct sock *s = socketp;
    int events = 0;

    if (action == CURL_POLL_REMOVE) {
        if (s != NULL) {
            uv_poll_stop(&s->poll);
            curl_multi_assign(c->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (s == NULL && (s = sock_open(c, fd)) == NULL)
        return -1;
    if (action != CURL_POLL_OUT)
        events |= UV_READABLE;
    if (action != CURL_POLL_IN)
        events |= UV_WRITABLE;
    return uv_poll_start(&s->poll, events, on_poll) == 0 ? 0 : -1;
}

/* ---- per-call callbacks from libcurl ---------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
    struct call *k = ud;

    if (nmc_buf_append(&k->resp, ptr, size * n) != 0) {
        k->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return size * n;
}

/* Keeps only the last response's header block (after 100 Continue or a
 * redirect libcurl starts a new one with its status line). */
static size_t on_header(char *ptr, size_t size, size_t n, void *ud)
{
    struct call *k = ud;

    if (size * n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
        nmc_buf_reset(&k->hdrs);
    if (nmc_buf_append(&k->hdrs, ptr, size * n) != 0) {
        k->too_big = 1;
        return 0;
    }
    return size * n;
}

/* ---- retries ------------------------------------------------------------ */

uint64_t nmc_prov_http_backoff_ms(int attempt, int base_ms, int max_ms)
{
    double d = base_ms > 0 ? base_ms : 1;

    for (int i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms > 0 ? max_ms : 1;
    return (uint64_t)(d / 2 + nmc_rng_unit() * d / 2);
}

/* Delay before the next attempt: jittered backoff, or Retry-After seconds
 * when the provider asked for longer, never past the cap. */
static uint64_t retry_delay(const struct call *k, const struct nmc_prov_http_result *res)
{
    const struct nmc_prov_http_opts *o = &k->client->o;
    uint64_t d = nmc_prov_http_backoff_ms(k->attempt, o->backoff_base_ms, o->backoff_max_ms);
    const char *ra = nmc_prov_http_result_header(res, "retry-after");
    int64_t secs;

    if (ra != NULL && nmc_parse_i64(ra, 0, 3600, &secs) == 0 && (uint64_t)secs * 1000 > d)
        d = (uint64_t)secs * 1000;
    return d > (uint64_t)o->backoff_max_ms ? (uint64_t)o->backoff_max_ms : d;
}

static void on_retry_due(uv_timer_t *t);

static void arm_retry_timer(struct nmc_prov_http *c)
{
    uint64_t now = uv_now(c->loop);

    if (c->waiting == NULL)
        uv_timer_stop(&c->retry_timer);
    else
        uv_timer_start(&c->retry_timer, on_retry_due, c->waiting->due_ms > now ? c->waiting->due_ms - now : 0, 0);
}

static void wait_insert(struct call *k, uint64_t delay_ms)
{
    struct nmc_prov_http *c = k->client;
    struct call **pp = &c->waiting;

    k->due_ms = uv_now(c->loop) + delay_ms;
    while (*pp != NULL && (*pp)->due_ms <= k->due_ms)
        pp = &(*pp)->wnext;
    k->wnext = *pp;
    *pp = k;
    arm_retry_timer(c);
}

static void wait_remove(struct call *k)
{
    struct call **pp = &k->client->waiting;

    while (*pp != NULL && *pp != k)
        pp = &(*pp)->wnext;
    if (*pp == k)
        *pp = k->wnext;
    k->wnext = NULL;
}

static void on_retry_due(uv_timer_t *t)
{
    struct nmc_prov_http *c = t->data;
    uint64_t now = uv_now(c->loop);

    while (c->waiting != NULL && c->waiting->due_ms <= now) {
        struct call *k = c->waiting;
        c->waiting = k->wnext;
        k->wnext = NULL;
        start_attempt(k);
    }
    run_due(c);
    arm_retry_timer(c);
}

/* ---- call lifecycle ------------------------------------------------------ */

static void call_free(struct call *k)
{
    struct nmc_prov_http *c = k->client;

    if (k->prev)
        k->prev->next = k->next;
    else
        c->calls = k->next;
    if (k->next)
        k->next->prev = k->prev;
    c->ncalls--;
    if (k->easy != NULL && !k->in_multi && !c->closing && c->nidle < IDLE_EASY_MAX) {
        curl_easy_reset(k->easy); /* every option back to its default; connections stay with the multi */
        c->idle[c->nidle++] = k->easy;
    } else {
        curl_easy_cleanup(k->easy);
    }
    curl_slist_free_all(k->headers);
    nmc_buf_free(&k->resp);
    nmc_buf_free(&k->hdrs);
    nmc_prov_http_result_free(k->last);
    free(k->body);
    free(k->provider);
    free(k->endpoint);
    free(k->span_name);
    free(k);
}

static void count(struct call *k, const struct nmc_prov_http_result *res, int attempted)
{
    char code[8];
    const char *req_labels[3] = {k->provider, k->endpoint, nmc_prov_http_result_label(res, code)};
    const char *lat_labels[2] = {k->provider, k->endpoint};

    nmc_metrics_add(k->client->requests, req_labels, 1);
    if (attempted)
        nmc_metrics_observe(k->client->latency, lat_labels, res->latency_ms);
}

static void log_outcome(const struct call *k, const struct nmc_prov_http_result *res, const char *event)
{
    struct nmc_log_rec *r = nmc_log_begin(res->err ? NMC_LOG_WARN : NMC_LOG_DEBUG, "providers", event);

    if (k->has_parent)
        nmc_log_ctx(r, &k->parent);
    nmc_log_str(r, "provider", k->provider);
    nmc_log_str(r, "endpoint", k->endpoint);
    nmc_log_int(r, "status", res->status);
    nmc_log_str(r, "outcome", nmc_prov_http_kind_name(res->kind));
    nmc_log_int(r, "attempt", k->attempt);
    nmc_log_double(r, "latency_ms", res->latency_ms);
    if (res->err)
        nmc_log_error(r, res->err, res->error[0] ? res->error : NULL);
    nmc_log_end(r);
}

static void deliver(struct call *k, struct nmc_prov_http_result *res)
{
    nmc_payload_free_cb pf = nmc_prov_http_result_free_payload;
    void *payload = res;
    int type = NMC_MSG_PROV_HTTP;
    struct nmc_msg *m;

    if (k->shape != NULL) {
        payload = k->shape(res, &pf);
        type = k->msg_type;
    }
    m = nmc_rt_msg_new(type, payload, pf);
    if (k->has_parent)
        nmc_rt_msg_inherit(m, &k->parent);
    m->cookie = k->cookie;
    if (nmc_rt_send(k->reply_to, m) != 0) {
        struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_ERROR, "providers", "provider.http.undelivered");
        nmc_log_str(r, "provider", k->provider);
        nmc_log_str(r, "actor", nmc_rt_actor_name(k->reply_to));
        nmc_log_end(r);
    }
}

/* The single exit of a call: ends the span, delivers, frees. */
static void finish(struct call *k, struct nmc_prov_http_result *res)
{
    res->attempts = k->attempt;
    res->total_ms = (double)(nmc_clock_mono_ns() - k->start_ns) / 1e6;
    nmc_trace_span_attr_int(k->span, "http.status_code", res->status);
    nmc_trace_span_attr_int(k->span, "attempts", k->attempt);
    if (res->err)
        nmc_trace_span_error(k->span, res->error[0] ? res->error : nmc_strerror(res->err));
    nmc_trace_span_end(k->span);
    k->span = NULL;
    if (k->last == res)
        k->last = NULL;
    deliver(k, res);
    call_free(k);
}

static struct nmc_prov_http_result *result_new(void)
{
    struct nmc_prov_http_result *r = nmc_xcalloc(1, sizeof(*r));
    r->body = nmc_xstrdup("");
    return r;
}

/* Finishes without another attempt: kind/err override, the last answer kept. */
static void finish_with(struct call *k, enum nmc_prov_http_kind kind, int err, const char *why)
{
    struct nmc_prov_http_result *res = k->last ? k->last : result_new();

    k->last = NULL;
    nmc_prov_http_result_set(res, kind, err, why);
    finish(k, res);
}

static void start_attempt(struct call *k)
{
    struct nmc_prov_http *c = k->client;

    if (k->breaker != NULL && !nmc_prov_breaker_allow(k->breaker)) {
        struct nmc_prov_http_result probe = {.kind = NMC_PROV_HTTP_CIRCUIT};
        count(k, &probe, 0);
        finish_with(k, NMC_PROV_HTTP_CIRCUIT, NMC_ECIRCUIT, "circuit breaker open");
        return;
    }
    nmc_buf_reset(&k->resp);
    nmc_buf_reset(&k->hdrs);
    k->too_big = 0;
    k->errbuf[0] = '\0';
    k->attempt++;
    k->attempt_ns = nmc_clock_mono_ns();
    if (curl_multi_add_handle(c->multi, k->easy) != CURLM_OK) {
        finish_with(k, NMC_PROV_HTTP_OTHER, NMC_EPROVIDER, "curl_multi_add_handle failed");
        return;
    }
    k->in_multi = 1;
}

static struct nmc_prov_http_result *attempt_result(struct call *k, CURLcode rc)
{
    struct nmc_prov_http_result *r = nmc_xcalloc(1, sizeof(*r));

    curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &r->status);
    r->latency_ms = (double)(nmc_clock_mono_ns() - k->attempt_ns) / 1e6;
    r->body = nmc_buf_steal(&k->resp, &r->body_len);
    k->resp.max = k->client->o.max_response_bytes;
    if (k->hdrs.len > 0)
        nmc_prov_http_result_parse_headers(r, k->hdrs.data, k->hdrs.len);
    if (k->errbuf[0] != '\0')
        nmc_strlcpy(r->error, k->errbuf, sizeof(r->error));
    nmc_prov_http_result_classify(r, rc, k->too_big);
    return r;
}

static void attempt_done(struct call *k, CURLcode rc)
{
    struct nmc_prov_http_result *res = attempt_result(k, rc);

    count(k, res, 1);
    if (k->breaker != NULL)
        nmc_prov_breaker_record(k->breaker, nmc_prov_breaker_is_failure(k->breaker, res->status, res->err),
                                res->latency_ms);
    if (nmc_prov_http_result_retryable(res) && k->attempt < k->max_attempts && !k->client->closing) {
        log_outcome(k, res, "provider.http.retry");
        nmc_prov_http_result_free(k->last);
        k->last = res;
        wait_insert(k, retry_delay(k, res));
        return;
    }
    log_outcome(k, res, "provider.http.done");
    finish(k, res);
}

/* ---- setting a call up -------------------------------------------------- */

#define SETOPT(e, opt, val) (rc |= curl_easy_setopt((e), (opt), (val)) != CURLE_OK)

/* "Authorization: Basic <base64 of userpwd>": what libcurl would send for
 * CURLOPT_USERPWD, without its formatting on every request; computed again
 * only when the credentials change. NULL when it cannot be encoded. */
static const char *auth_line(struct nmc_prov_http *c, const char *userpwd)
{
    static const char prefix[] = "Authorization: Basic ";
    if (c->auth_for != NULL && strcmp(c->auth_for, userpwd) == 0)
        return c->auth_line;
    size_t n = strlen(userpwd), olen = 0, cap = sizeof prefix + (n + 2) / 3 * 4;
    char *line = nmc_xmalloc(cap);
    memcpy(line, prefix, sizeof prefix - 1);
    if (mbedtls_base64_encode((unsigned char *)line + sizeof prefix - 1, cap - (sizeof prefix - 1), &olen,
                              (const unsigned char *)userpwd, n) != 0) {
        free(line);
        return NULL;
    }
    free(c->auth_for);
    free(c->auth_line);
    c->auth_for = nmc_xstrdup(userpwd);
    c->auth_line = line;
    return line;
}

static struct curl_slist *build_headers(const struct call *k, const struct nmc_prov_http_req *req)
{
    struct curl_slist *l = NULL;
    char tp[56], line[72];

    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++)
        l = curl_slist_append(l, req->headers[i]);
    nmc_trace_format_traceparent(&k->span->ctx, tp);
    snprintf(line, sizeof(line), "traceparent: %s", tp);
    l = curl_slist_append(l, line);
    const char *auth = req->userpwd != NULL ? auth_line(k->client, req->userpwd) : NULL;
    if (auth != NULL)
        l = curl_slist_append(l, auth);
    /* No "Expect: 100-continue" round trip on bodies over 1 KiB. */
    return curl_slist_append(l, "Expect:");
}

static int setup_method(struct call *k, const struct nmc_prov_http_req *req)
{
    const char *method = req->method ? req->method : (req->body ? "POST" : "GET");
    int rc = 0;

    if (req->body != NULL || strcmp(method, "POST") == 0) {
        k->body = nmc_xmalloc(req->body_len + 1);
        if (req->body_len > 0)
            memcpy(k->body, req->body, req->body_len);
        k->body[req->body_len] = '\0';
        SETOPT(k->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SETOPT(k->easy, CURLOPT_POSTFIELDS, k->body);
    }
    if (strcmp(method, "POST") != 0 && (strcmp(method, "GET") != 0 || req->body != NULL))
        SETOPT(k->easy, CURLOPT_CUSTOMREQUEST, method);
    return rc;
}

static int setup_easy(struct call *k, const struct nmc_prov_http_req *req)
{
    const struct nmc_prov_http_opts *o = &k->client->o;
    CURL *e = k->easy;
    int rc = 0;

    SETOPT(e, CURLOPT_URL, req->url);
    SETOPT(e, CURLOPT_PRIVATE, (char *)k);
    SETOPT(e, CURLOPT_NOSIGNAL, 1L);
    SETOPT(e, CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
    SETOPT(e, CURLOPT_TIMEOUT_MS, (long)(req->timeout_ms > 0 ? req->timeout_ms : o->timeout_ms));
    SETOPT(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_response_bytes);
    SETOPT(e, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(e, CURLOPT_WRITEDATA, k);
    SETOPT(e, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(e, CURLOPT_HEADERDATA, k);
    SETOPT(e, CURLOPT_ERRORBUFFER, k->errbuf);
    SETOPT(e, CURLOPT_USERAGENT, k->client->user_agent);
    k->headers = build_headers(k, req);
    SETOPT(e, CURLOPT_HTTPHEADER, k->headers);
    rc |= setup_method(k, req);
    return rc ? NMC_EINVAL : 0;
}

static struct call *call_new(struct nmc_prov_http *c, const struct nmc_prov_http_req *req,
                             struct nmc_actor *reply_to, uint64_t cookie)
{
    struct call *k = nmc_xcalloc(1, sizeof(*k));
    struct nmc_buf name = {0};

    k->client = c;
    k->id = ++c->next_id;
    k->provider = nmc_xstrdup(req->provider ? req->provider : "unknown");
    k->endpoint = nmc_xstrdup(req->endpoint ? req->endpoint : "unknown");
    nmc_buf_printf(&name, "provider.%s.%s", k->provider, k->endpoint);
    k->span_name = nmc_buf_steal(&name, NULL);
    k->resp.max = c->o.max_response_bytes;
    k->hdrs.max = MAX_HEADER_BYTES;
    k->max_attempts = req->max_attempts > 0 ? req->max_attempts : c->o.max_attempts;
    k->breaker = req->breaker;
    k->reply_to = reply_to;
    k->cookie = cookie;
    k->shape = req->shape;
    k->msg_type = req->msg_type;
    k->start_ns = nmc_clock_mono_ns();
    if (req->parent != NULL) {
        k->parent = *req->parent;
        k->parent.payload = NULL;
        k->parent.payload_free = NULL;
        k->parent._next = NULL;
        k->has_parent = 1;
    }
    return k;
}

static void call_link(struct call *k)
{
    struct nmc_prov_http *c = k->client;

    k->next = c->calls;
    if (c->calls)
        c->calls->prev = k;
    c->calls = k;
    c->ncalls++;
}

int nmc_prov_http_send(struct nmc_prov_http *c, const struct nmc_prov_http_req *req, struct nmc_actor *reply_to,
                       uint64_t cookie, uint64_t *id)
{
    struct call *k;

    if (c == NULL || req == NULL || req->url == NULL || reply_to == NULL || (req->shape && req->msg_type == 0))
        return NMC_EINVAL;
    if (c->closing)
        return NMC_ESHUTDOWN;
    k = call_new(c, req, reply_to, cookie);
    k->span = nmc_trace_span_start(k->span_name, k->has_parent ? &k->parent.trace : NULL);
    nmc_trace_span_attr(k->span, "http.method", req->method ? req->method : (req->body ? "POST" : "GET"));
    nmc_trace_span_attr(k->span, "provider", k->provider);
    if (k->has_parent && k->parent.correlation_id[0])
        nmc_trace_span_attr(k->span, "correlation_id", k->parent.correlation_id);
    k->easy = c->nidle > 0 ? c->idle[--c->nidle] : curl_easy_init();
    call_link(k);
    if (k->easy == NULL || setup_easy(k, req) != 0) {
        nmc_trace_span_end(k->span);
        k->span = NULL;
        call_free(k);
        return NMC_EINVAL;
    }
    if (id != NULL)
        *id = k->id;
    start_attempt(k); /* k may be gone: a call the breaker refuses is finished at once */
    /* Started now rather than from the 0 ms timer libcurl asks for, which
     * fires on the loop's next turn, after everything else this turn sends:
     * an SMS leaves in the same turn as the webhook's answer. */
    run_due(c);
    return 0;
}

static void cancel_call(struct call *k)
{
    if (k->in_multi) {
        curl_multi_remove_handle(k->client->multi, k->easy);
        k->in_multi = 0;
    } else {
        wait_remove(k);
    }
    finish_with(k, NMC_PROV_HTTP_CANCELED, NMC_ECANCELED, "canceled");
}

int nmc_prov_http_cancel(struct nmc_prov_http *c, uint64_t id)
{
    for (struct call *k = c ? c->calls : NULL; k != NULL; k = k->next) {
        if (k->id == id) {
            cancel_call(k);
            arm_retry_timer(c);
            return 0;
        }
    }
    return NMC_ENOTFOUND;
}

struct nmc_prov_breaker *nmc_prov_http_breaker(struct nmc_prov_http *c, const struct nmc_prov_breaker_opts *o)
{
    struct nmc_prov_breaker *b = NULL;

    if (c == NULL || o == NULL || o->provider == NULL)
        return NULL;
    for (size_t i = 0; i < c->nbreakers; i++)
        if (strcmp(nmc_prov_breaker_provider(c->breakers[i]), o->provider) == 0)
            return c->breakers[i];
    if (nmc_prov_breaker_create(o, &b) != 0)
        return NULL;
    c->breakers = nmc_xrealloc(c->breakers, (c->nbreakers + 1) * sizeof(*c->breakers));
    c->breakers[c->nbreakers++] = b;
    return b;
}

size_t nmc_prov_http_pending(const struct nmc_prov_http *c)
{
    return c ? c->ncalls : 0;
}

/* ---- the client ------------------------------------------------------------ */

static void opts_defaults(struct nmc_prov_http_opts *o, const struct nmc_prov_http_opts *in)
{
    if (in != NULL)
        *o = *in;
    else
        memset(o, 0, sizeof(*o));
    o->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    o->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 3000;
    o->max_attempts = o->max_attempts > 0 ? o->max_attempts : 3;
    o->backoff_base_ms = o->backoff_base_ms > 0 ? o->backoff_base_ms : 200;
    o->backoff_max_ms = o->backoff_max_ms > 0 ? o->backoff_max_ms : 5000;
    o->max_response_bytes = o->max_response_bytes > 0 ? o->max_response_bytes : 1024 * 1024;
}

#define IDLE_CONNECTIONS 64L /* connections kept open for reuse, at least */

static int curl_global(void)
{
    static int done;

    if (!done && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NMC_EPROVIDER;
    done = 1;
    return 0;
}

static int multi_setup(struct nmc_prov_http *c)
{
    int rc = 0;

    rc |= curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK;
    rc |= curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK;
    rc |= curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK;
    rc |= curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK;
    if (c->o.max_host_connections > 0)
        rc |= curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, c->o.max_host_connections) != CURLM_OK;
    /* libcurl's default cache holds 4 connections per transfer in progress,
     * so a lull closes the warm ones and the next burst connects again
     * (bench/first_sms.sh at 1,500/s: one new connection per 5 sends). */
    long idle = c->o.max_host_connections > IDLE_CONNECTIONS ? c->o.max_host_connections : IDLE_CONNECTIONS;
    rc |= curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, idle) != CURLM_OK;
    return rc ? NMC_EPROVIDER : 0;
}

int nmc_prov_http_create(uv_loop_t *loop, const struct nmc_prov_http_opts *opts, struct nmc_prov_http **out)
{
    struct nmc_prov_http *c;
    char ua[64];

    if (loop == NULL || out == NULL)
        return NMC_EINVAL;
    if (curl_global() != 0)
        return NMC_EPROVIDER;
    c = nmc_xcalloc(1, sizeof(*c));
    c->loop = loop;
    opts_defaults(&c->o, opts);
    snprintf(ua, sizeof(ua), "nevermisscall/%s", NMC_VERSION);
    c->user_agent = nmc_xstrdup(c->o.user_agent ? c->o.user_agent : ua);
    c->o.user_agent = c->user_agent;
    c->multi = curl_multi_init();
    if (c->multi == NULL || multi_setup(c) != 0) {
        curl_multi_cleanup(c->multi);
        free(c->user_agent);
        free(c);
        return NMC_EPROVIDER;
    }
    uv_timer_init(loop, &c->curl_timer);
    uv_timer_init(loop, &c->retry_timer);
    c->curl_timer.data = c;
    c->retry_timer.data = c;
    c->open_handles = 2;
    c->requests = nmc_metrics_counter("integration_http_requests_total",
                                      "Outbound provider HTTP attempts by provider, endpoint and status",
                                      "provider,endpoint,status");
    c->latency = nmc_metrics_histogram("integration_http_latency_ms", "Outbound provider HTTP attempt latency",
                                       "provider,endpoint", NULL, 0);
    *out = c;
    return 0;
}

void nmc_prov_http_destroy(struct nmc_prov_http *c)
{
    if (c == NULL || c->closing)
        return;
    c->closing = 1;
    while (c->calls != NULL)
        cancel_call(c->calls);
    for (size_t i = 0; i < c->nbreakers; i++)
        nmc_prov_breaker_destroy(c->breakers[i]);
    free(c->breakers);
    c->breakers = NULL;
    c->nbreakers = 0;
    while (c->nidle > 0)
        curl_easy_cleanup(c->idle[--c->nidle]);
    /* May call on_curl_socket(REMOVE) for cached connections. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks != NULL) {
        uv_poll_stop(&c->socks->poll);
        sock_close(c->socks);
    }
    uv_close((uv_handle_t *)&c->curl_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->retry_timer, on_handle_closed);
}
