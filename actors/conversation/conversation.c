/* Conversation actor (owner: sms engineer). See conversation.h.
 *
 * One job per delivered event, a flat state machine:
 *   LOAD     read the tenant, its settings and local time, and any message
 *            an earlier delivery recorded for this cause (dedupe key);
 *   INTENT   one function call records the intent (gates re-checked inside
 *            the transaction) and commits durably: from here a crash can
 *            at worst leave an intent whose send outcome is unknown;
 *   SEND     Twilio, one attempt (our retries go through the outbox);
 *   MARK     the outcome (async commit: losing it only re-delivers);
 *   LOOKUP   for an intent of unknown outcome: ask Twilio whether it has
 *            the message (docs/decisions/ambiguous-sms.md);
 *   ADOPT    of the messages Twilio has with our body, the first that none
 *            of our other messages to the caller already names, taken
 *            under the caller's lock (one adoption at a time per caller).
 * The job acks the outbox exactly once, in job_finish(). */
#include "actors/conversation/conversation.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/conversation/batch.h"
#include "actors/conversation/conversation_sql.h"
#include "actors/conversation/tenant_cache.h"
#include "actors/outbox/outbox.h"
#include "http/body.h"
#include "providers/breaker.h"
#include "providers/http.h"
#include "providers/twilio.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#define SUBSCRIBER "conversation"
#define BODY_MAX 1601

enum job_kind { JOB_CALL, JOB_SMS, JOB_RELEASE, JOB_COMPLIANCE };
enum job_state { J_LOAD, J_INTENT, J_SEND, J_MARK, J_LOOKUP, J_ADOPT, J_RELEASE_ALL, J_RELEASE_PROVIDER, J_COMPLIANCE,
                 J_FLAGS, J_CLAIM, J_MARK_GROUP };

#define MARKS_MAX 128     /* sends marked by one statement (NMC_CONV_SQL_MARK_SENT) */
#define MARKS_INFLIGHT 2  /* such statements in flight before the next group waits and grows */

struct job {
    struct conversation *cv;
    struct job *next, *prev;
    enum job_kind kind;
    enum job_state state;
    struct nmc_msg ctx;        /* tenant, correlation, causation, trace of the event (no payload) */
    int64_t outbox_id;
    int attempts;              /* deliveries of the event so far, this one included */
    char event_id[NMC_ID_LEN];
    char tenant[NMC_ID_LEN];
    char caller[40], business[40];
    char ref[80];              /* CallSid or MessageSid */
    char trigger_at[40];
    char dedupe[128];
    char release_id[NMC_ID_LEN];
    char compliance_to[16];    /* ComplianceStatusChanged: the new status */
    enum nmc_conversation_keyword keyword;
    char *inbound_body;
    /* from LOAD / INTENT */
    char business_name[201];
    char message_id[NMC_ID_LEN];
    char msg_status[24];
    char body[BODY_MAX];
    char date_sent_after[16];
    int64_t msg_age_ms;
    char msg_kind[24];
    int opted_out;
    char compliance[16];       /* the tenant's compliance status, as loaded */
    int permanent;             /* ack with NMC_OUTBOX_PERMANENT */
    int marking_sent;          /* the J_MARK in flight is NMC_CONV_SQL_MARK_SENT */
    char sent_status[24], sent_sid[64]; /* Twilio's answer, for that mark */
    struct job *mark_next;     /* waiting in cv->marks */
    struct job **group;        /* J_MARK_GROUP (a bare carrier): the jobs its statement marks */
    size_t ngroup;
    int leased;                /* its events were inserted leased to our outbox */
    int cached;                /* the intent was rendered from the tenant cache (version below) */
    char tenant_version[24];
    struct nmc_span *span;
};

struct conversation {
    struct nmc_app *app;
    struct nmc_actor *actor;
    struct nmc_prov_http *http;
    struct nmc_prov_twilio *twilio;
    char base_url[512];
    char userpwd[256];
    int paused;                /* effective: nothing leaves while set (see apply_pause) */
    int env_paused;            /* PAUSE_OUTBOUND_SMS: holds this instance whatever ops_flags says */
    int flags_loaded;          /* ops_flags read once: until then paused (fail closed) */
    int flag_set, flag_paused; /* the fleet's ops_flags row, when it exists */
    int flags_inflight, flags_again;
    uint64_t provider_timer, flags_timer;
    struct job *jobs;
    size_t njobs;
    struct job *marks, **marks_tail; /* sends Twilio accepted, to be marked by the next group */
    size_t nmarks;
    int marks_inflight;
    struct nmc_conversation_batch *batch; /* jobs of one loop turn share round trips (batch.h) */
    struct nmc_tenant_cache *tenants;     /* what a first reply needs of a tenant (tenant_cache.h) */
};

static struct {
    struct nmc_metric *blocked, *ambiguous, *results, *held, *keywords, *keyword_blocked, *compliance, *provider;
    struct nmc_metric *started, *first_replies, *tenant_cache, *path, *jobs, *claims_lost;
} M;

static void register_metrics(void)
{
    M.blocked = nmc_metrics_counter("first_sms_blocked_total", "First replies not sent because of a gate", "reason");
    M.ambiguous = nmc_metrics_counter("sms_ambiguous_sends_total",
                                      "Sends whose outcome is unknown (timeout or reset after sending)", NULL);
    M.results = nmc_metrics_counter("sms_send_results_total", "Outcomes of Twilio send attempts", "result");
    M.held = nmc_metrics_counter("sms_held_total",
                                 "Sends held (PAUSE_OUTBOUND_SMS, compliance not approved, Twilio outage)", NULL);
    M.keywords = nmc_metrics_counter("sms_keywords_total", "Inbound keywords handled", "keyword");
    M.keyword_blocked = nmc_metrics_counter("sms_keyword_replies_blocked_total",
                                            "Keyword replies (STOP, START, HELP) recorded and not sent", "reason");
    M.claims_lost = nmc_metrics_counter("sms_release_claims_lost_total",
                                        "Released sends another job claimed first (not sent twice)", NULL);
    M.compliance = nmc_metrics_counter("first_sms_compliance_released_total",
                                       "First replies held for compliance, on approval: released or expired",
                                       "result");
    /* counted here, once per commit that emitted ConversationStarted or
     * FirstReplySent (reporting only marks the day for its rollup) */
    M.started = nmc_metrics_counter("kpi_conversations_started_total", "Conversations started", NULL);
    M.first_replies = nmc_metrics_counter("kpi_first_replies_sent_total", "First replies accepted by Twilio", NULL);
    M.tenant_cache = nmc_metrics_counter("conversation_tenant_cache_total",
                                         "First replies of missed calls by how the tenant was read: hit (cached copy"
                                         " used), miss (read first), stale (cached copy outdated, read again)",
                                         "result");
    M.path = nmc_metrics_counter("conversation_first_reply_intents_total",
                                 "Missed-call first replies by where the intent was recorded: webhook_txn (in the"
                                 " webhook's transaction), event (on delivery of CallDetected)", "path");
    M.jobs = nmc_metrics_gauge("conversation_jobs_in_flight",
                               "Deliveries the conversation is working on (send, mark, lookup)", NULL);
    M.provider = nmc_metrics_counter("sms_provider_holds_total",
                                     "Sends held at their last outbox attempt during a Twilio outage, then"
                                     " released or expired", "result");
}

static void count(struct nmc_metric *m, const char *label)
{
    const char *labels[] = { label };
    nmc_metrics_add(m, label != NULL ? labels : NULL, 1);
}

/* ---- job lifecycle ---- */

static void job_free(struct job *j)
{
    struct conversation *cv = j->cv;
    if (j->prev != NULL)
        j->prev->next = j->next;
    else if (cv->jobs == j)
        cv->jobs = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    nmc_metrics_set(M.jobs, NULL, (double)--cv->njobs);
    free(j->inbound_body);
    free(j->group);
    nmc_trace_span_end(j->span);
    free(j);
}

/* Every job, bare carriers included, is on cv->jobs until freed, so that
 * nmc_conversation_stop() can free what is still in flight. */
static void job_link(struct conversation *cv, struct job *j)
{
    j->cv = cv;
    j->prev = NULL;
    j->next = cv->jobs;
    if (cv->jobs != NULL)
        cv->jobs->prev = j;
    cv->jobs = j;
    nmc_metrics_set(M.jobs, NULL, (double)++cv->njobs);
}

/* The single exit of a job: acks the outbox (status 0 done, else retry, or
 * permanent) and frees the job. */
static void job_finish(struct job *j, int status, const char *why)
{
    if (status != 0) {
        struct nmc_log_rec *r = nmc_log_begin(j->permanent ? NMC_LOG_ERROR : NMC_LOG_WARN, "conversation",
                                              "conversation.job_failed");
        nmc_log_ctx(r, &j->ctx);
        nmc_log_int(r, "outbox_id", j->outbox_id);
        nmc_log_error(r, status, why);
        nmc_log_end(r);
        nmc_trace_span_error(j->span, why != NULL ? why : nmc_strerror(status));
    }
    if (j->outbox_id > 0)
        (void)nmc_outbox_ack(j->cv->app->rt, j->outbox_id, SUBSCRIBER,
                             status == 0 ? 0 : j->permanent ? NMC_OUTBOX_PERMANENT : status, why);
    job_free(j);
}

