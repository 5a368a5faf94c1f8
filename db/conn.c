/* One pooled libpq connection: DOWN -> CONNECTING -> READY, driven by a
 * uv_poll and a reconnect timer (see db/pool_impl.h).
 *
 * Why the poll watches a dup() of libpq's socket: libpq may close its socket
 * and open another during PQconnectPoll (next host or address), and closes
 * it in PQfinish. With a dup the fd libuv watches is ours: it is never
 * closed under an active poll and its number cannot be reused by libpq, so
 * two polls never share an fd. The dup is closed in the poll's close
 * callback. While connecting, the socket is compared by inode after every
 * PQconnectPoll and the poll re-created when it changed.
 *
 * READY means pipeline mode: a batch is sent as commands plus one Sync
 * (two when it prepares statements, see ops_build). Per command, results
 * arrive followed by NULL; a failed command yields PGRES_FATAL_ERROR and
 * every later one PGRES_PIPELINE_ABORTED, up to the Sync's
 * PGRES_PIPELINE_SYNC (which no NULL follows).
 *
 * Transactions are the pipeline's implicit one: PostgreSQL runs every
 * Execute up to a Sync in one transaction and commits it when it processes
 * the Sync (rolls it back if a command failed), then answers ReadyForQuery,
 * which libpq reports as PGRES_PIPELINE_SYNC. So a batch's statements are
 * atomic without BEGIN/COMMIT, its Sync result is the commit's
 * acknowledgement, and a failed batch leaves the session idle, never in an
 * aborted block the next batch would have to ROLLBACK first (that ROLLBACK,
 * sent after every transaction, was a WARNING in the server's log per
 * missed call: 1 million lines in a 10 s bench run). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "db/pool_impl.h"
#include "runtime/clock.h"
#include "runtime/log.h"

static void on_poll(uv_poll_t *h, int status, int events);
static void conn_lost(struct nmc_db_conn *c, const char *why);

/* ---- prepared-name set ---------------------------------------------- */

struct nmc_db_name {
    struct nmc_db_name *next;
    char name[];
};

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    while (*s)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

static struct nmc_db_name **name_slot(const struct nmc_db_nameset *s, const char *name)
{
    struct nmc_db_name **pp = &s->buckets[name_hash(name) & (s->nbuckets - 1)];
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->next;
    return pp;
}

static int nameset_has(const struct nmc_db_nameset *s, const char *name)
{
    return s->nbuckets && *name_slot(s, name) != NULL;
}

static void nameset_grow(struct nmc_db_nameset *s)
{
    size_t nb = s->nbuckets ? s->nbuckets * 2 : 32;
    struct nmc_db_name **b = nmc_xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct nmc_db_name *n = s->buckets[i], *next;
        for (; n; n = next) {
            next = n->next;
            size_t k = name_hash(n->name) & (nb - 1);
            n->next = b[k];
            b[k] = n;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
}

static void nameset_add(struct nmc_db_nameset *s, const char *name)
{
    if (s->count >= s->nbuckets)
        nameset_grow(s);
    size_t len = strlen(name) + 1;
    struct nmc_db_name *n = nmc_xmalloc(sizeof *n + len);
    memcpy(n->name, name, len);
    size_t k = name_hash(name) & (s->nbuckets - 1);
    n->next = s->buckets[k];
    s->buckets[k] = n;
    s->count++;
}

static void nameset_del(struct nmc_db_nameset *s, const char *name)
{
    if (!s->nbuckets)
        return;
    struct nmc_db_name **pp = name_slot(s, name);
    if (!*pp)
        return;
    struct nmc_db_name *n = *pp;
    *pp = n->next;
    free(n);
    s->count--;
}

/* Forgets every name (a new session has no prepared statements). */
static void nameset_free(struct nmc_db_nameset *s)
{
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct nmc_db_name *n = s->buckets[i], *next;
        for (; n; n = next) {
            next = n->next;
            free(n);
        }
    }
    free(s->buckets);
    memset(s, 0, sizeof *s);
}

/* ---- the poll on a dup of libpq's socket ---------------------------- */

