/* Private to actors/maintenance/: the actor's state and the jobs' steps.
 * Owner: sched engineer. */
#ifndef NMC_ACTORS_MAINTENANCE_INTERNAL_H
#define NMC_ACTORS_MAINTENANCE_INTERNAL_H

#include "actors/maintenance/maintenance.h"
#include "db/pool.h"

enum maint_timer { MAINT_TIMER_HOLD_GC = 1 };
enum maint_cookie { MAINT_DB_HOLD_GC = 1 };

struct maintenance {
    struct nmc_app *app;
    struct nmc_actor *actor;
    uint64_t hold_gc_timer;       /* pending timer id, 0 when none */
    int hold_gc_running;          /* a GC transaction is in flight */
};

/* Starts one GC round (timer fired). */
void nmc_maintenance_holds_gc_run(struct maintenance *mt);
/* Handles the round's result and arms the next timer. */
void nmc_maintenance_holds_gc_done(struct maintenance *mt, const struct nmc_db_result *res);
/* Arms the GC timer after delay_ms. */
void nmc_maintenance_holds_gc_schedule(struct maintenance *mt, uint64_t delay_ms);
void nmc_maintenance_holds_gc_metrics(void);

#endif
