/* The "scheduling" actor (actors/scheduling/scheduling.h): receives
 * authenticated requests from the routes, runs their batch, turns the row
 * the SQL returns into an HTTP answer, and keeps the catalog item cache used
 * by the availability search. */
#include "actors/scheduling/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#define NS_PER_MS 1000000ull
#define CACHE_MAX_TENANTS 10000
#define SCHED_MAX_RETRIES 3 /* deadlock or serialization failure: runs of one request beyond the first */

struct sched_item_meta {
    struct sched_item_meta *next;
    char item[NMC_ID_LEN];
    int found, active, duration;
    uint64_t loaded_ns;
};

static struct nmc_metric *m_search_ms, *m_book_ms, *m_book_p95, *m_hold_ok, *m_hold_conflict, *m_book_conflict;

static void on_collect(void *ud)
{
    double p95 = nmc_metrics_quantile(m_book_ms, NULL, 0.95);
    nmc_metrics_set(m_book_p95, NULL, isnan(p95) ? 0 : p95);
}

static void metrics_register(void)
{
    m_search_ms = nmc_metrics_histogram("scheduling_search_duration_ms",
                                        "Availability search latency, request to answer", NULL, NULL, 0);
    m_book_ms = nmc_metrics_histogram("scheduling_book_duration_ms", "Booking POST latency, request to answer",
                                      NULL, NULL, 0);
    m_book_p95 = nmc_metrics_gauge("booking_post_p95_ms", "P95 of scheduling_book_duration_ms since start", NULL);
    m_hold_ok = nmc_metrics_counter("scheduling_hold_success_total", "Holds created", NULL);
    m_hold_conflict = nmc_metrics_counter("scheduling_hold_conflict_total",
                                          "Holds refused: slot taken or outside open hours", NULL);
    m_book_conflict = nmc_metrics_counter("scheduling_book_conflict_total",
                                          "Bookings refused with 409 (hold booked, overlap, key reused)", NULL);
    nmc_metrics_on_collect(on_collect, NULL);
}

/* ---- requests ------------------------------------------------------- */

struct sched_req *nmc_scheduling_req_new(const struct nmc_http_req *req, enum sched_kind kind)
{
    struct sched_req *r = nmc_xcalloc(1, sizeof(*r));
    r->kind = kind;
    nmc_strlcpy(r->correlation_id, req->correlation_id, sizeof(r->correlation_id));
    r->trace = req->trace;
    return r;
}

void nmc_scheduling_req_free(struct sched_req *r)
{
    if (r == NULL)
        return;
    if (r->next != NULL) {
        r->prev->next = r->next;
        r->next->prev = r->prev;
    }
    for (int i = 0; i < SCHED_MAX_PARAMS; i++)
        free(r->p[i]);
    nmc_trace_span_end(r->span);
    free(r);
}

static void req_payload_free(void *p)
{
    nmc_scheduling_req_free(p);
}

void nmc_scheduling_dispatch(struct nmc_http_req *req, struct sched *s, struct sched_req *r, unsigned allow)
{
    struct nmc_msg *m = nmc_rt_msg_new(MSG_SCHED_REQ, r, req_payload_free);
    nmc_identity_auth_msg_from_req(m, req);
    nmc_identity_auth_submit(s->app, req, allow, &r->auth, s->actor, m);
}

static void ctx_msg(const struct sched_req *r, struct nmc_msg *m)
{
    memset(m, 0, sizeof(*m));
    nmc_strlcpy(m->tenant_id, r->auth.who.tenant_id, sizeof(m->tenant_id));
    nmc_strlcpy(m->correlation_id, r->correlation_id, sizeof(m->correlation_id));
    m->trace = r->trace;
}

/* ---- item cache ----------------------------------------------------- */

static size_t bucket_of(const char *tenant)
{
    size_t h = 5381;
    for (; *tenant; tenant++)
        h = h * 33 + (unsigned char)*tenant;
    return h % SCHED_CACHE_BUCKETS;
}