static void on_poll_close(uv_handle_t *h)
{
    struct nmc_db_pollw *pw = nmc_container_of((uv_poll_t *)h, struct nmc_db_pollw, handle);
    struct nmc_db_pool *p = pw->pool;
    close(pw->fd);
    free(pw);
    p->open_handles--;
    nmc_db_pool_maybe_free(p);
}

static void unwatch(struct nmc_db_conn *c)
{
    if (!c->pw)
        return;
    uv_close((uv_handle_t *)&c->pw->handle, on_poll_close);
    c->pw = NULL;
    c->events = 0;
}

static int watch_new(struct nmc_db_conn *c, int fd)
{
    int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dupfd < 0)
        return NMC_ECONNLOST;
    struct nmc_db_pollw *pw = nmc_xcalloc(1, sizeof *pw);
    int r = uv_poll_init(c->pool->loop, &pw->handle, dupfd);
    if (r) {
        close(dupfd);
        free(pw);
        return r;
    }
    pw->fd = dupfd;
    pw->pool = c->pool;
    pw->handle.data = c;
    c->pool->open_handles++;
    c->pw = pw;
    c->events = 0;
    return 0;
}

/* Whether two fds name the same socket (libpq may close its socket and get
 * the same number back for a new one within one PQconnectPoll). */
static int same_socket(int a, int b)
{
    struct stat sa, sb;
    if (fstat(a, &sa) != 0 || fstat(b, &sb) != 0)
        return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Makes the poll watch libpq's current socket for events. */
static int conn_watch(struct nmc_db_conn *c, int events)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return NMC_ECONNLOST;
    if (c->pw && c->state == NMC_DB_CONN_CONNECTING && !same_socket(c->pw->fd, fd))
        unwatch(c);
    if (!c->pw) {
        int r = watch_new(c, fd);
        if (r)
            return r;
    }
    if (events == c->events)
        return 0;
    int r = uv_poll_start(&c->pw->handle, events, on_poll);
    if (r == 0)
        c->events = events;
    return r;
}

/* ---- in-flight list -------------------------------------------------- */

static void inflight_push(struct nmc_db_conn *c, struct nmc_db_batch *b)
{
    b->next = NULL;
    if (c->tail)
        c->tail->next = b;
    else
        c->head = b;
    c->tail = b;
    if (c->inflight++ == 0 && c->index >= 0)
        nmc_db_pool_busy_changed(c->pool, 1);
}

static struct nmc_db_batch *inflight_pop(struct nmc_db_conn *c)
{
    struct nmc_db_batch *b = c->head;
    if (!b)
        return NULL;
    c->head = b->next;
    if (!c->head)
        c->tail = NULL;
    b->next = NULL;
    if (--c->inflight == 0 && c->index >= 0)
        nmc_db_pool_busy_changed(c->pool, -1);
    return b;
}

/* Completes everything in flight with err (unless a batch already failed
 * for its own reason). A batch completes at its Sync result, which is also
 * its commit's acknowledgement, so none in flight here is known to have
 * committed: each fails as the ambiguous outcome it is. Messages are only
 * queued to actors here. */
static void fail_inflight(struct nmc_db_conn *c, int err, const char *why)
{
    struct nmc_db_batch *b;
    while ((b = inflight_pop(c)) != NULL) {
        nmc_db_batch_fail(b, err, why);
        nmc_db_batch_finish(b);
    }
}

/* ---- connecting and reconnecting ------------------------------------ */

/* The one place a connection changes state; keeps the pool's count of
 * connected pool connections (the LISTEN connection is not one). */
static void set_state(struct nmc_db_conn *c, enum nmc_db_conn_state s)
{
    if (c->index >= 0 && c->state == NMC_DB_CONN_READY)
        c->pool->connected--;
    if (c->index >= 0 && s == NMC_DB_CONN_READY)
        c->pool->connected++;
    c->state = s;
}

static void on_reconnect(uv_timer_t *t)
{
    struct nmc_db_conn *c = nmc_container_of(t, struct nmc_db_conn, timer);
    nmc_db_conn_start(c);
}

/* Exponential backoff from 50 ms doubling to 5 s, with full jitter over the
 * upper half so a fleet of pools does not reconnect in lockstep. */
