/* One HTTP connection: reading, parsing with llhttp, the request queue that
 * keeps pipelined answers in order, timers, writes and the close.
 *
 * llhttp is paused at headers-complete and at message-complete, so every
 * decision (limits, routing, dispatch) runs outside llhttp's callbacks with
 * the exact byte position in hand. The callbacks only copy bytes into the
 * request being parsed. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "http/internal.h"
#include "runtime/clock.h"
#include "runtime/log.h"

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);
static void on_timer(uv_timer_t *t);
static void feed(struct nmc_http_conn *c, const char *data, size_t len);
static void conn_check_done(struct nmc_http_conn *c);

/* ---- request objects ---- */

static int store_grow(struct store *st, size_t n)
{
    size_t cap;

    if (st->len + n + 1 <= st->cap)
        return 0;
    cap = st->cap ? st->cap : 1024;
    while (cap < st->len + n + 1)
        cap *= 2;
    st->p = nmc_xrealloc(st->p, cap);
    st->cap = cap;
    return 0;
}

static void store_put(struct store *st, const char *d, size_t n)
{
    (void)store_grow(st, n);
    memcpy(st->p + st->len, d, n);
    st->len += n;
}

static void req_free(struct nmc_http_ireq *r)
{
    free(r->text.p);
    free(r->hoffs);
    free(r->hdrs);
    nmc_buf_free(&r->body);
    nmc_buf_free(&r->out);
    free(r);
}

/* Takes a recycled request (or a new one), appends it to the queue. */
static struct nmc_http_ireq *req_new(struct nmc_http_conn *c)
{
    struct nmc_http_ireq *r = c->free_reqs;

    if (r) {
        c->free_reqs = r->next;
        c->nfree--;
    } else {
        r = nmc_xcalloc(1, sizeof(*r));
    }
    r->conn = c;
    r->next = NULL;
    r->seq = c->next_seq++;
    r->state = REQ_PARSING;
    r->keep_alive = 0;
    r->http10 = 0;
    r->head = 0;
    r->in_flight = 0;
    r->quiet = 0;
    r->route_result = NMC_HTTP_ROUTE_NOT_FOUND;
    r->text.len = 0;
    r->mark = 0;
    r->nhdr = 0;
    r->span = NULL;
    nmc_buf_reset(&r->body);
    nmc_buf_reset(&r->out);
    r->body.max = (size_t)c->server->opts.max_body_bytes;
    memset(&r->pub, 0, sizeof(r->pub));
    if (c->q_tail)
        c->q_tail->next = r;
    else
        c->q_head = r;
    c->q_tail = r;
    c->nreqs++;
    return r;
}

/* Keeps at most two spare requests, none with an oversized buffer, so an
 * idle connection does not pin a large body. Only called where no handler
 * is on the stack. */
