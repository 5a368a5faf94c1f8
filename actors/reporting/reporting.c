/* Reporting (owners: sms engineer, report engineer). See reporting.h. */
#include "actors/reporting/internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/outbox/outbox.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#define REFRESH_MS 10000
#define ROLLUP_BATCH "100"
#define CK_REFRESH 1
#define CK_ROLLUP 2
#define CK_FLUSH 3
/* Projections are on no latency path: events wait up to this long to share
 * one transaction (three events per missed call; at 500 calls/s one
 * transaction per event cost more database CPU than the events' work). */
#define FLUSH_DELAY_MS 20
#define FIRST_JOB_ID 16

#define STR_(x) #x
#define STR(x) STR_(x)

/* The newest NMC_REPORTING_SLO_MAX_SAMPLES first responses triggered in the
 * last 15 minutes and queued: over the whole window the statement cost grew
 * with traffic (1.1 s, with JIT, for the 1.8 million replies of 15 minutes at
 * 2,000 calls/s, every 10 s on every instance); capped it reads one index
 * range backwards, 27 ms at that volume, and below 22 replies/s it is the
 * whole window. The window is by trigger time, written when the reply is
 * inserted: an index on the queue time, written when Twilio answers, would
 * make that update rewrite every index of the row (migration 0040). */
#define SQL_P95 \
    "SELECT COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY s), 0)::float8, count(*) FROM (" \
    " SELECT extract(epoch FROM first_queued_at - triggered_at) AS s FROM first_responses" \
    " WHERE triggered_at > now() - interval '15 minutes' AND first_queued_at IS NOT NULL" \
    " ORDER BY triggered_at DESC LIMIT " STR(NMC_REPORTING_SLO_MAX_SAMPLES) ") w"

/* The rollup, as one transaction: claim up to a batch of dirty days (rows
 * other instances claim are skipped), recompute them from a snapshot taken
 * after the claim, delete them. A writer marking a claimed day waits for the
 * commit and then marks it afresh, so no new data is left uncounted. */
#define SQL_CLAIM \
    "UPDATE reporting_dirty_days d SET claimed_xid = txid_current() FROM (SELECT tenant_id, day" \
    " FROM reporting_dirty_days ORDER BY marked_at LIMIT " ROLLUP_BATCH " FOR UPDATE SKIP LOCKED) c" \
    " WHERE d.tenant_id = c.tenant_id AND d.day = c.day"

#define SQL_LATENCY "GREATEST(0, extract(epoch FROM fr.first_queued_at - fr.triggered_at))::float8"