static void schedule_reconnect(struct nmc_db_conn *c)
{
    if (c->pool->closing)
        return;
    unsigned shift = c->attempts < 7 ? c->attempts : 7;
    uint64_t delay = (uint64_t)NMC_DB_BACKOFF_MIN_MS << shift;
    if (delay > NMC_DB_BACKOFF_MAX_MS)
        delay = NMC_DB_BACKOFF_MAX_MS;
    delay = delay / 2 + (uint64_t)(nmc_rng_unit() * (double)(delay / 2));
    c->attempts++;
    uv_timer_start(&c->timer, on_reconnect, delay, 0);
}

static void log_conn(enum nmc_log_level level, const struct nmc_db_conn *c, const char *event, const char *why)
{
    struct nmc_log_rec *l = nmc_log_begin(level, "db", event);
    nmc_log_int(l, "connection", c->index);
    nmc_log_int(l, "attempts", c->attempts);
    if (why)
        nmc_log_str(l, "message", why);
    nmc_log_end(l);
}

/* Drops the session: everything in flight fails with NMC_ECONNLOST (never
 * retried: the caller decides), then a reconnect is scheduled. */
static void conn_lost(struct nmc_db_conn *c, const char *why)
{
    char msg[256];
    nmc_strlcpy(msg, why && why[0] ? why : "connection lost", sizeof msg);
    nmc_rtrim(msg);
    set_state(c, NMC_DB_CONN_DOWN);
    unwatch(c); /* polls a dup, so PQfinish may close libpq's fd right away */
    PQfinish(c->pg);
    c->pg = NULL;
    nameset_free(&c->prepared);
    log_conn(NMC_LOG_WARN, c, "db.connection_lost", msg);
    fail_inflight(c, NMC_ECONNLOST, msg);
    schedule_reconnect(c);
}

static void on_notice(void *arg, const char *message)
{
    struct nmc_db_conn *c = arg;
    struct nmc_log_rec *l = nmc_log_begin(NMC_LOG_DEBUG, "db", "db.notice");
    nmc_log_int(l, "connection", c->index);
    nmc_log_str(l, "message", message);
    nmc_log_end(l);
}

static void conn_ready(struct nmc_db_conn *c)
{
    if (PQsetnonblocking(c->pg, 1) != 0 || !PQenterPipelineMode(c->pg)) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    PQsetNoticeProcessor(c->pg, on_notice, c);
    uv_timer_stop(&c->timer);
    set_state(c, NMC_DB_CONN_READY);
    c->attempts = 0;
    log_conn(NMC_LOG_INFO, c, "db.connected", NULL);
    if (conn_watch(c, UV_READABLE)) {
        conn_lost(c, "cannot watch the socket");
        return;
    }
    if (c->index < 0)
        nmc_db_listen_resubscribe(c);
    else
        nmc_db_pool_dispatch(c->pool);
}

static void conn_connect_step(struct nmc_db_conn *c)
{
    int r;
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        r = conn_watch(c, UV_READABLE);
        break;
    case PGRES_POLLING_WRITING:
        r = conn_watch(c, UV_WRITABLE);
        break;
    case PGRES_POLLING_OK:
        conn_ready(c);
        return;
    default:
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    if (r)
        conn_lost(c, "cannot watch the socket");
}

static void on_connect_timeout(uv_timer_t *t)
{
    struct nmc_db_conn *c = nmc_container_of(t, struct nmc_db_conn, timer);
    if (c->state == NMC_DB_CONN_CONNECTING)
        conn_lost(c, "timed out connecting");
}

/* Starts a nonblocking connect. Failures go through conn_lost (backoff).
 * The timer, idle while connecting, bounds the attempt: a server that
 * accepts TCP but never answers would otherwise hold it forever. */
void nmc_db_conn_start(struct nmc_db_conn *c)
{
    struct nmc_db_pool *p = c->pool;
    c->pg = PQconnectStartParams(p->keys, p->vals, 0);
    set_state(c, NMC_DB_CONN_CONNECTING);
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
        conn_lost(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        return;
    }
    uv_timer_start(&c->timer, on_connect_timeout, (uint64_t)p->connect_timeout_ms, 0);
    /* libpq's protocol: behave as if PQconnectPoll had said WRITING. */
    if (conn_watch(c, UV_WRITABLE))
        conn_lost(c, "cannot watch the socket");
}