static int submit(struct job *j, enum job_state next, const struct nmc_db_stmt *st, size_t n, int txn)
{
    j->state = next;
    return nmc_conversation_batch_submit(j->cv->batch, (uint64_t)(uintptr_t)j, &j->ctx, st, n, txn);
}

static const PGresult *result_of(const struct nmc_db_result *res, size_t index, size_t nstmts)
{
    size_t k = res->nresults >= nstmts + 2 ? index + 1 : index;
    return k < res->nresults ? res->results[k] : NULL;
}

static const char *col(const PGresult *r, int c)
{
    return r != NULL && PQntuples(r) > 0 ? nmc_db_get(r, 0, c) : NULL;
}

static void copy_col(char *dst, size_t n, const PGresult *r, int c)
{
    const char *v = col(r, c);
    nmc_strlcpy(dst, v != NULL ? v : "", n);
}

/* The lease for events the next statement inserts (the outbox's fast
 * path): owner and ms as text into the statement's last two parameters;
 * owner NULL (no local dispatcher, or stopping) inserts them unleased. */
static void lease_params(struct job *j, struct nmc_db_stmt *st, char *ms, size_t mslen)
{
    int64_t lease_ms = 0;
    const char *owner = nmc_outbox_lease_owner(j->cv->app, &lease_ms);
    snprintf(ms, mslen, "%lld", (long long)lease_ms);
    j->leased = owner != NULL;
    st->params[st->nparams++] = owner;
    st->params[st->nparams++] = ms;
}

/* Hands the event a committed statement inserted (columns c..c+3 of r) to
 * the local outbox, or wakes the outbox to claim it when it was not leased
 * or the handoff failed. */
static void hand_over(struct job *j, const PGresult *r, int c, const char *event_name)
{
    if (col(r, c) == NULL)
        return; /* no event */
    if (!j->leased || nmc_outbox_handoff_row(j->cv->app->rt, r, c, event_name, &j->ctx, NULL) != 0)
        nmc_outbox_wake(j->cv->app->rt); /* the lease lapses, then any instance claims it */
}

/* ---- event intake ---- */

static int take_str(json_t *o, const char *key, char *dst, size_t n)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v == NULL || strlen(v) >= n)
        return NMC_EINVAL;
    nmc_strlcpy(dst, v, n);
    return 0;
}

static int parse_call(struct job *j, json_t *p)
{
    char sid[70];
    if (take_str(p, "call_sid", sid, sizeof sid) || take_str(p, "from", j->caller, sizeof j->caller) ||
        take_str(p, "to", j->business, sizeof j->business) ||
        take_str(p, "detected_at", j->trigger_at, sizeof j->trigger_at))
        return NMC_EINVAL;
    nmc_strlcpy(j->ref, sid, sizeof j->ref);
    snprintf(j->dedupe, sizeof j->dedupe, "first:call:%s", sid);
    return 0;
}

static int parse_sms(struct job *j, json_t *p)
{
    char sid[70];
    const char *body = json_string_value(json_object_get(p, "body"));
    if (take_str(p, "message_sid", sid, sizeof sid) || take_str(p, "from", j->caller, sizeof j->caller) ||
        take_str(p, "to", j->business, sizeof j->business) ||
        take_str(p, "received_at", j->trigger_at, sizeof j->trigger_at) || body == NULL)
        return NMC_EINVAL;
    nmc_strlcpy(j->ref, sid, sizeof j->ref);
    j->inbound_body = nmc_xstrdup(body);
    j->keyword = nmc_conversation_keyword(body);
    snprintf(j->dedupe, sizeof j->dedupe, "%s:%s", j->keyword != NMC_KEYWORD_NONE ? "kw" : "first:sms", sid);
    return 0;
}

static int parse_event(struct job *j, const struct nmc_domain_event *ev)
{
    json_t *p = json_loads(ev->payload_json != NULL ? ev->payload_json : "", 0, NULL);
    int rc = NMC_EINVAL;
    if (!json_is_object(p) || take_str(p, "tenant_id", j->tenant, sizeof j->tenant))
        goto out;
    if (j->kind == JOB_CALL)
        rc = parse_call(j, p);
    else if (j->kind == JOB_SMS)
        rc = parse_sms(j, p);
    else if (j->kind == JOB_COMPLIANCE)
        rc = take_str(p, "to", j->compliance_to, sizeof j->compliance_to);
    else
        rc = take_str(p, "message_id", j->release_id, sizeof j->release_id);
out:
    json_decref(p);
    return rc;
}

static void job_load(struct job *j);
static void job_compliance(struct job *j);
static void release_provider(struct conversation *cv);
static void arm_provider_release(struct conversation *cv);
static void on_provider_released(struct conversation *cv, const struct nmc_db_result *res);

static void render(struct job *j, const char *settings, const char *local, const char *fallback_tpl);
static void render_body(const char *settings, const char *local, const char *fallback_tpl, const char *name,
                        const char *phone, char *out, size_t outlen);
static void render_body_doc(const json_t *s, const char *local, const char *fallback_tpl, const char *name,
                            const char *phone, char *out, size_t outlen);
static void intent_recorded(struct job *j, const char *blocked, int created);
static void intent_first_reply(struct job *j, const char *trigger, int with_inbound);

/* A missed call's first delivery, when the tenant is cached: render and
 * record the intent at once, without reading the tenant first. The intent
 * statement checks the cached version; anything unexpected (stale copy, an
 * intent recorded before) falls back to the full load (on_intent). */
static int job_from_cache(struct job *j)
{
    int64_t now = nmc_clock_now_ms();
    const struct nmc_tenant_entry *e = nmc_tenant_cache_get(j->cv->tenants, j->tenant, now);
    count(M.tenant_cache, e != NULL ? "hit" : "miss");
    if (e == NULL)
        return 0;
    char local[8];
    nmc_tenant_local_dow_time(now, e->offset_s, local);
    nmc_strlcpy(j->business_name, e->name, sizeof j->business_name);
    nmc_strlcpy(j->tenant_version, e->version, sizeof j->tenant_version);
    j->cached = 1;
    render_body_doc(e->doc, local, NULL, j->business_name, j->business, j->body, sizeof j->body);
    intent_first_reply(j, "missed_call", 0);
    return 1;
}

static void on_event(struct conversation *cv, struct nmc_msg *msg)
{
    const struct nmc_domain_event *ev = msg->payload;
    struct job *j = nmc_xcalloc(1, sizeof *j);
    job_link(cv, j);
    j->outbox_id = ev->outbox_id;
    j->attempts = ev->attempts;
    nmc_strlcpy(j->event_id, ev->event_id, sizeof j->event_id);
    nmc_rt_msg_inherit(&j->ctx, msg);
    nmc_strlcpy(j->ctx.causation_id, ev->event_id, sizeof j->ctx.causation_id);
    j->kind = strcmp(ev->event_name, "CallDetected") == 0              ? JOB_CALL
              : strcmp(ev->event_name, "InboundSmsReceived") == 0      ? JOB_SMS
              : strcmp(ev->event_name, "ComplianceStatusChanged") == 0 ? JOB_COMPLIANCE
                                                                       : JOB_RELEASE;
    j->span = nmc_trace_span_start("conversation.first_reply", &msg->trace);
    nmc_trace_span_attr(j->span, "event_id", ev->event_id);
    nmc_trace_span_attr(j->span, "correlation_id", msg->correlation_id);
    if (parse_event(j, ev) != 0) {
        j->permanent = 1; /* a payload that breaks its schema can never succeed */
        job_finish(j, NMC_EINVAL, "event payload does not match its schema");
        return;
    }
    if (j->kind == JOB_CALL && !nmc_is_e164(j->caller)) {
        count(M.blocked, "invalid_caller"); /* anonymous or withheld caller ids cannot be texted back */
        job_finish(j, 0, NULL);
        return;
    }
    if (j->kind == JOB_COMPLIANCE) {
        job_compliance(j);
        return;
    }
    if (j->kind == JOB_CALL && j->attempts == 1 && job_from_cache(j))
        return;
    job_load(j);
}

/* NMC_MSG_CONV_PREPARE (conversation.h): the first reply of a missed call
 * rendered from the tenant cache for the webhook's own transaction. The
 * struct goes back to the writer either way (ready 0: not possible here). */
