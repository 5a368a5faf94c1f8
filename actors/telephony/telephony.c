/* Telephony: the Twilio webhooks (owner: perf engineer). See telephony.h.
 *
 * Path of one webhook: the route handler (on the loop, borrowed request)
 * parses the form, checks X-Twilio-Signature, validates the fields it needs
 * and hands a struct hook with the reply handle to the actor. The actor
 * maps To -> tenant through its cache (one lookup query on a miss), queues
 * the hook, and when its mailbox is empty (everything that arrived in this
 * loop turn has been seen) writes the whole queue as ONE transaction: one
 * statement per webhook that inserts webhook_events (dedupe) and the domain
 * event together. The event is inserted already leased to this instance's
 * outbox (actors/outbox/outbox.h), so after COMMIT it answers every request
 * with empty TwiML and hands each event straight to the outbox, with no
 * claim round trip; the SMS can only leave after the answer. An instance
 * that does not dispatch (role web) inserts unleased events and wakes the
 * outbox, which notifies the workers. */
#include "actors/telephony/telephony.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "actors/conversation/conversation.h"
#include "actors/outbox/outbox.h"
#include "actors/telephony/telephony_sql.h"
#include "http/body.h"
#include "providers/twilio_sig.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/utf8.h"

#define MSG_WEBHOOK (NMC_MSG_MODULE_PRIVATE + 100)
#define FORM_MAX_PAIRS 128
#define BATCH_MAX 32      /* webhooks per transaction */
#define TXN_MAX 4         /* transactions in flight; past it webhooks accumulate into bigger batches */
#define CACHE_BUCKETS 256
#define NEGATIVE_TTL_MS 30000

const char nmc_telephony_twiml_empty[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

enum endpoint { EP_VOICE = 0, EP_SMS, EP_STATUS };
static const char *const ep_names[] = { "voice-status", "sms", "message-status" };
static const char *const ep_spans[] = { "webhook.twilio.voice_status", "webhook.twilio.sms_inbound",
                                        "webhook.twilio.message_status" };

/* One verified webhook on its way to COMMIT. Owns everything it points to. */
struct hook {
    struct hook *next;
    enum endpoint ep;
    struct nmc_http_handle reply;
    uint64_t received_ns;
    char correlation_id[NMC_ID_LEN];
    struct nmc_span *span;
    struct nmc_form form;
    char *mid;              /* ?mid= of a status callback, validated UUID or NULL */
    char *payload_json;     /* the form as a JSON object, for webhook_events.payload */
    char event_key[320];    /* webhook_events.event_id */
    char tenant_id[NMC_ID_LEN];
    int missed;
    struct nmc_conv_first_reply *fr; /* a missed call's first reply, prepared by the conversation */
    int row;                /* its row in the batch's set-based statement, or -1 (a statement of its own) */
    size_t stmt;            /* the batch's statement that answers for it */
    struct hook *pnext, *pprev;      /* t->preparing while the conversation prepares it */
};

enum op_kind { OP_BATCH = 1, OP_LOOKUP };

struct batch {
    enum op_kind kind;
    struct batch *next, *prev; /* t->batches while its transaction is in the database */
    struct hook *items;
    size_t n;
    int leased;                /* events were inserted leased to our outbox: hand them over */
    size_t nstmts;             /* statements of its transaction */
};

struct lookup {
    enum op_kind kind;
    struct lookup *next;
    char e164[40];
    struct hook *waiting;
};

struct cache_entry {
    struct cache_entry *next;
    char e164[40];
    char tenant_id[NMC_ID_LEN]; /* "" for a number no tenant owns */
    int64_t expires_ms;         /* 0: until invalidated */
};

struct telephony {
    struct nmc_app *app;
    struct nmc_actor *actor;
    char base_url[512];
    struct cache_entry *cache[CACHE_BUCKETS];
    struct hook *queue, **queue_tail;
    size_t nqueue;
    struct lookup *lookups;
    struct batch *batches;  /* in the database: nmc_telephony_stop() answers their hooks */
    struct hook *preparing; /* waiting for the conversation's NMC_MSG_CONV_PREPARED */
    int txn_inflight;
};

static struct {
    struct nmc_metric *sig_failures, *dedupe_hits, *duration, *calls_detected, *sms_status;
} M;

static void register_metrics(void)
{
    M.sig_failures = nmc_metrics_counter("webhook_signature_failures_total",
                                         "Webhooks rejected for a missing or wrong signature", "provider");
    M.dedupe_hits = nmc_metrics_counter("webhook_dedupe_hits_total", "Webhooks already seen (replays)", "provider");
    M.duration = nmc_metrics_histogram("webhook_handler_duration_ms", "Webhook receipt to answer (after COMMIT)",
                                       "provider,endpoint,status", NULL, 0);
    M.calls_detected = nmc_metrics_counter("kpi_calls_detected_total", "Missed calls detected", NULL);
    M.sms_status = nmc_metrics_counter("twilio_message_status_total",
                                       "Twilio status callbacks stored (replays not counted)", "status");
}

/* ---- classification and validation (pure) ---- */

enum nmc_telephony_class nmc_telephony_classify(const char *call_status, const char *duration, int treat_short,
                                                int short_max)
{
    static const char *const missed[] = { "no-answer", "busy", "failed" };
    static const char *const other[] = { "queued", "initiated", "ringing", "in-progress", "canceled" };
    /* CallDuration, whenever sent, is whole seconds (stored as an integer
     * whatever the status: a "NaN" used to reach the database and fail). */
    int64_t secs = 0;
    if (call_status == NULL ||
        (duration != NULL && duration[0] != '\0' && nmc_parse_i64(duration, 0, 86400 * 7, &secs) != 0))
        return NMC_TELEPHONY_INVALID;
    for (size_t i = 0; i < NMC_ARRAY_SIZE(missed); i++)
        if (strcmp(call_status, missed[i]) == 0)
            return NMC_TELEPHONY_MISSED;
    for (size_t i = 0; i < NMC_ARRAY_SIZE(other); i++)
        if (strcmp(call_status, other[i]) == 0)
            return NMC_TELEPHONY_NOT_MISSED;
    if (strcmp(call_status, "completed") != 0)
        return NMC_TELEPHONY_INVALID;
    if (treat_short && (duration == NULL || duration[0] == '\0' || secs <= short_max))
        return NMC_TELEPHONY_MISSED;
    return NMC_TELEPHONY_NOT_MISSED;
}

/* A Twilio SID: two letters of prefix then 32 hex characters (we accept 1..64
 * alphanumerics so emulators and tests can use short ones). */
static int sid_valid(const char *s, const char *prefix1, const char *prefix2)
{
    if (s == NULL || (strncmp(s, prefix1, 2) != 0 && (prefix2 == NULL || strncmp(s, prefix2, 2) != 0)))
        return 0;
    size_t n = 0;
    for (const char *p = s + 2; *p; p++, n++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return 0;
    return n >= 1 && n <= 64;
}

static int uuid_valid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return 1;
}

static int short_field(const char *s, size_t max)
{
    return s == NULL || strlen(s) <= max;
}

/* ---- hooks ---- */

static void hook_free(void *p)
{
    struct hook *h = p;
    if (h == NULL)
        return;
    nmc_form_free(&h->form);
    free(h->mid);
    free(h->payload_json);
    free(h->fr);
    if (h->span != NULL)
        nmc_trace_span_end(h->span);
    free(h);
}

static char *form_to_json(const struct nmc_form *f)
{
    struct nmc_buf b = { 0 };
    nmc_buf_puts(&b, "{");
    for (size_t i = 0; i < f->n; i++) {
        if (i > 0)
            nmc_buf_puts(&b, ",");
        nmc_buf_json_str(&b, f->pairs[i].name);
        nmc_buf_puts(&b, ":");
        nmc_buf_json_str(&b, f->pairs[i].value);
    }
    nmc_buf_puts(&b, "}");
    return nmc_buf_steal(&b, NULL);
}

static void observe(enum endpoint ep, int status, uint64_t received_ns)
{
    char st[8];
    snprintf(st, sizeof st, "%d", status);
    const char *labels[] = { "twilio", ep_names[ep], st };
    uint64_t now = nmc_clock_mono_ns();
    double ms = received_ns && now > received_ns ? (double)(now - received_ns) / 1e6 : 0.0;
    nmc_metrics_observe(M.duration, labels, ms);
}

/* Answers one hook; a reply to a connection already gone goes nowhere. */
static void hook_reply(const struct hook *h, int status)
{
    if (status == 200) {
        nmc_http_reply(h->reply, 200, "text/xml", nmc_telephony_twiml_empty, sizeof nmc_telephony_twiml_empty - 1,
                       NULL);
    } else {
        nmc_http_reply_error(h->reply, status, "internal", "the webhook could not be stored; retry");
        if (h->span != NULL)
            nmc_trace_span_error(h->span, "webhook not stored");
    }
    observe(h->ep, status, h->received_ns);
}

/* Answers one hook and frees it. */
static void hook_answer(struct hook *h, int status)
{
    hook_reply(h, status);
    hook_free(h);
}

/* Answers a list of hooks (linked by next) and frees them. */
static void hooks_answer(struct hook *h, int status)
{
    while (h != NULL) {
        struct hook *next = h->next;
        hook_answer(h, status);
        h = next;
    }
}

/* ---- route handlers (run on the loop with a borrowed request) ---- */

static void reject(struct nmc_http_req *req, enum endpoint ep, int status, const char *code, const char *why)
{
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_WARN, "telephony", "webhook.rejected");
    nmc_log_ids(r, NULL, req->correlation_id, NULL);
    nmc_log_str(r, "provider", "twilio");
    nmc_log_str(r, "endpoint", ep_names[ep]);
    nmc_log_int(r, "status", status);
    nmc_log_str(r, "remote_addr", req->remote_addr);
    nmc_log_msgf(r, "%s", why);
    nmc_log_end(r);
    nmc_http_respond_error(req, status, code, why);
    observe(ep, status, req->received_ns);
}

