/* The scheduling module: resources with weekly business hours, availability
 * search, holds, bookings and appointments. Owner: sched engineer.
 * docs/api-scheduling.md lists the routes with their request and response
 * shapes; the invariants live in migrations/0021_scheduling.up.sql:
 *
 *   - nothing live overlaps on a resource: holds and booked appointments
 *     share sched_slots and its exclusion constraint (a violation answers
 *     409); an expired hold is deleted by the statement that inserts an
 *     overlapping one, in the same transaction, so it never blocks;
 *   - every time decision (hold expiry, "in the future") uses the database's
 *     now(); business hours are expanded to instants by PostgreSQL in the
 *     tenant's time zone, so DST changes keep local hours;
 *   - bookings are idempotent per (tenant, Idempotency-Key) and write the
 *     appointment, its price snapshot and AppointmentBooked in one
 *     transaction.
 *
 * The "scheduling" actor caches catalog items (duration, active) for the
 * availability search; NMC_MSG_CACHE_INVALIDATE (from catalog and the admin
 * tenant API) and CatalogUpdated events drop a tenant's entries.
 *
 * Metrics: scheduling_search_duration_ms, scheduling_book_duration_ms
 * (histograms of handler latency), booking_post_p95_ms (gauge, from the
 * booking histogram), scheduling_hold_success_total,
 * scheduling_hold_conflict_total, scheduling_book_conflict_total. */
#ifndef NMC_ACTORS_SCHEDULING_H
#define NMC_ACTORS_SCHEDULING_H

#include <stdint.h>
#include "actors/app.h"

#define NMC_SCHED_MAX_SEARCH_DAYS 31     /* availability window */
#define NMC_SCHED_MAX_LIST_DAYS 92       /* appointment listing window */
#define NMC_SCHED_MAX_SLOTS 2000         /* slots per availability answer ("truncated" past it) */
#define NMC_SCHED_MAX_APPOINTMENTS 1000  /* appointments per listing ("truncated" past it) */
#define NMC_SCHED_CACHE_TTL_MS 60000

NMC_MUST_CHECK int nmc_scheduling_init(struct nmc_app *app);
void nmc_scheduling_stop(struct nmc_app *app);

/* Parses an RFC 3339 date-time ("2026-03-08T08:00:00-05:00", "...Z",
 * optional fraction of up to 9 digits, 'T' or 't', 'Z' or 'z') into
 * milliseconds since the epoch (fractions below 1 ms are dropped). Years
 * 1970..9999. 0 or NMC_EINVAL. */
NMC_MUST_CHECK int nmc_scheduling_parse_rfc3339(const char *s, int64_t *ms);

#endif