static void on_prepare(struct conversation *cv, struct nmc_msg *msg)
{
    struct nmc_conv_first_reply *fr = msg->payload;
    struct nmc_actor *to = fr->reply_to;
    msg->payload = NULL;
    msg->payload_free = NULL;
    fr->ready = 0;
    int64_t now = nmc_clock_now_ms();
    const struct nmc_tenant_entry *e =
        nmc_is_e164(fr->caller) ? nmc_tenant_cache_get(cv->tenants, fr->tenant, now) : NULL;
    if (e != NULL && cv->app->run_workers) {
        char local[8];
        nmc_tenant_local_dow_time(now, e->offset_s, local);
        render_body_doc(e->doc, local, NULL, e->name, fr->business, fr->body, sizeof fr->body);
        snprintf(fr->dedupe, sizeof fr->dedupe, "first:call:%s", fr->call_sid);
        nmc_strlcpy(fr->status, cv->paused ? "held" : "pending", sizeof fr->status);
        snprintf(fr->repeat_minutes, sizeof fr->repeat_minutes, "%d", cv->app->cfg->first_sms_repeat_window_minutes);
        nmc_strlcpy(fr->tenant_version, e->version, sizeof fr->tenant_version);
        fr->ready = 1;
        count(M.tenant_cache, "hit"); /* a miss is counted where the call's event is delivered */
    }
    struct nmc_msg *m = nmc_rt_msg_new(NMC_MSG_CONV_PREPARED, fr, free);
    nmc_rt_msg_inherit(m, msg);
    (void)nmc_rt_send(to, m); /* fails only once the runtime stops, with the writer */
}

/* NMC_MSG_CONV_COMMITTED: the webhook's transaction recorded our first
 * reply (or declined it); carry on as after our own intent. The outbox
 * holds CallDetected's flight open for our ack (consumed_by). */
static void on_committed(struct conversation *cv, struct nmc_msg *msg)
{
    const struct nmc_conv_first_reply *fr = msg->payload;
    struct job *j = nmc_xcalloc(1, sizeof *j);
    job_link(cv, j);
    j->kind = JOB_CALL;
    j->outbox_id = fr->outbox_id;
    j->attempts = 1;
    j->leased = 1;
    nmc_strlcpy(j->event_id, fr->event_id, sizeof j->event_id);
    nmc_rt_msg_inherit(&j->ctx, msg);
    nmc_strlcpy(j->ctx.causation_id, fr->event_id, sizeof j->ctx.causation_id);
    j->span = nmc_trace_span_start("conversation.first_reply", &msg->trace);
    nmc_trace_span_attr(j->span, "event_id", fr->event_id);
    nmc_trace_span_attr(j->span, "correlation_id", msg->correlation_id);
    nmc_strlcpy(j->tenant, fr->tenant, sizeof j->tenant);
    nmc_strlcpy(j->caller, fr->caller, sizeof j->caller);
    nmc_strlcpy(j->business, fr->business, sizeof j->business);
    nmc_strlcpy(j->ref, fr->call_sid, sizeof j->ref);
    nmc_strlcpy(j->trigger_at, fr->detected_at, sizeof j->trigger_at);
    nmc_strlcpy(j->dedupe, fr->dedupe, sizeof j->dedupe);
    nmc_strlcpy(j->body, fr->body, sizeof j->body);
    nmc_strlcpy(j->tenant_version, fr->tenant_version, sizeof j->tenant_version);
    nmc_strlcpy(j->message_id, fr->message_id, sizeof j->message_id);
    nmc_strlcpy(j->msg_status, fr->message_status, sizeof j->msg_status);
    j->cached = 1;
    if (fr->created)
        count(M.path, "webhook_txn");
    if (fr->started)
        nmc_metrics_inc(M.started); /* the writer handed ConversationStarted over */
    intent_recorded(j, fr->blocked[0] != '\0' ? fr->blocked : NULL, fr->created);
}

static void job_load(struct job *j)
{
    struct nmc_db_stmt st = { "conv_load", NMC_CONV_SQL_LOAD, 4,
                              { j->tenant, j->caller, j->dedupe, j->release_id[0] ? j->release_id : NULL } };
    int rc = submit(j, J_LOAD, &st, 1, 0);
    if (rc != 0)
        job_finish(j, rc, "load not submitted");
}

/* ---- deciding ---- */

/* A keyword reply recorded and not sent (its keyword took effect). */
static void keyword_reply_blocked(struct job *j, const char *reason)
{
    count(M.keyword_blocked, reason);
    struct nmc_log_rec *lr = nmc_log_begin(NMC_LOG_INFO, "conversation", "keyword_reply.blocked");
    nmc_log_ctx(lr, &j->ctx);
    nmc_log_str(lr, "reason", reason);
    nmc_log_str(lr, "message_id", j->message_id);
    nmc_log_phone(lr, "caller", j->caller);
    nmc_log_end(lr);
}

/* Renders a reply into out: fallback_tpl, or (NULL) the tenant's first
 * reply for its settings s (parsed; NULL counts as {}) at local time
 * "D HH:MM". */
static void render_body_doc(const json_t *s, const char *local, const char *fallback_tpl, const char *name,
                            const char *phone, char *out, size_t outlen)
{
    const char *tpl = fallback_tpl;
    if (fallback_tpl == NULL) {
        int in = nmc_conversation_in_hours_doc(json_object_get(s, "business_hours"), local);
        const char *key = in ? "first_reply_template_in_hours" : "first_reply_template_after_hours";
        tpl = json_string_value(json_object_get(s, key));
        if (tpl == NULL || nmc_conversation_template_validate(tpl, NULL, 0) != 0)
            tpl = in ? nmc_conversation_default_in_hours : nmc_conversation_default_after_hours;
    }
    if (nmc_conversation_template_render(tpl, name, phone, out, outlen) != 0)
        nmc_strlcpy(out, "Sorry we missed your call. Reply STOP to opt out.", outlen);
}

/* The same from the settings' JSON text. */
static void render_body(const char *settings, const char *local, const char *fallback_tpl, const char *name,
                        const char *phone, char *out, size_t outlen)
{
    json_t *s = settings != NULL && fallback_tpl == NULL ? json_loads(settings, 0, NULL) : NULL;
    render_body_doc(s, local, fallback_tpl, name, phone, out, outlen);
    json_decref(s);
}

static void render(struct job *j, const char *settings, const char *local, const char *fallback_tpl)
{
    render_body(settings, local, fallback_tpl, j->business_name, j->business, j->body, sizeof j->body);
}

static const char *keyword_reply_tpl(enum nmc_conversation_keyword k)
{
    switch (k) {
    case NMC_KEYWORD_STOP:
        return "{business_name}: You have been unsubscribed and will receive no more messages. "
               "Reply START to resubscribe.";
    case NMC_KEYWORD_START:
        return "{business_name}: You have been resubscribed. Reply STOP to unsubscribe, HELP for help.";
    default:
        return "{business_name}: Reply to this message and we'll get back to you, or call {business_phone}. "
               "Reply STOP to unsubscribe.";
    }
}

static const char *keyword_name(enum nmc_conversation_keyword k)
{
    return k == NMC_KEYWORD_STOP ? "stop" : k == NMC_KEYWORD_START ? "start" : "help";
}

static void intent_first_reply(struct job *j, const char *trigger, int with_inbound)
{
    const struct nmc_config *c = j->cv->app->cfg;
    char outbox_id[24], repeat[16];
    snprintf(outbox_id, sizeof outbox_id, "%lld", (long long)j->outbox_id);
    snprintf(repeat, sizeof repeat, "%d", c->first_sms_repeat_window_minutes);
    char lease_ms[24];
    struct nmc_db_stmt st[2] = {
        { "conv_first_reply", NMC_CONV_SQL_FIRST_REPLY, 14,
          { j->tenant, j->caller, j->business, trigger, j->ref, j->trigger_at, j->dedupe, j->body,
            j->cv->paused ? "held" : "pending", outbox_id, j->kind == JOB_CALL ? "1" : "0", repeat,
            j->ctx.correlation_id, j->event_id } },
        { "conv_inbound", NMC_CONV_SQL_INBOUND, 5, { j->tenant, j->caller, j->business, j->ref, j->inbound_body } },
    };
    lease_params(j, &st[0], lease_ms, sizeof lease_ms);
    st[0].params[st[0].nparams++] = j->cached ? j->tenant_version : NULL;
    if (j->kind == JOB_CALL)
        count(M.path, "event");
    int rc = submit(j, J_INTENT, st, with_inbound ? 2 : 1, 1);
    if (rc != 0)
        job_finish(j, rc, "intent not submitted");
}

/* The reply to a keyword: HELP answers with the tenant's help_text
 * (settings, validated as a template when saved) when it has one. */
static void render_keyword(struct job *j, const char *settings)
{
    json_t *s = j->keyword == NMC_KEYWORD_HELP && settings != NULL ? json_loads(settings, 0, NULL) : NULL;
    const char *tpl = json_string_value(json_object_get(s, "help_text"));
    if (tpl == NULL || nmc_conversation_template_validate(tpl, NULL, 0) != 0)
        tpl = keyword_reply_tpl(j->keyword);
    render(j, NULL, NULL, tpl);
    json_decref(s);
}