/* The URL Twilio signed: our public base (Host is not public behind a load
 * balancer) + the request target with its query. */
static void public_url(const struct telephony *t, const struct nmc_http_req *req, char *out, size_t n)
{
    snprintf(out, n, "%s%s", t->base_url, req->target);
}

static int check_signature(struct telephony *t, struct nmc_http_req *req, enum endpoint ep,
                           const struct nmc_form *form)
{
    char url[2048];
    public_url(t, req, url, sizeof url);
    const char *sig = nmc_http_req_header(req, "x-twilio-signature");
    const char *token = t->app->cfg->twilio_auth_token;
    if (sig != NULL && token != NULL && nmc_prov_twilio_sig_valid_form(token, url, form, sig))
        return 0;
    const char *labels[] = { "twilio" };
    nmc_metrics_add(M.sig_failures, labels, 1);
    reject(req, ep, 401, "invalid_signature",
           sig == NULL ? "missing X-Twilio-Signature" : "X-Twilio-Signature does not match");
    return NMC_EAUTH;
}

/* Field checks per endpoint; on failure names the problem in why. Every
 * value must be UTF-8, as Twilio sends it: the database refuses other bytes,
 * which would turn a malformed webhook into a 500 that Twilio retries. */
static int validate(struct telephony *t, struct hook *h, const char **why)
{
    const struct nmc_form *f = &h->form;
    for (size_t i = 0; i < f->n; i++)
        if (!nmc_utf8_valid(f->pairs[i].name, strlen(f->pairs[i].name)) ||
            !nmc_utf8_valid(f->pairs[i].value, strlen(f->pairs[i].value)))
            return *why = "a form field is not valid UTF-8", NMC_EINVAL;
    const char *from = nmc_form_get(f, "From"), *to = nmc_form_get(f, "To");
    if (h->ep == EP_VOICE) {
        const struct nmc_config *c = t->app->cfg;
        if (!sid_valid(nmc_form_get(f, "CallSid"), "CA", NULL))
            return *why = "CallSid missing or malformed", NMC_EINVAL;
        enum nmc_telephony_class k = nmc_telephony_classify(nmc_form_get(f, "CallStatus"),
                                                            nmc_form_get(f, "CallDuration"),
                                                            c->treat_short_completed_as_missed,
                                                            c->short_completed_max_seconds);
        if (k == NMC_TELEPHONY_INVALID)
            return *why = "CallStatus or CallDuration invalid", NMC_EINVAL;
        h->missed = k == NMC_TELEPHONY_MISSED;
        snprintf(h->event_key, sizeof h->event_key, "voice:%s:%s", nmc_form_get(f, "CallSid"),
                 nmc_form_get(f, "CallStatus"));
    } else if (h->ep == EP_SMS) {
        if (!sid_valid(nmc_form_get(f, "MessageSid"), "SM", "MM"))
            return *why = "MessageSid missing or malformed", NMC_EINVAL;
        if (!short_field(nmc_form_get(f, "Body"), 1600) || !short_field(nmc_form_get(f, "NumMedia"), 3))
            return *why = "Body or NumMedia too long", NMC_EINVAL;
        snprintf(h->event_key, sizeof h->event_key, "sms:%s", nmc_form_get(f, "MessageSid"));
    } else {
        const char *st = nmc_form_get(f, "MessageStatus");
        if (!sid_valid(nmc_form_get(f, "MessageSid"), "SM", "MM") || st == NULL || !short_field(st, 20))
            return *why = "MessageSid or MessageStatus missing or malformed", NMC_EINVAL;
        if (!short_field(nmc_form_get(f, "ErrorCode"), 10))
            return *why = "ErrorCode too long", NMC_EINVAL;
        snprintf(h->event_key, sizeof h->event_key, "status:%s:%s", nmc_form_get(f, "MessageSid"), st);
        return 0;
    }
    if (from == NULL || from[0] == '\0' || strlen(from) > 32 || !nmc_is_e164(to))
        return *why = "From or To missing or malformed", NMC_EINVAL;
    return 0;
}

