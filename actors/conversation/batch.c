/* Per-turn batching of the conversation actor's database work (owner: perf
 * engineer). See batch.h.
 *
 * A job's submission becomes an entry (statements and values copied) on the
 * pending list of its kind. flush() turns a pending list into a group: one
 * batch whose statements are the entries' statements in order (for the
 * async kind, one shared synchronous_commit=off statement first), submitted
 * with an odd cookie (the group's address | 1). The group's result is cut
 * into one view per entry: results[] pointing at the entry's own PGresults,
 * borrowed from the group's message for the duration of the delivery. */
#include "actors/conversation/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/metrics.h"

#define GROUP_INFLIGHT 2 /* groups of one kind in flight before the next one waits and grows */

enum kind { K_TXN = 0, K_TXN_ASYNC, K_READ, K_COUNT };

static const char *const kind_names[K_COUNT] = { "txn", "txn_async_commit", "read" };

struct entry {
    struct entry *next;
    uint64_t cookie;
    struct nmc_msg ctx;       /* tenant, correlation, causation, trace; no payload */
    int txn;
    size_t n;
    struct nmc_db_stmt *st;   /* n statements; values point into the same allocation */
};

struct group {
    struct group *next, *prev; /* in flight */
    enum kind kind;
    struct entry *entries;
    size_t nentries;
};

struct nmc_conversation_batch {
    struct nmc_conversation_batch_opts o;
    struct entry *pending[K_COUNT], **tail[K_COUNT];
    size_t npending[K_COUNT], pending_stmts[K_COUNT];
    int inflight[K_COUNT];
    struct group *groups;     /* in flight, freed by nmc_conversation_batch_free() if never answered */
};

static struct nmc_metric *m_jobs;

int nmc_conversation_batch_create(const struct nmc_conversation_batch_opts *opts,
                                  struct nmc_conversation_batch **out)
{
    if (opts == NULL || opts->db == NULL || opts->actor == NULL || opts->deliver == NULL || out == NULL)
        return NMC_EINVAL;
    static const double buckets[] = { 1, 2, 4, 8, 16, 32, 64 };
    m_jobs = nmc_metrics_histogram("conversation_db_batch_jobs", "Jobs sharing one database round trip", "kind",
                                   buckets, NMC_ARRAY_SIZE(buckets));
    struct nmc_conversation_batch *b = nmc_xcalloc(1, sizeof *b);
    b->o = *opts;
    for (int k = 0; k < K_COUNT; k++)
        b->tail[k] = &b->pending[k];
    *out = b;
    return 0;
}

static void entries_free(struct entry *e)
{
    while (e != NULL) {
        struct entry *next = e->next;
        free(e);
        e = next;
    }
}

static void group_free(struct nmc_conversation_batch *b, struct group *g)
{
    if (g->prev != NULL)
        g->prev->next = g->next;
    else if (b->groups == g)
        b->groups = g->next;
    if (g->next != NULL)
        g->next->prev = g->prev;
    entries_free(g->entries);
    free(g);
}

void nmc_conversation_batch_free(struct nmc_conversation_batch *b)
{
    if (b == NULL)
        return;
    for (int k = 0; k < K_COUNT; k++)
        entries_free(b->pending[k]);
    while (b->groups != NULL)
        group_free(b, b->groups);
    free(b);
}

/* ---- entries ---- */

static int name_is(const char *name, const char *want)
{
    return name != NULL && want != NULL && strcmp(name, want) == 0;
}

static int classify(const struct nmc_conversation_batch *b, const struct nmc_db_stmt *st, size_t n, int txn)
{
    if (txn)
        return n >= 2 && name_is(st[0].name, b->o.async_commit_stmt) ? K_TXN_ASYNC : K_TXN;
    for (const char *const *p = b->o.read_only_stmts; n == 1 && p != NULL && *p != NULL; p++)
        if (name_is(st[0].name, *p))
            return K_READ;
    return -1;
}