static void intent_keyword(struct job *j, const char *settings)
{
    char outbox_id[24], kw[16];
    snprintf(outbox_id, sizeof outbox_id, "%lld", (long long)j->outbox_id);
    const char *b = j->inbound_body;
    size_t i = 0;
    while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n')
        b++;
    for (; b[i] && i < sizeof kw - 1 && b[i] != ' ' && b[i] != '\r' && b[i] != '\n' && b[i] != '\t'; i++)
        kw[i] = (char)(b[i] >= 'a' && b[i] <= 'z' ? b[i] - 32 : b[i]);
    kw[i] = '\0';
    static const char *const kinds[] = { "", "opt_out_confirm", "opt_in_confirm", "help" };
    const char *opt = j->keyword == NMC_KEYWORD_STOP ? "true" : j->keyword == NMC_KEYWORD_START ? "false" : NULL;
    render_keyword(j, settings);
    count(M.keywords, keyword_name(j->keyword));
    struct nmc_db_stmt st[2] = {
        { "conv_keyword", NMC_CONV_SQL_KEYWORD, 12,
          { j->tenant, j->caller, j->business, j->ref, kw, opt, j->body, kinds[j->keyword],
            j->cv->paused ? "held" : "pending", outbox_id, j->ctx.correlation_id, j->event_id } },
        { "conv_inbound", NMC_CONV_SQL_INBOUND, 5, { j->tenant, j->caller, j->business, j->ref, j->inbound_body } },
    };
    int rc = submit(j, J_INTENT, st, 2, 1);
    if (rc != 0)
        job_finish(j, rc, "keyword not submitted");
}

static void inbound_only(struct job *j)
{
    struct nmc_db_stmt st = { "conv_inbound", NMC_CONV_SQL_INBOUND, 5,
                              { j->tenant, j->caller, j->business, j->ref, j->inbound_body } };
    int rc = submit(j, J_MARK, &st, 1, 0);
    if (rc != 0)
        job_finish(j, rc, "inbound not submitted");
}

static void job_send(struct job *j);
static void job_lookup(struct job *j);
static void release_held(struct conversation *cv);
static void load_flags(struct conversation *cv);
static void arm_flags_poll(struct conversation *cv);
static void on_flags_loaded(struct conversation *cv, const struct nmc_db_result *res);

#define CK_FLAGS_TIMER 2
static void mark(struct job *j, const char *status, const char *code, const char *error, int opt_out);

/* A send that may not leave now goes back on hold (reason "pause" or
 * "compliance"), so the release of that cause drives it again; acking the
 * event without it would strand the row in 'retry' with nothing to send it. */
static void hold(struct job *j, const char *reason)
{
    count(M.held, NULL);
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_INFO, "conversation", "sms.held");
    nmc_log_ctx(r, &j->ctx);
    nmc_log_str(r, "message_id", j->message_id);
    nmc_log_str(r, "reason", reason);
    nmc_log_end(r);
    struct nmc_db_stmt st = { "conv_hold", NMC_CONV_SQL_HOLD, 2, { j->message_id, reason } };
    int rc = submit(j, J_MARK, &st, 1, 0);
    if (rc != 0)
        job_finish(j, rc, "hold not submitted");
}

/* A released send ('retry') may reach two jobs at once: its SmsSendReleased
 * and a CallDetected redelivered after a stopped instance's lease, on one
 * instance or two. Only the job that moves it back to 'pending' sends it;
 * the other acks its event (if the winner dies before marking the send, its
 * own event comes back and resumes from 'pending', asking Twilio first). */
static void claim(struct job *j)
{
    struct nmc_db_stmt st = { "conv_claim", NMC_CONV_SQL_CLAIM_RETRY, 1, { j->message_id } };
    int rc = submit(j, J_CLAIM, &st, 1, 0);
    if (rc != 0)
        job_finish(j, rc, "claim not submitted");
}

static void on_claimed(struct job *j, const PGresult *r)
{
    if (r != NULL && PQntuples(r) > 0) {
        job_send(j);
        return;
    }
    count(M.claims_lost, NULL);
    struct nmc_log_rec *lr = nmc_log_begin(NMC_LOG_INFO, "conversation", "sms.claim_lost");
    nmc_log_ctx(lr, &j->ctx);
    nmc_log_str(lr, "message_id", j->message_id);
    nmc_log_end(lr);
    job_finish(j, 0, NULL);
}

/* A message an earlier delivery (or the release) recorded: carry on from
 * its status. */
static void resume(struct job *j)
{
    const char *s = j->msg_status;
    if (strcmp(s, "retry") == 0) {
        int confirm = strcmp(j->msg_kind, "opt_out_confirm") == 0 || strcmp(j->msg_kind, "help") == 0;
        int approved = strcmp(j->compliance, "approved") == 0;
        if (j->cv->paused) { /* paused again since the release */
            hold(j, "pause");
        } else if (strcmp(j->msg_kind, "first_reply") == 0 && !approved) {
            count(M.blocked, "compliance"); /* revoked since the release: the next approval sends it */
            hold(j, "compliance");
        } else if (!approved) {
            /* a keyword reply held for the pause, the tenant's approval
             * revoked since: not sent (docs/decisions/keyword-replies-compliance.md) */
            char why[64];
            snprintf(why, sizeof why, "not sent: compliance %s", j->compliance);
            keyword_reply_blocked(j, "compliance");
            mark(j, "failed", NULL, why, 0);
        } else if (j->opted_out && !confirm) {
            count(M.blocked, "opted_out"); /* opted out while the send was held */
            mark(j, "failed", NULL, "blocked: recipient opted out", 0);
        } else {
            claim(j);
        }
    } else if (strcmp(s, "pending") == 0 || strcmp(s, "ambiguous") == 0) {
        job_lookup(j);
    } else {
        job_finish(j, 0, NULL); /* held (the release drives it), accepted by Twilio, or final */
    }
}

static void on_loaded(struct job *j, const PGresult *r)
{
    if (r == NULL || PQntuples(r) == 0) {
        count(M.blocked, "no_tenant");
        job_finish(j, 0, NULL);
        return;
    }
    copy_col(j->business_name, sizeof j->business_name, r, 0);
    const char *off = col(r, 16), *off_later = col(r, 17);
    if (off != NULL && off_later != NULL)
        nmc_tenant_cache_put(j->cv->tenants, j->tenant, col(r, 15), col(r, 0), col(r, 2),
                             (int32_t)strtol(off, NULL, 10), (int32_t)strtol(off_later, NULL, 10),
                             nmc_clock_now_ms());
    copy_col(j->message_id, sizeof j->message_id, r, 4);
    copy_col(j->msg_status, sizeof j->msg_status, r, 5);
    copy_col(j->date_sent_after, sizeof j->date_sent_after, r, 12);
    copy_col(j->msg_kind, sizeof j->msg_kind, r, 9);
    const char *comp = col(r, 1), *opted = col(r, 14);
    nmc_strlcpy(j->compliance, comp != NULL ? comp : "unknown", sizeof j->compliance);
    j->opted_out = opted != NULL && strcmp(opted, "t") == 0;
    const char *age = col(r, 10);
    j->msg_age_ms = age != NULL ? strtoll(age, NULL, 10) : 0;
    if (j->message_id[0] != '\0') {
        copy_col(j->body, sizeof j->body, r, 6);
        copy_col(j->business, sizeof j->business, r, 7);
        copy_col(j->caller, sizeof j->caller, r, 8);
        resume(j);
        return;
    }
    if (j->kind == JOB_RELEASE) {
        job_finish(j, 0, NULL); /* the message is gone (tenant deleted) */
        return;
    }
    if (j->kind == JOB_SMS && j->keyword != NMC_KEYWORD_NONE) {
        intent_keyword(j, col(r, 2));
        return;
    }
    if (j->kind == JOB_SMS && col(r, 11) != NULL) {
        inbound_only(j); /* an ongoing conversation: no first reply */
        return;
    }
    render(j, col(r, 2), col(r, 3), NULL);
    intent_first_reply(j, j->kind == JOB_CALL ? "missed_call" : "inbound_sms", j->kind == JOB_SMS);
}

static void on_intent(struct job *j, const struct nmc_db_result *res, size_t nstmts)
{
    const PGresult *r = result_of(res, 0, nstmts);
    const char *blocked = PQnfields(r) >= 5 ? col(r, 4) : NULL;
    const char *created = PQnfields(r) >= 10 ? col(r, 9) : NULL;
    const char *started = PQnfields(r) >= 5 ? col(r, 3) : NULL;
    if (started != NULL && strcmp(started, "t") == 0) {
        nmc_metrics_inc(M.started); /* ConversationStarted committed with the intent */
        hand_over(j, r, 5, "ConversationStarted");
    }
    copy_col(j->message_id, sizeof j->message_id, r, 0);
    copy_col(j->msg_status, sizeof j->msg_status, r, 1);
    intent_recorded(j, blocked, created != NULL && strcmp(created, "t") == 0);
}

/* What nmc_conv_first_reply (or nmc_conv_keyword) answered, from our own
 * intent statement or from the webhook's transaction (on_committed):
 * message_id and msg_status are set; blocked NULL or the reason. */