/* Twilio sends the same I-Twilio-Idempotency-Token on every retry of one
 * webhook: when present it is the dedupe key, with the endpoint so a token
 * can never collide across endpoints. Twilio's tokens are printable ASCII;
 * another one is ignored (the key from the SIDs stands), as its bytes could
 * not be stored. */
static int token_ok(const char *tok)
{
    size_t n = 0;
    for (; tok[n] != '\0'; n++)
        if (tok[n] < 0x21 || tok[n] > 0x7e || n == 200)
            return 0;
    return n > 0;
}

static void apply_idempotency_token(struct hook *h, const struct nmc_http_req *req)
{
    const char *tok = nmc_http_req_header(req, "i-twilio-idempotency-token");
    if (tok != NULL && token_ok(tok))
        snprintf(h->event_key, sizeof h->event_key, "%s:token:%s", ep_names[h->ep], tok);
}

static void handle(struct telephony *t, struct nmc_http_req *req, enum endpoint ep)
{
    struct hook *h = nmc_xcalloc(1, sizeof *h);
    h->ep = ep;
    const char *why = NULL;
    if (nmc_form_parse(req->body, req->body_len, FORM_MAX_PAIRS, &h->form) != 0) {
        reject(req, ep, 400, "bad_request", "malformed form body");
        goto drop;
    }
    if (check_signature(t, req, ep, &h->form) != 0)
        goto drop;
    if (validate(t, h, &why) != 0) {
        reject(req, ep, 400, "bad_request", why);
        goto drop;
    }
    apply_idempotency_token(h, req);
    if (ep == EP_STATUS) {
        h->mid = nmc_http_req_query(req, "mid");
        if (h->mid != NULL && !uuid_valid(h->mid)) {
            free(h->mid);
            h->mid = NULL;
        }
    }
    h->payload_json = form_to_json(&h->form);
    h->received_ns = req->received_ns;
    nmc_strlcpy(h->correlation_id, req->correlation_id, sizeof h->correlation_id);
    h->span = nmc_trace_span_start(ep_spans[ep], &req->trace);
    nmc_trace_span_attr(h->span, "correlation_id", req->correlation_id);
    struct nmc_http_handle reply = nmc_http_req_handle(req);
    h->reply = reply;
    struct nmc_msg *m = nmc_rt_msg_new(MSG_WEBHOOK, h, hook_free);
    m->trace = req->trace;
    nmc_strlcpy(m->correlation_id, req->correlation_id, sizeof m->correlation_id);
    if (nmc_rt_send(t->actor, m) != 0) /* the message (and the hook) are freed: answer from here */
        nmc_http_reply_error(reply, 503, "overloaded", "telephony is overloaded; retry");
    return;
drop:
    hook_free(h);
}

/* ud is the app: the module is looked up per request (NULL once stopped;
 * Twilio retries a 503). */
static void route(void *ud, struct nmc_http_req *req, enum endpoint ep)
{
    struct telephony *t = ((struct nmc_app *)ud)->modules[NMC_SLOT_TELEPHONY];
    if (t != NULL) {
        handle(t, req, ep);
        return;
    }
    nmc_http_respond_error(req, 503, "unavailable", "the server is shutting down; retry");
    observe(ep, 503, req->received_ns);
}

static void on_voice_status(struct nmc_http_req *req, void *ud)
{
    route(ud, req, EP_VOICE);
}

static void on_sms(struct nmc_http_req *req, void *ud)
{
    route(ud, req, EP_SMS);
}

static void on_message_status(struct nmc_http_req *req, void *ud)
{
    route(ud, req, EP_STATUS);
}

