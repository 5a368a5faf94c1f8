/* The maintenance module: background housekeeping on worker instances
 * (role worker|all). Owner of the hold GC and retention parts: sched
 * engineer (actors/maintenance/holds_gc.c, retention.c);
 * actors/maintenance/maintenance.c holds the "maintenance" actor and its
 * timers.
 *
 * Hold GC (runbook section 1): every NMC_MAINT_HOLD_GC_INTERVAL_MS, one
 * transaction takes the advisory lock NMC_MAINT_HOLD_GC_LOCK with
 * pg_try_advisory_xact_lock (one instance at a time across the fleet; the
 * others skip that round), deletes up to NMC_MAINT_HOLD_GC_BATCH expired
 * holds leaving tombstones (so booking one still answers 410), and prunes
 * tombstones older than a day. A full batch schedules the next round at
 * once. Metrics: maintenance_holds_expired_total,
 * maintenance_hold_gc_runs_total{outcome="ran|locked|error"}.
 *
 * Retention (runbook section 8): two jobs, each with its own timer and
 * advisory lock, delete webhook_events received more than 90 days ago and
 * outbox_events dispatched more than 30 days ago (pending ones never), at
 * most NMC_MAINT_RETENTION_BATCH rows per round and transaction (SQL and
 * its bounds: actors/maintenance/retention_sql.h). A round that has more
 * to do runs the next one after NMC_MAINT_RETENTION_AGAIN_MS, otherwise
 * after NMC_MAINT_RETENTION_INTERVAL_MS. Metrics:
 * maintenance_retention_deleted_total{table},
 * maintenance_retention_runs_total{job,outcome="ok|locked|error"}. The
 * runbook's third job (conv_messages, 180 days, after KPI aggregation) has
 * no table of that name to apply to yet. */
#ifndef NMC_ACTORS_MAINTENANCE_H
#define NMC_ACTORS_MAINTENANCE_H

#include "actors/app.h"

#define NMC_MAINT_HOLD_GC_INTERVAL_MS 30000
#define NMC_MAINT_HOLD_GC_FIRST_MS 2000
#define NMC_MAINT_HOLD_GC_AGAIN_MS 200
#define NMC_MAINT_HOLD_GC_BATCH 1000
#define NMC_MAINT_HOLD_GC_LOCK 7236040001LL

#define NMC_MAINT_RETENTION_INTERVAL_MS 600000
#define NMC_MAINT_RETENTION_FIRST_MS 60000
#define NMC_MAINT_RETENTION_AGAIN_MS 1000
#define NMC_MAINT_RETENTION_BATCH 5000
#define NMC_MAINT_RETENTION_OUTBOX_LOCK 7236040002LL
#define NMC_MAINT_RETENTION_WEBHOOK_LOCK 7236040003LL

NMC_MUST_CHECK int nmc_maintenance_init(struct nmc_app *app);
void nmc_maintenance_stop(struct nmc_app *app);

#endif