static void intent_recorded(struct job *j, const char *blocked, int created)
{
    if (j->cached) {
        if ((blocked != NULL && strcmp(blocked, "stale") == 0) || (blocked == NULL && !created)) {
            /* rendered from an outdated tenant, or an earlier delivery
             * recorded the intent: nothing written; take the full path */
            if (blocked != NULL) {
                count(M.tenant_cache, "stale");
                nmc_tenant_cache_forget(j->cv->tenants, j->tenant);
            }
            j->cached = 0;
            j->message_id[0] = j->msg_status[0] = '\0';
            job_load(j);
            return;
        }
    }
    if (blocked != NULL) {
        /* compliance: recorded as held (message_id set); approval sends it */
        count(M.blocked, blocked);
        struct nmc_log_rec *lr = nmc_log_begin(NMC_LOG_INFO, "conversation", "first_reply.blocked");
        nmc_log_ctx(lr, &j->ctx);
        nmc_log_str(lr, "reason", blocked);
        nmc_log_bool(lr, "held", j->message_id[0] != '\0');
        nmc_log_phone(lr, "caller", j->caller);
        nmc_log_end(lr);
        job_finish(j, 0, NULL);
        return;
    }
    if (j->kind == JOB_SMS && j->keyword != NMC_KEYWORD_NONE && strcmp(j->msg_status, "failed") == 0 &&
        j->msg_age_ms == 0) {
        keyword_reply_blocked(j, "compliance"); /* nmc_conv_keyword (migration 0045): the tenant is not approved */
        job_finish(j, 0, NULL);
    } else if (strcmp(j->msg_status, "held") == 0) {
        count(M.held, NULL);
        if (!j->cv->paused)
            release_held(j->cv); /* resumed while this intent was in flight: the release missed it */
        job_finish(j, 0, NULL);
    } else if (strcmp(j->msg_status, "pending") == 0 && j->msg_age_ms == 0) {
        job_send(j); /* our own fresh intent */
    } else {
        resume(j);   /* another delivery got there first */
    }
}

/* ---- Twilio ---- */

static void job_send(struct job *j)
{
    struct conversation *cv = j->cv;
    if (cv->twilio == NULL) {
        job_finish(j, NMC_EPROVIDER, "Twilio client not configured (TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN)");
        return;
    }
    char callback[700];
    snprintf(callback, sizeof callback, "%s/webhooks/twilio/message-status?mid=%s", cv->base_url, j->message_id);
    struct nmc_prov_twilio_sms sms = { j->caller, j->business, j->body, callback };
    j->state = J_SEND;
    int rc = nmc_prov_twilio_send_sms(cv->twilio, &sms, cv->actor, &j->ctx, (uint64_t)(uintptr_t)j, NULL);
    if (rc != 0)
        job_finish(j, rc, "send not started");
}

static void mark(struct job *j, const char *status, const char *code, const char *error, int opt_out)
{
    struct nmc_db_stmt st = { "conv_mark_failed", NMC_CONV_SQL_MARK_FAILED, 5,
                              { j->message_id, status, code, error, opt_out ? "true" : "false" } };
    int rc = submit(j, J_MARK, &st, 1, 0);
    if (rc != 0)
        job_finish(j, rc, "mark not submitted");
}

/* Twilio accepted j's send: j waits in cv->marks for the next group
 * (marks_flush), which marks every send of a loop turn or more in one
 * statement of one asynchronous-commit transaction. */
static void marks_flush(struct conversation *cv, int force);

static void mark_sent(struct job *j, const char *status, const char *sid)
{
    struct conversation *cv = j->cv;
    nmc_strlcpy(j->sent_status, status, sizeof j->sent_status);
    nmc_strlcpy(j->sent_sid, sid != NULL ? sid : "", sizeof j->sent_sid);
    j->state = J_MARK;
    j->marking_sent = 1;
    j->mark_next = NULL;
    *cv->marks_tail = j;
    cv->marks_tail = &j->mark_next;
    if (++cv->nmarks >= MARKS_MAX)
        marks_flush(cv, 1);
}

/* Sends up to MARKS_MAX waiting marks as one NMC_CONV_SQL_MARK_SENT, when
 * fewer than MARKS_INFLIGHT are in flight or force. The statement's values
 * are array literals of the jobs' values, in the group's order. */
static void marks_flush(struct conversation *cv, int force)
{
    if (cv->marks == NULL || (!force && cv->marks_inflight >= MARKS_INFLIGHT))
        return;
    struct job *g = nmc_xcalloc(1, sizeof *g); /* a bare carrier for the cookie */
    job_link(cv, g);
    g->state = J_MARK_GROUP;
    g->group = nmc_xcalloc(cv->nmarks, sizeof *g->group);
    struct nmc_buf a[5] = { { 0 } };
    for (int k = 0; k < 5; k++)
        nmc_buf_puts(&a[k], "{");
    while (cv->marks != NULL && g->ngroup < MARKS_MAX) {
        struct job *j = cv->marks;
        cv->marks = j->mark_next;
        cv->nmarks--;
        g->group[g->ngroup++] = j;
        nmc_db_array_append(&a[0], j->message_id);
        nmc_db_array_append(&a[1], j->sent_status);
        nmc_db_array_append(&a[2], j->sent_sid[0] != '\0' ? j->sent_sid : NULL);
        nmc_db_array_append(&a[3], j->ctx.correlation_id);
        nmc_db_array_append(&a[4], j->event_id);
    }
    if (cv->marks == NULL)
        cv->marks_tail = &cv->marks;
    for (int k = 0; k < 5; k++)
        nmc_buf_puts(&a[k], "}");
    int64_t lease = 0;
    const char *owner = nmc_outbox_lease_owner(cv->app, &lease);
    char lease_ms[24];
    snprintf(lease_ms, sizeof lease_ms, "%lld", (long long)lease);
    for (size_t i = 0; i < g->ngroup; i++)
        g->group[i]->leased = owner != NULL;
    g->ctx = g->group[0]->ctx;
    struct nmc_db_stmt st[2] = {
        { "conv_async_commit", NMC_CONV_SQL_ASYNC_COMMIT, 0, { NULL } },
        { "conv_mark_sent", NMC_CONV_SQL_MARK_SENT, 7,
          { a[0].data, a[1].data, a[2].data, a[3].data, a[4].data, owner, lease_ms } },
    };
    int rc = submit(g, J_MARK_GROUP, st, 2, 1);
    for (int k = 0; k < 5; k++)
        nmc_buf_free(&a[k]);
    if (rc != 0) {
        for (size_t i = 0; i < g->ngroup; i++)
            job_finish(g->group[i], rc, "mark not submitted");
        job_free(g);
        return;
    }
    cv->marks_inflight++;
}

/* Transport failures before Twilio can have seen the request are safe to
 * retry; everything after it may have been sent. */
static int outcome_ambiguous(const struct nmc_prov_twilio_sms_result *r)
{
    if (r->kind == NMC_PROV_HTTP_TIMEOUT || r->err == NMC_EPARSE)
        return 1;
    return r->kind == NMC_PROV_HTTP_CONNECT && r->err != UV_ECONNREFUSED && r->err != UV_EAI_NONAME;
}

static void on_sent(struct job *j, const struct nmc_prov_twilio_sms_result *r)
{
    char code[16];
    snprintf(code, sizeof code, "%d", r->code);
    if (r->err == 0) {
        count(M.results, "queued");
        mark_sent(j, r->status[0] ? r->status : "queued", r->sid);
    } else if (r->code == NMC_PROV_TWILIO_ERR_UNSUBSCRIBED) {
        count(M.results, "opted_out");
        j->permanent = 1; /* 21610: the number opted out at Twilio; never retry */
        mark(j, "failed", code, r->message, 1);
    } else if (r->kind == NMC_PROV_HTTP_4XX && r->http_status != 429) {
        count(M.results, "rejected");
        j->permanent = 1;
        mark(j, "failed", r->code ? code : NULL, r->message, 0);
    } else if (outcome_ambiguous(r)) {
        count(M.results, "ambiguous");
        nmc_metrics_inc(M.ambiguous);
        mark(j, "ambiguous", NULL, r->message[0] ? r->message : "outcome unknown", 0);
    } else {
        count(M.results, "retry");
        mark(j, "retry", r->code ? code : NULL, r->message[0] ? r->message : nmc_strerror(r->err), 0);
    }
}

static void on_marked(struct job *j, const struct nmc_db_result *res)
{
    const PGresult *r = res->nresults > 0 ? res->results[res->nresults - 1] : NULL;
    const char *st = col(r, 0);
    if (j->marking_sent) {
        /* the group's row for this send, if any: the first response's
         * milliseconds when this commit recorded it (and FirstReplySent) */
        if (st != NULL) {
            nmc_metrics_inc(M.first_replies);
            hand_over(j, r, 1, "FirstReplySent");
        }
        st = NULL;
    }
    if (j->permanent) {
        job_finish(j, NMC_EPROVIDER, "Twilio rejected the message");
    } else if (st != NULL && strcmp(st, "retry") == 0 && j->attempts >= j->cv->app->cfg->outbox_max_attempts) {
        /* Twilio still failing at the event's last attempt: definitely not
         * sent, so hold it for the periodic provider release rather than
         * let the outbox dead-letter the reply */
        count(M.provider, "held");
        hold(j, "provider");
    } else if (st != NULL && (strcmp(st, "retry") == 0 || strcmp(st, "ambiguous") == 0)) {
        job_finish(j, NMC_EPROVIDER, st); /* the outbox backs off and delivers again */
    } else {
        job_finish(j, 0, NULL);
    }
}

