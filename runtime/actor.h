/* The actor runtime: actors with FIFO mailboxes scheduled on one libuv loop.
 *
 * One pattern for the whole codebase: every I/O completion (a DB result, a
 * provider reply, a timer, an HTTP request routed to a module) reaches the
 * actor that asked for it as a message in its mailbox. Handlers are small
 * state-machine steps; a unit test drives an actor by sending it messages.
 *
 * Ownership (conventions 9): nmc_rt_send() always takes the message, even
 * when it fails (a full mailbox frees it and returns NMC_EFULL). A handler
 * borrows its message; the runtime frees it (and its payload through
 * payload_free) after the handler returns, unless the handler called
 * nmc_rt_msg_keep(), which hands ownership to the handler. A handler may
 * also forward the message it is handling with nmc_rt_send(): that hands
 * it on just as keep + send would.
 *
 * Scheduling: a pass gives each actor with mail at most budget messages,
 * counted from what was in its mailbox when the pass began; messages sent
 * during a pass (even to oneself) wait for a later pass, and the loop
 * serves I/O between passes. Metrics handles are cached per runtime:
 * call nmc_metrics_reset() only while no runtime is alive. */
#ifndef NMC_RUNTIME_ACTOR_H
#define NMC_RUNTIME_ACTOR_H

#include <stdint.h>
#include <uv.h>
#include "runtime/common.h"
#include "runtime/trace.h"

struct nmc_rt;
struct nmc_actor;

#define NMC_ID_LEN 37 /* a UUID string and its NUL */

/* Message types are ints; ranges are reserved per module so a handler can
 * tell completions apart. Modules define their own in their headers. */
enum nmc_msg_type_base {
    NMC_MSG_TIMER = 1,         /* payload: struct nmc_rt_timer_fire */
    NMC_MSG_DB = 100,          /* db/ completions, see db/pool.h */
    NMC_MSG_HTTP = 200,        /* http/ requests handed to actors */
    NMC_MSG_PROVIDER = 300,    /* providers/ completions */
    NMC_MSG_MODULE = 1000      /* first type free for module-defined messages */
};

typedef void (*nmc_payload_free_cb)(void *payload);

struct nmc_msg {
    int type;
    char tenant_id[NMC_ID_LEN];      /* "" when not tenant-scoped */
    char correlation_id[NMC_ID_LEN]; /* "" when unknown */
    char causation_id[NMC_ID_LEN];   /* "" when unknown */
    struct nmc_trace_ctx trace;      /* parent span for work done on this message */
    uint64_t cookie;                 /* sender-chosen tag, echoed in completions */
    void *payload;                   /* owned by the message */
    nmc_payload_free_cb payload_free;/* NULL: payload is not freed */
    /* private */
    struct nmc_msg *_next;
    uint64_t _enqueued_ns;
    int _kept;
};

/* A handler processes one message. state is the pointer given at creation. */
typedef void (*nmc_actor_handler_cb)(struct nmc_actor *self, struct nmc_msg *msg, void *state);

/* Creates the runtime on loop. budget: messages handled per actor per turn
 * before the scheduler yields to other actors and to I/O (0: default 64). */
NMC_MUST_CHECK int nmc_rt_create(uv_loop_t *loop, unsigned budget, struct nmc_rt **out);
/* Closes the runtime's handles; the runtime is freed once the loop has run
 * their close callbacks. Actors still registered are destroyed with their
 * pending messages freed. Accepts NULL. */
void nmc_rt_destroy(struct nmc_rt *rt);
uv_loop_t *nmc_rt_loop(struct nmc_rt *rt);

/* Registers an actor. name must be unique and stays borrowed (use a literal).
 * mailbox_cap: maximum pending messages (0: unlimited). NMC_EINVAL for an
 * empty or duplicate name, NMC_ESHUTDOWN after nmc_rt_stop(). Actors live
 * until nmc_rt_destroy(). */
NMC_MUST_CHECK int nmc_rt_actor_create(struct nmc_rt *rt, const char *name, nmc_actor_handler_cb handler,
                                       void *state, size_t mailbox_cap, struct nmc_actor **out);
struct nmc_actor *nmc_rt_actor_find(struct nmc_rt *rt, const char *name);
const char *nmc_rt_actor_name(const struct nmc_actor *a);
struct nmc_rt *nmc_rt_actor_rt(const struct nmc_actor *a);
size_t nmc_rt_actor_depth(const struct nmc_actor *a);

/* A new zeroed message of type with payload (owned) and its free function. */
struct nmc_msg *nmc_rt_msg_new(int type, void *payload, nmc_payload_free_cb payload_free);
/* Copies tenant, correlation id, trace context from parent, and sets the
 * causation id to parent's correlation id unless already set. */
void nmc_rt_msg_inherit(struct nmc_msg *m, const struct nmc_msg *parent);
/* Frees message and payload. Accepts NULL. */
void nmc_rt_msg_free(struct nmc_msg *m);
/* Called from a handler: the handler now owns msg and must free it. */
void nmc_rt_msg_keep(struct nmc_msg *m);

/* Enqueues msg on to's mailbox; always takes ownership. Returns 0, or
 * NMC_EFULL (message freed), or NMC_ESHUTDOWN. Never runs the handler
 * from inside the call; delivery happens on a later loop turn. */
int nmc_rt_send(struct nmc_actor *to, struct nmc_msg *msg);

/* Timers deliver NMC_MSG_TIMER messages to an actor. */
struct nmc_rt_timer_fire {
    uint64_t timer_id;
    uint64_t cookie;
};
/* One-shot timer: after delay_ms, actor a receives NMC_MSG_TIMER with cookie.
 * Returns a timer id > 0 (for cancel) through *id. */
NMC_MUST_CHECK int nmc_rt_timer_start(struct nmc_actor *a, uint64_t delay_ms, uint64_t cookie, uint64_t *id);
/* Cancels a pending timer; no message is delivered, even if the timer has
 * fired and its message is still queued. Unknown ids are ignored. */
void nmc_rt_timer_cancel(struct nmc_rt *rt, uint64_t id);

/* Per-actor statistics, also exported as metrics
 * nmc_actor_mailbox_depth{actor}, nmc_actor_messages_total{actor},
 * nmc_actor_handler_seconds{actor} (histogram). */
struct nmc_actor_stats {
    size_t depth;
    uint64_t handled;
    uint64_t dropped;
    uint64_t handler_ns_total;
};
void nmc_rt_actor_stats(const struct nmc_actor *a, struct nmc_actor_stats *out);

/* Stops delivering messages; pending ones are freed. Used at shutdown. */
void nmc_rt_stop(struct nmc_rt *rt);

#endif
