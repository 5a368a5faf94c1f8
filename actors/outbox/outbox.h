/* The outbox dispatcher (owner: perf engineer): delivers the domain events
 * of outbox_events to subscribed actors, at least once, across instances.
 *
 * Wake-ups: NMC_MSG_OUTBOX_WAKE from a local writer (the fast path: no
 * polling), a slow poll every OUTBOX_POLL_INTERVAL_MS (safety net), and
 * NOTIFY "nmc_outbox" from instances that write events but do not dispatch
 * (role web). Only instances with app->run_workers claim and dispatch.
 * Claims take up to OUTBOX_BATCH_SIZE rows with FOR UPDATE SKIP LOCKED and
 * a lease (locked_by, locked_until) renewed while the event is in flight;
 * a crashed instance's claims return when their lease expires. At most
 * OUTBOX_CONCURRENCY claims are outstanding. A failed delivery is retried
 * with exponential backoff and jitter; after OUTBOX_MAX_ATTEMPTS (or at
 * once for a permanent failure) the row moves to outbox_events_errors.
 *
 * Fast path (no claim round trip): a local writer that can inserts its
 * event already leased to this instance (locked_by = the owner from
 * nmc_outbox_lease_owner(), locked_until = now() + lease, attempts = 1) and,
 * after COMMIT, hands it over with nmc_outbox_handoff(); it is delivered at
 * once. If the handoff is lost (crash, full mailbox) the lease lapses and
 * any instance claims the event as usual (outbox_handoffs_total{event_name}
 * counts the fast deliveries). Settled events are marked
 * dispatched together, at most FINAL_DELAY_MS (20 ms) after they settle.
 *
 * Acks (actors/app.h): status 0 = done; NMC_OUTBOX_PERMANENT = the event can
 * never succeed (dead-letter now, no retry); any other error = retry later.
 * Tuning (validated at start-up by runtime/config.c): NMC_OUTBOX_LEASE_MS
 * (default 30000, 1000..600000), the claim lease. */
#ifndef NMC_ACTORS_OUTBOX_OUTBOX_H
#define NMC_ACTORS_OUTBOX_OUTBOX_H

#include <stdint.h>
#include <libpq-fe.h>
#include "actors/app.h"

#define NMC_OUTBOX_PERMANENT NMC_EGONE

NMC_MUST_CHECK int nmc_outbox_init(struct nmc_app *app);
/* Cancels the timers and frees the module's state: flights in progress
 * (their leases lapse and they are claimed again), the id index and the
 * subscriptions. The actor stays registered until nmc_rt_destroy() and
 * drops what still reaches it. Call before nmc_rt_stop(). */
void nmc_outbox_stop(struct nmc_app *app);

/* Graceful stop, before nmc_outbox_stop (SIGTERM, after HTTP has drained):
 * claims no more events, finalises settled flights at once and calls
 * done(ud) when no flight is left (every event this instance took is marked
 * dispatched, retried or dead) or after max_ms, whichever comes first; what
 * is still in flight then is left to its lease. done runs inside the
 * outbox's handler (or inside this call when nothing is in flight): it must
 * not stop the runtime there, only schedule it. NMC_ENOTFOUND without an
 * outbox module (done is not called). */
int nmc_outbox_drain(struct nmc_app *app, uint64_t max_ms, void (*done)(void *ud), void *ud);

/* Message type of a handoff (payload struct nmc_domain_event). */
#define NMC_MSG_OUTBOX_HANDOFF (NMC_MSG_MODULE_PRIVATE + 100 * NMC_SLOT_OUTBOX)

/* The lease owner (this instance's id, a string owned by the outbox) a
 * local writer puts in locked_by to hand its event over after COMMIT, with
 * the lease length in *lease_ms (may be NULL). NULL when this instance does
 * not dispatch (role web) or its outbox has stopped: insert the event
 * unleased and send NMC_MSG_OUTBOX_WAKE instead. */
const char *nmc_outbox_lease_owner(struct nmc_app *app, int64_t *lease_ms);

/* Hands an event inserted with nmc_outbox_lease_owner()'s lease to the
 * local dispatcher, after its COMMIT. Takes ev (payload_json owned,
 * attempts = 1); tenant, correlation id and trace context are copied from
 * ctx (may be NULL). Returns nmc_rt_send's result or NMC_ENOTFOUND; on
 * failure the event is delivered once its lease lapses. */
int nmc_outbox_handoff(struct nmc_rt *rt, struct nmc_domain_event *ev, const struct nmc_msg *ctx);
/* nmc_outbox_handoff() of the event a committed statement returned in row
 * 0, columns c..c+3 of r (id, event_id, payload as text, created_at in
 * epoch ms), named event_name, schema_version 1. consumed_by (may be NULL):
 * a subscriber that consumed the event in the same transaction and will
 * ack it as if delivered (it gets no copy); send it what it needs before
 * returning to the loop, so its ack cannot reach the outbox before the
 * handoff does. NMC_EINVAL when id, event_id or payload is NULL (nothing
 * handed over). */
int nmc_outbox_handoff_row(struct nmc_rt *rt, const PGresult *r, int c, const char *event_name,
                           const struct nmc_msg *ctx, struct nmc_actor *consumed_by);

/* Sends NMC_MSG_OUTBOX_WAKE to the local "outbox" actor, if there is one.
 * Call after the COMMIT that inserted events. */
void nmc_outbox_wake(struct nmc_rt *rt);

/* Answers a delivery: NMC_MSG_OUTBOX_ACK to "outbox" for outbox_id from the
 * actor named subscriber (a literal), with status and an error text (may be
 * NULL). Returns nmc_rt_send's result (NMC_ENOTFOUND without an outbox). */
int nmc_outbox_ack(struct nmc_rt *rt, int64_t outbox_id, const char *subscriber, int status, const char *error);

/* Delay before retry number attempts (>= 1 deliveries done): 500 ms doubled
 * per attempt, capped at 5 minutes, with equal jitter from unit in [0,1):
 * the result lies in [d/2, d). Pure, for tests. */
int64_t nmc_outbox_backoff_ms(int attempts, double unit);

/* Frees a struct nmc_domain_event (payload_free of NMC_MSG_DOMAIN_EVENT). */
void nmc_outbox_event_free(void *ev);

#endif