void nmc_db_conn_init(struct nmc_db_pool *p, struct nmc_db_conn *c, int index)
{
    c->pool = p;
    c->index = index;
    c->state = NMC_DB_CONN_DOWN;
    uv_timer_init(p->loop, &c->timer); /* cannot fail on a live loop */
    p->open_handles++;
}

/* ---- sending ---------------------------------------------------------- */

/* Commands for b: [Prepare...] [Sync] Execute..., then the final Sync,
 * whose implicit transaction holds every Execute (see top). New statements
 * are prepared in a Sync segment of their own so a failing statement cannot
 * abort a Prepare that later batches, already pipelined without one, rely
 * on. */
static void ops_build(struct nmc_db_conn *c, struct nmc_db_batch *b)
{
    size_t n = 0, prepares = 0;
    for (size_t i = 0; i < b->nstmts; i++) {
        const char *name = b->stmts[i].name;
        if (name && !nameset_has(&c->prepared, name)) {
            nameset_add(&c->prepared, name);
            b->ops[n++] = (struct nmc_db_op){NMC_DB_OP_PREPARE, (uint8_t)i};
            prepares++;
        }
    }
    if (prepares)
        b->ops[n++] = (struct nmc_db_op){NMC_DB_OP_SYNC, 0};
    for (size_t i = 0; i < b->nstmts; i++)
        b->ops[n++] = (struct nmc_db_op){NMC_DB_OP_EXEC, (uint8_t)i};
    b->nops = n;
    b->op = 0;
}

static int send_op(PGconn *pg, const struct nmc_db_batch *b, const struct nmc_db_op *o)
{
    const struct nmc_db_bstmt *s = &b->stmts[o->stmt];
    switch (o->kind) {
    case NMC_DB_OP_PREPARE:
        return PQsendPrepare(pg, s->name, s->sql, 0, NULL);
    case NMC_DB_OP_SYNC:
        return PQpipelineSync(pg);
    default:
        if (s->name)
            return PQsendQueryPrepared(pg, s->name, s->nparams, (const char *const *)s->params, NULL, NULL, 0);
        return PQsendQueryParams(pg, s->sql, s->nparams, NULL, (const char *const *)s->params, NULL, NULL, 0);
    }
}

/* Pushes buffered output; watches for writability while some remains. */
static int conn_flush(struct nmc_db_conn *c)
{
    if (c->state != NMC_DB_CONN_READY)
        return -1;
    int r = PQflush(c->pg);
    if (r < 0) {
        conn_lost(c, PQerrorMessage(c->pg));
        return -1;
    }
    if (conn_watch(c, r ? UV_READABLE | UV_WRITABLE : UV_READABLE)) {
        conn_lost(c, "cannot watch the socket");
        return -1;
    }
    return 0;
}

void nmc_db_conn_send(struct nmc_db_conn *c, struct nmc_db_batch *b)
{
    ops_build(c, b);
    inflight_push(c, b);
    for (size_t i = 0; i < b->nops; i++) {
        if (!send_op(c->pg, b, &b->ops[i])) {
            conn_lost(c, PQerrorMessage(c->pg));
            return;
        }
    }
    if (!PQpipelineSync(c->pg)) {
        conn_lost(c, PQerrorMessage(c->pg));
        return;
    }
    conn_flush(c);
}

/* ---- receiving -------------------------------------------------------- */

/* Files one non-NULL result of command o. Successful Execute results are
 * kept for the reply (results[i] belongs to stmts[i]); the rest are freed. */
