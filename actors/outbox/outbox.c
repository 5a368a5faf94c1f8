/* The outbox dispatcher (owner: perf engineer). See outbox.h.
 *
 * State machine of one event in this instance: claimed (lease held) ->
 * delivered to every subscriber -> all acks in -> finalised in the next
 * finalise statement (dispatched, retry later, or dead letter). Claims and
 * finalisations commit with synchronous_commit off: losing one in a crash
 * only means the event is delivered again, which consumers must tolerate
 * anyway, and it keeps an fsync off the first-SMS path. */
#include "actors/outbox/outbox.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/outbox/outbox_sql.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#define NOTIFY_CHANNEL NMC_OUTBOX_NOTIFY_CHANNEL
#define NOTIFY_MIN_INTERVAL_MS 20
#define ACK_TIMEOUT_MS (5 * 60 * 1000)
#define FINAL_MAX 500 /* events per finalise statement */
#define FINAL_DELAY_MS 20 /* settled events wait this long to share one finalise statement */

enum cookie {
    CK_CLAIM = 1, CK_FINAL, CK_RENEW, CK_GAUGES, CK_NOTIFY, CK_POLL_TIMER, CK_RENEW_TIMER, CK_NOTIFY_TIMER,
    CK_FINAL_TIMER, CK_DRAIN_TIMER
};

struct sub {
    struct sub *next;
    char event_name[64];
    struct nmc_actor *actor;
};

enum outcome { OUT_PENDING = 0, OUT_DONE, OUT_RETRY, OUT_DEAD };

struct flight {
    struct flight *next, *prev; /* o->flights, doubly linked: a settled flight leaves it in O(1) */
    struct flight *hnext;   /* chain of its slot in the id index */
    struct flight *snext;   /* o->settled, once it has an outcome */
    int64_t id;
    char event_name[64];
    int attempts;
    int acks_pending;
    int failed, permanent;
    char error[200];
    enum outcome outcome;
    int64_t deadline_ms;
};

struct outbox {
    struct nmc_app *app;
    struct nmc_actor *actor;
    char instance[NMC_ID_LEN];
    struct sub *subs;
    struct flight *flights; /* claimed and not yet finalised */
    struct flight *settled, *settled_tail; /* those with an outcome, oldest first: the finalise takes them
                                              without walking the pending ones (thousands at 2,000 calls/s) */
    struct flight **index;  /* by id: acks find their flight in O(1) (thousands fly at 2,000 calls/s) */
    size_t index_cap;       /* slots, a power of two, at least twice nflights */
    size_t nflights;
    size_t nfinal;          /* flights with an outcome, waiting for the finalise statement */
    int claims_inflight;
    int claim_again;
    int final_inflight;
    int renew_inflight;
    int gauges_inflight;
    int64_t last_notify_ms;
    uint64_t poll_timer, renew_timer, notify_timer, final_timer, drain_timer;
    int draining;                 /* nmc_outbox_drain: no more claims, finalise at once */
    void (*drained)(void *ud);    /* called once, when drained or at the deadline */
    void *drained_ud;
    int64_t drain_start_ms;
};

static struct {
    struct nmc_metric *lag, *attempts, *failures, *depth, *dead, *dead_now, *handoffs, *flights;
} M;

static void register_metrics(void)
{
    M.lag = nmc_metrics_gauge("outbox_dispatch_lag_seconds", "Now minus the oldest undispatched event's created_at",
                              NULL);
    M.attempts = nmc_metrics_counter("outbox_dispatch_attempts_total", "Event deliveries", "event_name");
    M.failures = nmc_metrics_counter("outbox_dispatch_failures_total", "Failed event deliveries", "event_name");
    M.depth = nmc_metrics_gauge("worker_queue_depth", "Outbox events not yet dispatched", NULL);
    M.dead = nmc_metrics_counter("outbox_dead_letters_total", "Events moved to outbox_events_errors", "event_name");
    M.dead_now = nmc_metrics_gauge("outbox_dead_letters", "Dead letters in outbox_events_errors, not requeued", NULL);
    M.flights = nmc_metrics_gauge("outbox_flights", "Events this instance holds (delivered, or settled and waiting"
                                  " for their finalise statement)", NULL);
    M.handoffs = nmc_metrics_counter("outbox_handoffs_total",
                                     "Events a local writer handed over after COMMIT (delivered with no claim)",
                                     "event_name");
}

