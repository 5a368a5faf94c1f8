/* The maintenance module: background housekeeping on worker instances
 * (role worker|all). Owner of the hold GC part: sched engineer
 * (actors/maintenance/holds_gc.c); actors/maintenance/maintenance.c holds
 * the "maintenance" actor and its timers.
 *
 * Hold GC (runbook section 1): every NMC_MAINT_HOLD_GC_INTERVAL_MS, one
 * transaction takes the advisory lock NMC_MAINT_HOLD_GC_LOCK with
 * pg_try_advisory_xact_lock (one instance at a time across the fleet; the
 * others skip that round), deletes up to NMC_MAINT_HOLD_GC_BATCH expired
 * holds leaving tombstones (so booking one still answers 410), and prunes
 * tombstones older than a day. A full batch schedules the next round at
 * once. Metrics: maintenance_holds_expired_total,
 * maintenance_hold_gc_runs_total{outcome="ran|locked|error"}. */
#ifndef NMC_ACTORS_MAINTENANCE_H
#define NMC_ACTORS_MAINTENANCE_H

#include "actors/app.h"

#define NMC_MAINT_HOLD_GC_INTERVAL_MS 30000
#define NMC_MAINT_HOLD_GC_FIRST_MS 2000
#define NMC_MAINT_HOLD_GC_AGAIN_MS 200
#define NMC_MAINT_HOLD_GC_BATCH 1000
#define NMC_MAINT_HOLD_GC_LOCK 7236040001LL

NMC_MUST_CHECK int nmc_maintenance_init(struct nmc_app *app);
void nmc_maintenance_stop(struct nmc_app *app);

#endif