static void take_result(struct nmc_db_conn *c, struct nmc_db_batch *b, const struct nmc_db_op *o, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
    if (o->kind == NMC_DB_OP_PREPARE && st != PGRES_COMMAND_OK)
        nameset_del(&c->prepared, b->stmts[o->stmt].name); /* not prepared: prepare again next time */
    if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR)
        nmc_db_batch_error(b, o, r, PQstatus(c->pg) == CONNECTION_BAD);
    else if (!ok && st != PGRES_PIPELINE_ABORTED)
        nmc_db_batch_fail(b, NMC_EDB, "unsupported result (COPY is not available through the pool)");
    if (ok && o->kind == NMC_DB_OP_EXEC && b->reply_to && b->res->nresults < NMC_DB_MAX_STMTS) {
        b->res->results[b->res->nresults++] = r;
        return;
    }
    PQclear(r);
}

static int awaiting_sync(const struct nmc_db_batch *b)
{
    return b->op >= b->nops || b->ops[b->op].kind == NMC_DB_OP_SYNC;
}

/* Handles one PQgetResult value for the head batch. Returns -1 when the
 * connection was dropped (c must not be used for I/O any more). */
static int conn_result(struct nmc_db_conn *c, PGresult *r)
{
    struct nmc_db_batch *b = c->head;
    if (r && PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        if (b->op < b->nops && b->ops[b->op].kind == NMC_DB_OP_SYNC)
            b->op++; /* end of the Prepare segment; no NULL follows a Sync */
        else
            nmc_db_batch_finish(inflight_pop(c));
        return 0;
    }
    if (!r) {
        b->op++;
        return 0;
    }
    if (awaiting_sync(b)) {
        /* A result where only the Sync can come: our bookkeeping and libpq's
         * disagree; the only safe move is a fresh session. */
        PQclear(r);
        conn_lost(c, "unexpected result in pipeline");
        return -1;
    }
    ExecStatusType st = PQresultStatus(r);
    take_result(c, b, &b->ops[b->op], r);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
        conn_lost(c, "COPY is not supported through the pool");
        return -1;
    }
    return 0;
}

static void conn_notifies(struct nmc_db_conn *c)
{
    PGnotify *n;
    while ((n = PQnotifies(c->pg)) != NULL) {
        if (c->index < 0)
            nmc_db_listen_deliver(c->pool, n);
        PQfreemem(n);
    }
}

/* Reads what arrived, files complete results, then lets the pool hand out
 * more work. Returns -1 when the connection was dropped. */
static int conn_read(struct nmc_db_conn *c)
{
    if (!PQconsumeInput(c->pg)) {
        conn_lost(c, PQerrorMessage(c->pg));
        return -1;
    }
    conn_notifies(c);
    while (c->head && !PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (!r && awaiting_sync(c->head))
            break; /* the Sync has not arrived yet */
        if (conn_result(c, r))
            return -1;
    }
    conn_notifies(c);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_lost(c, PQerrorMessage(c->pg));
        return -1;
    }
    if (c->index >= 0)
        nmc_db_pool_dispatch(c->pool);
    return 0;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct nmc_db_conn *c = h->data;
    if (c->state == NMC_DB_CONN_CONNECTING) {
        conn_connect_step(c);
        return;
    }
    if (c->state != NMC_DB_CONN_READY)
        return;
    if (status < 0)
        events = UV_READABLE | UV_WRITABLE; /* let libpq find out what is wrong */
    if ((events & UV_READABLE) && conn_read(c))
        return;
    if ((events & UV_WRITABLE) || (c->events & UV_WRITABLE))
        conn_flush(c);
}

/* ---- shutdown --------------------------------------------------------- */

static void on_timer_close(uv_handle_t *h)
{
    struct nmc_db_conn *c = nmc_container_of((uv_timer_t *)h, struct nmc_db_conn, timer);
    struct nmc_db_pool *p = c->pool;
    p->open_handles--;
    nmc_db_pool_maybe_free(p);
}

void nmc_db_conn_close(struct nmc_db_conn *c)
{
    fail_inflight(c, NMC_ESHUTDOWN, "database pool is shutting down");
    set_state(c, NMC_DB_CONN_DOWN);
    unwatch(c);
    uv_close((uv_handle_t *)&c->timer, on_timer_close);
}

void nmc_db_conn_release(struct nmc_db_conn *c)
{
    PQfinish(c->pg);
    c->pg = NULL;
    nameset_free(&c->prepared);
}