#define SQL_RECOMPUTE \
    "INSERT INTO reporting_daily AS r (tenant_id, day, calls_detected, conversations_started, first_replies," \
    " first_response_p50_seconds, first_response_p95_seconds, appointments_booked, appointments_cancelled," \
    " attributed_revenue_cents, updated_at)" \
    " SELECT d.tenant_id, d.day," \
    " (SELECT count(*) FROM missed_calls m WHERE m.tenant_id = d.tenant_id AND m.detected_at >= w.lo" \
    " AND m.detected_at < w.hi)," \
    " (SELECT count(*) FROM conversations c WHERE c.tenant_id = d.tenant_id AND c.opened_at >= w.lo" \
    " AND c.opened_at < w.hi)," \
    " f.n, f.p50, f.p95," \
    " (SELECT count(*) FROM reporting_appointments a WHERE a.tenant_id = d.tenant_id AND a.booked_at >= w.lo" \
    " AND a.booked_at < w.hi)," \
    " (SELECT count(*) FROM reporting_appointments a WHERE a.tenant_id = d.tenant_id AND a.cancelled_at >= w.lo" \
    " AND a.cancelled_at < w.hi)," \
    " (SELECT COALESCE(sum(x.price_cents), 0) FROM reporting_attributions x JOIN reporting_appointments a" \
    " ON a.appointment_id = x.appointment_id WHERE a.tenant_id = d.tenant_id AND a.booked_at >= w.lo" \
    " AND a.booked_at < w.hi AND a.cancelled_at IS NULL)," \
    " now()" \
    " FROM reporting_dirty_days d JOIN tenants t ON t.id = d.tenant_id" \
    " CROSS JOIN LATERAL (SELECT d.day::timestamp AT TIME ZONE t.timezone AS lo," \
    " (d.day + 1)::timestamp AT TIME ZONE t.timezone AS hi) w" \
    " CROSS JOIN LATERAL (SELECT count(*) AS n," \
    " percentile_cont(0.5) WITHIN GROUP (ORDER BY " SQL_LATENCY ") AS p50," \
    " percentile_cont(0.95) WITHIN GROUP (ORDER BY " SQL_LATENCY ") AS p95" \
    " FROM first_responses fr WHERE fr.tenant_id = d.tenant_id AND fr.triggered_at >= w.lo" \
    " AND fr.triggered_at < w.hi AND fr.first_queued_at IS NOT NULL) f" \
    " WHERE d.claimed_xid = txid_current()" \
    " ON CONFLICT (tenant_id, day) DO UPDATE SET calls_detected = EXCLUDED.calls_detected," \
    " conversations_started = EXCLUDED.conversations_started, first_replies = EXCLUDED.first_replies," \
    " first_response_p50_seconds = EXCLUDED.first_response_p50_seconds," \
    " first_response_p95_seconds = EXCLUDED.first_response_p95_seconds," \
    " appointments_booked = EXCLUDED.appointments_booked, appointments_cancelled = EXCLUDED.appointments_cancelled," \
    " attributed_revenue_cents = EXCLUDED.attributed_revenue_cents, updated_at = EXCLUDED.updated_at"

#define SQL_UNMARK "DELETE FROM reporting_dirty_days WHERE claimed_xid = txid_current()"

/* The ledger (appointment events only) keeps 35 days: appointments are
 * protected by their natural key beyond that. */
#define SQL_PRUNE \
    "DELETE FROM reporting_processed_events WHERE event_id IN (SELECT event_id FROM reporting_processed_events" \
    " WHERE processed_at < now() - interval '35 days' LIMIT 5000)"

static struct {
    struct nmc_metric *p95, *window;
    struct nmc_metric *booked, *cancelled, *revenue, *lag, *errors, *rollup_seconds;
} M;

static void register_metrics(void)
{
    M.p95 = nmc_metrics_gauge("slo_first_sms_p95_seconds",
                              "P95 of missed call/inbound SMS to first reply queued, last 15 minutes "
                              "(at most the newest " STR(NMC_REPORTING_SLO_MAX_SAMPLES) " replies)", NULL);
    M.window = nmc_metrics_gauge("slo_first_sms_window_samples",
                                 "First responses in the P95 window (" STR(NMC_REPORTING_SLO_MAX_SAMPLES)
                                 ": the window is shorter than 15 minutes)",
                                 NULL);
    M.booked = nmc_metrics_counter("kpi_appointments_booked_total", "Appointments booked", NULL);
    M.cancelled = nmc_metrics_counter("kpi_appointments_cancelled_total", "Appointments cancelled", NULL);
    M.revenue = nmc_metrics_counter("kpi_attributed_revenue_cents_total",
                                    "Price snapshots of bookings attributed to a missed-call conversation", NULL);
    M.lag = nmc_metrics_gauge("reporting_projector_lag_seconds",
                              "Now minus created_at of the last domain event reporting applied, when applied", NULL);
    M.errors = nmc_metrics_counter("reporting_projection_errors_total", "Reporting projection failures",
                                   "projector");
    M.rollup_seconds = nmc_metrics_gauge("reporting_rollup_seconds",
                                         "Duration of this instance's last daily rollup (the next waits 19 times "
                                         "as long at least)", NULL);
}