/* Asks Twilio whether the message of unknown outcome exists (same To,
 * From, body, sent since the day before the intent). */
static void job_lookup(struct job *j)
{
    struct conversation *cv = j->cv;
    const struct nmc_config *c = cv->app->cfg;
    if (cv->twilio == NULL) {
        job_finish(j, NMC_EPROVIDER, "Twilio client not configured");
        return;
    }
    char *to = nmc_url_encode(j->caller), *from = nmc_url_encode(j->business);
    char url[1024];
    snprintf(url, sizeof url, "%s/2010-04-01/Accounts/%s/Messages.json?To=%s&From=%s&DateSent%%3E%%3D=%s&PageSize=50",
             c->twilio_api_base, c->twilio_account_sid, to, from, j->date_sent_after);
    free(to);
    free(from);
    struct nmc_prov_http_req req = { .provider = "twilio", .endpoint = "messages_list", .method = "GET",
                                     .url = url, .userpwd = cv->userpwd, .max_attempts = 1,
                                     .breaker = nmc_prov_twilio_breaker(cv->twilio), .parent = &j->ctx };
    j->state = J_LOOKUP;
    if (nmc_prov_http_send(cv->http, &req, cv->actor, (uint64_t)(uintptr_t)j, NULL) != 0)
        job_finish(j, NMC_EPROVIDER, "lookup not started");
}

/* Every message Twilio lists with our body, as array literals of SIDs and
 * statuses (the caller writes the braces): 1 some, 0 Twilio has no such
 * message, -1 unknown. */
static int lookup_parse(const struct job *j, const struct nmc_prov_http_result *r, struct nmc_buf *sids,
                        struct nmc_buf *statuses)
{
    if (r->err != 0 || r->status != 200)
        return -1;
    json_t *doc = json_loads(r->body, 0, NULL);
    json_t *list = json_object_get(doc, "messages");
    int found = json_is_array(list) ? 0 : -1;
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) {
        const char *body = json_string_value(json_object_get(m, "body"));
        const char *msid = json_string_value(json_object_get(m, "sid"));
        if (body != NULL && msid != NULL && strcmp(body, j->body) == 0 && strlen(msid) < 40) {
            const char *st = json_string_value(json_object_get(m, "status"));
            nmc_db_array_append(sids, msid);
            nmc_db_array_append(statuses, st != NULL && strlen(st) < 24 ? st : "queued");
            found = 1;
        }
    }
    json_decref(doc);
    return found;
}

/* Twilio never had the message: safe to send (or to hold, if paused). */
static void not_at_twilio(struct job *j)
{
    if (j->cv->paused)
        hold(j, "pause");
    else
        job_send(j);
}

static void on_lookup(struct job *j, const struct nmc_prov_http_result *r)
{
    struct nmc_buf sids = { 0 }, statuses = { 0 };
    nmc_buf_puts(&sids, "{");
    nmc_buf_puts(&statuses, "{");
    int found = lookup_parse(j, r, &sids, &statuses);
    nmc_buf_puts(&sids, "}");
    nmc_buf_puts(&statuses, "}");
    if (found == 1) {
        /* An earlier reply to the same caller may have the same text (the
         * same first reply after the repeat window, the same STOP
         * confirmation): only a message none of ours names can be this one. */
        struct nmc_db_stmt st[2] = {
            { "conv_caller_lock", NMC_CONV_SQL_CALLER_LOCK, 2, { j->tenant, j->caller } },
            { "conv_adopt", NMC_CONV_SQL_ADOPT, 5, { sids.data, statuses.data, j->tenant, j->caller, j->message_id } },
        };
        int rc = submit(j, J_ADOPT, st, 2, 1);
        nmc_buf_free(&sids);
        nmc_buf_free(&statuses);
        if (rc != 0)
            job_finish(j, rc, "adoption not submitted");
        return;
    }
    nmc_buf_free(&sids);
    nmc_buf_free(&statuses);
    if (found == 0) {
        not_at_twilio(j);
    } else if (j->msg_age_ms >= j->cv->app->cfg->sms_ambiguous_wait_ms) {
        /* Twilio cannot tell us and no status callback came in the wait:
         * a missed first reply costs more than a rare duplicate. */
        struct nmc_log_rec *lr = nmc_log_begin(NMC_LOG_WARN, "conversation", "sms.ambiguous_resend");
        nmc_log_ctx(lr, &j->ctx);
        nmc_log_str(lr, "message_id", j->message_id);
        nmc_log_end(lr);
        job_send(j);
    } else {
        job_finish(j, NMC_ETIMEDOUT, "send outcome unknown; waiting for Twilio's status callback");
    }
}

static void on_adopt(struct job *j, const PGresult *r)
{
    const char *sid = col(r, 0), *status = col(r, 1);
    if (sid != NULL && status != NULL) {
        char s[40], st[24];
        nmc_strlcpy(s, sid, sizeof s);
        nmc_strlcpy(st, status, sizeof st);
        mark_sent(j, st, s); /* Twilio had it: adopt, never resend */
        return;
    }
    not_at_twilio(j); /* every message with our body is another of ours */
}

/* ---- compliance approval ---- */

/* ComplianceStatusChanged: on "approved", the tenant's first replies held
 * for compliance are released through the outbox (SmsSendReleased, one per
 * message, crash-safe) or expired past NMC_SMS_COMPLIANCE_HOLD_MAX_MINUTES;
 * any other status changes nothing here (the gate reads the tenant's status
 * inside the intent transaction). */
static void job_compliance(struct job *j)
{
    if (strcmp(j->compliance_to, "approved") != 0) {
        job_finish(j, 0, NULL);
        return;
    }
    char max_min[24];
    snprintf(max_min, sizeof max_min, "%d", j->cv->app->cfg->sms_compliance_hold_max_minutes);
    struct nmc_db_stmt st = { "conv_release_compliance", NMC_CONV_SQL_RELEASE_COMPLIANCE, 4,
                              { j->tenant, max_min, j->ctx.correlation_id, j->event_id } };
    int rc = submit(j, J_COMPLIANCE, &st, 1, 0);
    if (rc != 0)
        job_finish(j, rc, "compliance release not submitted");
}

static void on_compliance_released(struct job *j, const PGresult *r)
{
    const char *rel = col(r, 0), *exp = col(r, 1);
    int64_t nrel = rel != NULL ? strtoll(rel, NULL, 10) : 0, nexp = exp != NULL ? strtoll(exp, NULL, 10) : 0;
    nmc_metrics_add(M.compliance, (const char *[]){ "released" }, (double)nrel);
    nmc_metrics_add(M.compliance, (const char *[]){ "expired" }, (double)nexp);
    struct nmc_log_rec *lr = nmc_log_begin(nexp > 0 ? NMC_LOG_WARN : NMC_LOG_INFO, "conversation",
                                           "compliance.holds_released");
    nmc_log_ctx(lr, &j->ctx);
    nmc_log_int(lr, "released", nrel);
    nmc_log_int(lr, "expired", nexp);
    nmc_log_int(lr, "max_age_minutes", j->cv->app->cfg->sms_compliance_hold_max_minutes);
    nmc_log_end(lr);
    if (nrel > 0)
        nmc_outbox_wake(j->cv->app->rt);
    job_finish(j, 0, NULL);
}

/* A mark group's outcome, to each of its jobs as if it had been marked
 * alone: its row of the statement (copied into a result of its own) or
 * none. When the statement failed (a bad value of one send fails them all)
 * each job is marked again in a group of its own. */
static void on_marks(struct conversation *cv, struct job *g, const struct nmc_db_result *res)
{
    cv->marks_inflight--;
    if (res->status != 0 && res->failed_stmt >= 0 && g->ngroup > 1) {
        while (cv->marks != NULL) /* what waits goes first, so that each of these goes alone */
            marks_flush(cv, 1);
        for (size_t i = 0; i < g->ngroup; i++) {
            struct job *j = g->group[i];
            mark_sent(j, j->sent_status, j->sent_sid);
            marks_flush(cv, 1);
        }
    } else if (res->status != 0) {
        for (size_t i = 0; i < g->ngroup; i++)
            job_finish(g->group[i], res->status, res->message);
    } else {
        const PGresult *r = res->nresults > 0 ? res->results[res->nresults - 1] : NULL;
        int *row = nmc_xcalloc(g->ngroup, sizeof *row);
        for (int k = 0; r != NULL && k < PQntuples(r); k++) {
            const char *i = nmc_db_get(r, k, 5);
            long n = i != NULL ? strtol(i, NULL, 10) : 0;
            if (n >= 1 && (size_t)n <= g->ngroup)
                row[n - 1] = k + 1;
        }
        for (size_t i = 0; i < g->ngroup; i++) {
            struct nmc_db_result one;
            memset(&one, 0, sizeof one);
            one.failed_stmt = -1;
            one.latency_ns = res->latency_ns;
            PGresult *mine = row[i] > 0 ? nmc_db_result_row(r, row[i] - 1) : NULL;
            if (row[i] > 0 && mine == NULL) { /* out of memory: the outbox delivers the event after its lease */
                nmc_outbox_wake(cv->app->rt);
                g->group[i]->leased = 0;
            }
            if (mine != NULL)
                one.results[one.nresults++] = mine;
            on_marked(g->group[i], &one);
            PQclear(mine);
        }
        free(row);
    }
    job_free(g);
}

