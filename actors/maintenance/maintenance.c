/* The "maintenance" actor (actors/maintenance/maintenance.h): timers fire
 * housekeeping rounds; their database results come back here. Runs only on
 * instances with background workers. The actor's state is the app, not the
 * module: a round's result that arrives after nmc_maintenance_stop freed
 * the module finds the slot empty and is dropped. */
#include "actors/maintenance/internal.h"

#include <stdlib.h>

static void on_timer(struct maintenance *mt, const struct nmc_rt_timer_fire *f)
{
    if (f == NULL)
        return;
    if (f->cookie == MAINT_TIMER_HOLD_GC)
        nmc_maintenance_holds_gc_run(mt);
    else if (f->cookie >= MAINT_TIMER_RETENTION && f->cookie < MAINT_TIMER_RETENTION + MAINT_RETENTION_NJOBS)
        nmc_maintenance_retention_run(mt, (enum maint_retention_job)(f->cookie - MAINT_TIMER_RETENTION));
}

static void on_db_result(struct maintenance *mt, uint64_t cookie, const struct nmc_db_result *res)
{
    if (cookie == MAINT_DB_HOLD_GC)
        nmc_maintenance_holds_gc_done(mt, res);
    else if (cookie >= MAINT_DB_RETENTION && cookie < MAINT_DB_RETENTION + MAINT_RETENTION_NJOBS)
        nmc_maintenance_retention_done(mt, (enum maint_retention_job)(cookie - MAINT_DB_RETENTION), res);
}

static void on_message(struct nmc_actor *self, struct nmc_msg *m, void *state)
{
    struct maintenance *mt = ((struct nmc_app *)state)->modules[NMC_SLOT_MAINTENANCE];
    (void)self;
    if (mt == NULL)
        return; /* stopped */
    if (m->type == NMC_MSG_TIMER)
        on_timer(mt, m->payload);
    else if (m->type == NMC_MSG_DB_RESULT)
        on_db_result(mt, m->cookie, m->payload);
}

int nmc_maintenance_init(struct nmc_app *app)
{
    if (!app->run_workers)
        return 0;
    struct maintenance *mt = nmc_xcalloc(1, sizeof(*mt));
    mt->app = app;
    int rc = nmc_rt_actor_create(app->rt, "maintenance", on_message, app, 0, &mt->actor);
    if (rc != 0) {
        free(mt);
        return rc;
    }
    app->modules[NMC_SLOT_MAINTENANCE] = mt;
    nmc_maintenance_holds_gc_metrics();
    nmc_maintenance_retention_metrics();
    nmc_maintenance_holds_gc_schedule(mt, NMC_MAINT_HOLD_GC_FIRST_MS);
    for (int j = 0; j < MAINT_RETENTION_NJOBS; j++)
        nmc_maintenance_retention_schedule(mt, (enum maint_retention_job)j, NMC_MAINT_RETENTION_FIRST_MS);
    return 0;
}

void nmc_maintenance_stop(struct nmc_app *app)
{
    struct maintenance *mt = app->modules[NMC_SLOT_MAINTENANCE];
    if (mt == NULL)
        return;
    if (mt->hold_gc_timer != 0)
        nmc_rt_timer_cancel(app->rt, mt->hold_gc_timer);
    nmc_maintenance_retention_cancel(mt);
    free(mt);
    app->modules[NMC_SLOT_MAINTENANCE] = NULL;
}
