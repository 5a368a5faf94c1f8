/* The HTTP server object: listener, routes, the slot table behind reply
 * handles, graceful shutdown, and the request accessors (http/server.h).
 * Connections themselves live in conn.c, answers in response.c. */
#include <stdlib.h>
#include <string.h>
#include "http/body.h"
#include "http/internal.h"
#include "runtime/log.h"

static const double duration_buckets[] = {0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

static int opts_valid(const struct nmc_http_server_opts *o)
{
    return o && o->port >= 0 && o->port <= 65535 && o->max_body_bytes >= 0 && o->header_timeout_ms > 0 &&
           o->idle_timeout_ms > 0 && o->max_connections > 0 &&
           (!o->bind_addr || strlen(o->bind_addr) < 64);
}

int nmc_http_server_create(uv_loop_t *loop, const struct nmc_http_server_opts *opts, struct nmc_http_server **out)
{
    struct nmc_http_server *s;

    *out = NULL;
    if (!loop || !opts_valid(opts))
        return NMC_EINVAL;
    s = nmc_xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->opts = *opts;
    nmc_strlcpy(s->bind_addr, opts->bind_addr ? opts->bind_addr : "0.0.0.0", sizeof(s->bind_addr));
    s->opts.bind_addr = s->bind_addr;
    if (nmc_http_router_create(&s->router) != 0) {
        free(s);
        return NMC_ENOMEM;
    }
    s->rbuf = nmc_xmalloc(NMC_HTTP_READ_BUF);
    s->free_slot = UINT32_MAX;
    s->m_duration = nmc_metrics_histogram("http_request_duration_ms", "HTTP request duration from first byte to answer",
                                          "route,method,status", duration_buckets,
                                          NMC_ARRAY_SIZE(duration_buckets));
    s->m_inflight = nmc_metrics_gauge("http_requests_in_flight", "HTTP requests dispatched and not yet answered", NULL);
    nmc_http_server_quiet_route(s, "/healthz", 1);
    nmc_http_server_quiet_route(s, "/metrics", 1);
    *out = s;
    return 0;
}

int nmc_http_server_route(struct nmc_http_server *s, const char *method, const char *pattern,
                          nmc_http_handler_cb handler, void *ud)
{
    if (!s)
        return NMC_EINVAL;
    return nmc_http_router_add(s->router, method, pattern, handler, ud);
}

size_t nmc_http_server_routes(struct nmc_http_server *s, const char ***out_methods, const char ***out_patterns)
{
    return nmc_http_router_list(s->router, out_methods, out_patterns);
}

void nmc_http_server_quiet_route(struct nmc_http_server *s, const char *pattern, int quiet)
{
    size_t i;

    for (i = 0; i < s->nquiet; i++) {
        if (strcmp(s->quiet[i], pattern) != 0)
            continue;
        if (!quiet) {
            free(s->quiet[i]);
            s->quiet[i] = s->quiet[--s->nquiet];
        }
        return;
    }
    if (quiet && s->nquiet < NMC_HTTP_MAX_QUIET)
        s->quiet[s->nquiet++] = nmc_xstrdup(pattern);
}

static void on_connection(uv_stream_t *st, int status)
{
    struct nmc_http_server *s = st->data;
    struct nmc_log_rec *r;

    if (status < 0) {
        r = nmc_log_begin(NMC_LOG_WARN, "infra", "http.accept_failed");
        nmc_log_error(r, status, NULL);
        nmc_log_end(r);
        return;
    }
    nmc_http_conn_accept(s);
}

static void on_handle_free(uv_handle_t *h)
{
    free(h);
}

static int resolve(const struct nmc_http_server *s, struct sockaddr_storage *ss)
{
    if (strchr(s->bind_addr, ':'))
        return uv_ip6_addr(s->bind_addr, s->opts.port, (struct sockaddr_in6 *)ss);
    return uv_ip4_addr(s->bind_addr, s->opts.port, (struct sockaddr_in *)ss);
}

/* The listener is allocated apart from the server so a failed listen can
 * close it and return without tying the server's life to its close. */
int nmc_http_server_listen(struct nmc_http_server *s)
{
    struct sockaddr_storage ss;
    int rc, len = sizeof(ss);

    if (!s || s->listener || s->shutting_down)
        return NMC_EINVAL;
    if ((rc = resolve(s, &ss)) != 0)
        return rc;
    s->listener = nmc_xcalloc(1, sizeof(*s->listener));
    uv_tcp_init(s->loop, s->listener);
    s->listener->data = s;
    if ((rc = uv_tcp_bind(s->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)s->listener, 511, on_connection)) != 0 ||
        (rc = uv_tcp_getsockname(s->listener, (struct sockaddr *)&ss, &len)) != 0)
        goto out;
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
out:
    if (rc) {
        uv_close((uv_handle_t *)s->listener, on_handle_free);
        s->listener = NULL;
    }
    return rc;
}

