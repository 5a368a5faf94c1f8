/* Per-turn batching of the conversation actor's database work (owner: perf
 * engineer; private to actors/conversation/).
 *
 * Every job of the conversation actor costs three round trips (load, intent,
 * mark sent). Under load many jobs reach the same step in the same loop
 * turn; this groups them: every intent of a turn commits in ONE transaction
 * (one WAL flush), every "mark sent" of a turn in one asynchronous-commit
 * transaction, every load of a turn goes out as one pipelined batch. Each
 * job still gets its own result, shaped exactly as if it had submitted alone
 * (results[i] belongs to its statement i). At most GROUP_INFLIGHT groups per
 * kind are in flight; past that, jobs accumulate into the next group, so the
 * batches grow with the load and a lone job is never delayed.
 *
 * Grouped: transactions (those starting with the synchronous_commit=off
 * statement are grouped apart and share one), and single read-only
 * statements whose name is listed at creation. Everything else is submitted
 * at once, alone. If a statement of a group fails, every job of the group is
 * resubmitted alone (the transaction rolled back as a whole, so nothing of
 * it happened); a group that fails as a whole (connection lost, shutdown)
 * fails each of its jobs with its status.
 *
 * Async contract (as db/pool.h): nmc_conversation_batch_submit() returning
 * nonzero means no result comes; zero means exactly one result reaches the
 * deliver callback later, never from inside the call. */
#ifndef NMC_ACTORS_CONVERSATION_BATCH_H
#define NMC_ACTORS_CONVERSATION_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include "db/pool.h"

struct nmc_conversation_batch;

/* Hands one job its result (borrowed for the call). */
typedef void (*nmc_conversation_batch_deliver_cb)(void *ud, uint64_t cookie, const struct nmc_db_result *res);

struct nmc_conversation_batch_opts {
    struct nmc_db_pool *db;
    struct nmc_actor *actor;             /* receives the NMC_MSG_DB_RESULT messages */
    nmc_conversation_batch_deliver_cb deliver;
    void *ud;
    const char *async_commit_stmt;       /* name of the "SET synchronous_commit off" statement */
    const char *const *read_only_stmts;  /* NULL-terminated names of groupable single queries */
};

/* Creates the batcher; opts is copied (the strings must outlive it). */
NMC_MUST_CHECK int nmc_conversation_batch_create(const struct nmc_conversation_batch_opts *opts,
                                                 struct nmc_conversation_batch **out);
/* Frees the batcher, its pending jobs and its groups in flight (their
 * results, if they still come, must be dropped unread: the owner's module
 * state is gone). Accepts NULL. */
void nmc_conversation_batch_free(struct nmc_conversation_batch *b);

/* Like nmc_db_txn (txn) or nmc_db_query (n == 1): statements and values are
 * copied; the result comes through deliver with cookie and ctx's tenant,
 * correlation and trace (ctx may be NULL). Cookies must be even (a job
 * pointer is): odd ones mark groups. */
NMC_MUST_CHECK int nmc_conversation_batch_submit(struct nmc_conversation_batch *b, uint64_t cookie,
                                                 const struct nmc_msg *ctx, const struct nmc_db_stmt *st,
                                                 size_t n, int txn);

/* Sends the jobs gathered so far (call when the actor's mailbox is empty). */
void nmc_conversation_batch_flush(struct nmc_conversation_batch *b);

/* For an NMC_MSG_DB_RESULT message: 1 when it belongs to a group (each of
 * its jobs has then been delivered its result), 0 when it is a job's own. */
int nmc_conversation_batch_on_result(struct nmc_conversation_batch *b, const struct nmc_msg *msg);

#endif