static void projection_error(const char *projector, int status, const char *message)
{
    const char *v[] = {projector};
    nmc_metrics_add(M.errors, v, 1);
    struct nmc_log_rec *l = nmc_log_begin(NMC_LOG_WARN, "reporting", "projection.failed");
    nmc_log_str(l, "projector", projector);
    nmc_log_error(l, status, message);
    nmc_log_end(l);
}

/* ---- jobs ----------------------------------------------------------- */

struct report_job *nmc_reporting_job_new(int is_http)
{
    struct report_job *j = nmc_xcalloc(1, sizeof *j);
    j->is_http = is_http;
    return j;
}

void nmc_reporting_job_track(struct reporting *r, struct report_job *job)
{
    job->id = r->next_id++;
    job->next = r->live.next;
    job->prev = &r->live;
    r->live.next->prev = job;
    r->live.next = job;
}

void nmc_reporting_job_free(struct report_job *job)
{
    if (job == NULL)
        return;
    if (job->next != NULL) {
        job->prev->next = job->next;
        job->next->prev = job->prev;
    }
    nmc_reporting_event_clear(&job->e);
    nmc_trace_span_end(job->span);
    free(job);
}

static struct report_job *job_find(struct reporting *r, uint64_t id)
{
    for (struct report_job *j = r->live.next; j != &r->live; j = j->next)
        if (j->id == id)
            return j;
    return NULL;
}

/* ---- first-response SLO ------------------------------------------------ */

static void refresh(struct reporting *r)
{
    struct nmc_db_stmt st = { "reporting_p95", SQL_P95, 0, { NULL } };
    if (r->p95_inflight == 0 && nmc_db_query(nmc_app_db_slow(r->app), r->actor, CK_REFRESH, NULL, &st) == 0)
        r->p95_inflight = 1;
}

static void on_p95(struct reporting *r, const struct nmc_db_result *res)
{
    r->p95_inflight = 0;
    const PGresult *pr = res->status == 0 && res->nresults > 0 ? res->results[res->nresults - 1] : NULL;
    if (pr == NULL || PQntuples(pr) < 1) {
        struct nmc_log_rec *l = nmc_log_begin(NMC_LOG_WARN, "reporting", "slo.refresh_failed");
        nmc_log_error(l, res->status, res->message);
        nmc_log_end(l);
        return;
    }
    nmc_metrics_set(M.p95, NULL, strtod(nmc_db_get(pr, 0, 0), NULL));
    nmc_metrics_set(M.window, NULL, strtod(nmc_db_get(pr, 0, 1), NULL));
}

/* ---- daily rollups ---------------------------------------------------- */

static int64_t mono_ms(void)
{
    return (int64_t)(nmc_clock_mono_ns() / 1000000u);
}

static void rollup(struct reporting *r)
{
    static const struct nmc_db_stmt st[] = {
        { "reporting_claim", SQL_CLAIM, 0, { NULL } },
        { "reporting_recompute", SQL_RECOMPUTE, 0, { NULL } },
        { "reporting_unmark", SQL_UNMARK, 0, { NULL } },
        { "reporting_prune", SQL_PRUNE, 0, { NULL } },
    };
    if (r->rollup_inflight || nmc_db_txn(nmc_app_db_slow(r->app), r->actor, CK_ROLLUP, NULL, st, NMC_ARRAY_SIZE(st)) != 0)
        return;
    r->rollup_inflight = 1;
    r->rollup_started_ms = mono_ms();
    r->dirty_local = 0;
    r->sweep_ticks = 0;
}

int64_t nmc_reporting_rollup_resume_ms(int64_t finished_ms, int64_t took_ms)
{
    return finished_ms + NMC_REPORTING_ROLLUP_IDLE_FACTOR * (took_ms > 0 ? took_ms : 0);
}