int64_t nmc_outbox_backoff_ms(int attempts, double unit)
{
    const int64_t base = 500, cap = 5 * 60 * 1000;
    int64_t d = base;
    for (int i = 1; i < attempts && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    if (unit < 0 || unit >= 1)
        unit = 0;
    return d / 2 + (int64_t)((double)(d / 2) * unit);
}

void nmc_outbox_event_free(void *p)
{
    struct nmc_domain_event *ev = p;
    if (ev == NULL)
        return;
    free(ev->payload_json);
    free(ev);
}

void nmc_outbox_wake(struct nmc_rt *rt)
{
    struct nmc_actor *ob = nmc_rt_actor_find(rt, "outbox");
    if (ob != NULL)
        (void)nmc_rt_send(ob, nmc_rt_msg_new(NMC_MSG_OUTBOX_WAKE, NULL, NULL));
}

int nmc_outbox_ack(struct nmc_rt *rt, int64_t outbox_id, const char *subscriber, int status, const char *error)
{
    struct nmc_actor *ob = nmc_rt_actor_find(rt, "outbox");
    if (ob == NULL)
        return NMC_ENOTFOUND;
    struct nmc_outbox_ack *a = nmc_xcalloc(1, sizeof *a);
    a->outbox_id = outbox_id;
    a->subscriber = subscriber;
    a->status = status;
    if (error != NULL)
        nmc_strlcpy(a->error, error, sizeof a->error);
    return nmc_rt_send(ob, nmc_rt_msg_new(NMC_MSG_OUTBOX_ACK, a, free));
}

const char *nmc_outbox_lease_owner(struct nmc_app *app, int64_t *lease_ms)
{
    struct outbox *o = app != NULL ? app->modules[NMC_SLOT_OUTBOX] : NULL;
    if (o == NULL || !app->run_workers)
        return NULL;
    if (lease_ms != NULL)
        *lease_ms = app->cfg->outbox_lease_ms;
    return o->instance;
}

int nmc_outbox_handoff(struct nmc_rt *rt, struct nmc_domain_event *ev, const struct nmc_msg *ctx)
{
    struct nmc_msg *m = nmc_rt_msg_new(NMC_MSG_OUTBOX_HANDOFF, ev, nmc_outbox_event_free);
    if (ctx != NULL) {
        nmc_strlcpy(m->tenant_id, ctx->tenant_id, sizeof m->tenant_id);
        nmc_strlcpy(m->correlation_id, ctx->correlation_id, sizeof m->correlation_id);
        m->trace = ctx->trace;
    }
    struct nmc_actor *ob = nmc_rt_actor_find(rt, "outbox");
    if (ob == NULL) {
        nmc_rt_msg_free(m);
        return NMC_ENOTFOUND;
    }
    return nmc_rt_send(ob, m);
}

int nmc_outbox_handoff_row(struct nmc_rt *rt, const PGresult *r, int c, const char *event_name,
                           const struct nmc_msg *ctx, struct nmc_actor *consumed_by)
{
    const char *id = nmc_db_get(r, 0, c), *event_id = nmc_db_get(r, 0, c + 1), *payload = nmc_db_get(r, 0, c + 2);
    const char *created = nmc_db_get(r, 0, c + 3);
    if (id == NULL || event_id == NULL || payload == NULL)
        return NMC_EINVAL;
    struct nmc_domain_event *ev = nmc_xcalloc(1, sizeof *ev);
    ev->outbox_id = strtoll(id, NULL, 10);
    nmc_strlcpy(ev->event_id, event_id, sizeof ev->event_id);
    nmc_strlcpy(ev->event_name, event_name, sizeof ev->event_name);
    ev->schema_version = 1;
    ev->attempts = 1;
    ev->payload_json = nmc_xstrdup(payload);
    ev->created_at_ms = created != NULL ? strtoll(created, NULL, 10) : 0;
    ev->consumed_by = consumed_by;
    return nmc_outbox_handoff(rt, ev, ctx);
}

int nmc_outbox_subscribe(struct nmc_app *app, const char *event_name, struct nmc_actor *actor)
{
    struct outbox *o = app != NULL ? app->modules[NMC_SLOT_OUTBOX] : NULL;
    if (o == NULL || event_name == NULL || actor == NULL || strlen(event_name) >= sizeof o->subs->event_name)
        return NMC_EINVAL;
    struct sub *s = nmc_xcalloc(1, sizeof *s);
    nmc_strlcpy(s->event_name, event_name, sizeof s->event_name);
    s->actor = actor;
    struct sub **tail = &o->subs; /* delivery follows subscription order */
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = s;
    return 0;
}

/* ---- helpers ---- */

static int sub_matches(const struct sub *s, const char *event_name)
{
    return strcmp(s->event_name, "*") == 0 || strcmp(s->event_name, event_name) == 0;
}

static size_t index_slot(int64_t id, size_t cap)
{
    return (size_t)(((uint64_t)id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
}

static struct flight *flight_find(struct outbox *o, int64_t id)
{
    if (o->index_cap == 0)
        return NULL;
    for (struct flight *f = o->index[index_slot(id, o->index_cap)]; f != NULL; f = f->hnext)
        if (f->id == id)
            return f;
    return NULL;
}

/* Indexes f, which is not yet on o->flights; grows the index (rehashing
 * every flight of the list) when it would pass half full. */
static void flight_index(struct outbox *o, struct flight *f)
{
    if (2 * (o->nflights + 1) > o->index_cap) {
        size_t cap = o->index_cap != 0 ? 2 * o->index_cap : 1024;
        free(o->index);
        o->index = nmc_xcalloc(cap, sizeof *o->index);
        o->index_cap = cap;
        for (struct flight *g = o->flights; g != NULL; g = g->next) {
            size_t k = index_slot(g->id, cap);
            g->hnext = o->index[k];
            o->index[k] = g;
        }
    }
    size_t k = index_slot(f->id, o->index_cap);
    f->hnext = o->index[k];
    o->index[k] = f;
}

static void flight_unindex(struct outbox *o, struct flight *f)
{
    for (struct flight **pp = &o->index[index_slot(f->id, o->index_cap)]; *pp != NULL; pp = &(*pp)->hnext) {
        if (*pp == f) {
            *pp = f->hnext;
            return;
        }
    }
}

static void log_db_error(const char *event, const struct nmc_db_result *res)
{
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_ERROR, "outbox", event);
    nmc_log_str(r, "sqlstate", res->sqlstate);
    nmc_log_error(r, res->status, res->message);
    nmc_log_end(r);
}

static const PGresult *last_result(const struct nmc_db_result *res, size_t want_index, size_t nstmts)
{
    size_t k = res->nresults >= nstmts + 2 ? want_index + 1 : want_index;
    return k < res->nresults ? res->results[k] : NULL;
}

static void schedule_finalise(struct outbox *o);
static void try_claim(struct outbox *o);

/* ---- claim and deliver ---- */

static void try_claim(struct outbox *o)
{
    const struct nmc_config *c = o->app->cfg;
    size_t cap = (size_t)c->outbox_batch_size * (size_t)c->outbox_concurrency;
    size_t busy = o->nflights - o->nfinal; /* settled flights only wait for their finalise statement */
    if (!o->app->run_workers || o->draining)
        return;
    if (o->claims_inflight >= c->outbox_concurrency || busy >= cap) {
        o->claim_again = 1;
        return;
    }
    size_t limit = cap - busy;
    if (limit > (size_t)c->outbox_batch_size)
        limit = (size_t)c->outbox_batch_size;
    char slimit[24], slease[24];
    snprintf(slimit, sizeof slimit, "%zu", limit);
    snprintf(slease, sizeof slease, "%d", o->app->cfg->outbox_lease_ms);
    struct nmc_db_stmt st[2] = {
        { "outbox_async_commit", NMC_OUTBOX_SQL_ASYNC_COMMIT, 0, { NULL } },
        { "outbox_claim", NMC_OUTBOX_SQL_CLAIM, 3, { o->instance, slimit, slease } },
    };
    o->claim_again = 0;
    if (nmc_db_txn(o->app->db, o->actor, CK_CLAIM, NULL, st, 2) == 0)
        o->claims_inflight++;
}

/* Sends each matching subscriber its own copy of ev (payload_json is
 * borrowed); tenant, correlation id and trace come from ctx. */
static void deliver(struct outbox *o, struct flight *f, const struct nmc_domain_event *ev, const struct nmc_msg *ctx)
{
    for (struct sub *s = o->subs; s != NULL; s = s->next) {
        if (!sub_matches(s, f->event_name))
            continue;
        if (ev->consumed_by != NULL && s->actor == ev->consumed_by) {
            f->acks_pending++; /* did its part in the event's transaction; its ack is on the way */
            continue;
        }
        struct nmc_domain_event *copy = nmc_xmalloc(sizeof *copy);
        *copy = *ev;
        copy->consumed_by = NULL;
        copy->attempts = f->attempts;
        copy->payload_json = nmc_xstrdup(ev->payload_json != NULL ? ev->payload_json : "{}");
        struct nmc_msg *m = nmc_rt_msg_new(NMC_MSG_DOMAIN_EVENT, copy, nmc_outbox_event_free);
        nmc_strlcpy(m->tenant_id, ctx->tenant_id, sizeof m->tenant_id);
        nmc_strlcpy(m->correlation_id, ctx->correlation_id, sizeof m->correlation_id);
        nmc_strlcpy(m->causation_id, copy->event_id, sizeof m->causation_id);
        m->trace = ctx->trace;
        m->cookie = (uint64_t)f->id;
        f->acks_pending++;
        if (nmc_rt_send(s->actor, m) != 0) {
            f->acks_pending--;
            f->failed = 1;
            nmc_strlcpy(f->error, "subscriber mailbox full", sizeof f->error);
        }
    }
}

static void flight_settle(struct outbox *o, struct flight *f);

/* Starts the flight of an event this instance holds the lease of and
 * delivers it; a second start of the same id (our own lease lapsed and we
 * claimed it again) is ignored: one delivery at a time is enough. */
static void flight_start(struct outbox *o, const struct nmc_domain_event *ev, const struct nmc_msg *ctx)
{
    if (flight_find(o, ev->outbox_id) != NULL)
        return;
    struct flight *f = nmc_xcalloc(1, sizeof *f);
    f->id = ev->outbox_id;
    nmc_strlcpy(f->event_name, ev->event_name, sizeof f->event_name);
    f->attempts = ev->attempts;
    f->deadline_ms = nmc_clock_now_ms() + ACK_TIMEOUT_MS;
    flight_index(o, f);
    f->next = o->flights;
    if (o->flights != NULL)
        o->flights->prev = f;
    o->flights = f;
    o->nflights++;
    nmc_metrics_set(M.flights, NULL, (double)o->nflights);
    const char *labels[] = { f->event_name };
    nmc_metrics_add(M.attempts, labels, 1);
    deliver(o, f, ev, ctx);
    if (f->acks_pending == 0)
        flight_settle(o, f);
}

static void on_claimed_row(struct outbox *o, const PGresult *r, int row)
{
    struct nmc_domain_event ev = { 0 };
    struct nmc_msg ctx = { 0 };
    ev.outbox_id = strtoll(nmc_db_get(r, row, 0), NULL, 10);
    nmc_strlcpy(ev.event_id, nmc_db_get(r, row, 1), sizeof ev.event_id);
    nmc_strlcpy(ev.event_name, nmc_db_get(r, row, 2), sizeof ev.event_name);
    ev.schema_version = (int)strtol(nmc_db_get(r, row, 3), NULL, 10);
    ev.attempts = (int)strtol(nmc_db_get(r, row, 4), NULL, 10);
    ev.payload_json = (char *)nmc_db_get(r, row, 5); /* borrowed: deliver() copies it */
    ev.created_at_ms = strtoll(nmc_db_get(r, row, 9), NULL, 10);
    const char *tenant = nmc_db_get(r, row, 6), *corr = nmc_db_get(r, row, 7);
    nmc_strlcpy(ctx.tenant_id, tenant != NULL ? tenant : "", sizeof ctx.tenant_id);
    nmc_strlcpy(ctx.correlation_id, corr != NULL ? corr : "", sizeof ctx.correlation_id);
    flight_start(o, &ev, &ctx);
}

/* The fast path: a local writer inserted the event already leased to us
 * and handed it over after its COMMIT (nmc_outbox_handoff). */
static void on_handoff(struct outbox *o, const struct nmc_msg *msg)
{
    const struct nmc_domain_event *ev = msg->payload;
    if (ev == NULL || ev->outbox_id <= 0)
        return;
    const char *labels[] = { ev->event_name };
    nmc_metrics_add(M.handoffs, labels, 1);
    flight_start(o, ev, msg);
}

static void on_claim_done(struct outbox *o, const struct nmc_db_result *res)
{
    o->claims_inflight--;
    if (res->status != 0) {
        log_db_error("outbox.claim_failed", res);
        return; /* the next wake or poll claims again */
    }
    const PGresult *r = last_result(res, 1, 2);
    int n = r != NULL ? PQntuples(r) : 0;
    for (int i = n - 1; i >= 0; i--) /* RETURNING order is not guaranteed; ids ascend mostly */
        on_claimed_row(o, r, i);
    if (n > 0 && (size_t)n >= (size_t)o->app->cfg->outbox_batch_size)
        o->claim_again = 1; /* a full batch: there is probably more */
    if (o->claim_again)
        try_claim(o);
}

/* ---- acks and outcomes ---- */

static void flight_settle(struct outbox *o, struct flight *f)
{
    const struct nmc_config *c = o->app->cfg;
    if (!f->failed) {
        f->outcome = OUT_DONE;
    } else {
        const char *labels[] = { f->event_name };
        nmc_metrics_add(M.failures, labels, 1);
        f->outcome = f->permanent || f->attempts >= c->outbox_max_attempts ? OUT_DEAD : OUT_RETRY;
        struct nmc_log_rec *r = nmc_log_begin(f->outcome == OUT_DEAD ? NMC_LOG_ERROR : NMC_LOG_WARN, "outbox",
                                              f->outcome == OUT_DEAD ? "outbox.dead_letter" : "outbox.retry");
        nmc_log_str(r, "event_name", f->event_name);
        nmc_log_int(r, "outbox_id", f->id);
        nmc_log_int(r, "attempts", f->attempts);
        nmc_log_msgf(r, "%s", f->error);
        nmc_log_end(r);
    }
    if (o->settled_tail != NULL)
        o->settled_tail->snext = f;
    else
        o->settled = f;
    o->settled_tail = f;
    o->nfinal++;
}

static void on_ack(struct outbox *o, const struct nmc_outbox_ack *a)
{
    struct flight *f = flight_find(o, a->outbox_id);
    if (f == NULL || f->outcome != OUT_PENDING || f->acks_pending <= 0)
        return; /* late ack after a timeout or a duplicate: ignore */
    f->acks_pending--;
    if (a->status != 0) {
        f->failed = 1;
        f->permanent |= a->status == NMC_OUTBOX_PERMANENT;
        struct nmc_buf e = { 0 };
        nmc_buf_printf(&e, "%s: %s", a->subscriber != NULL ? a->subscriber : "?",
                       a->error[0] ? a->error : nmc_strerror(a->status));
        nmc_strlcpy(f->error, e.data, sizeof f->error);
        nmc_buf_free(&e);
    }
    if (f->acks_pending == 0)
        flight_settle(o, f);
}

/* ---- finalise: one statement set per flush ---- */

static void array_add_text(struct nmc_buf *b, const char *s)
{
    nmc_buf_puts(b, b->len > 1 ? ",\"" : "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            nmc_buf_append(b, "\\", 1);
        nmc_buf_append(b, s, 1);
    }
    nmc_buf_puts(b, "\"");
}

struct final_arrays {
    struct nmc_buf done, retry_ids, retry_delays, retry_errors, dead_ids, dead_errors;
};

static void final_collect(struct outbox *o, struct final_arrays *fa)
{
    struct nmc_buf *all[] = { &fa->done, &fa->retry_ids, &fa->retry_delays, &fa->retry_errors, &fa->dead_ids,
                              &fa->dead_errors };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(all); i++)
        nmc_buf_puts(all[i], "{");
    size_t taken = 0;
    while (o->settled != NULL && taken < FINAL_MAX) {
        struct flight *f = o->settled;
        o->settled = f->snext;
        if (o->settled == NULL)
            o->settled_tail = NULL;
        if (f->outcome == OUT_DONE) {
            nmc_buf_printf(&fa->done, "%s%lld", fa->done.len > 1 ? "," : "", (long long)f->id);
        } else if (f->outcome == OUT_RETRY) {
            nmc_buf_printf(&fa->retry_ids, "%s%lld", fa->retry_ids.len > 1 ? "," : "", (long long)f->id);
            nmc_buf_printf(&fa->retry_delays, "%s%lld", fa->retry_delays.len > 1 ? "," : "",
                           (long long)nmc_outbox_backoff_ms(f->attempts, nmc_rng_unit()));
            array_add_text(&fa->retry_errors, f->error);
        } else {
            const char *labels[] = { f->event_name };
            nmc_metrics_add(M.dead, labels, 1);
            nmc_buf_printf(&fa->dead_ids, "%s%lld", fa->dead_ids.len > 1 ? "," : "", (long long)f->id);
            array_add_text(&fa->dead_errors, f->error);
        }
        if (f->prev != NULL)
            f->prev->next = f->next;
        else
            o->flights = f->next;
        if (f->next != NULL)
            f->next->prev = f->prev;
        flight_unindex(o, f);
        free(f);
        o->nflights--;
        o->nfinal--;
        taken++;
    }
    nmc_metrics_set(M.flights, NULL, (double)o->nflights);
    for (size_t i = 0; i < NMC_ARRAY_SIZE(all); i++)
        nmc_buf_puts(all[i], "}");
}

static void final_free(struct final_arrays *fa)
{
    nmc_buf_free(&fa->done);
    nmc_buf_free(&fa->retry_ids);
    nmc_buf_free(&fa->retry_delays);
    nmc_buf_free(&fa->retry_errors);
    nmc_buf_free(&fa->dead_ids);
    nmc_buf_free(&fa->dead_errors);
}

static void finalise(struct outbox *o)
{
    struct final_arrays fa = { 0 };
    final_collect(o, &fa);
    const struct nmc_db_stmt all[5] = {
        { "outbox_async_commit", NMC_OUTBOX_SQL_ASYNC_COMMIT, 0, { NULL } },
        { "outbox_done", NMC_OUTBOX_SQL_DONE, 2, { fa.done.data, o->instance } },
        { "outbox_retry", NMC_OUTBOX_SQL_RETRY, 4,
          { fa.retry_ids.data, fa.retry_delays.data, fa.retry_errors.data, o->instance } },
        { "outbox_dead", NMC_OUTBOX_SQL_DEAD, 2, { fa.dead_ids.data, fa.dead_errors.data } },
        { "outbox_async_generic", NMC_OUTBOX_SQL_ASYNC_GENERIC, 0, { NULL } },
    };
    /* Only the statements with ids ("{}" is empty): an empty retry array
     * still made the planner scan outbox_events (13 ms per finalise at
     * 2,000 calls/s). Dead letters are rare and must not vanish: only they
     * commit durably. */
    int dead = fa.dead_ids.len > 2;
    struct nmc_db_stmt st[4];
    size_t n = 0;
    if (!dead)
        st[n++] = fa.retry_ids.len > 2 ? all[0] : all[4];
    if (fa.done.len > 2)
        st[n++] = all[1];
    if (fa.retry_ids.len > 2)
        st[n++] = all[2];
    if (dead)
        st[n++] = all[3];
    if (n > (dead ? 0u : 1u) && nmc_db_txn(o->app->db, o->actor, CK_FINAL, NULL, st, n) == 0)
        o->final_inflight++;
    final_free(&fa);
}

static void start_timer(struct outbox *o, uint64_t ms, enum cookie ck, uint64_t *id);

/* Settled flights share one finalise statement: at once when FINAL_MAX
 * wait, else FINAL_DELAY_MS after the first settled, so a
 * busy instance writes one statement per FINAL_DELAY_MS rather than one
 * per loop turn. Marking an event dispatched is on no latency path (the
 * lease keeps other instances off it meanwhile). */
static void schedule_finalise(struct outbox *o)
{
    if (o->nfinal == 0 || o->final_inflight > 0)
        return;
    if (o->nfinal >= FINAL_MAX || o->draining) {
        nmc_rt_timer_cancel(o->app->rt, o->final_timer);
        o->final_timer = 0;
        finalise(o);
    } else if (o->final_timer == 0) {
        start_timer(o, FINAL_DELAY_MS, CK_FINAL_TIMER, &o->final_timer);
    }
}

static void on_final_done(struct outbox *o, const struct nmc_db_result *res)
{
    o->final_inflight--;
    if (res->status != 0)
        log_db_error("outbox.finalise_failed", res); /* leases lapse; the events are delivered again */
    schedule_finalise(o);
    if (o->claim_again)
        try_claim(o); /* a claim waited for room */
}

/* ---- leases, poll, notify ---- */

static void renew(struct outbox *o)
{
    int64_t now = nmc_clock_now_ms();
    struct nmc_buf ids = { 0 };
    nmc_buf_puts(&ids, "{");
    for (struct flight *f = o->flights; f != NULL; f = f->next) {
        if (f->outcome == OUT_PENDING && f->deadline_ms < now) {
            f->failed = 1;
            f->acks_pending = 0;
            nmc_strlcpy(f->error, "ack timeout", sizeof f->error);
            flight_settle(o, f);
            continue;
        }
        nmc_buf_printf(&ids, "%s%lld", ids.len > 1 ? "," : "", (long long)f->id);
    }
    nmc_buf_puts(&ids, "}");
    char slease[24];
    snprintf(slease, sizeof slease, "%d", o->app->cfg->outbox_lease_ms);
    struct nmc_db_stmt st = { "outbox_renew", NMC_OUTBOX_SQL_RENEW, 3, { ids.data, o->instance, slease } };
    if (ids.len > 2 && o->renew_inflight == 0 && nmc_db_query(o->app->db, o->actor, CK_RENEW, NULL, &st) == 0)
        o->renew_inflight++;
    nmc_buf_free(&ids);
    schedule_finalise(o);
}

static void poll_gauges(struct outbox *o)
{
    struct nmc_db_stmt st = { "outbox_gauges", NMC_OUTBOX_SQL_GAUGES, 0, { NULL } };
    if (o->gauges_inflight == 0 && nmc_db_query(nmc_app_db_slow(o->app), o->actor, CK_GAUGES, NULL, &st) == 0)
        o->gauges_inflight++;
}

static void on_gauges_done(struct outbox *o, const struct nmc_db_result *res)
{
    o->gauges_inflight--;
    const PGresult *r = res->status == 0 && res->nresults > 0 ? res->results[res->nresults - 1] : NULL;
    if (r == NULL || PQntuples(r) < 1)
        return;
    nmc_metrics_set(M.depth, NULL, strtod(nmc_db_get(r, 0, 0), NULL));
    nmc_metrics_set(M.lag, NULL, strtod(nmc_db_get(r, 0, 1), NULL));
    nmc_metrics_set(M.dead_now, NULL, strtod(nmc_db_get(r, 0, 2), NULL));
}

/* A web-only instance cannot dispatch: it tells the workers, at most once
 * per NOTIFY_MIN_INTERVAL_MS and never inside the writer's transaction. */
static void notify_workers(struct outbox *o)
{
    int64_t now = nmc_clock_now_ms();
    if (now - o->last_notify_ms < NOTIFY_MIN_INTERVAL_MS) {
        if (o->notify_timer == 0 &&
            nmc_rt_timer_start(o->actor, (uint64_t)(NOTIFY_MIN_INTERVAL_MS - (now - o->last_notify_ms)),
                               CK_NOTIFY_TIMER, &o->notify_timer) != 0)
            o->notify_timer = 0;
        return;
    }
    o->last_notify_ms = now;
    struct nmc_db_stmt st = { "outbox_notify", NMC_OUTBOX_SQL_NOTIFY, 1, { NOTIFY_CHANNEL } };
    if (nmc_db_query(o->app->db, o->actor, CK_NOTIFY, NULL, &st) != 0)
        o->last_notify_ms = 0; /* the slow poll of the workers still finds the events */
}

static void start_timer(struct outbox *o, uint64_t ms, enum cookie ck, uint64_t *id)
{
    if (nmc_rt_timer_start(o->actor, ms, ck, id) != 0)
        *id = 0;
}

/* Calls the drain callback once; o may be freed by it. */
static void drain_finish(struct outbox *o)
{
    if (o->drained == NULL)
        return;
    void (*done)(void *) = o->drained;
    o->drained = NULL;
    nmc_rt_timer_cancel(o->app->rt, o->drain_timer);
    o->drain_timer = 0;
    struct nmc_log_rec *r = nmc_log_begin(o->nflights > 0 ? NMC_LOG_WARN : NMC_LOG_INFO, "outbox", "outbox.drained");
    nmc_log_int(r, "flights_left_to_lease", (int64_t)o->nflights);
    nmc_log_int(r, "ms", (int64_t)(nmc_clock_mono_ns() / 1000000u) - o->drain_start_ms);
    nmc_log_end(r);
    done(o->drained_ud);
}

/* Drained: no flight left and no statement that could add or settle one. */
static void drain_check(struct outbox *o)
{
    if (o->drained != NULL && o->nflights == 0 && o->final_inflight == 0 && o->claims_inflight == 0)
        drain_finish(o);
}

int nmc_outbox_drain(struct nmc_app *app, uint64_t max_ms, void (*done)(void *ud), void *ud)
{
    struct outbox *o = app->modules[NMC_SLOT_OUTBOX];
    if (o == NULL || done == NULL)
        return NMC_ENOTFOUND;
    o->draining = 1;
    o->drained = done;
    o->drained_ud = ud;
    o->drain_start_ms = (int64_t)(nmc_clock_mono_ns() / 1000000u); /* a duration: never the wall clock */
    nmc_rt_timer_cancel(app->rt, o->poll_timer);
    o->poll_timer = 0;
    start_timer(o, max_ms, CK_DRAIN_TIMER, &o->drain_timer);
    schedule_finalise(o);
    drain_check(o);
    return 0;
}

static void on_timer(struct outbox *o, const struct nmc_rt_timer_fire *t)
{
    switch (t->cookie) {
    case CK_POLL_TIMER:
        o->poll_timer = 0;
        try_claim(o);
        poll_gauges(o);
        start_timer(o, (uint64_t)o->app->cfg->outbox_poll_interval_ms, CK_POLL_TIMER, &o->poll_timer);
        break;
    case CK_RENEW_TIMER:
        o->renew_timer = 0;
        renew(o);
        start_timer(o, (uint64_t)(o->app->cfg->outbox_lease_ms / 3), CK_RENEW_TIMER, &o->renew_timer);
        break;
    case CK_NOTIFY_TIMER:
        o->notify_timer = 0;
        notify_workers(o);
        break;
    case CK_FINAL_TIMER:
        o->final_timer = 0;
        if (o->nfinal > 0 && o->final_inflight == 0)
            finalise(o);
        break;
    case CK_DRAIN_TIMER:
        o->drain_timer = 0;
        drain_finish(o);
        break;
    default:
        break;
    }
}

static void on_db_result(struct outbox *o, const struct nmc_msg *msg)
{
    const struct nmc_db_result *res = msg->payload;
    switch (msg->cookie) {
    case CK_CLAIM:
        on_claim_done(o, res);
        break;
    case CK_FINAL:
        on_final_done(o, res);
        break;
    case CK_RENEW:
        o->renew_inflight--;
        if (res->status != 0)
            log_db_error("outbox.renew_failed", res);
        break;
    case CK_GAUGES:
        on_gauges_done(o, res);
        break;
    default:
        break;
    }
}

/* The actor's state is the app, not the module: the module is looked up
 * per message so that nothing reads it once nmc_outbox_stop() has freed it.
 * Mail arriving after stop (late database results and timers, acks,
 * handoffs, wakes) is dropped; the runtime frees each message and its
 * payload, and the events concerned are claimed again once their lease
 * lapses. */
static void on_message(struct nmc_actor *self, struct nmc_msg *msg, void *state)
{
    struct outbox *o = ((struct nmc_app *)state)->modules[NMC_SLOT_OUTBOX];
    if (o == NULL)
        return;
    switch (msg->type) {
    case NMC_MSG_OUTBOX_WAKE:
    case NMC_MSG_DB_NOTIFY:
        if (o->app->run_workers)
            try_claim(o);
        else if (msg->type == NMC_MSG_OUTBOX_WAKE)
            notify_workers(o);
        break;
    case NMC_MSG_OUTBOX_ACK:
        on_ack(o, msg->payload);
        break;
    case NMC_MSG_OUTBOX_HANDOFF:
        on_handoff(o, msg);
        break;
    case NMC_MSG_DB_RESULT:
        on_db_result(o, msg);
        break;
    case NMC_MSG_TIMER:
        on_timer(o, msg->payload);
        break;
    default:
        break;
    }
    if (nmc_rt_actor_depth(self) == 0) {
        schedule_finalise(o);
        drain_check(o); /* its callback only schedules the stop (outbox.h) */
    }
}

static int start_workers(struct outbox *o)
{
    int rc = nmc_db_listen(o->app->db, NOTIFY_CHANNEL, o->actor);
    if (rc != 0)
        return rc;
    start_timer(o, (uint64_t)o->app->cfg->outbox_poll_interval_ms, CK_POLL_TIMER, &o->poll_timer);
    start_timer(o, (uint64_t)(o->app->cfg->outbox_lease_ms / 3), CK_RENEW_TIMER, &o->renew_timer);
    /* events left by a previous run are claimed now, not after one poll */
    return nmc_rt_send(o->actor, nmc_rt_msg_new(NMC_MSG_OUTBOX_WAKE, NULL, NULL));
}

int nmc_outbox_init(struct nmc_app *app)
{
    struct outbox *o = nmc_xcalloc(1, sizeof *o);
    o->app = app;
    nmc_id_uuid4(o->instance);
    register_metrics();
    /* NMC_OUTBOX_LEASE_MS is validated by runtime/config.c */
    int rc = nmc_rt_actor_create(app->rt, "outbox", on_message, app, 0, &o->actor);
    if (rc != 0) {
        free(o);
        return rc;
    }
    app->modules[NMC_SLOT_OUTBOX] = o;
    if (app->run_workers)
        rc = start_workers(o);
    return rc;
}

/* Frees everything the module owns, at once: the actor and the runtime
 * outlive the module (nmc_rt_stop comes later), and what still reaches the
 * actor finds the slot empty (on_message). Flights are abandoned, settled
 * or not: their leases lapse and any instance claims them again (delivery
 * is at least once; consumers are idempotent). Work in the database is
 * abandoned with them. */
void nmc_outbox_stop(struct nmc_app *app)
{
    struct outbox *o = app->modules[NMC_SLOT_OUTBOX];
    if (o == NULL)
        return;
    app->modules[NMC_SLOT_OUTBOX] = NULL;
    nmc_rt_timer_cancel(app->rt, o->poll_timer);
    nmc_rt_timer_cancel(app->rt, o->renew_timer);
    nmc_rt_timer_cancel(app->rt, o->notify_timer);
    nmc_rt_timer_cancel(app->rt, o->final_timer);
    nmc_rt_timer_cancel(app->rt, o->drain_timer);
    while (o->flights != NULL) {
        struct flight *f = o->flights;
        o->flights = f->next;
        free(f);
    }
    free(o->index);
    while (o->subs != NULL) {
        struct sub *s = o->subs;
        o->subs = s->next;
        free(s);
    }
    free(o);
}