/* One allocation: the entry, its statements, then every value. */
static struct entry *entry_new(uint64_t cookie, const struct nmc_msg *ctx, const struct nmc_db_stmt *st, size_t n,
                               int txn)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < st[i].nparams; p++)
            bytes += st[i].params[p] != NULL ? strlen(st[i].params[p]) + 1 : 0;
    struct entry *e = nmc_xcalloc(1, sizeof *e + n * sizeof *e->st + bytes);
    e->cookie = cookie;
    if (ctx != NULL) {
        memcpy(e->ctx.tenant_id, ctx->tenant_id, sizeof e->ctx.tenant_id);
        memcpy(e->ctx.correlation_id, ctx->correlation_id, sizeof e->ctx.correlation_id);
        memcpy(e->ctx.causation_id, ctx->causation_id, sizeof e->ctx.causation_id);
        e->ctx.trace = ctx->trace;
    }
    e->txn = txn;
    e->n = n;
    e->st = (struct nmc_db_stmt *)(e + 1);
    char *w = (char *)(e->st + n);
    for (size_t i = 0; i < n; i++) {
        e->st[i] = (struct nmc_db_stmt){ st[i].name, st[i].sql, st[i].nparams, { NULL } };
        for (int p = 0; p < st[i].nparams; p++) {
            if (st[i].params[p] == NULL)
                continue;
            size_t len = strlen(st[i].params[p]) + 1;
            memcpy(w, st[i].params[p], len);
            e->st[i].params[p] = w;
            w += len;
        }
    }
    return e;
}

/* Statements an entry adds to a group of its kind (the async kind shares
 * its first statement). */
static size_t entry_cost(enum kind k, size_t n)
{
    return k == K_TXN_ASYNC ? n - 1 : n;
}

/* ---- delivery ---- */

static void deliver_status(struct nmc_conversation_batch *b, const struct entry *e, int status, const char *why)
{
    struct nmc_db_result v;
    memset(&v, 0, sizeof v);
    v.status = status;
    v.failed_stmt = -1;
    snprintf(v.message, sizeof v.message, "%s", why != NULL ? why : nmc_strerror(status));
    b->o.deliver(b->o.ud, e->cookie, &v);
}

/* The group's result cut to what e would have received alone. */
static size_t deliver_view(struct nmc_conversation_batch *b, enum kind k, const struct entry *e,
                           const struct nmc_db_result *res, size_t off)
{
    struct nmc_db_result v;
    memcpy(&v, res, offsetof(struct nmc_db_result, nresults));
    v.nresults = 0;
    v.latency_ns = res->latency_ns;
    if (k == K_TXN_ASYNC && res->nresults > 0)
        v.results[v.nresults++] = res->results[0];
    for (size_t i = 0; i < entry_cost(k, e->n); i++, off++)
        if (off < res->nresults)
            v.results[v.nresults++] = res->results[off];
    b->o.deliver(b->o.ud, e->cookie, &v);
    return off;
}

static int submit_alone(struct nmc_conversation_batch *b, const struct entry *e)
{
    struct nmc_db_pool *db = b->o.db;
    const struct nmc_msg *ctx = &e->ctx;
    if (e->txn)
        return nmc_db_txn(db, b->o.actor, e->cookie, ctx, e->st, e->n);
    return nmc_db_submit(db, b->o.actor, e->cookie, ctx, e->st, e->n);
}

/* A statement failed: the transaction rolled back as a whole, so each job
 * runs again alone and meets only its own outcome. */
static void resubmit_alone(struct nmc_conversation_batch *b, const struct group *g)
{
    for (const struct entry *e = g->entries; e != NULL; e = e->next) {
        int rc = submit_alone(b, e);
        if (rc != 0)
            deliver_status(b, e, rc, "could not be resubmitted alone");
    }
}

