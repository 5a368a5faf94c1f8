/* Asynchronous PostgreSQL pool (db/pool.h): the queue and dispatch.
 *
 * Shape: a FIFO queue of batches and N connections (db/conn.c). A READY
 * connection runs in libpq pipeline mode; a batch is sent as its commands
 * plus one Sync and joins the connection's in-flight list, in send order,
 * because results come back in that order. An idle connection takes the
 * next queued batch; when every connection is busy, batches are pipelined
 * onto the least loaded one (up to NMC_DB_PIPELINE_DEPTH each).
 *
 * Batches themselves (copies, outcome, reply) live in db/batch.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db/pool_impl.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#define DEFAULT_MAX_QUEUE 10000
#define MAX_POOL_SIZE 1000
#define NAME_MAX_LEN 63 /* NAMEDATALEN - 1: longer names are truncated by the server and could collide */

static struct nmc_metric *m_in_use, *m_max;

static void metrics_register(void)
{
    m_in_use = nmc_metrics_gauge("db_connections_in_use", "Connections executing a batch", NULL);
    m_max = nmc_metrics_gauge("db_connections_max", "Connections in the pool", NULL);
    nmc_db_batch_metrics_init();
}

static int stmts_valid(const struct nmc_db_stmt *stmts, size_t n)
{
    if (!stmts || n == 0 || n > NMC_DB_MAX_STMTS)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const struct nmc_db_stmt *s = &stmts[i];
        if (!s->sql || s->nparams < 0 || s->nparams > NMC_DB_MAX_PARAMS)
            return 0;
        if (s->name && (s->name[0] == '\0' || strlen(s->name) > NAME_MAX_LEN))
            return 0;
    }
    return 1;
}


/* ---- queue and dispatch --------------------------------------------- */

static void queue_push(struct nmc_db_pool *p, struct nmc_db_batch *b)
{
    b->next = NULL;
    if (p->qtail)
        p->qtail->next = b;
    else
        p->qhead = b;
    p->qtail = b;
    p->qlen++;
}

static struct nmc_db_batch *queue_pop(struct nmc_db_pool *p)
{
    struct nmc_db_batch *b = p->qhead;
    if (!b)
        return NULL;
    p->qhead = b->next;
    if (!p->qhead)
        p->qtail = NULL;
    p->qlen--;
    b->next = NULL;
    return b;
}

/* An idle connection if there is one, else the least loaded connection
 * that still has pipeline room, else NULL (the batch waits in the queue). */
static struct nmc_db_conn *pick_conn(struct nmc_db_pool *p)
{
    struct nmc_db_conn *best = NULL;
    for (int i = 0; i < p->size; i++) {
        struct nmc_db_conn *c = &p->conns[i];
        if (c->state != NMC_DB_CONN_READY)
            continue;
        if (c->inflight == 0)
            return c;
        if (c->inflight < NMC_DB_PIPELINE_DEPTH && (!best || c->inflight < best->inflight))
            best = c;
    }
    return best;
}

/* Hands queued batches to connections while any can take one. */
void nmc_db_pool_dispatch(struct nmc_db_pool *p)
{
    if (p->dispatching)
        return; /* re-entered from a send that failed: the outer loop continues */
    p->dispatching = 1;
    while (p->qhead && !p->closing) {
        struct nmc_db_conn *c = pick_conn(p);
        if (!c)
            break;
        nmc_db_conn_send(c, queue_pop(p));
    }
    p->dispatching = 0;
}

void nmc_db_pool_busy_changed(struct nmc_db_pool *p, int delta)
{
    p->in_use += delta;
    nmc_metrics_add(m_in_use, NULL, delta);
}

/* ---- public API ------------------------------------------------------ */

static int submit(struct nmc_db_pool *p, struct nmc_actor *reply_to, uint64_t cookie, const struct nmc_msg *ctx,
                  const struct nmc_db_stmt *stmts, size_t nstmts, int txn)
{
    if (!p || !reply_to || !stmts_valid(stmts, nstmts))
        return NMC_EINVAL;
    if (p->closing)
        return NMC_ESHUTDOWN;
    if (p->qlen >= p->max_queue) {
        nmc_db_batch_count_error(NMC_EFULL);
        return NMC_EFULL;
    }
    struct nmc_db_batch *b = nmc_db_batch_new(stmts, nstmts, txn);
    nmc_db_batch_start(b, reply_to, cookie, ctx);
    queue_push(p, b);
    nmc_db_pool_dispatch(p);
    return 0;
}

int nmc_db_submit(struct nmc_db_pool *p, struct nmc_actor *reply_to, uint64_t cookie, const struct nmc_msg *ctx,
                  const struct nmc_db_stmt *stmts, size_t nstmts)
{
    return submit(p, reply_to, cookie, ctx, stmts, nstmts, 0);
}

int nmc_db_query(struct nmc_db_pool *p, struct nmc_actor *reply_to, uint64_t cookie, const struct nmc_msg *ctx,
                 const struct nmc_db_stmt *stmt)
{
    return submit(p, reply_to, cookie, ctx, stmt, 1, 0);
}

int nmc_db_txn(struct nmc_db_pool *p, struct nmc_actor *reply_to, uint64_t cookie, const struct nmc_msg *ctx,
               const struct nmc_db_stmt *stmts, size_t nstmts)
{
    return submit(p, reply_to, cookie, ctx, stmts, nstmts, 1);
}

/* Appends "options" to keys/vals: the caller's options plus
 * statement_timeout, which rides in the startup packet so it holds from the
 * first statement without a round trip. */