/* ---- number -> tenant cache ---- */

static unsigned cache_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % CACHE_BUCKETS;
}

/* 1 and the tenant ("" for no tenant) when cached, 0 on a miss. */
static int cache_get(struct telephony *t, const char *e164, char tenant[NMC_ID_LEN])
{
    struct cache_entry **pp = &t->cache[cache_hash(e164)];
    for (; *pp != NULL; pp = &(*pp)->next) {
        struct cache_entry *e = *pp;
        if (strcmp(e->e164, e164) != 0)
            continue;
        if (e->expires_ms != 0 && e->expires_ms < nmc_clock_now_ms()) {
            *pp = e->next;
            free(e);
            return 0;
        }
        nmc_strlcpy(tenant, e->tenant_id, NMC_ID_LEN);
        return 1;
    }
    return 0;
}

static void cache_put(struct telephony *t, const char *e164, const char *tenant)
{
    char ignored[NMC_ID_LEN];
    if (cache_get(t, e164, ignored))
        return;
    struct cache_entry *e = nmc_xcalloc(1, sizeof *e);
    nmc_strlcpy(e->e164, e164, sizeof e->e164);
    nmc_strlcpy(e->tenant_id, tenant, sizeof e->tenant_id);
    e->expires_ms = tenant[0] == '\0' ? nmc_clock_now_ms() + NEGATIVE_TTL_MS : 0;
    unsigned b = cache_hash(e164);
    e->next = t->cache[b];
    t->cache[b] = e;
}

/* Admin changes are rare: dropping the whole cache is simpler and safer
 * than tracking which numbers a tenant had before the change. */
static void cache_clear(struct telephony *t)
{
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        struct cache_entry *e = t->cache[i];
        while (e != NULL) {
            struct cache_entry *next = e->next;
            free(e);
            e = next;
        }
        t->cache[i] = NULL;
    }
}

/* ---- the write path ---- */

static void queue_push(struct telephony *t, struct hook *h)
{
    h->next = NULL;
    *t->queue_tail = h;
    t->queue_tail = &h->next;
    t->nqueue++;
}

/* A statement's PGresult: the pool may or may not count BEGIN and COMMIT. */
static const PGresult *stmt_result(const struct nmc_db_result *res, size_t i, size_t n)
{
    size_t k = res->nresults >= n + 2 ? i + 1 : i;
    return k < res->nresults ? res->results[k] : NULL;
}

static void log_unknown_number(const struct hook *h)
{
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_WARN, "telephony", "webhook.unknown_number");
    nmc_log_ids(r, NULL, h->correlation_id, NULL);
    nmc_log_str(r, "provider", "twilio");
    nmc_log_str(r, "endpoint", ep_names[h->ep]);
    nmc_log_phone(r, "to", nmc_form_get(&h->form, "To"));
    nmc_log_msgf(r, "no tenant owns this number; answered with empty TwiML");
    nmc_log_end(r);
}

/* A missed call whose events this instance dispatches: ask the
 * conversation to prepare its first reply for the webhook's transaction
 * (conversation.h). 0 when asked (the hook waits on t->preparing). */
static int prepare_first_reply(struct telephony *t, struct hook *h)
{
    struct nmc_actor *conv = nmc_rt_actor_find(t->app->rt, "conversation");
    if (h->ep != EP_VOICE || !h->missed || conv == NULL || nmc_outbox_lease_owner(t->app, NULL) == NULL)
        return NMC_ENOTFOUND;
    struct nmc_conv_first_reply *fr = nmc_xcalloc(1, sizeof *fr);
    fr->reply_to = t->actor;
    fr->cookie = (uint64_t)(uintptr_t)h;
    nmc_strlcpy(fr->tenant, h->tenant_id, sizeof fr->tenant);
    nmc_strlcpy(fr->caller, nmc_form_get(&h->form, "From"), sizeof fr->caller);
    nmc_strlcpy(fr->business, nmc_form_get(&h->form, "To"), sizeof fr->business);
    nmc_strlcpy(fr->call_sid, nmc_form_get(&h->form, "CallSid"), sizeof fr->call_sid);
    struct nmc_msg *m = nmc_rt_msg_new(NMC_MSG_CONV_PREPARE, fr, free);
    nmc_strlcpy(m->tenant_id, h->tenant_id, sizeof m->tenant_id);
    nmc_strlcpy(m->correlation_id, h->correlation_id, sizeof m->correlation_id);
    if (nmc_rt_send(conv, m) != 0)
        return NMC_EFULL;
    h->pprev = NULL;
    h->pnext = t->preparing;
    if (t->preparing != NULL)
        t->preparing->pprev = h;
    t->preparing = h;
    return 0;
}

/* NMC_MSG_CONV_PREPARED: the hook goes to the queue with its first reply
 * (or without, ready = 0). */
static void on_prepared(struct telephony *t, struct nmc_msg *msg)
{
    struct nmc_conv_first_reply *fr = msg->payload;
    struct hook *h = (struct hook *)(uintptr_t)fr->cookie;
    msg->payload = NULL;
    msg->payload_free = NULL;
    if (h->pprev != NULL)
        h->pprev->pnext = h->pnext;
    else
        t->preparing = h->pnext;
    if (h->pnext != NULL)
        h->pnext->pprev = h->pprev;
    h->pnext = h->pprev = NULL;
    if (fr->ready)
        h->fr = fr;
    else
        free(fr);
    queue_push(t, h);
}

/* Routes a hook whose tenant is known ("" = none) to the queue or answers it. */
static void hook_resolved(struct telephony *t, struct hook *h, const char *tenant)
{
    if (tenant[0] == '\0') {
        log_unknown_number(h);
        hook_answer(h, 200);
        return;
    }
    nmc_strlcpy(h->tenant_id, tenant, sizeof h->tenant_id);
    if (prepare_first_reply(t, h) != 0)
        queue_push(t, h);
}