static void req_trim(struct nmc_http_conn *c)
{
    struct nmc_http_ireq **pp = &c->free_reqs, *r;
    size_t kept = 0;

    while ((r = *pp) != NULL) {
        if (kept < 2 && r->body.cap <= NMC_HTTP_KEEP_BYTES && r->out.cap <= NMC_HTTP_KEEP_BYTES) {
            kept++;
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        c->nfree--;
        req_free(r);
    }
}

static void req_recycle(struct nmc_http_conn *c, struct nmc_http_ireq *r)
{
    c->nreqs--;
    r->next = c->free_reqs;
    c->free_reqs = r;
    c->nfree++;
    req_trim(c);
}

static struct nmc_http_ireq *queue_pop(struct nmc_http_conn *c)
{
    struct nmc_http_ireq *r = c->q_head;

    c->q_head = r->next;
    if (!c->q_head)
        c->q_tail = NULL;
    r->next = NULL;
    return r;
}

/* ---- timers ---- */

static void timer_set(struct nmc_http_conn *c, enum timer_mode mode, uint64_t ms)
{
    c->tmode = mode;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* One timer per connection, armed for whatever the connection waits on:
 * the header deadline (fixed from the first byte, so dribbling does not
 * extend it), body progress, or keep-alive idleness. Nothing runs while a
 * handler owes an answer. */
static void conn_arm_timer(struct nmc_http_conn *c)
{
    struct nmc_http_server *s = c->server;
    uint64_t now, deadline;

    if (c->closing || c->phase == PH_LINGER)
        return;
    if (c->phase == PH_HEAD) {
        if (c->tmode != TM_HEAD) {
            now = uv_now(s->loop);
            deadline = c->head_start_ms + (uint64_t)s->opts.header_timeout_ms;
            timer_set(c, TM_HEAD, deadline > now ? deadline - now : 0);
        }
    } else if (c->phase == PH_BODY) {
        timer_set(c, TM_BODY, (uint64_t)s->opts.idle_timeout_ms);
    } else if (c->q_head || (c->phase == PH_STOP && c->nreqs == 0)) {
        if (c->tmode != TM_NONE) {
            uv_timer_stop(&c->timer);
            c->tmode = TM_NONE;
        }
    } else if (c->nreqs > 0) {
        /* only writes pending: a client that stops reading is cut off */
        if (c->tmode != TM_WRITE)
            timer_set(c, TM_WRITE, (uint64_t)s->opts.idle_timeout_ms);
    } else if (c->tmode != TM_IDLE) {
        timer_set(c, TM_IDLE, (uint64_t)s->opts.idle_timeout_ms);
    }
}

static void on_timer(uv_timer_t *t)
{
    struct nmc_http_conn *c = nmc_container_of(t, struct nmc_http_conn, timer);
    static const char *const why[] = {"none", "idle", "header_timeout", "body_timeout", "write_timeout",
                                      "linger_done"};
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_DEBUG, "infra", "http.conn_timeout");

    nmc_log_str(r, "reason", why[c->tmode]);
    nmc_log_str(r, "remote_addr", c->remote_addr);
    nmc_log_end(r);
    nmc_http_conn_close(c);
}

/* ---- closing ---- */

static void on_close(uv_handle_t *h)
{
    struct nmc_http_conn *c = h->data;
    struct nmc_http_ireq *r;

    if (--c->handles_open > 0)
        return;
    while ((r = c->q_head) != NULL) {
        c->q_head = r->next;
        req_free(r);
    }
    while ((r = c->free_reqs) != NULL) {
        c->free_reqs = r->next;
        req_free(r);
    }
    nmc_buf_free(&c->stash);
    nmc_http_server_conn_closed(c->server, c);
    free(c);
}

/* Closing twice is a no-op. Requests still owed an answer are abandoned
 * here (their handles now fail with NMC_EGONE); memory goes in on_close,
 * after libuv has cancelled pending writes. */
void nmc_http_conn_close(struct nmc_http_conn *c)
{
    struct nmc_http_ireq *r;

    if (c->closing)
        return;
    c->closing = 1;
    c->server->slots[c->slot].conn = NULL;
    c->server->slots[c->slot].gen++;
    for (r = c->q_head; r; r = r->next)
        nmc_http_ireq_abandon(r);
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->handles_open = 2;
    uv_close((uv_handle_t *)&c->tcp, on_close);
    uv_close((uv_handle_t *)&c->timer, on_close);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct nmc_http_conn *c = nmc_container_of(req, struct nmc_http_conn, shut);

    if (c->closing)
        return;
    if (status < 0 || c->eof || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        nmc_http_conn_close(c);
        return;
    }
    c->phase = PH_LINGER;
    timer_set(c, TM_LINGER, NMC_HTTP_LINGER_MS);
}

/* After the last answer: send FIN, then read and discard what the client
 * still sends for a moment, so its unread request bytes do not turn our
 * close into a reset that destroys the answer before it is read. */
static void conn_finish(struct nmc_http_conn *c)
{
    if (c->finishing)
        return;
    c->finishing = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->eof || uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        nmc_http_conn_close(c);
}

static void conn_check_done(struct nmc_http_conn *c)
{
    if (!c->closing && c->close_when_done && c->nreqs == 0 && c->phase != PH_LINGER)
        conn_finish(c);
}

/* Stops reading requests: what is queued is still answered. */
static void conn_stop(struct nmc_http_conn *c)
{
    c->phase = PH_STOP;
    c->close_when_done = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
}

/* Answers the request being parsed (or a new one) with an error and stops
 * the connection: the answer goes out after the earlier ones, then close. */
static void conn_fail(struct nmc_http_conn *c, int status, const char *code, const char *message)
{
    struct nmc_http_ireq *r = c->cur ? c->cur : req_new(c);
    struct nmc_log_rec *lr = nmc_log_begin(NMC_LOG_DEBUG, "infra", "http.bad_request");

    nmc_log_int(lr, "status", status);
    nmc_log_str(lr, "reason", message);
    nmc_log_str(lr, "remote_addr", c->remote_addr);
    nmc_log_end(lr);
    c->cur = NULL;
    conn_stop(c);
    r->keep_alive = 0;
    if (!r->pub.correlation_id[0])
        nmc_id_uuid4(r->pub.correlation_id);
    if (!r->pub.received_ns)
        r->pub.received_ns = c->read_ns;
    nmc_http_ireq_error(r, status, code, message, NULL);
}

/* ---- writing ---- */

/* A request whose answer is out, kept for reuse but never freed here: a
 * handler up the stack may still compare its state. */
static void req_park(struct nmc_http_conn *c, struct nmc_http_ireq *r)
{
    c->nreqs--;
    r->next = c->free_reqs;
    c->free_reqs = r;
    c->nfree++;
}

static void on_write(uv_write_t *w, int status)
{
    struct nmc_http_ireq *r = nmc_container_of(w, struct nmc_http_ireq, wreq);
    struct nmc_http_conn *c = r->conn;
    int last = !r->keep_alive;

    req_recycle(c, r);
    if (c->closing)
        return;
    if (status < 0) {
        nmc_http_conn_close(c);
        return;
    }
    if (last)
        c->close_when_done = 1;
    if (c->read_paused && c->nreqs < NMC_HTTP_MAX_PIPELINE && c->phase != PH_STOP) {
        c->read_paused = 0;
        feed(c, c->stash.data, c->stash.len);
        if (!c->read_paused && !c->closing && c->phase != PH_STOP)
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
    if (c->closing)
        return;
    conn_check_done(c);
    if (c->tmode == TM_WRITE)
        c->tmode = TM_NONE; /* progress: restart the write timer */
    conn_arm_timer(c);
}

/* Tries the write at once: when the kernel takes it all (the usual case)
 * there is no write request, no callback and no epoll change. Returns 1
 * when done, 0 when b holds what is left for uv_write, <0 on error. While
 * reading is paused the answer goes through uv_write, whose callback is
 * where parsing resumes (never from inside a handler's answer). */
static int write_now(struct nmc_http_conn *c, uv_buf_t *b)
{
    int n;

    if (c->read_paused)
        return 0;
    n = uv_try_write((uv_stream_t *)&c->tcp, b, 1);
    if (n == UV_EAGAIN)
        return 0;
    if (n < 0)
        return n;
    if ((size_t)n == b->len)
        return 1;
    b->base += n;
    b->len -= (size_t)n;
    return 0;
}

void nmc_http_conn_flush(struct nmc_http_conn *c)
{
    struct nmc_http_ireq *r;
    int rc, wrote = 0;
    uv_buf_t b;

    while (!c->closing && c->q_head && c->q_head->state == REQ_READY) {
        r = queue_pop(c);
        r->state = REQ_WRITING;
        b = uv_buf_init(r->out.data, (unsigned)r->out.len);
        rc = write_now(c, &b);
        if (rc == 0)
            rc = uv_write(&r->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) == 0 ? 2 : -1;
        if (rc < 0) {
            req_park(c, r);
            nmc_http_conn_close(c);
            return;
        }
        if (rc == 1) {
            if (!r->keep_alive)
                c->close_when_done = 1;
            req_park(c, r);
            wrote = 1;
        }
    }
    if (!wrote || c->closing)
        return;
    conn_check_done(c);
    if (c->tmode == TM_IDLE || c->tmode == TM_WRITE)
        c->tmode = TM_NONE; /* activity: the idle clock starts again */
    conn_arm_timer(c);
}

/* ---- llhttp callbacks: copy bytes, nothing else ---- */

static int fail_cb(struct nmc_http_conn *c, int status, const char *code, const char *msg)
{
    c->err_status = status;
    c->err_code = code;
    c->err_msg = msg;
    return HPE_USER;
}

static int text_add(struct nmc_http_conn *c, const char *at, size_t n, int lower)
{
    struct store *st = &c->cur->text;
    size_t i;

    if (st->len + n > NMC_HTTP_MAX_HEADER_BYTES)
        return fail_cb(c, 431, "header_too_large", "request header block exceeds 16 KiB");
    (void)store_grow(st, n);
    if (!lower) {
        memcpy(st->p + st->len, at, n);
    } else {
        for (i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)at[i];
            st->p[st->len + i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
    }
    st->len += n;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct nmc_http_conn *c = p->data;

    c->cur = req_new(c);
    c->cur->pub.received_ns = c->read_ns;
    c->phase = PH_HEAD;
    c->head_start_ms = uv_now(c->server->loop);
    c->head_prev = 0;
    c->prev_lf = 0;
    c->trailer_bytes = 0;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    return text_add(p->data, at, n, 0);
}

static int on_url_complete(llhttp_t *p)
{
    struct nmc_http_conn *c = p->data;

    store_put(&c->cur->text, "", 1);
    c->cur->mark = c->cur->text.len;
    return 0;
}

/* Trailers of a chunked body are counted against the header limit but
 * not kept: no handler reads them. */
static int trailer_add(struct nmc_http_conn *c, size_t n)
{
    c->trailer_bytes += n;
    if (c->trailer_bytes > NMC_HTTP_MAX_HEADER_BYTES)
        return fail_cb(c, 431, "header_too_large", "trailer block exceeds 16 KiB");
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    struct nmc_http_conn *c = p->data;

    return c->phase == PH_HEAD ? text_add(c, at, n, 1) : trailer_add(c, n);
}

static int on_header_field_complete(llhttp_t *p)
{
    struct nmc_http_conn *c = p->data;
    struct nmc_http_ireq *r = c->cur;

    if (c->phase != PH_HEAD)
        return 0;
    if (r->nhdr == NMC_HTTP_MAX_HEADERS)
        return fail_cb(c, 431, "header_too_large", "more than 100 request headers");
    if (r->nhdr == r->hcap) {
        r->hcap = r->hcap ? r->hcap * 2 : 16;
        r->hoffs = nmc_xrealloc(r->hoffs, r->hcap * sizeof(*r->hoffs));
        r->hdrs = nmc_xrealloc(r->hdrs, r->hcap * sizeof(*r->hdrs));
    }
    r->hoffs[r->nhdr].name = (uint32_t)r->mark;
    store_put(&r->text, "", 1);
    r->mark = r->text.len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    struct nmc_http_conn *c = p->data;

    return c->phase == PH_HEAD ? text_add(c, at, n, 0) : trailer_add(c, n);
}

static int on_header_value_complete(llhttp_t *p)
{
    struct nmc_http_conn *c = p->data;
    struct nmc_http_ireq *r = c->cur;

    if (c->phase != PH_HEAD)
        return 0;
    while (r->text.len > r->mark && (r->text.p[r->text.len - 1] == ' ' || r->text.p[r->text.len - 1] == '\t'))
        r->text.len--;
    r->hoffs[r->nhdr].value = (uint32_t)r->mark;
    store_put(&r->text, "", 1);
    r->mark = r->text.len;
    r->nhdr++;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    ((struct nmc_http_conn *)p->data)->event = EV_HEADERS;
    return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct nmc_http_conn *c = p->data;

    if (nmc_buf_append(&c->cur->body, at, n) != 0)
        return fail_cb(c, 413, "payload_too_large", "request body exceeds the limit");
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    ((struct nmc_http_conn *)p->data)->event = EV_MESSAGE;
    return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_url_complete = on_url_complete,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
};

/* ---- between llhttp pauses: limits, request set-up, dispatch ---- */

/* Folded header lines (a line of the header block that starts with SP or
 * HT) pass llhttp 8.1 even in strict mode; they are refused from the raw
 * bytes. prev_lf carries the last byte across reads. */
static int scan_fold(struct nmc_http_conn *c, const char *from, const char *to)
{
    const char *nl;

    while (from < to) {
        if (c->prev_lf && (*from == ' ' || *from == '\t'))
            return 1;
        nl = memchr(from, '\n', (size_t)(to - from));
        c->prev_lf = nl != NULL;
        if (!nl)
            return 0;
        from = nl + 1;
    }
    return 0;
}

/* A read ended inside the header block: count it and look for folding, so
 * an endless header block is cut at 16 KiB even if no byte of it is kept. */
static void head_progress(struct nmc_http_conn *c, const char *end)
{
    if (scan_fold(c, c->head_mark, end)) {
        conn_fail(c, 400, "bad_request", "obsolete line folding in header");
        return;
    }
    c->head_prev += (size_t)(end - c->head_mark);
    if (c->head_prev > NMC_HTTP_MAX_HEADER_BYTES)
        conn_fail(c, 431, "header_too_large", "request header block exceeds 16 KiB");
}

static const char *req_header(const struct nmc_http_ireq *r, const char *lname)
{
    size_t i;

    for (i = 0; i < r->nhdr; i++)
        if (strcmp(r->hdrs[i].name, lname) == 0)
            return r->hdrs[i].value;
    return NULL;
}

/* Anything but exactly one "chunked" is refused: llhttp already refuses
 * Content-Length with Transfer-Encoding and a final coding other than
 * chunked; we decode no other coding either. */
static int te_ok(const struct nmc_http_ireq *r)
{
    size_t i, n = 0;

    for (i = 0; i < r->nhdr; i++) {
        if (strcmp(r->hdrs[i].name, "transfer-encoding") != 0)
            continue;
        if (++n > 1 || strcasecmp(r->hdrs[i].value, "chunked") != 0)
            return 0;
    }
    return 1;
}

static int corr_id_ok(const char *v)
{
    size_t n = 0;

    for (; v[n]; n++) {
        unsigned char ch = (unsigned char)v[n];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-'))
            return 0;
    }
    return n >= 1 && n <= 36;
}

/* Splits the target and decodes the path into the text store. Pointers
 * into the store are made only after this, the last growth. */
static int req_paths(struct nmc_http_ireq *r, size_t *nsegs)
{
    size_t tlen, plen, qoff, segoff, pathoff;
    const char *q;
    int rc;

    if (!r->text.p) /* no target at all: llhttp refuses that, but be sure */
        store_put(&r->text, "", 1);
    tlen = strlen(r->text.p);
    plen = strcspn(r->text.p, "?#");
    qoff = tlen;
    q = memchr(r->text.p, '?', tlen);
    if (q)
        qoff = (size_t)(q - r->text.p) + 1;
    segoff = r->text.len;
    pathoff = segoff + plen + 1;
    (void)store_grow(&r->text, 2 * (plen + 1));
    r->text.len += 2 * (plen + 1);
    r->pub.target = r->text.p;
    r->pub.query = r->text.p + qoff;
    r->pub.path = r->text.p + pathoff;
    rc = nmc_http_router_split(r->text.p, plen, r->text.p + segoff, r->text.p + pathoff, r->segs, nsegs);
    if (rc == NMC_ETOOBIG) {
        *nsegs = 0;
        return 1; /* deeper than any route: 404 */
    }
    return rc;
}

static void req_route(struct nmc_http_server *s, struct nmc_http_ireq *r, size_t nsegs, int routable)
{
    size_t i;

    r->route_result = routable ? nmc_http_router_match(s->router, r->pub.method, r->segs, nsegs, &r->match)
                               : NMC_HTTP_ROUTE_NOT_FOUND;
    if (r->route_result != NMC_HTTP_ROUTE_FOUND)
        return;
    r->pub.route = r->match.pattern;
    r->pub.nparams = r->match.nparams;
    for (i = 0; i < r->match.nparams; i++) {
        r->pub.param_names[i] = r->match.param_names[i];
        r->pub.param_values[i] = r->match.param_values[i];
    }
    for (i = 0; i < s->nquiet; i++)
        if (strcmp(s->quiet[i], r->match.pattern) == 0)
            r->quiet = 1;
}

static void req_trace(struct nmc_http_ireq *r)
{
    const char *v = req_header(r, "x-correlation-id");
    struct nmc_trace_ctx parent;
    int have_parent = 0;

    if (v && corr_id_ok(v))
        nmc_strlcpy(r->pub.correlation_id, v, sizeof(r->pub.correlation_id));
    else
        nmc_id_uuid4(r->pub.correlation_id);
    v = req_header(r, "traceparent");
    if (v && nmc_trace_parse_traceparent(v, strlen(v), &parent) == 0)
        have_parent = 1;
    r->span = nmc_trace_span_start("http.request", have_parent ? &parent : NULL);
    r->pub.trace = r->span->ctx;
}

static void on_continue_written(uv_write_t *w, int status)
{
    free(w);
}

/* curl and others wait for "100 Continue" before a large body. It may go
 * out only when no earlier answer is owed, or it would jump the queue. */
static void maybe_continue(struct nmc_http_conn *c, struct nmc_http_ireq *r)
{
    static char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    const char *v = req_header(r, "expect");
    uv_write_t *w;
    uv_buf_t b;

    if (!v || strcasecmp(v, "100-continue") != 0 || c->q_head != r || r->http10)
        return;
    w = nmc_xmalloc(sizeof(*w));
    b = uv_buf_init(msg, sizeof(msg) - 1);
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_continue_written) != 0)
        free(w);
}

/* Everything the handler will see, from the finished header block.
 * Returns 0 or an HTTP status to fail with (message in *why). */
static int req_setup(struct nmc_http_conn *c, struct nmc_http_ireq *r, const char **why)
{
    struct nmc_http_server *s = c->server;
    size_t i, nsegs = 0;
    int rc = req_paths(r, &nsegs);

    for (i = 0; i < r->nhdr; i++) {
        r->hdrs[i].name = r->text.p + r->hoffs[i].name;
        r->hdrs[i].value = r->text.p + r->hoffs[i].value;
    }
    r->pub.headers = r->hdrs;
    r->pub.nheaders = r->nhdr;
    r->pub.method = llhttp_method_name((llhttp_method_t)c->parser.method);
    r->http10 = c->parser.http_major == 1 && c->parser.http_minor == 0;
    r->head = c->parser.method == HTTP_HEAD;
    r->keep_alive = llhttp_should_keep_alive(&c->parser) && !s->shutting_down;
    memcpy(r->pub.remote_addr, c->remote_addr, sizeof(r->pub.remote_addr));
    req_trace(r);
    if (rc < 0) {
        *why = "malformed request path";
        return 400;
    }
    req_route(s, r, nsegs, rc == 0);
    if (!te_ok(r)) {
        *why = "unsupported Transfer-Encoding";
        return 400;
    }
    if ((c->parser.flags & F_CONTENT_LENGTH) && c->parser.content_length > (uint64_t)s->opts.max_body_bytes) {
        *why = "request body exceeds the limit";
        return 413;
    }
    maybe_continue(c, r);
    return 0;
}

static void headers_done(struct nmc_http_conn *c, const char *pos)
{
    const char *why = NULL;
    int status;

    if (scan_fold(c, c->head_mark, pos)) {
        conn_fail(c, 400, "bad_request", "obsolete line folding in header");
        return;
    }
    if (c->head_prev + (size_t)(pos - c->head_mark) > NMC_HTTP_MAX_HEADER_BYTES) {
        conn_fail(c, 431, "header_too_large", "request header block exceeds 16 KiB");
        return;
    }
    c->phase = PH_BODY;
    status = req_setup(c, c->cur, &why);
    if (status)
        conn_fail(c, status, status == 413 ? "payload_too_large" : "bad_request", why);
}

static void dispatch(struct nmc_http_server *s, struct nmc_http_ireq *r)
{
    char allow[64];
    const char *hdrs[2] = {allow, NULL};

    r->pub.body = r->body.data ? r->body.data : "";
    r->pub.body_len = r->body.len;
    if (r->route_result == NMC_HTTP_ROUTE_NOT_FOUND) {
        nmc_http_ireq_error(r, 404, "not_found", "no route for this path", NULL);
        return;
    }
    if (r->route_result == NMC_HTTP_ROUTE_BAD_METHOD) {
        snprintf(allow, sizeof(allow), "Allow: %s", r->match.allow);
        nmc_http_ireq_error(r, 405, "method_not_allowed", "method not allowed for this path", hdrs);
        return;
    }
    r->state = REQ_HANDLING;
    r->in_flight = 1;
    nmc_metrics_add(s->m_inflight, NULL, 1);
    r->match.handler(&r->pub, r->match.ud);
    if (r->state != REQ_HANDLING)
        return;
    if (r->conn->closing) /* abandoned while the handler ran */
        r->state = REQ_READY;
    else
        nmc_http_ireq_error(r, 500, "internal", "handler returned without answering", NULL);
}

static void message_done(struct nmc_http_conn *c)
{
    struct nmc_http_ireq *r = c->cur;

    c->cur = NULL;
    c->phase = PH_IDLE;
    if (!r->keep_alive || llhttp_get_upgrade(&c->parser) || c->server->shutting_down) {
        r->keep_alive = 0;
        conn_stop(c);
    }
    dispatch(c->server, r);
}

static void parse_error(struct nmc_http_conn *c, llhttp_errno_t err)
{
    const char *reason = llhttp_get_error_reason(&c->parser);

    if (c->err_status) /* ours: HPE_USER from a data callback, HPE_CB_* from the others */
        conn_fail(c, c->err_status, c->err_code, c->err_msg);
    else
        conn_fail(c, 400, "bad_request", reason ? reason : "malformed request");
}

/* Parses data; returns the bytes consumed, fewer than len only when the
 * pipeline filled up (c->read_paused). */
static size_t parse(struct nmc_http_conn *c, const char *data, size_t len)
{
    const char *p = data, *end = data + len;
    llhttp_errno_t err;

    for (;;) {
        if (c->closing || c->phase == PH_STOP || c->phase == PH_LINGER)
            return len;
        if (c->phase != PH_BODY)
            c->head_mark = p;
        err = llhttp_execute(&c->parser, p, (size_t)(end - p));
        if (err == HPE_OK) {
            if (c->phase == PH_HEAD)
                head_progress(c, end);
            return len;
        }
        if (err != HPE_PAUSED) {
            parse_error(c, err);
            return len;
        }
        p = llhttp_get_error_pos(&c->parser);
        llhttp_resume(&c->parser);
        if (c->event == EV_HEADERS) {
            headers_done(c, p);
            continue;
        }
        message_done(c);
        if (!c->closing && c->phase != PH_STOP && c->nreqs >= NMC_HTTP_MAX_PIPELINE) {
            c->read_paused = 1;
            return (size_t)(p - data);
        }
    }
}

static void feed(struct nmc_http_conn *c, const char *data, size_t len)
{
    size_t used = parse(c, data, len);

    if (data == c->stash.data) {
        memmove(c->stash.data, c->stash.data + used, len - used);
        c->stash.len = len - used;
    } else if (c->read_paused && !c->closing) {
        (void)nmc_buf_append(&c->stash, data + used, len - used);
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
}

/* ---- reading ---- */

/* One buffer serves every connection: libuv calls on_read right after
 * on_alloc, and whatever must outlive the call is copied. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct nmc_http_conn *c = h->data;

    *buf = uv_buf_init(c->server->rbuf, NMC_HTTP_READ_BUF);
}

/* At EOF with answers still owed the client is treated as gone (as nginx
 * does): the handles turn stale, so actors can skip the work. Answers
 * already being written still go out before the close. */
static void on_read_end(struct nmc_http_conn *c, ssize_t n)
{
    if (n != UV_EOF || c->phase == PH_LINGER || c->q_head) {
        nmc_http_conn_close(c);
        return;
    }
    c->eof = 1;
    conn_stop(c);
    conn_check_done(c);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct nmc_http_conn *c = st->data;

    if (n == 0)
        return;
    if (n < 0) {
        on_read_end(c, n);
        return;
    }
    if (c->phase == PH_LINGER) {
        c->linger_bytes += (size_t)n;
        if (c->linger_bytes > NMC_HTTP_LINGER_BYTES)
            nmc_http_conn_close(c);
        return;
    }
    c->read_ns = nmc_clock_mono_ns();
    feed(c, buf->base, (size_t)n);
    if (c->closing)
        return;
    if (c->nfree > 2)
        req_trim(c);
    conn_arm_timer(c);
}

/* ---- accepting, draining ---- */

static void on_reject_closed(uv_handle_t *h)
{
    free(h->data);
}

static void peer_name(struct nmc_http_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    c->remote_addr[0] = '\0';
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, c->remote_addr, sizeof(c->remote_addr));
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, c->remote_addr, sizeof(c->remote_addr));
}