static size_t params_options(struct nmc_db_pool *p, size_t n, const char *options, int timeout_ms)
{
    if (timeout_ms <= 0 && !options)
        return n;
    char buf[64] = "";
    if (timeout_ms > 0)
        snprintf(buf, sizeof buf, "-c statement_timeout=%d", timeout_ms);
    size_t len = (options ? strlen(options) : 0) + strlen(buf) + 2;
    p->options = nmc_xmalloc(len);
    snprintf(p->options, len, "%s%s%s", options ? options : "", options && buf[0] ? " " : "", buf);
    p->keys[n] = "options";
    p->vals[n++] = p->options;
    return n;
}

/* libpq leaves connect_timeout to the application with PQconnectPoll; we
 * honour it (seconds) with the connection's timer, default 10 s. */
static void params_connect_timeout(struct nmc_db_pool *p, const char *value)
{
    int64_t secs = 0;
    p->connect_timeout_ms = NMC_DB_CONNECT_TIMEOUT_MS;
    if (value && nmc_parse_i64(value, 1, 3600, &secs) == 0)
        p->connect_timeout_ms = (int)secs * 1000;
}

/* Builds the keyword/value arrays for PQconnectStartParams from conninfo
 * (URI or key=value); NMC_EINVAL when it does not parse. */
static int pool_params(struct nmc_db_pool *p, const char *conninfo, int timeout_ms)
{
    char *errmsg = NULL;
    p->parsed = PQconninfoParse(conninfo, &errmsg);
    if (!p->parsed) {
        struct nmc_log_rec *l = nmc_log_begin(NMC_LOG_ERROR, "db", "db.conninfo_invalid");
        nmc_log_str(l, "message", errmsg ? errmsg : "out of memory");
        nmc_log_end(l);
        PQfreemem(errmsg);
        return NMC_EINVAL;
    }
    size_t n = 0;
    const char *options = NULL, *connect_timeout = NULL;
    int has_app = 0;
    for (PQconninfoOption *o = p->parsed; o->keyword; o++)
        n++;
    p->keys = nmc_xcalloc(n + 3, sizeof *p->keys);
    p->vals = nmc_xcalloc(n + 3, sizeof *p->vals);
    n = 0;
    for (PQconninfoOption *o = p->parsed; o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "options") == 0) {
            options = o->val;
            continue;
        }
        if (strcmp(o->keyword, "connect_timeout") == 0)
            connect_timeout = o->val;
        has_app |= strcmp(o->keyword, "application_name") == 0;
        p->keys[n] = o->keyword;
        p->vals[n++] = o->val;
    }
    n = params_options(p, n, options, timeout_ms);
    if (!has_app) {
        p->keys[n] = "fallback_application_name";
        p->vals[n++] = "nmc";
    }
    params_connect_timeout(p, connect_timeout);
    return 0;
}

static int opts_valid(const struct nmc_db_pool_opts *o)
{
    return o && o->conninfo && o->size >= 1 && o->size <= MAX_POOL_SIZE && o->query_timeout_ms >= 0;
}

int nmc_db_pool_create(struct nmc_rt *rt, const struct nmc_db_pool_opts *opts, struct nmc_db_pool **out)
{
    if (!rt || !out || !opts_valid(opts))
        return NMC_EINVAL;
    struct nmc_db_pool *p = nmc_xcalloc(1, sizeof *p);
    p->rt = rt;
    p->loop = nmc_rt_loop(rt);
    p->size = opts->size;
    p->max_queue = opts->max_queue ? opts->max_queue : DEFAULT_MAX_QUEUE;
    int r = pool_params(p, opts->conninfo, opts->query_timeout_ms);
    if (r) {
        PQconninfoFree(p->parsed);
        free(p);
        return r;
    }
    metrics_register();
    nmc_metrics_add(m_max, NULL, p->size);
    p->conns = nmc_xcalloc((size_t)p->size, sizeof *p->conns);
    for (int i = 0; i < p->size; i++)
        nmc_db_conn_init(p, &p->conns[i], i);
    for (int i = 0; i < p->size; i++)
        nmc_db_conn_start(&p->conns[i]);
    *out = p;
    return 0;
}

/* Frees the pool once every handle it opened has been closed. */
void nmc_db_pool_maybe_free(struct nmc_db_pool *p)
{
    if (!p->closing || p->open_handles > 0)
        return;
    for (int i = 0; i < p->size; i++)
        nmc_db_conn_release(&p->conns[i]);
    if (p->listener)
        nmc_db_conn_release(p->listener);
    free(p->listener);
    free(p->conns);
    free(p->keys);
    free(p->vals);
    free(p->options);
    PQconninfoFree(p->parsed);
    free(p);
}

void nmc_db_pool_destroy(struct nmc_db_pool *p)
{
    if (!p || p->closing)
        return;
    p->closing = 1;
    struct nmc_db_batch *b;
    while ((b = queue_pop(p)) != NULL) {
        nmc_db_batch_fail(b, NMC_ESHUTDOWN, "database pool is shutting down");
        nmc_db_batch_finish(b);
    }
    for (int i = 0; i < p->size; i++)
        nmc_db_conn_close(&p->conns[i]);
    if (p->listener)
        nmc_db_conn_close(p->listener);
    while (p->subs) {
        struct nmc_db_sub *s = p->subs;
        p->subs = s->next;
        free(s);
    }
    nmc_metrics_add(m_max, NULL, -p->size);
    nmc_db_pool_maybe_free(p);
}

int nmc_db_pool_in_use(const struct nmc_db_pool *p)
{
    return p ? p->in_use : 0;
}

int nmc_db_pool_size(const struct nmc_db_pool *p)
{
    return p ? p->size : 0;
}

int nmc_db_pool_connected(const struct nmc_db_pool *p)
{
    return p ? p->connected : 0;
}
