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
    struct nmc_http_server *http;   /* NULL when this instance serves no HTTP */
    int run_workers;                /* 1 when this instance runs background workers (role worker|all) */
    int ready;                      /* 1 once the database is reachable and migrations are current */
    void *modules[32];              /* module-private state, indexed by enum nmc_module_slot */
};

enum nmc_module_slot {
    NMC_SLOT_IDENTITY = 0, NMC_SLOT_TELEPHONY, NMC_SLOT_CONVERSATION, NMC_SLOT_OUTBOX,
    NMC_SLOT_REPORTING, NMC_SLOT_CATALOG, NMC_SLOT_SCHEDULING, NMC_SLOT_MAINTENANCE,
    NMC_SLOT_PROVIDERS, NMC_SLOT_COMPLIANCE, NMC_SLOT_BILLING, NMC_SLOT_CALENDAR
};

/* Runs every module's init in order; the first failure stops and is returned. */
NMC_MUST_CHECK int nmc_app_init_modules(struct nmc_app *app);
/* Asks every module to stop timers and pollers (SIGTERM). */
void nmc_app_stop_modules(struct nmc_app *app);

#endif
