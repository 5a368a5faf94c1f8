/* Private to db/: the pool's internal types shared by pool.c (queue and
 * dispatch), batch.c (batches and replies), conn.c (one connection's state
 * machine on uv_poll) and listen.c (LISTEN/NOTIFY). Not for use outside db/. */
#ifndef NMC_DB_POOL_IMPL_H
#define NMC_DB_POOL_IMPL_H

#include <stdint.h>
#include <libpq-fe.h>
#include <uv.h>
#include "db/pool.h"

/* Batches in flight on one connection before new work waits in the queue. */
#define NMC_DB_PIPELINE_DEPTH 16
#define NMC_DB_BACKOFF_MIN_MS 50
#define NMC_DB_BACKOFF_MAX_MS 5000
#define NMC_DB_CONNECT_TIMEOUT_MS 10000 /* unless conninfo says connect_timeout */

/* One protocol command of a batch; each yields results then NULL, except
 * SYNC (ends the Prepare segment) which yields PGRES_PIPELINE_SYNC alone. */
enum nmc_db_op_kind {
    NMC_DB_OP_PREPARE,
    NMC_DB_OP_SYNC,
    NMC_DB_OP_EXEC
};

struct nmc_db_op {
    uint8_t kind;
    uint8_t stmt; /* index into stmts for PREPARE/EXEC */
};

struct nmc_db_bstmt {
    const char *name; /* NULL: unnamed */
    const char *sql;
    int nparams;
    const char *const *params;
};

/* A submitted unit of work; owns copies of everything it needs. */
struct nmc_db_batch {
    struct nmc_db_batch *next;      /* queue or in-flight list */
    struct nmc_actor *reply_to;     /* NULL: internal work, nobody to answer */
    uint64_t cookie;
    char tenant_id[NMC_ID_LEN];
    char correlation_id[NMC_ID_LEN];
    char causation_id[NMC_ID_LEN];
    struct nmc_trace_ctx trace;
    struct nmc_span *span;          /* "db.query"; NULL for internal work */
    int txn;                        /* submitted as a transaction (traces say so; every batch is one) */
    uint64_t submit_ns;             /* monotonic */
    struct nmc_db_result *res;      /* being filled; handed to the reply */
    size_t nstmts;
    struct nmc_db_bstmt *stmts;
    struct nmc_db_op *ops;          /* built when sent, since they depend on the connection */
    size_t nops;                    /* ops[nops] is the Sync */
    size_t op;                      /* the command whose results come next */
    /* internal work only (reply_to NULL): called once with the outcome,
     * from nmc_db_batch_finish, before the batch is freed */
    void (*internal_done)(void *ud, int status);
    void *internal_ud;
};

/* A name set: which statements this connection has prepared (or has a
 * Prepare in flight for). Chained hash of copied names. */
struct nmc_db_name;
struct nmc_db_nameset {
    struct nmc_db_name **buckets;
    size_t nbuckets, count;
};

enum nmc_db_conn_state { NMC_DB_CONN_DOWN, NMC_DB_CONN_CONNECTING, NMC_DB_CONN_READY };

/* The uv_poll watching a dup() of libpq's socket; freed (and the dup
 * closed) in its close callback. */
struct nmc_db_pollw {
    uv_poll_t handle;
    int fd;
    struct nmc_db_pool *pool;
};

struct nmc_db_conn {
    struct nmc_db_pool *pool;
    int index;                      /* -1: the LISTEN connection */
    PGconn *pg;
    enum nmc_db_conn_state state;
    struct nmc_db_pollw *pw;
    int events;                     /* current poll interest */
    uv_timer_t timer;               /* reconnect backoff */
    unsigned attempts;              /* failed connects since the last success */
    struct nmc_db_batch *head, *tail;
    int inflight;
    struct nmc_db_nameset prepared;
};

struct nmc_db_sub {
    struct nmc_db_sub *next;
    char channel[64];
    struct nmc_actor *to;
};

struct nmc_db_pool {
    struct nmc_rt *rt;
    uv_loop_t *loop;
    PQconninfoOption *parsed;       /* owns the strings keys/vals point to */
    const char **keys, **vals;
    char *options;
    int connect_timeout_ms;
    int size;
    size_t max_queue;
    struct nmc_db_conn *conns;
    struct nmc_db_conn *listener;   /* NULL until nmc_db_listen */
    struct nmc_db_sub *subs;
    struct nmc_db_batch *qhead, *qtail;
    size_t qlen;
    int in_use, connected;
    int closing, dispatching;
    int open_handles;               /* timers and polls not yet closed */
};

/* batch.c */
void nmc_db_batch_metrics_init(void);
void nmc_db_batch_count_error(int err);
/* A batch holding copies of stmts (validated by the caller); reply_to NULL
 * marks internal work. */
struct nmc_db_batch *nmc_db_batch_new(const struct nmc_db_stmt *stmts, size_t n, int txn);
void nmc_db_batch_start(struct nmc_db_batch *b, struct nmc_actor *reply_to, uint64_t cookie,
                        const struct nmc_msg *ctx);
/* Record the outcome; the first failure wins. */
void nmc_db_batch_fail(struct nmc_db_batch *b, int err, const char *message);
void nmc_db_batch_error(struct nmc_db_batch *b, const struct nmc_db_op *o, const PGresult *r, int conn_bad);
/* The one exit of a batch: metrics, span, reply message; frees b. */
void nmc_db_batch_finish(struct nmc_db_batch *b);

/* pool.c */
void nmc_db_pool_dispatch(struct nmc_db_pool *p);
void nmc_db_pool_busy_changed(struct nmc_db_pool *p, int delta);
void nmc_db_pool_maybe_free(struct nmc_db_pool *p);

/* conn.c */
void nmc_db_conn_init(struct nmc_db_pool *p, struct nmc_db_conn *c, int index);
void nmc_db_conn_start(struct nmc_db_conn *c);
/* Sends b on a READY connection; on failure the connection is dropped and
 * b completes with NMC_ECONNLOST like everything else in flight there. */
void nmc_db_conn_send(struct nmc_db_conn *c, struct nmc_db_batch *b);
/* Fails in-flight work with NMC_ESHUTDOWN and closes the handles. */
void nmc_db_conn_close(struct nmc_db_conn *c);
/* After the handles are closed: PQfinish and free what the conn owns. */
void nmc_db_conn_release(struct nmc_db_conn *c);

/* listen.c */
void nmc_db_listen_resubscribe(struct nmc_db_conn *c);
void nmc_db_listen_deliver(struct nmc_db_pool *p, const PGnotify *n);

#endif