static void on_rollup(struct reporting *r, const struct nmc_db_result *res)
{
    r->rollup_inflight = 0;
    int64_t now = mono_ms(), took = now - r->rollup_started_ms;
    r->rollup_resume_ms = nmc_reporting_rollup_resume_ms(now, took);
    nmc_metrics_set(M.rollup_seconds, NULL, (double)took / 1000.0);
    if (res->status != 0 || res->nresults < 4) {
        projection_error("daily_rollup", res->status != 0 ? res->status : NMC_EDB, res->message);
        r->dirty_local = 1; /* the marks are still there: try again on the next tick */
        return;
    }
    /* results: claim, recompute, unmark, prune */
    const char *n = PQcmdTuples(res->results[0]);
    if (n != NULL && strcmp(n, ROLLUP_BATCH) == 0)
        r->dirty_local = 1; /* a full batch: more may be waiting */
}

/* ---- domain events ---------------------------------------------------- */

static void ack(struct reporting *r, int64_t outbox_id, int status, const char *error)
{
    (void)nmc_outbox_ack(r->app->rt, outbox_id, "reporting", status, error);
}

static const char *projector_name(enum nmc_reporting_projector p)
{
    return p == NMC_REPORTING_APPOINTMENTS ? "appointments" : "activity";
}

static void queue_push(struct reporting *r, struct report_job *j)
{
    j->next = &r->queue;
    j->prev = r->queue.prev;
    r->queue.prev->next = j;
    r->queue.prev = j;
}

static void fail_batch(struct reporting *r, int status, const char *message)
{
    for (size_t i = 0; i < r->nbatch; i++) {
        projection_error(projector_name(r->batch[i]->e.projector), status, message);
        nmc_trace_span_error(r->batch[i]->span, message != NULL && message[0] ? message : nmc_strerror(status));
        ack(r, r->batch[i]->ev.outbox_id, status, message);
        nmc_reporting_job_free(r->batch[i]);
    }
    r->nbatch = 0;
    r->batch_cookie = 0;
}

/* Waiting events, counted up to NMC_REPORTING_BATCH_STMTS (enough to know a batch
 * need not wait for company). */
static size_t queued(const struct reporting *r)
{
    size_t n = 0;
    for (const struct report_job *j = r->queue.next; j != &r->queue && n < NMC_REPORTING_BATCH_STMTS; j = j->next)
        n++;
    return n;
}

/* Sends the waiting events as one batch (a transaction when several), unless
 * one is in the database already: its completion sends the next.
 * A batch takes waiting events oldest first while they fit: up to
 * NMC_REPORTING_BATCH_EVENTS events, and a new statement only while fewer than
 * NMC_REPORTING_BATCH_STMTS are taken (an activity mark whose tenant and quarter hour
 * the batch has already shares that one). With one event per statement a
 * batch held 64 events, and one batch in flight applied ~64 per round trip:
 * at 2,000 calls/s (6,000 events/s) that fell behind as soon as the round
 * trip passed 10 ms, and the waiting events (each with its parsed payload)
 * and the outbox flights waiting for their acks grew to ~50,000 and ~200 MiB
 * of RSS at 2,200 calls/s offered. */