static void tenant_cache_free(struct sched_tenant_cache *t)
{
    while (t->items != NULL) {
        struct sched_item_meta *i = t->items;
        t->items = i->next;
        free(i);
    }
    free(t);
}

static struct sched_tenant_cache **tenant_slot(struct sched *s, const char *tenant)
{
    struct sched_tenant_cache **pp = &s->buckets[bucket_of(tenant)];
    while (*pp != NULL && strcmp((*pp)->tenant, tenant) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void cache_drop_tenant(struct sched *s, const char *tenant)
{
    struct sched_tenant_cache **pp = tenant_slot(s, tenant), *t = *pp;
    s->gen++;
    if (t == NULL)
        return;
    *pp = t->next;
    tenant_cache_free(t);
    s->ntenants--;
}

static void cache_clear(struct sched *s)
{
    for (size_t i = 0; i < SCHED_CACHE_BUCKETS; i++)
        while (s->buckets[i] != NULL) {
            struct sched_tenant_cache *t = s->buckets[i];
            s->buckets[i] = t->next;
            tenant_cache_free(t);
        }
    s->ntenants = 0;
    s->gen++;
}

static struct sched_item_meta *cache_item(struct sched *s, const char *tenant, const char *item)
{
    struct sched_tenant_cache *t = *tenant_slot(s, tenant);
    for (struct sched_item_meta *i = t != NULL ? t->items : NULL; i != NULL; i = i->next)
        if (strcmp(i->item, item) == 0)
            return nmc_clock_mono_ns() - i->loaded_ns < NMC_SCHED_CACHE_TTL_MS * NS_PER_MS ? i : NULL;
    return NULL;
}

static void cache_put_item(struct sched *s, const char *tenant, const char *item, int found, int active, int dur)
{
    struct sched_tenant_cache **pp = tenant_slot(s, tenant);
    if (*pp == NULL) {
        if (s->ntenants >= CACHE_MAX_TENANTS)
            cache_clear(s);
        pp = &s->buckets[bucket_of(tenant)];
        struct sched_tenant_cache *t = nmc_xcalloc(1, sizeof(*t));
        nmc_strlcpy(t->tenant, tenant, sizeof(t->tenant));
        t->next = *pp;
        *pp = t;
        s->ntenants++;
    }
    struct sched_item_meta *i = NULL;
    for (i = (*pp)->items; i != NULL && strcmp(i->item, item) != 0; i = i->next)
        ;
    if (i == NULL) {
        i = nmc_xcalloc(1, sizeof(*i));
        nmc_strlcpy(i->item, item, sizeof(i->item));
        i->next = (*pp)->items;
        (*pp)->items = i;
    }
    i->found = found;
    i->active = active;
    i->duration = dur;
    i->loaded_ns = nmc_clock_mono_ns();
}

/* ---- answers -------------------------------------------------------- */

static void observe(const struct sched_req *r)
{
    double ms = (double)(nmc_clock_mono_ns() - r->auth.received_ns) / 1e6;
    if (r->kind == S_AVAIL)
        nmc_metrics_observe(m_search_ms, NULL, ms);
    else if (r->kind == S_BOOK || r->kind == S_BOOK_LOOKUP)
        nmc_metrics_observe(m_book_ms, NULL, ms);
}

static void span_status(struct sched_req *r, int status, const char *code)
{
    nmc_trace_span_attr_int(r->span, "http.status_code", status);
    if (status >= 500)
        nmc_trace_span_error(r->span, code);
    else if (code != NULL)
        nmc_trace_span_attr(r->span, "error.code", code);
}

static void finish_json(struct sched_req *r, int status, const char *json)
{
    span_status(r, status, NULL);
    observe(r);
    nmc_http_reply_json(r->auth.handle, status, json);
    nmc_scheduling_req_free(r);
}

static void finish_error(struct sched_req *r, int status, const char *code, const char *message)
{
    span_status(r, status, code);
    observe(r);
    nmc_http_reply_error(r->auth.handle, status, code, message);
    nmc_scheduling_req_free(r);
}

static void wake_outbox(struct sched *s)
{
    struct nmc_actor *ob = nmc_rt_actor_find(s->app->rt, "outbox");
    if (ob != NULL)
        (void)nmc_rt_send(ob, nmc_rt_msg_new(NMC_MSG_OUTBOX_WAKE, NULL, NULL));
}

static const char *cell(const struct nmc_db_result *res, size_t stmt, int col)
{
    const PGresult *pr = stmt < res->nresults ? res->results[stmt] : NULL;
    return pr != NULL && PQntuples(pr) > 0 ? nmc_db_get(pr, 0, col) : NULL;
}

static int is_true(const char *v)
{
    return v != NULL && strcmp(v, "t") == 0;
}

static void db_error(struct sched_req *r, const struct nmc_db_result *res)
{
    struct nmc_log_rec *lr = nmc_log_begin(NMC_LOG_ERROR, "scheduling", "scheduling.db_error");
    nmc_log_ids(lr, r->auth.who.tenant_id, r->correlation_id, NULL);
    nmc_log_error(lr, res->status, res->message);
    nmc_log_str(lr, "sqlstate", res->sqlstate);
    nmc_log_end(lr);
    finish_error(r, 503, "unavailable", "database error, retry later");
}

/* Runs r's batch; the result comes back to the actor with r as cookie. */
static void submit(struct sched *s, struct sched_req *r)
{
    struct nmc_db_stmt st[SCHED_MAX_STMTS];
    struct nmc_msg hdr;
    int txn, rc;
    size_t n = nmc_scheduling_stmts(r, st, &txn);
    ctx_msg(r, &hdr);
    if (txn)
        rc = nmc_db_txn(s->app->db, s->actor, (uint64_t)(uintptr_t)r, &hdr, st, n);
    else
        rc = nmc_db_submit(s->app->db, s->actor, (uint64_t)(uintptr_t)r, &hdr, st, n);
    if (rc != 0) {
        finish_error(r, 503, "unavailable", "database queue is full, retry later");
        return;
    }
    r->next = s->live.next;
    r->prev = &s->live;
    s->live.next->prev = r;
    s->live.next = r;
}

/* Two transactions whose new rows conflict under the exclusion constraint
 * (a hold inserted while a booking updates an overlapping hold) can each
 * wait for the other; PostgreSQL then aborts one with 40P01. The aborted
 * batch was rolled back whole (a transaction, or a single statement), so
 * running it again is the same as a new request. */
static int retry_after_deadlock(struct sched *s, struct sched_req *r, const struct nmc_db_result *res)
{
    if (res->status != NMC_ESERIALIZATION || r->retries >= SCHED_MAX_RETRIES)
        return 0;
    r->retries++;
    struct nmc_log_rec *lr = nmc_log_begin(NMC_LOG_INFO, "scheduling", "scheduling.db_retry");
    nmc_log_ids(lr, r->auth.who.tenant_id, r->correlation_id, NULL);
    nmc_log_str(lr, "sqlstate", res->sqlstate);
    nmc_log_int(lr, "retry", r->retries);
    nmc_log_end(lr);
    submit(s, r);
    return 1;
}

/* Typed database errors that mean something to the client. */
static void reply_db_error(struct sched *s, struct sched_req *r, const struct nmc_db_result *res)
{
    if (retry_after_deadlock(s, r, res))
        return;
    if (res->status == NMC_EEXCLUSION) {
        nmc_metrics_inc(r->kind == S_BOOK ? m_book_conflict : m_hold_conflict);
        finish_error(r, 409, r->kind == S_BOOK ? "booking_conflict" : "slot_taken",
                     "the resource already has a live hold or appointment overlapping this time");
    } else if (res->status == NMC_EUNIQUE && r->kind == S_BOOK &&
               strcmp(res->constraint, "sched_appointments_idempotency_uq") == 0) {
        /* A concurrent request with the same key committed first: answer
         * with its booking. */
        r->kind = S_BOOK_LOOKUP;
        submit(s, r);
    } else if (res->status == NMC_EUNIQUE) {
        finish_error(r, 409, "conflict", "this would duplicate an existing record");
    } else if (res->status == NMC_EFOREIGNKEY) {
        finish_error(r, 404, "not_found", "a referenced resource or item does not exist");
    } else if (res->status == NMC_ECHECK || (res->status == NMC_EDB && strncmp(res->sqlstate, "22", 2) == 0)) {
        finish_error(r, 400, "invalid_request", "a value is out of range or malformed (database check)");
    } else {
        db_error(r, res);
    }
}

static void on_resource(struct sched_req *r, const struct nmc_db_result *res)
{
    const char *json = cell(res, 0, 0);
    if (json == NULL)
        finish_error(r, 404, "not_found", "resource not found");
    else
        finish_json(r, r->kind == S_RES_CREATE ? 201 : 200, json);
}

/* Appends list ("<resource uuid> <epoch s>,...", NULL for none) as the
 * JSON slots array; each slot lasts dur minutes. */
static void append_slots(struct nmc_buf *b, const char *list, int64_t dur)
{
    char start[32], end[32];
    (void)nmc_buf_puts(b, "[");
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *sp = strchr(p, ' ');
        char *stop = NULL;
        if (sp == NULL || sp - p != 36)
            break;
        long long epoch = strtoll(sp + 1, &stop, 10);
        nmc_scheduling_format_utc((int64_t)epoch * 1000, start);
        nmc_scheduling_format_utc(((int64_t)epoch + dur * 60) * 1000, end);
        (void)nmc_buf_printf(b, "%s{\"resource_id\":\"%.36s\",\"start\":\"%s\",\"end\":\"%s\"}",
                             p == list ? "" : ",", p, start, end);
        p = *stop == ',' ? stop + 1 : stop;
    }
    (void)nmc_buf_puts(b, "]");
}

static void on_availability(struct sched *s, struct sched_req *r, const struct nmc_db_result *res)
{
    const char *found = cell(res, 2, 0), *active = cell(res, 2, 1), *dur = cell(res, 2, 2);
    const char *tz = cell(res, 2, 3), *nfree = cell(res, 2, 4), *nres = cell(res, 2, 6);
    int64_t d = 0, nf = 0;
    int ok = found != NULL && strcmp(found, "0") != 0 && nmc_parse_i64(dur, 1, 100000, &d) == 0;
    if (r->cached_duration == 0 && r->cache_gen == s->gen)
        cache_put_item(s, r->auth.who.tenant_id, r->p[0], ok, is_true(active), (int)d);
    if (!ok) {
        finish_error(r, 404, "not_found", "catalog item not found");
        return;
    }
    if (!is_true(active)) {
        finish_error(r, 410, "item_inactive", "this item is inactive and cannot be booked");
        return;
    }
    if (r->p[3] != NULL && (nres == NULL || strcmp(nres, "0") == 0)) {
        finish_error(r, 404, "not_found", "resource not found (or inactive)");
        return;
    }
    if (nmc_parse_i64(nfree, 0, INT64_MAX, &nf) != 0)
        nf = 0;
    struct nmc_buf b = {0};
    (void)nmc_buf_puts(&b, "{\"item_id\":");
    (void)nmc_buf_json_str(&b, r->p[0]);
    (void)nmc_buf_puts(&b, ",\"resource_id\":");
    (void)(r->p[3] != NULL ? nmc_buf_json_str(&b, r->p[3]) : nmc_buf_puts(&b, "null"));
    (void)nmc_buf_puts(&b, ",\"from\":");
    (void)nmc_buf_json_str(&b, r->p[1]);
    (void)nmc_buf_puts(&b, ",\"to\":");
    (void)nmc_buf_json_str(&b, r->p[2]);
    (void)nmc_buf_puts(&b, ",\"timezone\":");
    (void)nmc_buf_json_str(&b, tz != NULL ? tz : "UTC");
    (void)nmc_buf_printf(&b, ",\"duration_minutes\":%d,\"granularity_minutes\":%s,\"truncated\":%s,\"slots\":",
                         (int)d, r->num[0], nf > NMC_SCHED_MAX_SLOTS ? "true" : "false");
    append_slots(&b, cell(res, 2, 5), d);
    (void)nmc_buf_puts(&b, "}");
    finish_json(r, 200, b.data);
    nmc_buf_free(&b);
}

/* Why the hold statement inserted nothing, from its facts row. */
static void on_hold(struct sched *s, struct sched_req *r, const struct nmc_db_result *res)
{
    const size_t q = SCHED_LOCK_STMTS + 1; /* the hold statement, after the lock and the clean-up */
    const char *item_found = cell(res, q, 0), *res_found = cell(res, q, 2), *hold = cell(res, q, 6);
    if (hold != NULL) {
        nmc_metrics_inc(m_hold_ok);
        wake_outbox(s);
        finish_json(r, 201, hold);
    } else if (item_found == NULL || strcmp(item_found, "0") == 0) {
        finish_error(r, 404, "not_found", "catalog item not found");
    } else if (res_found == NULL || strcmp(res_found, "0") == 0) {
        finish_error(r, 404, "not_found", "resource not found");
    } else if (!is_true(cell(res, q, 1))) {
        finish_error(r, 410, "item_inactive", "this item is inactive and cannot be booked");
    } else if (!is_true(cell(res, q, 3))) {
        nmc_metrics_inc(m_hold_conflict);
        finish_error(r, 409, "resource_inactive", "this resource is inactive");
    } else if (!is_true(cell(res, q, 4))) {
        finish_error(r, 400, "start_in_past", "start must be in the future (database time)");
    } else {
        nmc_metrics_inc(m_hold_conflict);
        finish_error(r, 409, "slot_unavailable",
                     "the period is outside the resource's business hours or overlaps a busy block");
    }
}

/* The appointment of the request's idempotency key (lookup row: json, hold). */
static void answer_replay(struct sched_req *r, const char *json, const char *hold)
{
    static const char *const replayed[] = {"Idempotent-Replayed: true", NULL};
    if (hold == NULL || strcmp(hold, r->p[0]) != 0) {
        nmc_metrics_inc(m_book_conflict);
        finish_error(r, 409, "idempotency_key_reused", "this Idempotency-Key was used to book another hold");
        return;
    }
    span_status(r, 201, NULL);
    nmc_trace_span_attr(r->span, "idempotent_replay", "true");
    observe(r);
    nmc_http_reply(r->auth.handle, 201, "application/json", json, strlen(json), replayed);
    nmc_scheduling_req_free(r);
}

static void on_book(struct sched *s, struct sched_req *r, const struct nmc_db_result *res)
{
    const size_t q = SCHED_LOCK_STMTS; /* the booking statement, then the key's lookup */
    const char *outcome = cell(res, q, 0), *appt = cell(res, q, 1);
    const char *prior = cell(res, q + 1, 0), *prior_hold = cell(res, q + 1, 1);
    if (outcome != NULL && strcmp(outcome, "booked") == 0 && appt != NULL) {
        wake_outbox(s);
        finish_json(r, 201, appt);
    } else if (prior != NULL) {
        answer_replay(r, prior, prior_hold);
    } else if (outcome != NULL && strcmp(outcome, "expired") == 0) {
        finish_error(r, 410, "hold_expired", "the hold expired before it was booked");
    } else if (outcome != NULL && strcmp(outcome, "not_found") == 0) {
        finish_error(r, 404, "not_found", "hold not found");
    } else {
        nmc_metrics_inc(m_book_conflict);
        finish_error(r, 409, "hold_already_booked", "this hold was booked by another request");
    }
}

static void on_book_lookup(struct sched_req *r, const struct nmc_db_result *res)
{
    const char *json = cell(res, 0, 0);
    if (json == NULL) {
        nmc_metrics_inc(m_book_conflict);
        finish_error(r, 409, "booking_conflict", "a concurrent booking with this key failed; retry");
        return;
    }
    answer_replay(r, json, cell(res, 0, 1));
}

static void on_reschedule(struct sched *s, struct sched_req *r, const struct nmc_db_result *res)
{
    const size_t q = SCHED_LOCK_STMTS + 1; /* the move, after the lock and the clean-up */
    const char *found = cell(res, q, 0), *status = cell(res, q, 1), *json = cell(res, q, 5);
    if (json != NULL) {
        wake_outbox(s);
        finish_json(r, 200, json);
    } else if (found == NULL || strcmp(found, "0") == 0) {
        finish_error(r, 404, "not_found", "appointment not found");
    } else if (status == NULL || strcmp(status, "booked") != 0) {
        finish_error(r, 409, "appointment_cancelled", "a cancelled appointment cannot be rescheduled");
    } else if (!is_true(cell(res, q, 2))) {
        finish_error(r, 404, "not_found", "resource not found");
    } else if (!is_true(cell(res, q, 3))) {
        finish_error(r, 400, "start_in_past", "start must be in the future (database time)");
    } else {
        finish_error(r, 409, "slot_unavailable",
                     "the period is outside the resource's business hours or overlaps a busy block");
    }
}

static void on_simple(struct sched *s, struct sched_req *r, const struct nmc_db_result *res)
{
    const char *json = cell(res, 0, 0);
    const char *what = r->kind == S_HOLD_DELETE ? "hold not found" : "appointment not found";
    if (json == NULL) {
        finish_error(r, 404, "not_found", what);
    } else if (r->kind == S_HOLD_DELETE) {
        span_status(r, 204, NULL);
        observe(r);
        nmc_http_reply(r->auth.handle, 204, NULL, "", 0, NULL);
        nmc_scheduling_req_free(r);
    } else {
        if (r->kind == S_APPT_CANCEL && strcmp(cell(res, 0, 1), "0") != 0)
            wake_outbox(s);
        finish_json(r, 200, json);
    }
}

static void on_db_result(struct sched *s, struct sched_req *r, const struct nmc_db_result *res)
{
    if (r->next != NULL) {
        r->prev->next = r->next;
        r->next->prev = r->prev;
        r->next = r->prev = NULL;
    }
    if (res->status != 0) {
        reply_db_error(s, r, res);
        return;
    }
    switch (r->kind) {
    case S_RES_CREATE: case S_RES_LIST: case S_RES_GET: case S_RES_PATCH:
        on_resource(r, res);
        break;
    case S_AVAIL: on_availability(s, r, res); break;
    case S_HOLD: on_hold(s, r, res); break;
    case S_BOOK: on_book(s, r, res); break;
    case S_BOOK_LOOKUP: on_book_lookup(r, res); break;
    case S_APPT_RESCHEDULE: on_reschedule(s, r, res); break;
    default: on_simple(s, r, res); break;
    }
}

/* ---- the actor ------------------------------------------------------ */

static const char *span_name(enum sched_kind kind)
{
    switch (kind) {
    case S_AVAIL: return "scheduling.search";
    case S_HOLD: return "scheduling.hold";
    case S_HOLD_DELETE: return "scheduling.hold_release";
    case S_BOOK: case S_BOOK_LOOKUP: return "scheduling.book";
    case S_APPT_CANCEL: return "scheduling.cancel";
    case S_APPT_RESCHEDULE: return "scheduling.reschedule";
    case S_APPT_LIST: case S_APPT_GET: return "scheduling.appointments";
    default: return "scheduling.resources";
    }
}

/* Opens the request's span; its database work nests under it. */
static void span_start(struct sched_req *r)
{
    r->span = nmc_trace_span_start(span_name(r->kind), &r->trace);
    nmc_trace_span_attr(r->span, "tenant_id", r->auth.who.tenant_id);
    nmc_trace_span_attr(r->span, "correlation_id", r->correlation_id);
    r->trace = r->span->ctx;
}

/* Adds the actor-side parameters and answers from the cache when it can. */
static void start(struct sched *s, struct sched_req *r)
{
    const struct nmc_config *cfg = s->app->cfg;
    span_start(r);
    switch (r->kind) {
    case S_AVAIL: {
        snprintf(r->num[0], sizeof(r->num[0]), "%d", cfg->search_granularity_minutes);
        snprintf(r->num[1], sizeof(r->num[1]), "%d", NMC_SCHED_MAX_SLOTS);
        const struct sched_item_meta *i = cache_item(s, r->auth.who.tenant_id, r->p[0]);
        r->cache_gen = s->gen;
        if (i != NULL && !i->found) {
            finish_error(r, 404, "not_found", "catalog item not found");
            return;
        }
        if (i != NULL && !i->active) {
            finish_error(r, 410, "item_inactive", "this item is inactive and cannot be booked");
            return;
        }
        if (i != NULL) {
            r->cached_duration = i->duration;
            snprintf(r->num[2], sizeof(r->num[2]), "%d", i->duration);
        }
        break;
    }
    case S_HOLD:
        snprintf(r->num[0], sizeof(r->num[0]), "%d", cfg->hold_ttl_minutes);
        break;
    case S_APPT_LIST:
        snprintf(r->num[0], sizeof(r->num[0]), "%d", NMC_SCHED_MAX_APPOINTMENTS);
        break;
    default:
        break;
    }
    submit(s, r);
}

static void on_event(struct sched *s, const struct nmc_msg *m)
{
    const struct nmc_domain_event *ev = m->payload;
    json_t *j = json_loads(ev->payload_json != NULL ? ev->payload_json : "{}", 0, NULL);
    const char *tenant = json_string_value(json_object_get(j, "tenant_id"));
    if (tenant != NULL)
        cache_drop_tenant(s, tenant);
    else
        cache_clear(s);
    json_decref(j);
    struct nmc_actor *ob = nmc_rt_actor_find(s->app->rt, "outbox");
    if (ob == NULL)
        return;
    struct nmc_outbox_ack *ack = nmc_xcalloc(1, sizeof(*ack));
    ack->outbox_id = ev->outbox_id;
    ack->subscriber = "scheduling";
    struct nmc_msg *am = nmc_rt_msg_new(NMC_MSG_OUTBOX_ACK, ack, free);
    nmc_rt_msg_inherit(am, m);
    (void)nmc_rt_send(ob, am);
}

static void on_message(struct nmc_actor *self, struct nmc_msg *m, void *state)
{
    struct sched *s = state;
    switch (m->type) {
    case MSG_SCHED_REQ: {
        struct sched_req *r = m->payload;
        m->payload = NULL; /* the request lives until it is answered */
        start(s, r);
        break;
    }
    case NMC_MSG_DB_RESULT:
        if (m->cookie != 0)
            on_db_result(s, (struct sched_req *)(uintptr_t)m->cookie, m->payload);
        break;
    case NMC_MSG_CACHE_INVALIDATE:
        if (m->payload != NULL)
            cache_drop_tenant(s, m->payload);
        else
            cache_clear(s);
        break;
    case NMC_MSG_DOMAIN_EVENT:
        on_event(s, m);
        break;
    default:
        break;
    }
}

int nmc_scheduling_init(struct nmc_app *app)
{
    struct sched *s = nmc_xcalloc(1, sizeof(*s));
    int rc;
    s->app = app;
    s->live.next = s->live.prev = &s->live;
    metrics_register();
    if ((rc = nmc_identity_auth_init(app)) != 0 ||
        (rc = nmc_rt_actor_create(app->rt, "scheduling", on_message, s, 0, &s->actor)) != 0) {
        free(s);
        return rc;
    }
    app->modules[NMC_SLOT_SCHEDULING] = s;
    if (nmc_outbox_subscribe != NULL && (rc = nmc_outbox_subscribe(app, "CatalogUpdated", s->actor)) != 0)
        return rc;
    return app->http != NULL ? nmc_scheduling_routes(s) : 0;
}

void nmc_scheduling_stop(struct nmc_app *app)
{
    struct sched *s = app->modules[NMC_SLOT_SCHEDULING];
    if (s == NULL)
        return;
    while (s->live.next != &s->live)
        nmc_scheduling_req_free(s->live.next);
    cache_clear(s);
    free(s);
    app->modules[NMC_SLOT_SCHEDULING] = NULL;
    nmc_identity_auth_stop(app);
}