static void start_lookup(struct telephony *t, struct hook *h, const char *e164)
{
    for (struct lookup *l = t->lookups; l != NULL; l = l->next)
        if (strcmp(l->e164, e164) == 0) {
            h->next = l->waiting;
            l->waiting = h;
            return;
        }
    struct lookup *l = nmc_xcalloc(1, sizeof *l);
    l->kind = OP_LOOKUP;
    nmc_strlcpy(l->e164, e164, sizeof l->e164);
    struct nmc_db_stmt st = { "telephony_number_tenant", NMC_TELEPHONY_SQL_NUMBER_TENANT, 1, { l->e164 } };
    if (nmc_db_query(t->app->db, t->actor, (uint64_t)(uintptr_t)l, NULL, &st) != 0) {
        free(l);
        hook_answer(h, 503);
        return;
    }
    h->next = NULL;
    l->waiting = h;
    l->next = t->lookups;
    t->lookups = l;
}

static void on_lookup_done(struct telephony *t, struct lookup *l, const struct nmc_db_result *res)
{
    for (struct lookup **pp = &t->lookups; *pp != NULL; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    const char *tenant = NULL;
    if (res->status == 0 && res->nresults > 0 && PQntuples(res->results[res->nresults - 1]) > 0)
        tenant = nmc_db_get(res->results[res->nresults - 1], 0, 0);
    if (res->status == 0)
        cache_put(t, l->e164, tenant != NULL ? tenant : "");
    struct hook *h = l->waiting;
    while (h != NULL) {
        struct hook *next = h->next;
        if (res->status != 0)
            hook_answer(h, 503);
        else
            hook_resolved(t, h, tenant != NULL ? tenant : "");
        h = next;
    }
    free(l);
}

static void on_webhook(struct telephony *t, struct nmc_msg *msg)
{
    struct hook *h = msg->payload;
    msg->payload = NULL; /* the hook is ours now */
    msg->payload_free = NULL;
    /* status callbacks are keyed by our message id, not by the number */
    if (h->ep == EP_STATUS) {
        queue_push(t, h);
        return;
    }
    const char *to = nmc_form_get(&h->form, "To");
    char tenant[NMC_ID_LEN];
    if (cache_get(t, to, tenant))
        hook_resolved(t, h, tenant);
    else
        start_lookup(t, h, to);
}

/* The lease an event is inserted with (see actors/outbox/outbox.h). */
struct lease {
    const char *owner; /* NULL: unleased */
    char ms[24];
};

/* Fills the statement for one hook; params point into the hook and l. */
static void hook_stmt(const struct hook *h, const struct lease *l, struct nmc_db_stmt *st, char *scratch,
                      size_t scratch_len)
{
    const struct nmc_form *f = &h->form;
    memset(st, 0, sizeof *st);
    if (h->ep == EP_VOICE) {
        const char *dur = nmc_form_get(f, "CallDuration");
        *st = (struct nmc_db_stmt){ "telephony_voice", NMC_TELEPHONY_SQL_VOICE, 12,
            { h->event_key, h->tenant_id, h->payload_json, nmc_form_get(f, "CallSid"), nmc_form_get(f, "From"),
              nmc_form_get(f, "To"), nmc_form_get(f, "CallStatus"), dur != NULL && dur[0] ? dur : NULL,
              h->missed ? "true" : "false", h->correlation_id, l->owner, l->ms } };
        if (h->fr != NULL && l->owner != NULL) {
            st->name = "telephony_voice_first_reply";
            st->sql = NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY;
            st->params[st->nparams++] = h->fr->dedupe;
            st->params[st->nparams++] = h->fr->body;
            st->params[st->nparams++] = h->fr->status;
            st->params[st->nparams++] = h->fr->repeat_minutes;
            st->params[st->nparams++] = h->fr->tenant_version;
        }
    } else if (h->ep == EP_SMS) {
        const char *body = nmc_form_get(f, "Body"), *nm = nmc_form_get(f, "NumMedia");
        *st = (struct nmc_db_stmt){ "telephony_sms", NMC_TELEPHONY_SQL_SMS, 8,
            { h->event_key, h->tenant_id, h->payload_json, nmc_form_get(f, "MessageSid"), nmc_form_get(f, "From"),
              nmc_form_get(f, "To"), body != NULL ? body : "", h->correlation_id } };
        int64_t media = 0;
        if (nm != NULL && nmc_parse_i64(nm, 0, 100, &media) != 0)
            media = 0;
        snprintf(scratch, scratch_len, "%lld", (long long)media);
        st->params[st->nparams++] = scratch;
        st->params[st->nparams++] = l->owner;
        st->params[st->nparams++] = l->ms;
    } else {
        const char *err = nmc_form_get(f, "ErrorCode");
        *st = (struct nmc_db_stmt){ "telephony_status", NMC_TELEPHONY_SQL_STATUS, 5,
            { h->event_key, h->payload_json, h->mid, nmc_form_get(f, "MessageSid"), nmc_form_get(f, "MessageStatus") } };
        st->params[st->nparams++] = err != NULL && err[0] ? err : NULL;
    }
}

/* The missed calls of a batch whose first replies the conversation
 * prepared, as the arrays of NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY_MANY. */
enum { FR_KEY, FR_TENANT, FR_PAYLOAD, FR_SID, FR_FROM, FR_TO, FR_STATUS, FR_DURATION, FR_CORR, FR_DEDUPE, FR_BODY,
       FR_MSG_STATUS, FR_REPEAT, FR_TENANT_VERSION, FR_ARRAYS };

static void first_reply_row(struct nmc_buf a[FR_ARRAYS], const struct hook *h)
{
    const struct nmc_form *f = &h->form;
    const char *dur = nmc_form_get(f, "CallDuration");
    const char *v[FR_ARRAYS] = { h->event_key, h->tenant_id, h->payload_json, nmc_form_get(f, "CallSid"),
                                 nmc_form_get(f, "From"), nmc_form_get(f, "To"), nmc_form_get(f, "CallStatus"),
                                 dur != NULL && dur[0] ? dur : NULL, h->correlation_id, h->fr->dedupe, h->fr->body,
                                 h->fr->status, h->fr->repeat_minutes, h->fr->tenant_version };
    for (int k = 0; k < FR_ARRAYS; k++)
        nmc_db_array_append(&a[k], v[k]);
}

int nmc_telephony_stmt_order(const char *mid_a, const char *key_a, const char *mid_b, const char *key_b)
{
    int c = strcmp(mid_a != NULL ? mid_a : "", mid_b != NULL ? mid_b : "");
    return c != 0 ? c : strcmp(key_a, key_b);
}

static int hook_order(const void *a, const void *b)
{
    const struct hook *x = *(struct hook *const *)a, *y = *(struct hook *const *)b;
    return nmc_telephony_stmt_order(x->mid, x->event_key, y->mid, y->event_key);
}

/* One transaction for the batch: its missed calls with prepared first
 * replies in one set-based statement (first, when there are two or more),
 * every other webhook in a statement of its own, in the order of
 * nmc_telephony_stmt_order. A lone missed call keeps
 * NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY: at 50 calls/s, one per transaction,
 * the set-based statement took 0.4-0.7 ms more (bench/first_sms.sh, P50
 * 2.8-3.1 vs 2.4-2.5 ms). */
static int submit_batch(struct telephony *t, struct batch *b)
{
    struct nmc_db_stmt st[BATCH_MAX + 2];
    char scratch[BATCH_MAX][24];
    struct lease l = { 0 };
    int64_t lease_ms = 0;
    l.owner = nmc_outbox_lease_owner(t->app, &lease_ms);
    snprintf(l.ms, sizeof l.ms, "%lld", (long long)lease_ms);
    b->leased = l.owner != NULL;
    struct nmc_buf a[FR_ARRAYS] = { { 0 } };
    int rows = 0;
    size_t n = 2, i = 0; /* st[0], st[1]: the plan setting and the set-based statement, when used */
    size_t fused = 0, nown = 0;
    struct hook *own[BATCH_MAX];
    for (struct hook *h = b->items; h != NULL; h = h->next)
        fused += h->ep == EP_VOICE && h->fr != NULL && l.owner != NULL;
    for (struct hook *h = b->items; h != NULL; h = h->next) {
        h->row = -1;
        if (fused > 1 && h->ep == EP_VOICE && h->fr != NULL && l.owner != NULL) {
            if (rows == 0)
                for (int k = 0; k < FR_ARRAYS; k++)
                    nmc_buf_puts(&a[k], "{");
            first_reply_row(a, h);
            h->row = rows++;
            h->stmt = 1;
        } else {
            own[nown++] = h;
        }
    }
    qsort(own, nown, sizeof own[0], hook_order); /* see nmc_telephony_stmt_order */
    for (i = 0; i < nown; i++) {
        hook_stmt(own[i], &l, &st[n], scratch[i], sizeof scratch[i]);
        own[i]->stmt = n++;
    }
    size_t first = 2;
    if (rows > 0) {
        for (int k = 0; k < FR_ARRAYS; k++)
            nmc_buf_puts(&a[k], "}");
        st[0] = (struct nmc_db_stmt){ "telephony_generic_plans", NMC_TELEPHONY_SQL_GENERIC_PLANS, 0, { NULL } };
        st[1] = (struct nmc_db_stmt){ "telephony_voice_first_reply_many", NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY_MANY, 16,
            { a[FR_KEY].data, a[FR_TENANT].data, a[FR_PAYLOAD].data, a[FR_SID].data, a[FR_FROM].data, a[FR_TO].data,
              a[FR_STATUS].data, a[FR_DURATION].data, a[FR_CORR].data, l.owner, l.ms, a[FR_DEDUPE].data,
              a[FR_BODY].data, a[FR_MSG_STATUS].data, a[FR_REPEAT].data, a[FR_TENANT_VERSION].data } };
        first = 0;
    } else {
        for (struct hook *h = b->items; h != NULL; h = h->next)
            h->stmt -= 2;
    }
    b->nstmts = n - first;
    int rc = nmc_db_txn(t->app->db, t->actor, (uint64_t)(uintptr_t)b, NULL, &st[first], b->nstmts);
    for (int k = 0; k < FR_ARRAYS; k++)
        nmc_buf_free(&a[k]);
    if (rc != 0)
        return rc;
    t->txn_inflight++;
    b->prev = NULL;
    b->next = t->batches;
    if (t->batches != NULL)
        t->batches->prev = b;
    t->batches = b;
    return 0;
}

static void batch_unlink(struct telephony *t, struct batch *b)
{
    if (b->prev != NULL)
        b->prev->next = b->next;
    else
        t->batches = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
}

/* Answers every hook of b (not in the database) with http_status, frees b. */
static void fail_batch(struct batch *b, int http_status)
{
    hooks_answer(b->items, http_status);
    free(b);
}

static void flush(struct telephony *t)
{
    while (t->nqueue > 0 && t->txn_inflight < TXN_MAX) {
        struct batch *b = nmc_xcalloc(1, sizeof *b);
        b->kind = OP_BATCH;
        struct hook **tail = &b->items;
        while (t->queue != NULL && b->n < BATCH_MAX) {
            struct hook *h = t->queue;
            t->queue = h->next;
            h->next = NULL;
            *tail = h;
            tail = &h->next;
            b->n++;
            t->nqueue--;
        }
        if (t->queue == NULL)
            t->queue_tail = &t->queue;
        if (submit_batch(t, b) != 0)
            fail_batch(b, 503);
    }
}

/* Twilio's message statuses; anything else is "other" (bounded label set). */
static const char *status_label(const char *st)
{
    static const char *const known[] = { "accepted", "scheduled", "queued", "sending", "sent", "delivered",
                                         "undelivered", "failed", "canceled", "read", "receiving", "received" };
    for (size_t i = 0; st != NULL && i < NMC_ARRAY_SIZE(known); i++)
        if (strcmp(st, known[i]) == 0)
            return known[i];
    return "other";
}

/* Sets a message's tenant, correlation id and trace from the hook's. */
static void hook_ctx(const struct hook *h, struct nmc_msg *ctx)
{
    nmc_strlcpy(ctx->tenant_id, h->tenant_id, sizeof ctx->tenant_id);
    nmc_strlcpy(ctx->correlation_id, h->correlation_id, sizeof ctx->correlation_id);
    if (h->span != NULL)
        ctx->trace = h->span->ctx; /* the consumers' spans continue the webhook's trace */
}

static const char *col_or(const PGresult *r, int c, const char *dflt)
{
    const char *v = PQnfields(r) > c ? nmc_db_get(r, 0, c) : NULL;
    return v != NULL ? v : dflt;
}

/* A first reply nmc_conv_first_reply recorded (or declined) in the hook's
 * transaction (NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY columns 6-16) goes to
 * the conversation, which acks CallDetected itself. 0 when sent; nonzero:
 * hand CallDetected over as usual (the conversation then finds the intent
 * recorded and resumes it). */
static int committed_first_reply(struct telephony *t, struct hook *h, const PGresult *r, struct nmc_actor **conv)
{
    *conv = nmc_rt_actor_find(t->app->rt, "conversation");
    if (h->fr == NULL || *conv == NULL || PQnfields(r) < 17 || nmc_db_get(r, 0, 9) == NULL)
        return NMC_ENOTFOUND;
    struct nmc_conv_first_reply *fr = h->fr;
    fr->outbox_id = strtoll(nmc_db_get(r, 0, 2), NULL, 10);
    nmc_strlcpy(fr->event_id, col_or(r, 3, ""), sizeof fr->event_id);
    nmc_strlcpy(fr->message_id, col_or(r, 6, ""), sizeof fr->message_id);
    nmc_strlcpy(fr->message_status, col_or(r, 7, ""), sizeof fr->message_status);
    fr->started = strcmp(col_or(r, 9, "f"), "t") == 0;
    nmc_strlcpy(fr->blocked, col_or(r, 10, ""), sizeof fr->blocked);
    fr->created = strcmp(col_or(r, 15, "f"), "t") == 0;
    nmc_strlcpy(fr->detected_at, col_or(r, 16, ""), sizeof fr->detected_at);
    struct nmc_msg *m = nmc_rt_msg_new(NMC_MSG_CONV_COMMITTED, fr, free);
    hook_ctx(h, m);
    nmc_strlcpy(m->causation_id, fr->event_id, sizeof m->causation_id);
    h->fr = NULL; /* the message owns it */
    return nmc_rt_send(*conv, m);
}

/* Hands the events a hook's statement inserted, leased to our outbox, to
 * the outbox (NMC_TELEPHONY_SQL_RESULT columns 2-5, and a first reply's
 * ConversationStarted in 11-14). Nonzero when it could not: the outbox
 * must be woken to claim them instead. */
static int hand_over(struct telephony *t, struct hook *h, const PGresult *r)
{
    struct nmc_msg ctx = { 0 };
    hook_ctx(h, &ctx);
    if (h->ep != EP_VOICE)
        return nmc_outbox_handoff_row(t->app->rt, r, 2, "InboundSmsReceived", &ctx, NULL);
    struct nmc_actor *conv = NULL;
    int fused = committed_first_reply(t, h, r, &conv) == 0;
    int rc = nmc_outbox_handoff_row(t->app->rt, r, 2, "CallDetected", &ctx, fused ? conv : NULL);
    if (PQnfields(r) >= 15 && nmc_db_get(r, 0, 11) != NULL &&
        nmc_outbox_handoff_row(t->app->rt, r, 11, "ConversationStarted", &ctx, NULL) != 0)
        rc = NMC_EFULL;
    return rc;
}

static void count_results(struct telephony *t, const struct batch *b, struct hook *h, const PGresult *r,
                          int *wake)
{
    const char *stored = r != NULL ? nmc_db_get(r, 0, 0) : NULL;
    const char *events = r != NULL ? nmc_db_get(r, 0, 1) : NULL;
    if (stored != NULL && strcmp(stored, "0") == 0) {
        const char *labels[] = { "twilio" };
        nmc_metrics_add(M.dedupe_hits, labels, 1);
    } else if (stored != NULL && h->ep == EP_STATUS) {
        const char *labels[] = { status_label(nmc_form_get(&h->form, "MessageStatus")) };
        nmc_metrics_add(M.sms_status, labels, 1);
    }
    if (events != NULL && strcmp(events, "0") != 0) {
        if (!b->leased || hand_over(t, h, r) != 0)
            *wake = 1;
        if (h->ep == EP_VOICE)
            nmc_metrics_inc(M.calls_detected);
    }
}

static void log_batch_failure(const struct batch *b, const struct nmc_db_result *res)
{
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_ERROR, "telephony", "webhook.store_failed");
    nmc_log_ids(r, b->items != NULL ? b->items->tenant_id : NULL, b->items != NULL ? b->items->correlation_id : NULL,
                NULL);
    nmc_log_int(r, "batch_size", (int64_t)b->n);
    nmc_log_str(r, "sqlstate", res->sqlstate);
    nmc_log_error(r, res->status, res->message);
    nmc_log_end(r);
}