/* ---- dispatch ---- */

static void job_db_result(struct conversation *cv, struct job *j, const struct nmc_db_result *res)
{
    if (j->state == J_MARK_GROUP) {
        on_marks(cv, j, res);
        return;
    }
    if (j->state == J_FLAGS) {
        job_free(j);
        on_flags_loaded(cv, res);
        return;
    }
    if (j->state == J_RELEASE_ALL || j->state == J_RELEASE_PROVIDER) {
        if (j->state == J_RELEASE_PROVIDER)
            on_provider_released(cv, res);
        else if (res->status == 0)
            nmc_outbox_wake(cv->app->rt);
        job_free(j);
        return;
    }
    if (res->status != 0) {
        job_finish(j, res->status, res->message);
        return;
    }
    switch (j->state) {
    case J_LOAD:
        on_loaded(j, res->nresults > 0 ? res->results[res->nresults - 1] : NULL);
        break;
    case J_INTENT:
        on_intent(j, res, j->kind == JOB_CALL ? 1 : 2);
        break;
    case J_MARK:
        on_marked(j, res);
        break;
    case J_CLAIM:
        on_claimed(j, res->nresults > 0 ? res->results[res->nresults - 1] : NULL);
        break;
    case J_ADOPT:
        on_adopt(j, result_of(res, 1, 2));
        break;
    case J_COMPLIANCE:
        on_compliance_released(j, res->nresults > 0 ? res->results[res->nresults - 1] : NULL);
        break;
    default:
        job_finish(j, NMC_EINVAL, "unexpected database result");
        break;
    }
}

/* nmc_conversation_batch_deliver_cb: one job's share of a grouped result. */
static void on_job_result(void *ud, uint64_t cookie, const struct nmc_db_result *res)
{
    job_db_result(ud, (struct job *)(uintptr_t)cookie, res);
}

static void on_db_result(struct conversation *cv, struct nmc_msg *msg)
{
    if (!nmc_conversation_batch_on_result(cv->batch, msg))
        job_db_result(cv, (struct job *)(uintptr_t)msg->cookie, msg->payload);
}

/* The actor's state is the app, not the module: mail that arrives after
 * nmc_conversation_stop() freed the module (late database results, the
 * NMC_ECANCELED completions of the destroyed http client, events the
 * outbox redelivers) finds the slot empty and is dropped; the runtime
 * frees each message and its payload. */
static void on_message(struct nmc_actor *self, struct nmc_msg *msg, void *state)
{
    struct conversation *cv = ((struct nmc_app *)state)->modules[NMC_SLOT_CONVERSATION];
    if (cv == NULL) {
        if (msg->type == NMC_MSG_CONV_PREPARE) { /* the writer records the call alone */
            struct nmc_conv_first_reply *fr = msg->payload;
            msg->payload = NULL;
            fr->ready = 0;
            (void)nmc_rt_send(fr->reply_to, nmc_rt_msg_new(NMC_MSG_CONV_PREPARED, fr, free));
        }
        return;
    }
    switch (msg->type) {
    case NMC_MSG_DOMAIN_EVENT:
        on_event(cv, msg);
        break;
    case NMC_MSG_CONV_PREPARE:
        on_prepare(cv, msg);
        break;
    case NMC_MSG_CONV_COMMITTED:
        on_committed(cv, msg);
        break;
    case NMC_MSG_DB_RESULT:
        on_db_result(cv, msg);
        break;
    case NMC_MSG_PROV_TWILIO_SMS:
        on_sent((struct job *)(uintptr_t)msg->cookie, msg->payload);
        break;
    case NMC_MSG_PROV_HTTP:
        on_lookup((struct job *)(uintptr_t)msg->cookie, msg->payload);
        break;
    case NMC_MSG_TIMER:
        if (msg->cookie == CK_FLAGS_TIMER) {
            cv->flags_timer = 0;
            load_flags(cv);
            arm_flags_poll(cv);
        } else {
            cv->provider_timer = 0;
            release_provider(cv);
            arm_provider_release(cv);
        }
        break;
    case NMC_MSG_DB_NOTIFY: /* an instance changed ops_flags */
        load_flags(cv);
        break;
    default:
        break;
    }
    /* everything of this turn has been seen: its database work goes out together */
    if (nmc_rt_actor_depth(self) == 0) {
        marks_flush(cv, 0);
        nmc_conversation_batch_flush(cv->batch);
    }
}

/* ---- pause ---- */

static void release_held(struct conversation *cv)
{
    struct job *j = nmc_xcalloc(1, sizeof *j); /* a bare carrier for the cookie */
    job_link(cv, j);
    j->state = J_RELEASE_ALL;
    struct nmc_db_stmt st = { "conv_release", NMC_CONV_SQL_RELEASE, 0, { NULL } };
    if (nmc_db_query(cv->app->db, cv->actor, (uint64_t)(uintptr_t)j, NULL, &st) != 0)
        job_free(j);
}

/* ---- provider holds ---- */

#define CK_PROVIDER_TIMER 1

static void arm_provider_release(struct conversation *cv)
{
    uint64_t ms = (uint64_t)cv->app->cfg->sms_provider_hold_retry_ms;
    if (nmc_rt_timer_start(cv->actor, ms, CK_PROVIDER_TIMER, &cv->provider_timer) != 0)
        cv->provider_timer = 0;
}

/* Every NMC_SMS_PROVIDER_HOLD_RETRY_MS: sends held through a Twilio outage
 * get a fresh event (a full set of outbox attempts); if Twilio is still
 * down they come back to hold at the last one. */
static void release_provider(struct conversation *cv)
{
    struct job *j = nmc_xcalloc(1, sizeof *j); /* a bare carrier for the cookie */
    job_link(cv, j);
    j->state = J_RELEASE_PROVIDER;
    char max_min[24];
    snprintf(max_min, sizeof max_min, "%d", cv->app->cfg->sms_provider_hold_max_minutes);
    struct nmc_db_stmt st = { "conv_release_provider", NMC_CONV_SQL_RELEASE_PROVIDER, 1, { max_min } };
    if (nmc_db_query(cv->app->db, cv->actor, (uint64_t)(uintptr_t)j, NULL, &st) != 0)
        job_free(j);
}

static void on_provider_released(struct conversation *cv, const struct nmc_db_result *res)
{
    const PGresult *r = res->status == 0 && res->nresults > 0 ? res->results[res->nresults - 1] : NULL;
    const char *rel = col(r, 0), *exp = col(r, 1);
    int64_t nrel = rel != NULL ? strtoll(rel, NULL, 10) : 0, nexp = exp != NULL ? strtoll(exp, NULL, 10) : 0;
    if (res->status != 0 || nrel > 0 || nexp > 0) {
        struct nmc_log_rec *lr = nmc_log_begin(res->status != 0 || nexp > 0 ? NMC_LOG_WARN : NMC_LOG_INFO,
                                               "conversation", "sms.provider_holds_released");
        nmc_log_int(lr, "released", nrel);
        nmc_log_int(lr, "expired", nexp);
        if (res->status != 0)
            nmc_log_error(lr, res->status, res->message);
        nmc_log_end(lr);
    }
    nmc_metrics_add(M.provider, (const char *[]){ "released" }, (double)nrel);
    nmc_metrics_add(M.provider, (const char *[]){ "expired" }, (double)nexp);
    if (nrel > 0)
        nmc_outbox_wake(cv->app->rt);
}

/* The effective pause: this instance's PAUSE_OUTBOUND_SMS or the fleet's
 * ops_flags row, whichever says pause (a kill switch fails safe: the
 * runbook's `config:set PAUSE_OUTBOUND_SMS=true` must hold whatever the API
 * said before); paused until the row has been read once.
 * A resume releases every send held by the pause (through the outbox, so a
 * crash during the release loses nothing); every instance that sees the
 * resume runs the release, which moves each held row once. */
static void apply_pause(struct conversation *cv, const char *source)
{
    int was = cv->paused;
    cv->paused = !cv->flags_loaded || cv->env_paused || (cv->flag_set && cv->flag_paused);
    if (was == cv->paused)
        return;
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_WARN, "conversation", "sms.pause_changed");
    nmc_log_bool(r, "paused", cv->paused);
    nmc_log_str(r, "source", source);
    nmc_log_end(r);
    if (was && !cv->paused && cv->app->run_workers)
        release_held(cv);
}

