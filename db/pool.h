/* Asynchronous PostgreSQL pool: nonblocking libpq connections on uv_poll.
 *
 * Work is submitted as a batch of one or more statements; each batch runs
 * on one connection in pipeline mode with a single sync, and PostgreSQL runs
 * everything up to a sync as one implicit transaction: a batch is atomic and
 * costs one round trip, with no BEGIN/COMMIT messages. If any statement
 * fails the rest are skipped and the batch is rolled back. The outcome
 * reaches the requesting actor as one message of type NMC_MSG_DB_RESULT
 * whose payload is a struct nmc_db_result (freed with the message: the
 * PGresults are borrowed by the handler unless it takes them).
 *
 * Async contract: a nonzero return means no message will come; zero means
 * exactly one result message comes later, never from inside the call. A
 * batch in flight on a connection that dies fails with NMC_ECONNLOST; it is
 * never silently dropped or retried (the caller decides). Connections are
 * re-established with backoff. Statements are prepared once per
 * connection, by name, on first use. */
#ifndef NMC_DB_POOL_H
#define NMC_DB_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
#include <uv.h>
#include "runtime/common.h"
#include "runtime/actor.h"

struct nmc_db_pool;

enum { NMC_MSG_DB_RESULT = NMC_MSG_DB, NMC_MSG_DB_NOTIFY = NMC_MSG_DB + 1 };

#define NMC_DB_MAX_PARAMS 32
#define NMC_DB_MAX_STMTS 64

/* One statement. name: a stable prepared-statement name (a literal) or
 * NULL for an unnamed one-off; sql uses $1..$n. Values are text (NULL for
 * SQL NULL); they are copied at submit time. */
struct nmc_db_stmt {
    const char *name;
    const char *sql;
    int nparams;
    const char *params[NMC_DB_MAX_PARAMS];
};

struct nmc_db_result {
    int status;                  /* 0 or a typed error: NMC_EUNIQUE, NMC_EEXCLUSION,
                                    NMC_EFOREIGNKEY, NMC_ECHECK, NMC_ESERIALIZATION,
                                    NMC_ETIMEDOUT, NMC_ECONNLOST, NMC_EDB, NMC_ESHUTDOWN */
    int failed_stmt;             /* index of the failing statement, -1 if none */
    char sqlstate[6];            /* "" when not a server error */
    char constraint[64];         /* violated constraint name when known */
    char message[256];           /* server or libpq message (no parameter values) */
    size_t nresults;             /* one PGresult per statement that ran */
    PGresult *results[NMC_DB_MAX_STMTS];
    uint64_t latency_ns;         /* submit to completion */
};

struct nmc_db_pool_opts {
    const char *conninfo;        /* DATABASE_URL (URI or key=value) */
    int size;                    /* connections, >= 1 */
    int query_timeout_ms;        /* statement_timeout per batch; 0: none */
    size_t max_queue;            /* pending batches before NMC_EFULL (0: 10000) */
};

/* Creates the pool and starts connecting; does not wait. */
NMC_MUST_CHECK int nmc_db_pool_create(struct nmc_rt *rt, const struct nmc_db_pool_opts *opts,
                                      struct nmc_db_pool **out);
/* Closes every connection; batches queued or in flight complete with
 * NMC_ESHUTDOWN. The pool is freed once its handles are closed. */
void nmc_db_pool_destroy(struct nmc_db_pool *p);

/* Submits a batch. reply_to receives NMC_MSG_DB_RESULT with msg->cookie =
 * cookie; tenant/correlation/trace are copied from ctx when not NULL. */
NMC_MUST_CHECK int nmc_db_submit(struct nmc_db_pool *p, struct nmc_actor *reply_to, uint64_t cookie,
                                 const struct nmc_msg *ctx, const struct nmc_db_stmt *stmts, size_t nstmts);
/* A single statement. */
NMC_MUST_CHECK int nmc_db_query(struct nmc_db_pool *p, struct nmc_actor *reply_to, uint64_t cookie,
                                const struct nmc_msg *ctx, const struct nmc_db_stmt *stmt);
/* stmts as one transaction (every batch is one; this names the intent). */
NMC_MUST_CHECK int nmc_db_txn(struct nmc_db_pool *p, struct nmc_actor *reply_to, uint64_t cookie,
                              const struct nmc_msg *ctx, const struct nmc_db_stmt *stmts, size_t nstmts);

/* LISTEN on channel with a dedicated connection; each notification reaches
 * to as NMC_MSG_DB_NOTIFY with a struct nmc_db_notify payload. Whenever the
 * LISTEN takes effect (the first time, and after each reconnect of that
 * connection) to also gets one with an empty payload: what was notified
 * before is lost, so read again what the channel announces. */
struct nmc_db_notify {
    char channel[64];
    char *payload; /* owned by the message */
};
NMC_MUST_CHECK int nmc_db_listen(struct nmc_db_pool *p, const char *channel, struct nmc_actor *to);

/* Connections currently executing a batch (metric db_connections_in_use). */
int nmc_db_pool_in_use(const struct nmc_db_pool *p);
int nmc_db_pool_size(const struct nmc_db_pool *p);
/* Connections that are up. */
int nmc_db_pool_connected(const struct nmc_db_pool *p);

/* Maps a SQLSTATE to a typed error (exposed for tests). */
int nmc_db_error_from_sqlstate(const char *sqlstate);

/* Result helpers: text value or NULL for SQL NULL / out of range. */
const char *nmc_db_get(const PGresult *r, int row, int col);

/* A new result (PQclear it) with r's columns and only its row `row` as row
 * 0, for code that reads a one-row result of its own from a set-based
 * statement's answer; NULL when row is out of range or memory ran out. */
PGresult *nmc_db_result_row(const PGresult *r, int row);

/* Appends v to b as the next element of a one-dimensional array literal
 * (text form, e.g. a $1::text[] parameter): a comma unless b ends with
 * '{', then v double-quoted with '"' and '\\' escaped, or NULL for v ==
 * NULL. The caller writes the braces. 0 or NMC_ETOOBIG (b's cap). */
struct nmc_buf;
int nmc_db_array_append(struct nmc_buf *b, const char *v);

#endif