static void flush(struct reporting *r)
{
    struct nmc_db_stmt st[NMC_REPORTING_BATCH_STMTS];
    if (r->batch_cookie != 0 || r->queue.next == &r->queue)
        return;
    if (queued(r) < NMC_REPORTING_BATCH_STMTS && !r->flush_due) {
        /* wait for company, at most FLUSH_DELAY_MS */
        if (r->flush_timer == 0 && nmc_rt_timer_start(r->actor, FLUSH_DELAY_MS, CK_FLUSH, &r->flush_timer) != 0)
            r->flush_timer = 0;
        if (r->flush_timer != 0)
            return;
    }
    r->flush_due = 0;
    if (r->flush_timer != 0) {
        nmc_rt_timer_cancel(r->app->rt, r->flush_timer);
        r->flush_timer = 0;
    }
    const struct nmc_reporting_event *evs[NMC_REPORTING_BATCH_EVENTS];
    size_t n = 0;
    for (struct report_job *j = r->queue.next; j != &r->queue && n < NMC_REPORTING_BATCH_EVENTS; j = j->next)
        evs[n++] = &j->e;
    size_t taken = nmc_reporting_batch_plan(evs, n, r->stmt_of, &r->nstmts), next_stmt = 0;
    for (r->nbatch = 0; r->nbatch < taken; r->nbatch++) {
        struct report_job *j = r->queue.next;
        j->prev->next = j->next;
        j->next->prev = j->prev;
        j->prev = j->next = NULL;
        r->batch[r->nbatch] = j;
        if (r->stmt_of[r->nbatch] == next_stmt) /* numbered in order of first use: this event's is new */
            st[next_stmt++] = j->e.stmt;
    }
    struct nmc_msg ctx; /* the database spans nest under the first event's */
    memset(&ctx, 0, sizeof ctx);
    ctx.trace = r->batch[0]->span->ctx;
    r->batch_cookie = r->next_id++;
    /* On the slow pool, with the rollup: an activity mark of a day the rollup
     * has claimed waits for the rollup's commit (SQL_CLAIM), and on a hot
     * connection every webhook pipelined behind the mark waited with it. */
    struct nmc_db_pool *pool = nmc_app_db_slow(r->app);
    int rc = r->nstmts == 1 ? nmc_db_query(pool, r->actor, r->batch_cookie, &ctx, st)
                            : nmc_db_txn(pool, r->actor, r->batch_cookie, &ctx, st, r->nstmts);
    if (rc != 0)
        fail_batch(r, rc, "reporting: could not submit the projection");
}

static void on_event(struct reporting *r, const struct nmc_msg *msg)
{
    const struct nmc_domain_event *ev = msg->payload;
    struct report_job *j = nmc_reporting_job_new(0);
    char err[200] = "";
    j->ev = *ev;
    j->ev.payload_json = NULL; /* the message's: only read while building */
    struct nmc_domain_event with_payload = j->ev;
    with_payload.payload_json = ev->payload_json;
    int rc = nmc_reporting_event_build(&with_payload, &j->e, err, sizeof err);
    if (rc == 0) {
        j->e.stmt.params[0] = j->ev.event_id; /* point at the job's copies, not the local */
        j->e.stmt.params[1] = j->ev.event_name;
        j->span = nmc_trace_span_start("reporting.project", &msg->trace);
        nmc_trace_span_attr(j->span, "event_id", ev->event_id);
        nmc_trace_span_attr(j->span, "event_name", ev->event_name);
        nmc_trace_span_attr(j->span, "correlation_id", msg->correlation_id);
        queue_push(r, j);
        flush(r);
        return;
    }
    if (rc == NMC_ENOTFOUND) {
        ack(r, ev->outbox_id, 0, NULL); /* not ours (a "*" subscription): nothing to do */
    } else {
        projection_error(j->e.projector == 0 ? "activity" : projector_name(j->e.projector), rc, err);
        ack(r, ev->outbox_id, NMC_OUTBOX_PERMANENT, err);
    }
    nmc_reporting_job_free(j);
}

static int64_t col(const PGresult *pr, int c)
{
    const char *v = nmc_db_get(pr, 0, c);
    return v != NULL ? strtoll(v, NULL, 10) : 0;
}

/* Counts what the statement applied (nothing for a redelivery). */
static void count_applied(struct reporting *r, const struct report_job *j, int64_t fresh, int64_t applied,
                          int64_t third)
{
    if (fresh == 0)
        return;
    r->dirty_local = 1;
    if (j->e.kind == 1 && applied > 0) {
        nmc_metrics_inc(M.booked);
        nmc_metrics_add(M.revenue, NULL, (double)third);
    } else if (j->e.kind == 2 && applied > 0) {
        nmc_metrics_inc(M.cancelled);
    }
}