/* Over max_connections (or shutting down) the connection is accepted and
 * closed at once, so it does not sit in the kernel's backlog. */
void nmc_http_conn_accept(struct nmc_http_server *s)
{
    struct nmc_http_conn *c = nmc_xcalloc(1, sizeof(*c));

    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept((uv_stream_t *)s->listener, (uv_stream_t *)&c->tcp) != 0 ||
        s->nconns >= (size_t)s->opts.max_connections || s->shutting_down) {
        uv_close((uv_handle_t *)&c->tcp, on_reject_closed);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->server = s;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    c->slot = nmc_http_server_slot_take(s, c);
    uv_tcp_nodelay(&c->tcp, 1);
    peer_name(c);
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        nmc_http_conn_close(c);
        return;
    }
    conn_arm_timer(c);
}

void nmc_http_conn_drain(struct nmc_http_conn *c)
{
    if (c->closing || c->phase == PH_LINGER)
        return;
    c->close_when_done = 1;
    if (c->phase != PH_IDLE)
        return; /* a request is arriving: it completes, then the connection closes */
    if (c->nreqs == 0) {
        nmc_http_conn_close(c);
        return;
    }
    if (c->q_tail && (c->q_tail->state == REQ_HANDLING || c->q_tail->state == REQ_DEFERRED))
        c->q_tail->keep_alive = 0;
    conn_stop(c);
    conn_arm_timer(c);
}
