/* Reporting (owners: sms engineer for the first-response tracker, report
 * engineer for appointments, attribution and daily rollups).
 *
 * The actor "reporting" consumes from the outbox, idempotently per event_id
 * (ledger reporting_processed_events, migration 0030):
 *   CallDetected, ConversationStarted, FirstReplySent: mark the tenant's
 *     local day dirty; ConversationStarted and FirstReplySent also count
 *     kpi_conversations_started_total and kpi_first_replies_sent_total;
 *   AppointmentBooked: reporting_appointments with the price snapshot,
 *     kpi_appointments_booked_total, and when the customer's phone (or the
 *     booking's conversation_id) belongs to a conversation started by a
 *     missed call in the 30 days before the booking, a row of
 *     reporting_attributions and kpi_attributed_revenue_cents_total;
 *   AppointmentCancelled: cancelled_at (retried until its booking is
 *     projected), kpi_appointments_cancelled_total.
 * On instances that run workers it refreshes slo_first_sms_p95_seconds every
 * 10 s (P95 over the first_responses triggered in the last 15 minutes, database time,
 * at most the newest NMC_REPORTING_SLO_MAX_SAMPLES of them) and
 * recomputes dirty (tenant, day) rollups into reporting_daily every
 * NMC_REPORTING_ROLLUP_MS (default 5000; every second cost a day's
 * recompute per second, ~8% of PostgreSQL's CPU at 50 calls/s) (one INSERT
 * ... ON CONFLICT DO UPDATE per batch of 100 days) when it marked some
 * itself, else every NMC_REPORTING_SWEEP_MS (default 30000); both
 * 1000..3600000, a bad value fails start-up naming the variable. The
 * same transaction prunes ledger rows older than 35 days.
 *
 * Route: GET /v1/reports/daily?from=YYYY-MM-DD&to=YYYY-MM-DD (at most 92
 * days, OWNER, TECH or X-API-Key) answers {"days":[...]}, one object per day
 * of the range, zeros for days without data.
 * Metrics: reporting_projector_lag_seconds (now - created_at of the last
 * event applied, at the time it was applied) and
 * reporting_projection_errors_total{projector} (activity, appointments,
 * daily_rollup). */
#ifndef NMC_ACTORS_REPORTING_REPORTING_H
#define NMC_ACTORS_REPORTING_REPORTING_H

#include <stddef.h>
#include <jansson.h>
#include "actors/app.h"
#include "db/pool.h"

#define NMC_REPORTING_MAX_DAYS 92

NMC_MUST_CHECK int nmc_reporting_init(struct nmc_app *app);
/* Cancels the timers and frees the module's state and its jobs (work in the
 * database is abandoned; the outbox redelivers unacked events). The actor
 * stays registered until nmc_rt_destroy() and drops what still reaches it
 * (a report request gets 503); call before nmc_rt_stop(). */
void nmc_reporting_stop(struct nmc_app *app);

/* Checks a report range: from and to are dates "YYYY-MM-DD", from <= to,
 * at most NMC_REPORTING_MAX_DAYS days inclusive. 0, or NMC_EINVAL with a
 * message naming the problem in err. */
int nmc_reporting_parse_range(const char *from, const char *to, char *err, size_t errlen);

enum nmc_reporting_projector { NMC_REPORTING_ACTIVITY = 1, NMC_REPORTING_APPOINTMENTS };

#define NMC_REPORTING_FIELD_MAX 64 /* bytes of a payload field reporting uses (UUIDs, timestamps) */

/* The statement that applies one domain event (its params point into doc or
 * fields, into ev and into price: keep them until submitted, and do not copy
 * the struct). */
struct nmc_reporting_event {
    enum nmc_reporting_projector projector;
    int kind;                /* which event: 1 booked, 2 cancelled, 3 started, 4 first reply, 5 call */
    struct nmc_db_stmt stmt;
    json_t *doc;             /* appointment events: the parsed payload */
    char fields[2][NMC_REPORTING_FIELD_MAX + 1]; /* activity events: tenant_id and the event's time */
    char price[24];
};

/* Builds the statement for ev. 0; NMC_ENOTFOUND for an event reporting does
 * not consume; NMC_EINVAL (message in err) for a payload missing a field it
 * needs. Release with nmc_reporting_event_clear (also after a failure). */
int nmc_reporting_event_build(const struct nmc_domain_event *ev, struct nmc_reporting_event *out, char *err,
                              size_t errlen);
void nmc_reporting_event_clear(struct nmc_reporting_event *e);
/* The key under which activity marks of one projection batch share a
 * statement: the tenant and the UTC quarter hour of the event's time
 * ("YYYY-MM-DDTHH:MM...Z", as producers write it). Every zone offset in use
 * is a whole number of quarter hours, so two times of one quarter hour fall
 * on the same local day, which is all a mark records. 1 with the key in
 * key (n bytes); 0 when e is not an activity mark or its time has another
 * shape (that mark gets its own statement). */
int nmc_reporting_activity_key(const struct nmc_reporting_event *e, char *key, size_t n);

#define NMC_REPORTING_BATCH_STMTS 64    /* NMC_DB_MAX_STMTS: statements of one projection batch */
#define NMC_REPORTING_SLO_MAX_SAMPLES 20000 /* newest first responses slo_first_sms_p95_seconds reads at most */

/* The daily rollup recomputes each marked tenant-day from all its rows:
 * ~2.5 us a first response, so a day of one busy tenant (a load test at
 * 2,000 calls/s makes 1.2 million rows in 10 minutes) takes seconds. Its
 * duty cycle is capped: after a rollup that took took_ms, finished at
 * finished_ms, the next starts no earlier than the returned time
 * (finished_ms + NMC_REPORTING_ROLLUP_IDLE_FACTOR * took_ms, i.e. the rollup
 * uses at most 1/(1 + factor) of the time, 5%); the figures of such a day
 * then lag by 19 times the rollup instead of NMC_REPORTING_ROLLUP_MS. */
#define NMC_REPORTING_ROLLUP_IDLE_FACTOR 19
int64_t nmc_reporting_rollup_resume_ms(int64_t finished_ms, int64_t took_ms);
#define NMC_REPORTING_BATCH_EVENTS 2048 /* events of one projection batch */

/* Plans one projection batch over the n waiting events evs, oldest first:
 * takes them in order while they fit in NMC_REPORTING_BATCH_EVENTS events
 * and NMC_REPORTING_BATCH_STMTS statements, where an activity mark whose
 * key (nmc_reporting_activity_key) an earlier taken event has shares that
 * event's statement and every other event needs its own. Returns how many
 * are taken; stmt_of[i] is event i's statement (0 .. *nstmts - 1, numbered
 * in order of first use). stmt_of holds at least
 * min(n, NMC_REPORTING_BATCH_EVENTS) entries. */
size_t nmc_reporting_batch_plan(const struct nmc_reporting_event *const *evs, size_t n, size_t *stmt_of,
                                size_t *nstmts);

#endif
