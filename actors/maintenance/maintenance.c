/* The "maintenance" actor (actors/maintenance/maintenance.h): timers fire
 * housekeeping rounds; their database results come back here. Runs only on
 * instances with background workers. */
#include "actors/maintenance/internal.h"

#include <stdlib.h>

static void on_message(struct nmc_actor *self, struct nmc_msg *m, void *state)
{
    struct maintenance *mt = state;
    if (m->type == NMC_MSG_TIMER) {
        const struct nmc_rt_timer_fire *f = m->payload;
        if (f != NULL && f->cookie == MAINT_TIMER_HOLD_GC)
            nmc_maintenance_holds_gc_run(mt);
    } else if (m->type == NMC_MSG_DB_RESULT && m->cookie == MAINT_DB_HOLD_GC) {
        nmc_maintenance_holds_gc_done(mt, m->payload);
    }
}

int nmc_maintenance_init(struct nmc_app *app)
{
    if (!app->run_workers)
        return 0;
    struct maintenance *mt = nmc_xcalloc(1, sizeof(*mt));
    mt->app = app;
    int rc = nmc_rt_actor_create(app->rt, "maintenance", on_message, mt, 0, &mt->actor);
    if (rc != 0) {
        free(mt);
        return rc;
    }
    app->modules[NMC_SLOT_MAINTENANCE] = mt;
    nmc_maintenance_holds_gc_metrics();
    nmc_maintenance_holds_gc_schedule(mt, NMC_MAINT_HOLD_GC_FIRST_MS);
    return 0;
}

void nmc_maintenance_stop(struct nmc_app *app)
{
    struct maintenance *mt = app->modules[NMC_SLOT_MAINTENANCE];
    if (mt == NULL)
        return;
    if (mt->hold_gc_timer != 0)
        nmc_rt_timer_cancel(app->rt, mt->hold_gc_timer);
    free(mt);
    app->modules[NMC_SLOT_MAINTENANCE] = NULL;
}