/* A failed multi-webhook transaction is retried one webhook per
 * transaction, so one poisonous request cannot fail its neighbours. */
static void split_batch(struct telephony *t, struct batch *b)
{
    struct hook *h = b->items;
    free(b);
    while (h != NULL) {
        struct hook *next = h->next;
        struct batch *one = nmc_xcalloc(1, sizeof *one);
        one->kind = OP_BATCH;
        one->items = h;
        one->n = 1;
        h->next = NULL;
        if (submit_batch(t, one) != 0)
            fail_batch(one, 503);
        h = next;
    }
}

static void on_batch_done(struct telephony *t, struct batch *b, const struct nmc_db_result *res)
{
    t->txn_inflight--;
    batch_unlink(t, b);
    if (res->status != 0) {
        log_batch_failure(b, res);
        if (b->n > 1 && res->status != NMC_ESHUTDOWN)
            split_batch(t, b);
        else
            fail_batch(b, res->status == NMC_ESHUTDOWN ? 503 : 500);
        return;
    }
    int wake = 0;
    for (struct hook *h = b->items; h != NULL;) {
        struct hook *next = h->next;
        /* the handoff is a message: the outbox runs after this handler, so
         * the answer goes out first and only then may the first SMS leave */
        const PGresult *r = stmt_result(res, h->stmt, b->nstmts);
        PGresult *own = h->row >= 0 ? nmc_db_result_row(r, h->row) : NULL;
        count_results(t, b, h, h->row >= 0 ? own : r, &wake);
        PQclear(own);
        hook_answer(h, 200); /* answered right after COMMIT */
        h = next;
    }
    free(b);
    if (wake)
        nmc_outbox_wake(t->app->rt);
}