static void load_flags(struct conversation *cv)
{
    if (cv->flags_inflight) { /* read again once the answer in flight is in */
        cv->flags_again = 1;
        return;
    }
    struct job *j = nmc_xcalloc(1, sizeof *j); /* a bare carrier for the cookie */
    job_link(cv, j);
    j->state = J_FLAGS;
    struct nmc_db_stmt st = { "conv_flags", NMC_CONV_SQL_FLAGS, 0, { NULL } };
    if (nmc_db_query(cv->app->db, cv->actor, (uint64_t)(uintptr_t)j, NULL, &st) != 0) {
        job_free(j); /* the poll tries again */
        return;
    }
    cv->flags_inflight = 1;
}

/* Every FLAGS_POLL_MS (FLAGS_RETRY_MS until the first read): a change whose
 * notification was lost (the listener reconnecting) still arrives. */
static void arm_flags_poll(struct conversation *cv)
{
    uint64_t ms = cv->flags_loaded ? NMC_CONV_FLAGS_POLL_MS : NMC_CONV_FLAGS_RETRY_MS;
    if (nmc_rt_timer_start(cv->actor, ms, CK_FLAGS_TIMER, &cv->flags_timer) != 0)
        cv->flags_timer = 0;
}

static void on_flags_loaded(struct conversation *cv, const struct nmc_db_result *res)
{
    cv->flags_inflight = 0;
    const PGresult *r = res->status == 0 && res->nresults > 0 ? res->results[res->nresults - 1] : NULL;
    if (r == NULL) {
        struct nmc_log_rec *lr = nmc_log_begin(cv->flags_loaded ? NMC_LOG_WARN : NMC_LOG_ERROR, "conversation",
                                               "ops_flags.load_failed");
        nmc_log_bool(lr, "paused", cv->paused);
        nmc_log_error(lr, res->status, res->message);
        nmc_log_end(lr);
    } else {
        const char *v = PQntuples(r) > 0 ? nmc_db_get(r, 0, 0) : NULL;
        cv->flag_set = v != NULL;
        cv->flag_paused = v != NULL && strcmp(v, "t") == 0;
        cv->flags_loaded = 1;
        cv->app->ops_flags_pending = 0;
        apply_pause(cv, "ops_flags");
    }
    if (cv->flags_again) {
        cv->flags_again = 0;
        load_flags(cv);
    }
}

void nmc_conversation_set_paused(struct nmc_app *app, int paused)
{
    struct conversation *cv = app->modules[NMC_SLOT_CONVERSATION];
    if (cv == NULL)
        return;
    cv->flag_set = 1;
    cv->flag_paused = paused != 0;
    cv->flags_loaded = 1;
    app->ops_flags_pending = 0;
    apply_pause(cv, "admin_api");
    /* another instance may have committed a newer value meanwhile: its
     * notification reloads too, and the last read wins */
    load_flags(cv);
}

int nmc_conversation_paused(struct nmc_app *app)
{
    struct conversation *cv = app->modules[NMC_SLOT_CONVERSATION];
    return cv != NULL && cv->paused;
}

/* ---- init ---- */

/* The "twilio" breaker is the runbook preset (providers/breaker.h); its
 * recovery times can be shortened for drills and tests (NMC_TWILIO_BREAKER_*,
 * validated by runtime/config.c, whose defaults are the preset's). Created
 * here, on our http client, before the Twilio client looks it up by name. */
static int create_breaker(struct conversation *cv)
{
    const struct nmc_config *c = cv->app->cfg;
    struct nmc_prov_breaker_opts bo;
    nmc_prov_breaker_opts_twilio(&bo, 0);
    bo.open_ms = c->twilio_breaker_open_ms;
    bo.close_after_ms = c->twilio_breaker_close_after_ms;
    bo.half_open_ratio = (double)c->twilio_breaker_half_open_percent / 100.0;
    return nmc_prov_http_breaker(cv->http, &bo) != NULL ? 0 : NMC_EINVAL;
}

static int create_twilio(struct conversation *cv)
{
    const struct nmc_config *c = cv->app->cfg;
    /* At most 64 sends in flight to Twilio (its default REST concurrency is of
     * that order): a burst queues inside libcurl on warm connections instead
     * of opening a connection per send (bench/first_sms.sh at 1,500/s opened
     * 2,055 connections for 15,000 sends without the cap). */
    struct nmc_prov_http_opts ho = { .timeout_ms = c->provider_timeout_ms, .max_attempts = 1,
                                     .max_host_connections = 64 };
    int rc = nmc_prov_http_create(cv->app->loop, &ho, &cv->http);
    if (rc == 0 && (rc = create_breaker(cv)) != 0) {
        nmc_prov_http_destroy(cv->http);
        cv->http = NULL;
    }
    if (rc != 0)
        return rc;
    /* one attempt per delivery: a retried POST that timed out could send twice */
    struct nmc_prov_twilio_opts to = { .api_base = c->twilio_api_base, .account_sid = c->twilio_account_sid,
                                       .auth_token = c->twilio_auth_token,
                                       .messaging_service_sid = c->twilio_messaging_service_sid,
                                       .timeout_ms = c->provider_timeout_ms, .max_attempts = 1 };
    if (nmc_prov_twilio_create(cv->http, &to, &cv->twilio) != 0) {
        cv->twilio = NULL;
        struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_ERROR, "conversation", "twilio.not_configured");
        nmc_log_msgf(r, "TWILIO_API_BASE, TWILIO_ACCOUNT_SID or TWILIO_AUTH_TOKEN missing: SMS will not be sent");
        nmc_log_end(r);
    } else {
        snprintf(cv->userpwd, sizeof cv->userpwd, "%s:%s", c->twilio_account_sid, c->twilio_auth_token);
    }
    return 0;
}

static int create_batch(struct conversation *cv)
{
    static const char *const read_only[] = { "conv_load", NULL };
    struct nmc_conversation_batch_opts o = { .db = cv->app->db, .actor = cv->actor, .deliver = on_job_result,
                                             .ud = cv, .async_commit_stmt = "conv_async_commit",
                                             .read_only_stmts = read_only };
    return nmc_conversation_batch_create(&o, &cv->batch);
}

static int subscribe(struct conversation *cv)
{
    static const char *const events[] = { "CallDetected", "InboundSmsReceived", "SmsSendReleased",
                                          "ComplianceStatusChanged" };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(events); i++) {
        int rc = nmc_outbox_subscribe != NULL ? nmc_outbox_subscribe(cv->app, events[i], cv->actor) : NMC_EINVAL;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Frees the module's state; the actor stays (runtime-owned) and finds the
 * slot empty. Jobs in flight are dropped without an ack: the outbox
 * redelivers their events after the lease. The Twilio client goes before
 * the http client it borrows; the http client completes its pending calls
 * with NMC_ECANCELED (dropped, see on_message), frees its breakers, and
 * frees itself once the loop has run its handles' close callbacks. Never
 * called from a libcurl callback. */
static void conversation_free(struct conversation *cv)
{
    while (cv->jobs != NULL)
        job_free(cv->jobs);
    nmc_prov_twilio_destroy(cv->twilio);
    nmc_prov_http_destroy(cv->http);
    nmc_conversation_batch_free(cv->batch); /* its groups in flight are dropped with the mail */
    nmc_tenant_cache_free(cv->tenants);
    free(cv);
}

int nmc_conversation_init(struct nmc_app *app)
{
    struct conversation *cv = nmc_xcalloc(1, sizeof *cv);
    cv->app = app;
    cv->env_paused = app->cfg->pause_outbound_sms;
    cv->paused = 1; /* until ops_flags is read (apply_pause) */
    app->ops_flags_pending = 1;
    cv->tenants = nmc_tenant_cache_new();
    cv->marks_tail = &cv->marks;
    const char *base = app->cfg->public_base_url != NULL ? app->cfg->public_base_url : "";
    size_t n = nmc_strlcpy(cv->base_url, base, sizeof cv->base_url);
    while (n > 0 && cv->base_url[n - 1] == '/')
        cv->base_url[--n] = '\0';
    register_metrics();
    int rc = nmc_rt_actor_create(app->rt, "conversation", on_message, app, 0, &cv->actor);
    if (rc == 0)
        rc = create_batch(cv);
    if (rc == 0)
        rc = create_twilio(cv);
    if (rc == 0)
        rc = subscribe(cv);
    if (rc == 0)
        rc = nmc_db_listen(app->db, NMC_OPS_FLAGS_CHANNEL, cv->actor);
    if (rc != 0) {
        conversation_free(cv);
        return rc;
    }
    app->modules[NMC_SLOT_CONVERSATION] = cv;
    /* sends held by a previous run that was paused go out once the flags
     * say this instance is not paused (apply_pause) */
    load_flags(cv);
    arm_flags_poll(cv);
    if (app->run_workers)
        arm_provider_release(cv);
    return 0;
}

void nmc_conversation_stop(struct nmc_app *app)
{
    struct conversation *cv = app->modules[NMC_SLOT_CONVERSATION];
    if (cv == NULL)
        return;
    app->modules[NMC_SLOT_CONVERSATION] = NULL;
    nmc_rt_timer_cancel(app->rt, cv->provider_timer);
    nmc_rt_timer_cancel(app->rt, cv->flags_timer);
    conversation_free(cv);
}