int nmc_http_server_port(const struct nmc_http_server *s)
{
    return s->port;
}

size_t nmc_http_server_connections(const struct nmc_http_server *s)
{
    return s->nconns;
}

/* ---- slots: what a reply handle points at ---- */

uint32_t nmc_http_server_slot_take(struct nmc_http_server *s, struct nmc_http_conn *c)
{
    uint32_t i = s->free_slot;

    if (i == UINT32_MAX) {
        s->slots = nmc_xrealloc(s->slots, (s->nslots + 1) * sizeof(*s->slots));
        i = s->nslots++;
        s->slots[i].gen = 1;
    } else {
        s->free_slot = s->slots[i].next_free;
    }
    s->slots[i].conn = c;
    return i;
}

/* ---- shutdown ---- */

static void on_grace_closed(uv_handle_t *h)
{
    struct nmc_http_server *s = h->data;

    free(h);
    s->grace = NULL;
    if (s->done_cb)
        s->done_cb(s->done_ud);
}

static void check_drained(struct nmc_http_server *s)
{
    if (!s->shutting_down || s->done_called || s->nconns > 0 || s->listener)
        return;
    s->done_called = 1;
    uv_close((uv_handle_t *)s->grace, on_grace_closed);
}

void nmc_http_server_conn_closed(struct nmc_http_server *s, struct nmc_http_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    s->slots[c->slot].next_free = s->free_slot;
    s->free_slot = c->slot;
    check_drained(s);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct nmc_http_server *s = h->data;

    free(h);
    s->listener = NULL;
    check_drained(s);
}

static void on_grace(uv_timer_t *t)
{
    struct nmc_http_server *s = t->data;
    struct nmc_http_conn *c;
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_WARN, "infra", "http.shutdown_forced");

    nmc_log_int(r, "connections", (int64_t)s->nconns);
    nmc_log_end(r);
    for (c = s->conns; c; c = c->next)
        nmc_http_conn_close(c);
}

/* Closing a connection unlinks it only in its close callback, so walking
 * the list while draining is safe. */
void nmc_http_server_shutdown(struct nmc_http_server *s, int grace_ms, void (*done_cb)(void *ud), void *ud)
{
    struct nmc_http_conn *c;

    if (s->shutting_down)
        return;
    s->shutting_down = 1;
    s->done_cb = done_cb;
    s->done_ud = ud;
    s->grace = nmc_xcalloc(1, sizeof(*s->grace));
    uv_timer_init(s->loop, s->grace);
    s->grace->data = s;
    uv_timer_start(s->grace, on_grace, grace_ms > 0 ? (uint64_t)grace_ms : 0, 0);
    if (s->listener)
        uv_close((uv_handle_t *)s->listener, on_listener_closed);
    for (c = s->conns; c; c = c->next)
        nmc_http_conn_drain(c);
    check_drained(s);
}