static void on_db_result(struct telephony *t, struct nmc_msg *msg)
{
    const struct nmc_db_result *res = msg->payload;
    enum op_kind *kind = (enum op_kind *)(uintptr_t)msg->cookie;
    if (*kind == OP_LOOKUP)
        on_lookup_done(t, (struct lookup *)kind, res);
    else
        on_batch_done(t, (struct batch *)kind, res);
}

/* Mail that reaches the actor after nmc_telephony_stop() freed the state
 * (between stop and nmc_rt_stop): late database results (their batches and
 * lookups were answered by stop), cache invalidations, and webhooks the
 * route handed over before stop, answered 503 here like the ones stop
 * found (Twilio retries). The runtime frees each message and its payload. */
static void on_stopped(const struct nmc_msg *msg)
{
    if (msg->type == MSG_WEBHOOK && msg->payload != NULL)
        hook_reply(msg->payload, 503);
}

/* The actor's state is the app, not the module: the module is looked up
 * per message so that nothing reads it once stop has freed it. */
static void on_message(struct nmc_actor *self, struct nmc_msg *msg, void *state)
{
    struct telephony *t = ((struct nmc_app *)state)->modules[NMC_SLOT_TELEPHONY];
    if (t == NULL) {
        on_stopped(msg);
        return;
    }
    switch (msg->type) {
    case MSG_WEBHOOK:
        on_webhook(t, msg);
        break;
    case NMC_MSG_DB_RESULT:
        on_db_result(t, msg);
        break;
    case NMC_MSG_CACHE_INVALIDATE:
        cache_clear(t);
        break;
    case NMC_MSG_CONV_PREPARED:
        on_prepared(t, msg);
        break;
    default:
        break;
    }
    /* Everything that arrived in this loop turn has been seen once the
     * mailbox is empty: that is the batch. */
    if (t->nqueue > 0 && (nmc_rt_actor_depth(self) == 0 || t->nqueue >= BATCH_MAX))
        flush(t);
}