static void on_applied(struct reporting *r, struct report_job *j, const PGresult *pr)
{
    if (pr == NULL || PQntuples(pr) != 1) {
        projection_error(projector_name(j->e.projector), NMC_EDB, "no result row");
        nmc_trace_span_error(j->span, "the projection answered no row");
        ack(r, j->ev.outbox_id, NMC_EDB, "reporting: the projection answered no row");
    } else if (j->e.kind == 2 && col(pr, 2) == 0) {
        /* The cancellation overtook its booking (or the booking is dead-lettered): retry with backoff. */
        nmc_trace_span_attr(j->span, "retry", "booking not projected yet");
        ack(r, j->ev.outbox_id, NMC_ENOTFOUND, "reporting: the cancelled appointment is not projected yet");
    } else {
        count_applied(r, j, col(pr, 0), col(pr, 1), col(pr, 2));
        double lag = (double)(nmc_clock_now_ms() - j->ev.created_at_ms) / 1000.0;
        nmc_metrics_set(M.lag, NULL, lag > 0 ? lag : 0);
        ack(r, j->ev.outbox_id, 0, NULL);
    }
    nmc_reporting_job_free(j);
}

/* One batch came back: all applied (one result each) or none (a
 * transaction rolls back whole; every event is retried). */
static void on_batch(struct reporting *r, const struct nmc_db_result *res)
{
    if (res->status != 0 || res->nresults != r->nstmts) {
        fail_batch(r, res->status != 0 ? res->status : NMC_EDB, res->message);
    } else {
        for (size_t i = 0; i < r->nbatch; i++)
            on_applied(r, r->batch[i], res->results[r->stmt_of[i]]);
        r->nbatch = 0;
        r->batch_cookie = 0;
    }
    flush(r);
}

static void on_db(struct reporting *r, const struct nmc_msg *msg)
{
    if (msg->cookie == CK_REFRESH) {
        on_p95(r, msg->payload);
        return;
    }
    if (msg->cookie == CK_ROLLUP) {
        on_rollup(r, msg->payload);
        return;
    }
    if (msg->cookie == r->batch_cookie && r->batch_cookie != 0) {
        on_batch(r, msg->payload);
        return;
    }
    struct report_job *j = job_find(r, msg->cookie);
    if (j != NULL)
        nmc_reporting_report_done(r, j, msg->payload);
}

/* ---- actor ------------------------------------------------------------- */

static void arm(struct reporting *r, uint64_t cookie)
{
    uint64_t *id = cookie == CK_REFRESH ? &r->p95_timer : &r->rollup_timer;
    uint64_t ms = cookie == CK_REFRESH ? REFRESH_MS : (uint64_t)r->app->cfg->reporting_rollup_ms;
    if (nmc_rt_timer_start(r->actor, ms, cookie, id) != 0)
        *id = 0;
}

static void on_timer(struct reporting *r, uint64_t cookie)
{
    if (cookie == CK_FLUSH) {
        r->flush_timer = 0;
        r->flush_due = 1;
        flush(r);
        return;
    }
    if (cookie == CK_REFRESH) {
        r->p95_timer = 0;
        refresh(r);
    } else {
        r->rollup_timer = 0;
        /* the marks wait while the last rollup's idle time runs (duty cap) */
        if (mono_ms() >= r->rollup_resume_ms && (r->dirty_local || ++r->sweep_ticks >= r->sweep_every))
            rollup(r);
    }
    arm(r, cookie);
}

/* Mail that reaches the actor after nmc_reporting_stop() freed the state
 * (between stop and nmc_rt_stop): late database results, events the
 * outbox redelivers after its lease, a report request the auth step let
 * through (answered 503). The runtime frees each message and its payload. */
static void on_stopped(struct nmc_msg *msg)
{
    if (msg->type == MSG_REPORT_REQ && msg->payload != NULL) {
        const struct report_job *j = msg->payload;
        (void)nmc_http_reply_error(j->auth.handle, 503, "unavailable", "the server is shutting down; retry");
    }
}