void nmc_http_server_free(struct nmc_http_server *s)
{
    size_t i;

    if (!s)
        return;
    if (s->listener || s->grace || s->nconns) {
        /* Still has live handles: leaking beats a use-after-free. */
        struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_ERROR, "infra", "http.free_while_running");
        nmc_log_end(r);
        return;
    }
    nmc_http_router_free(s->router);
    for (i = 0; i < s->nquiet; i++)
        free(s->quiet[i]);
    free(s->slots);
    free(s->rbuf);
    free(s);
}

/* ---- reply handles ---- */

struct nmc_http_handle nmc_http_req_handle(struct nmc_http_req *req)
{
    struct nmc_http_ireq *r = nmc_container_of(req, struct nmc_http_ireq, pub);
    struct nmc_http_conn *c = r->conn;
    struct nmc_http_handle h = {c->server, c->slot, c->server->slots[c->slot].gen, r->seq};

    if (r->state == REQ_HANDLING)
        r->state = REQ_DEFERRED;
    return h;
}

/* The slot's generation changes when its connection closes, so a stale
 * handle never reaches freed memory; the sequence number picks the request
 * among the connection's pipelined ones. */
static struct nmc_http_ireq *handle_find(struct nmc_http_handle h)
{
    struct nmc_http_slot *slot;
    struct nmc_http_ireq *r;

    if (!h.server || h.slot >= h.server->nslots)
        return NULL;
    slot = &h.server->slots[h.slot];
    if (!slot->conn || slot->gen != h.gen || slot->conn->closing)
        return NULL;
    for (r = slot->conn->q_head; r; r = r->next)
        if (r->seq == h.seq)
            return r->state == REQ_HANDLING || r->state == REQ_DEFERRED ? r : NULL;
    return NULL;
}

struct nmc_http_req *nmc_http_handle_req(struct nmc_http_handle h)
{
    struct nmc_http_ireq *r = handle_find(h);

    return r ? &r->pub : NULL;
}

int nmc_http_reply(struct nmc_http_handle h, int status, const char *content_type, const char *body, size_t len,
                   const char *const *headers)
{
    struct nmc_http_ireq *r = handle_find(h);

    if (!r)
        return NMC_EGONE;
    nmc_http_ireq_answer(r, status, content_type, body, len, headers);
    return 0;
}

int nmc_http_reply_json(struct nmc_http_handle h, int status, const char *json)
{
    return nmc_http_reply(h, status, "application/json", json, json ? strlen(json) : 0, NULL);
}

int nmc_http_reply_error(struct nmc_http_handle h, int status, const char *code, const char *message)
{
    struct nmc_http_ireq *r = handle_find(h);

    if (!r)
        return NMC_EGONE;
    nmc_http_ireq_error(r, status, code, message, NULL);
    return 0;
}

/* ---- request accessors ---- */

const char *nmc_http_req_header(const struct nmc_http_req *req, const char *name)
{
    size_t i;

    for (i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

const char *nmc_http_req_param(const struct nmc_http_req *req, const char *name)
{
    size_t i;

    for (i = 0; i < req->nparams; i++)
        if (strcmp(req->param_names[i], name) == 0)
            return req->param_values[i];
    return NULL;
}

/* Pairs with a malformed escape are skipped, not fatal: one bad parameter
 * must not hide the others. */
char *nmc_http_req_query(const struct nmc_http_req *req, const char *name)
{
    const char *p = req->query ? req->query : "";
    size_t qlen = strcspn(p, "#"), pos = 0;
    char *key = nmc_xmalloc(qlen + 1), *val = NULL;

    while (pos < qlen && !val) {
        const char *pair = p + pos;
        size_t plen = strcspn(pair, "&#"), nlen = strcspn(pair, "=&#");
        if (nmc_url_decode(pair, nlen, 1, key, NULL) == 0 && strcmp(key, name) == 0) {
            size_t vlen = nlen < plen ? plen - nlen - 1 : 0;
            val = nmc_xmalloc(vlen + 1);
            if (nmc_url_decode(pair + plen - vlen, vlen, 1, val, NULL) != 0) {
                free(val);
                val = NULL;
            }
        }
        pos += plen + 1;
    }
    free(key);
    return val;
}