static int register_routes(struct telephony *t)
{
    struct nmc_http_server *s = t->app->http;
    if (s == NULL)
        return 0;
    int rc = nmc_http_server_route(s, "POST", "/webhooks/twilio/voice-status", on_voice_status, t->app);
    if (rc == 0)
        rc = nmc_http_server_route(s, "POST", "/webhooks/twilio/sms", on_sms, t->app);
    if (rc == 0)
        rc = nmc_http_server_route(s, "POST", "/webhooks/twilio/message-status", on_message_status, t->app);
    return rc;
}

int nmc_telephony_init(struct nmc_app *app)
{
    struct telephony *t = nmc_xcalloc(1, sizeof *t);
    t->app = app;
    t->queue_tail = &t->queue;
    const char *base = app->cfg->public_base_url != NULL ? app->cfg->public_base_url : "";
    size_t n = nmc_strlcpy(t->base_url, base, sizeof t->base_url);
    while (n > 0 && t->base_url[n - 1] == '/')
        t->base_url[--n] = '\0';
    register_metrics();
    int rc = nmc_rt_actor_create(app->rt, "telephony", on_message, app, 0, &t->actor);
    if (rc == 0)
        rc = register_routes(t);
    if (rc != 0) {
        free(t);
        return rc;
    }
    app->modules[NMC_SLOT_TELEPHONY] = t;
    return 0;
}

/* Frees everything the module owns, at once: the actor, the routes and the
 * runtime outlive the module (nmc_rt_stop comes later), and what still
 * reaches them finds the slot empty (route, on_stopped). Every webhook the
 * module holds (queued, waiting for its number's lookup, or in a
 * transaction) is answered 503 as a transaction failed by the pool's
 * shutdown is: Twilio retries, and a transaction that commits anyway makes
 * the retry a dedupe hit (its event, leased to this instance, is claimed
 * when the lease lapses). Late database results are dropped. */
void nmc_telephony_stop(struct nmc_app *app)
{
    struct telephony *t = app->modules[NMC_SLOT_TELEPHONY];
    if (t == NULL)
        return;
    app->modules[NMC_SLOT_TELEPHONY] = NULL;
    hooks_answer(t->queue, 503);
    while (t->preparing != NULL) {
        struct hook *h = t->preparing;
        t->preparing = h->pnext;
        hook_answer(h, 503);
    }
    while (t->lookups != NULL) {
        struct lookup *l = t->lookups;
        t->lookups = l->next;
        hooks_answer(l->waiting, 503);
        free(l);
    }
    while (t->batches != NULL) {
        struct batch *b = t->batches;
        t->batches = b->next;
        fail_batch(b, 503);
    }
    cache_clear(t);
    free(t);
}
