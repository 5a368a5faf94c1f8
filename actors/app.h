/* The application: what `nmc serve` builds and hands to every module.
 *
 * Each module (telephony, conversation, scheduling, catalog, ...) exports
 *     int nmc_<module>_init(struct nmc_app *app);
 * which creates its actor(s) with nmc_rt_actor_create, registers its HTTP
 * routes on app->http (when app->http is not NULL: worker-only instances
 * have no HTTP server for module routes) and subscribes to domain events.
 * Modules find each other's actors by name (nmc_rt_actor_find) and talk
 * only by messages. Init functions are listed in actors/app.c. */
#ifndef NMC_ACTORS_APP_H
#define NMC_ACTORS_APP_H

#include <stdint.h>
#include <uv.h>
#include "runtime/actor.h"
#include "runtime/config.h"
#include "http/server.h"
#include "db/pool.h"

struct nmc_app {
    uv_loop_t *loop;
    struct nmc_rt *rt;
    const struct nmc_config *cfg;
    struct nmc_db_pool *db;
    struct nmc_db_pool *db_slow;    /* one connection for long statements (rollups, gauges, retention,
                                       reports) and for what may wait on them (reporting's projections,
                                       whose day marks wait for a rollup's commit), so that nothing of
                                       the hot path waits behind one pipelined on its connection;
                                       NULL: db (nmc_app_db_slow) */
    struct nmc_http_server *http;   /* NULL when this instance serves no HTTP */
    int run_workers;                /* 1 when this instance runs background workers (role worker|all) */
    int ready;                      /* 1 once the database is reachable and migrations are current */
    int ops_flags_pending;          /* 1 until the conversation module has read ops_flags (not ready before) */
    void *modules[32];              /* module-private state, indexed by enum nmc_module_slot */
};

/* The pool for statements that may run long (see db_slow). */
static inline struct nmc_db_pool *nmc_app_db_slow(const struct nmc_app *app)
{
    return app->db_slow != NULL ? app->db_slow : app->db;
}

/* NOTIFY channel of ops_flags changes (migration 0039): the admin API
 * notifies it in the transaction that writes a flag; every instance's
 * conversation module listens and reads the flags again. */
#define NMC_OPS_FLAGS_CHANNEL "nmc_ops_flags"

enum nmc_module_slot {
    NMC_SLOT_IDENTITY = 0, NMC_SLOT_TELEPHONY, NMC_SLOT_CONVERSATION, NMC_SLOT_OUTBOX,
    NMC_SLOT_REPORTING, NMC_SLOT_CATALOG, NMC_SLOT_SCHEDULING, NMC_SLOT_MAINTENANCE,
    NMC_SLOT_PROVIDERS, NMC_SLOT_COMPLIANCE, NMC_SLOT_BILLING, NMC_SLOT_CALENDAR
};

/* Domain events (the audit spine). A module that changes state inserts its
 * event into outbox_events IN THE SAME TRANSACTION as the change:
 *   INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id,
 *                              correlation_id, causation_id) VALUES (...)
 * then, after COMMIT, sends NMC_MSG_OUTBOX_WAKE (no payload) to the actor
 * named "outbox" (if present) so the local instance dispatches at once;
 * other instances find the row by their slow poll. Each event's JSON Schema
 * lives in docs/events/<EventName>.v<schema_version>.json.
 *
 * The outbox actor delivers each event to every subscribed actor as
 * NMC_MSG_DOMAIN_EVENT (payload struct nmc_domain_event). The consumer MUST
 * answer with NMC_MSG_OUTBOX_ACK (payload struct nmc_outbox_ack) to the
 * "outbox" actor once its side effects are durable (status 0), or with an
 * error status to have the event retried with backoff. Consumers are
 * idempotent: delivery is at least once. */
enum nmc_app_msg_type {
    NMC_MSG_OUTBOX_WAKE = NMC_MSG_MODULE + 0,
    NMC_MSG_DOMAIN_EVENT = NMC_MSG_MODULE + 1,
    NMC_MSG_OUTBOX_ACK = NMC_MSG_MODULE + 2,
    NMC_MSG_CACHE_INVALIDATE = NMC_MSG_MODULE + 3, /* payload: NUL-terminated tenant id string */
    NMC_MSG_MODULE_PRIVATE = NMC_MSG_MODULE + 100  /* modules number their own types from here, in blocks of 100 */
};

struct nmc_domain_event {
    int64_t outbox_id;
    char event_id[37];
    char event_name[64];
    int schema_version;
    int attempts;          /* deliveries so far, including this one */
    char *payload_json;    /* owned by the message */
    int64_t created_at_ms; /* database time of the insert */
    /* Set only on a handoff (nmc_outbox_handoff_row): the subscriber that
     * already did its work in the event's own transaction. It gets no copy
     * but the flight still waits for its ack (nmc_outbox_ack). */
    struct nmc_actor *consumed_by;
};

struct nmc_outbox_ack {
    int64_t outbox_id;
    const char *subscriber; /* actor name (literal) */
    int status;             /* 0: done; else retry later (error text in error) */
    char error[200];
};

/* Subscribes actor to events named event_name ("*" for all). Available once
 * the outbox module is initialised (it is initialised before consumers). */
int nmc_outbox_subscribe(struct nmc_app *app, const char *event_name, struct nmc_actor *actor) __attribute__((weak));

/* Runs every module's init in order; the first failure stops and is returned. */
NMC_MUST_CHECK int nmc_app_init_modules(struct nmc_app *app);
/* Asks every module to stop timers and pollers (SIGTERM). */
void nmc_app_stop_modules(struct nmc_app *app);

#endif