/* The actor's state is the app, not the module: the module is looked up
 * per message so that nothing reads it once stop has freed it. */
static void on_message(struct nmc_actor *self, struct nmc_msg *msg, void *state)
{
    struct reporting *r = ((struct nmc_app *)state)->modules[NMC_SLOT_REPORTING];
    (void)self;
    if (r == NULL) {
        on_stopped(msg);
        return;
    }
    switch (msg->type) {
    case NMC_MSG_DOMAIN_EVENT:
        on_event(r, msg);
        break;
    case NMC_MSG_DB_RESULT:
        on_db(r, msg);
        break;
    case NMC_MSG_TIMER:
        on_timer(r, msg->cookie);
        break;
    case MSG_REPORT_REQ: {
        struct report_job *j = msg->payload;
        msg->payload = NULL; /* the request lives until it is answered */
        nmc_reporting_report_start(r, j);
        break;
    }
    default:
        break;
    }
}

static int subscribe(struct nmc_app *app, struct reporting *r)
{
    static const char *const names[] = {"ConversationStarted", "FirstReplySent", "CallDetected",
                                        "AppointmentBooked", "AppointmentCancelled"};
    int rc = 0;
    for (size_t i = 0; rc == 0 && nmc_outbox_subscribe != NULL && i < NMC_ARRAY_SIZE(names); i++)
        rc = nmc_outbox_subscribe(app, names[i], r->actor);
    return rc;
}

int nmc_reporting_init(struct nmc_app *app)
{
    struct reporting *r = nmc_xcalloc(1, sizeof *r);
    r->app = app;
    r->next_id = FIRST_JOB_ID;
    r->live.next = r->live.prev = &r->live;
    r->queue.next = r->queue.prev = &r->queue;
    register_metrics();
    /* NMC_REPORTING_SWEEP_MS and NMC_REPORTING_ROLLUP_MS (validated by
     * runtime/config.c): how often days marked dirty by other instances (or
     * left by a crash) are looked for when this instance marked none, in
     * rollup ticks. */
    r->sweep_every = app->cfg->reporting_sweep_ms / app->cfg->reporting_rollup_ms;
    if (r->sweep_every < 1)
        r->sweep_every = 1;
    int rc = nmc_identity_auth_init(app);
    if (rc == 0)
        rc = nmc_rt_actor_create(app->rt, "reporting", on_message, app, 0, &r->actor);
    if (rc == 0)
        rc = subscribe(app, r);
    if (rc != 0) {
        free(r);
        return rc;
    }
    app->modules[NMC_SLOT_REPORTING] = r;
    if (app->run_workers) {
        refresh(r); /* the gauge is right from the start, not 10 s later */
        arm(r, CK_REFRESH);
        arm(r, CK_ROLLUP);
    }
    return app->http != NULL ? nmc_reporting_routes(r) : 0;
}

/* Frees everything the module owns, at once: the actor and the runtime
 * outlive the module (nmc_rt_stop comes later), and what still reaches the
 * actor finds the slot empty (on_stopped). Work in the database is
 * abandoned: its events are redelivered by the outbox after the lease, its
 * report requests are answered by the HTTP server's shutdown. */
void nmc_reporting_stop(struct nmc_app *app)
{
    struct reporting *r = app->modules[NMC_SLOT_REPORTING];
    if (r == NULL)
        return;
    app->modules[NMC_SLOT_REPORTING] = NULL;
    nmc_rt_timer_cancel(app->rt, r->p95_timer);
    nmc_rt_timer_cancel(app->rt, r->rollup_timer);
    nmc_rt_timer_cancel(app->rt, r->flush_timer);
    while (r->live.next != &r->live)
        nmc_reporting_job_free(r->live.next);
    while (r->queue.next != &r->queue)
        nmc_reporting_job_free(r->queue.next);
    for (size_t i = 0; i < r->nbatch; i++)
        nmc_reporting_job_free(r->batch[i]);
    free(r);
    nmc_identity_auth_stop(app);
}
