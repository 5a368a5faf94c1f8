/* Private to actors/maintenance/: the actor's state and the jobs' steps.
 * Owner: sched engineer. */
#ifndef NMC_ACTORS_MAINTENANCE_INTERNAL_H
#define NMC_ACTORS_MAINTENANCE_INTERNAL_H

#include "actors/maintenance/maintenance.h"
#include "db/pool.h"

/* The retention jobs (actors/maintenance/retention.c). */
enum maint_retention_job { MAINT_RETENTION_OUTBOX, MAINT_RETENTION_WEBHOOK, MAINT_RETENTION_NJOBS };

/* Timer and database cookies; a retention job's are the base plus its index. */
enum maint_timer { MAINT_TIMER_HOLD_GC = 1, MAINT_TIMER_RETENTION = 16 };
enum maint_cookie { MAINT_DB_HOLD_GC = 1, MAINT_DB_RETENTION = 16 };

struct maint_retention {
    uint64_t timer;  /* pending timer id, 0 when none */
    int running;     /* a round's transaction is in flight */
    int64_t cursor;  /* where the next round's walk starts; 0: the oldest row */
};

struct maintenance {
    struct nmc_app *app;
    struct nmc_actor *actor;
    uint64_t hold_gc_timer;       /* pending timer id, 0 when none */
    int hold_gc_running;          /* a GC transaction is in flight */
    struct maint_retention retention[MAINT_RETENTION_NJOBS];
};

/* Starts one GC round (timer fired). */
void nmc_maintenance_holds_gc_run(struct maintenance *mt);
/* Handles the round's result and arms the next timer. */
void nmc_maintenance_holds_gc_done(struct maintenance *mt, const struct nmc_db_result *res);
/* Arms the GC timer after delay_ms. */
void nmc_maintenance_holds_gc_schedule(struct maintenance *mt, uint64_t delay_ms);
void nmc_maintenance_holds_gc_metrics(void);

/* Starts one round of <job> (its timer fired); a round already in flight
 * makes this a no-op (its result arms the next timer). */
void nmc_maintenance_retention_run(struct maintenance *mt, enum maint_retention_job job);
/* Handles the round's result (<res> borrowed) and arms <job>'s next timer. */
void nmc_maintenance_retention_done(struct maintenance *mt, enum maint_retention_job job,
                                    const struct nmc_db_result *res);
/* Arms <job>'s timer after delay_ms unless one is pending. */
void nmc_maintenance_retention_schedule(struct maintenance *mt, enum maint_retention_job job, uint64_t delay_ms);
/* Cancels every retention timer (stop). */
void nmc_maintenance_retention_cancel(struct maintenance *mt);
/* Registers the retention metrics and their series at 0. */
void nmc_maintenance_retention_metrics(void);

#endif