static void group_done(struct nmc_conversation_batch *b, struct group *g, const struct nmc_db_result *res)
{
    if (res->status == 0) {
        size_t off = g->kind == K_TXN_ASYNC ? 1 : 0;
        for (const struct entry *e = g->entries; e != NULL; e = e->next)
            off = deliver_view(b, g->kind, e, res, off);
    } else if (res->failed_stmt >= 0 && g->nentries > 1) {
        resubmit_alone(b, g);
    } else {
        size_t off = g->kind == K_TXN_ASYNC ? 1 : 0;
        for (const struct entry *e = g->entries; e != NULL; e = e->next)
            off = deliver_view(b, g->kind, e, res, off); /* the group's status, as if alone */
    }
}

int nmc_conversation_batch_on_result(struct nmc_conversation_batch *b, const struct nmc_msg *msg)
{
    if (b == NULL || (msg->cookie & 1) == 0)
        return 0;
    struct group *g = (struct group *)(uintptr_t)(msg->cookie & ~(uint64_t)1);
    b->inflight[g->kind]--;
    group_done(b, g, msg->payload);
    group_free(b, g);
    return 1;
}

/* ---- groups ---- */

static void send_group(struct nmc_conversation_batch *b, enum kind k)
{
    struct group *g = nmc_xcalloc(1, sizeof *g);
    g->kind = k;
    g->entries = b->pending[k];
    g->nentries = b->npending[k];
    b->pending[k] = NULL;
    b->tail[k] = &b->pending[k];
    b->npending[k] = b->pending_stmts[k] = 0;
    struct nmc_db_stmt st[NMC_DB_MAX_STMTS];
    size_t n = 0;
    if (k == K_TXN_ASYNC)
        st[n++] = g->entries->st[0];
    for (const struct entry *e = g->entries; e != NULL; e = e->next)
        for (size_t i = k == K_TXN_ASYNC ? 1 : 0; i < e->n; i++)
            st[n++] = e->st[i];
    const char *labels[] = { kind_names[k] };
    nmc_metrics_observe(m_jobs, labels, (double)g->nentries);
    uint64_t ck = (uint64_t)(uintptr_t)g | 1;
    const struct nmc_msg *ctx = &g->entries->ctx;
    int rc = k == K_READ ? nmc_db_submit(b->o.db, b->o.actor, ck, ctx, st, n)
                         : nmc_db_txn(b->o.db, b->o.actor, ck, ctx, st, n);
    if (rc == 0) {
        b->inflight[k]++;
        g->next = b->groups;
        if (b->groups != NULL)
            b->groups->prev = g;
        b->groups = g;
        return;
    }
    for (const struct entry *e = g->entries; e != NULL; e = e->next)
        deliver_status(b, e, rc, "database queue refused the batch");
    group_free(b, g);
}

void nmc_conversation_batch_flush(struct nmc_conversation_batch *b)
{
    for (int k = 0; b != NULL && k < K_COUNT; k++)
        if (b->pending[k] != NULL && b->inflight[k] < GROUP_INFLIGHT)
            send_group(b, (enum kind)k);
}

int nmc_conversation_batch_submit(struct nmc_conversation_batch *b, uint64_t cookie, const struct nmc_msg *ctx,
                                  const struct nmc_db_stmt *st, size_t n, int txn)
{
    if (b == NULL || st == NULL || n == 0 || n > NMC_DB_MAX_STMTS || (cookie & 1) != 0)
        return NMC_EINVAL;
    int k = classify(b, st, n, txn);
    if (k < 0) /* alone, at once */
        return txn ? nmc_db_txn(b->o.db, b->o.actor, cookie, ctx, st, n)
                   : nmc_db_submit(b->o.db, b->o.actor, cookie, ctx, st, n);
    size_t cost = entry_cost((enum kind)k, n);
    size_t head = k == K_TXN_ASYNC ? 1 : 0;
    if (b->pending[k] != NULL && head + b->pending_stmts[k] + cost > NMC_DB_MAX_STMTS)
        send_group(b, (enum kind)k); /* full: it goes now, in flight or not */
    struct entry *e = entry_new(cookie, ctx, st, n, txn);
    *b->tail[k] = e;
    b->tail[k] = &e->next;
    b->npending[k]++;
    b->pending_stmts[k] += cost;
    return 0;
}
