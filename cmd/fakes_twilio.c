/* nmc-fakes: Twilio's Messages resource and its signed status callbacks. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <mbedtls/base64.h>
#include "cmd/fakes.h"
#include "http/body.h"
#include "providers/twilio_sig.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/log.h"

#define MAX_FORM_PAIRS 64
#define MORE_INFO "https://www.twilio.com/docs/errors/"

/* ---- answers (optionally delayed by --latency-ms) ----------------------- */

struct delayed {
    uv_timer_t timer;
    struct fakes *f;
    struct nmc_http_handle h;
    int status;
    char *json;
    int www_auth;
};

static const char *const www_auth_headers[] = {"WWW-Authenticate: Basic realm=\"Twilio API\"", NULL};

static void on_delayed_closed(uv_handle_t *h)
{
    struct delayed *d = nmc_container_of((uv_timer_t *)h, struct delayed, timer);
    free(d->json);
    free(d);
}

static void on_delay_done(uv_timer_t *t)
{
    struct delayed *d = nmc_container_of(t, struct delayed, timer);

    /* After shutdown the server (and the handle's connection) is gone. */
    if (d->f->server != NULL)
        (void)nmc_http_reply(d->h, d->status, "application/json", d->json, strlen(d->json),
                             d->www_auth ? www_auth_headers : NULL);
    uv_close((uv_handle_t *)t, on_delayed_closed);
}

/* Answers with json (taken) now or after the configured latency. */
static void answer(struct fakes *f, struct nmc_http_req *req, int status, char *json)
{
    int www_auth = status == 401;
    struct delayed *d;

    if (f->o.latency_ms <= 0) {
        nmc_http_respond(req, status, "application/json", json, strlen(json), www_auth ? www_auth_headers : NULL);
        free(json);
        return;
    }
    d = nmc_xcalloc(1, sizeof(*d));
    d->f = f;
    d->h = nmc_http_req_handle(req);
    d->status = status;
    d->json = json;
    d->www_auth = www_auth;
    uv_timer_init(f->loop, &d->timer);
    uv_timer_start(&d->timer, on_delay_done, (uint64_t)f->o.latency_ms, 0);
}

/* Twilio's error document. */
static char *error_json(int code, const char *message, int status)
{
    char more[64];
    json_t *j;
    char *s;

    snprintf(more, sizeof(more), MORE_INFO "%d", code);
    j = json_pack("{s:i, s:s, s:s, s:i}", "code", code, "message", message, "more_info", more, "status", status);
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static void answer_error(struct fakes *f, struct nmc_http_req *req, int status, int code, const char *message)
{
    answer(f, req, status, error_json(code, message, status));
}

/* ---- checks ------------------------------------------------------------------ */

/* Basic auth must be sid:token, with sid the account of the path (and the
 * configured one, if any). */
static int auth_ok(const struct fakes *f, const struct nmc_http_req *req, const char *path_sid)
{
    const char *h = nmc_http_req_header(req, "authorization");
    unsigned char dec[512];
    size_t n = 0, sidlen = strlen(path_sid);
    const char *tok = f->o.auth_token;

    if (h == NULL || strncmp(h, "Basic ", 6) != 0)
        return 0;
    if (mbedtls_base64_decode(dec, sizeof(dec) - 1, &n, (const unsigned char *)h + 6, strlen(h + 6)) != 0)
        return 0;
    dec[n] = '\0';
    if (f->o.account_sid != NULL && strcmp(path_sid, f->o.account_sid) != 0)
        return 0;
    if (n <= sidlen || memcmp(dec, path_sid, sidlen) != 0 || dec[sidlen] != ':')
        return 0;
    return nmc_ct_equal(dec + sidlen + 1, n - sidlen - 1, tok, strlen(tok));
}

/* E.164: '+', a non-zero digit, up to 15 digits in all. */
static int e164(const char *s)
{
    size_t n;

    if (s == NULL || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return 0;
    n = strspn(s + 1, "0123456789");
    return s[1 + n] == '\0' && n >= 2 && n <= 15;
}

static int unsubscribed(const struct fakes *f, const char *to)
{
    for (size_t i = 0; i < f->o.nunsubscribed; i++)
        if (strcmp(f->o.unsubscribed[i], to) == 0)
            return 1;
    return 0;
}

static const char *nonempty(const struct nmc_form *form, const char *name)
{
    const char *v = nmc_form_get(form, name);
    return v != NULL && *v != '\0' ? v : NULL;
}

/* Twilio's validation order: 0 when the message is acceptable, else the
 * Twilio error code with its message in *why. */
static int validate(const struct fakes *f, const struct nmc_form *form, const char **why)
{
    const char *to = nonempty(form, "To");
    int has_sender = nonempty(form, "From") != NULL || nonempty(form, "MessagingServiceSid") != NULL;
    int has_content = nonempty(form, "Body") != NULL || nonempty(form, "MediaUrl") != NULL;

    *why = NULL;
    if (to == NULL) {
        *why = "A 'To' phone number is required.";
        return 21604;
    }
    if (!e164(to)) {
        *why = "Invalid 'To' Phone Number";
        return 21211;
    }
    if (!has_sender) {
        *why = "A 'From' phone number is required.";
        return 21603;
    }
    if (!has_content) {
        *why = "Message body is required.";
        return 21602;
    }
    if (unsubscribed(f, to)) {
        *why = "Attempt to send to unsubscribed recipient";
        return 21610;
    }
    return 0;
}

/* ---- accepted messages ------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
    return s ? nmc_xstrdup(s) : NULL;
}

static struct fakes_msg *record(struct fakes *f, const char *account_sid, const struct nmc_form *form)
{
    static struct fakes_msg scratch;
    struct fakes_msg *m;
    unsigned char rnd[16];

    if (f->nmsgs >= f->o.max_records) {
        f->stats.records_dropped++;
        m = &scratch; /* answered as usual, not kept */
        memset(m, 0, sizeof(*m));
    } else {
        if (f->nmsgs == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 256;
            f->msgs = nmc_xrealloc(f->msgs, f->cap * sizeof(*f->msgs));
        }
        m = &f->msgs[f->nmsgs++];
        memset(m, 0, sizeof(*m));
        m->account_sid = nmc_xstrdup(account_sid);
        m->to = dup_or_null(nmc_form_get(form, "To"));
        m->from = dup_or_null(nonempty(form, "From"));
        m->messaging_service_sid = dup_or_null(nonempty(form, "MessagingServiceSid"));
        m->body = dup_or_null(nmc_form_get(form, "Body"));
        m->status_callback = dup_or_null(nonempty(form, "StatusCallback"));
    }
    nmc_random_bytes(rnd, sizeof(rnd));
    m->sid[0] = 'S';
    m->sid[1] = 'M';
    nmc_hex(m->sid + 2, rnd, sizeof(rnd));
    m->received_at_ns = nmc_clock_now_ns();
    return m;
}

void fakes_msgs_clear(struct fakes *f)
{
    for (size_t i = 0; i < f->nmsgs; i++) {
        struct fakes_msg *m = &f->msgs[i];
        free(m->account_sid);
        free(m->to);
        free(m->from);
        free(m->messaging_service_sid);
        free(m->body);
        free(m->status_callback);
    }
    f->nmsgs = 0;
}

static void rfc2822(char out[40])
{
    time_t now = (time_t)(nmc_clock_now_ms() / 1000);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* The Message resource as Twilio answers it on create. */
static char *message_json(const char *account_sid, const char *sid, const struct nmc_form *form, const char *status)
{
    char date[40], uri[160];
    json_t *j;
    char *s;

    rfc2822(date);
    snprintf(uri, sizeof(uri), "/2010-04-01/Accounts/%s/Messages/%s.json", account_sid, sid);
    j = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:n, s:s, s:s, s:n, s:n, s:s?, s:s?, s:s, s:s, s:n, s:s, s:s, "
                  "s:s, s:s}",
                  "account_sid", account_sid, "api_version", "2010-04-01", "body", nmc_form_get(form, "Body"),
                  "date_created", date, "date_updated", date, "date_sent", "direction", "outbound-api",
                  "status", status, "error_code", "error_message", "from", nonempty(form, "From"),
                  "messaging_service_sid", nonempty(form, "MessagingServiceSid"), "num_media", "0",
                  "num_segments", "1", "price", "price_unit", "USD", "sid", sid, "to", nmc_form_get(form, "To"),
                  "uri", uri);
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* ---- status callbacks, signed as Twilio signs them ------------------------- */

struct cb_job {
    uv_timer_t timer;
    struct fakes *f;
    int stage; /* 0: "sent" next, 1: "delivered" next */
    char sid[35];
    char *url, *account_sid, *from, *to, *messaging_service_sid;
};

static void on_job_closed(uv_handle_t *h)
{
    struct cb_job *j = nmc_container_of((uv_timer_t *)h, struct cb_job, timer);
    free(j->url);
    free(j->account_sid);
    free(j->from);
    free(j->to);
    free(j->messaging_service_sid);
    free(j);
}

/* Collects the callback's parameters; returns how many. */
static size_t cb_params(const struct cb_job *j, const char *status, struct nmc_prov_kv *kv)
{
    size_t n = 0;

    kv[n++] = (struct nmc_prov_kv){"AccountSid", j->account_sid};
    kv[n++] = (struct nmc_prov_kv){"ApiVersion", "2010-04-01"};
    if (j->from)
        kv[n++] = (struct nmc_prov_kv){"From", j->from};
    if (j->messaging_service_sid)
        kv[n++] = (struct nmc_prov_kv){"MessagingServiceSid", j->messaging_service_sid};
    kv[n++] = (struct nmc_prov_kv){"MessageSid", j->sid};
    kv[n++] = (struct nmc_prov_kv){"MessageStatus", status};
    kv[n++] = (struct nmc_prov_kv){"SmsSid", j->sid};
    kv[n++] = (struct nmc_prov_kv){"SmsStatus", status};
    kv[n++] = (struct nmc_prov_kv){"To", j->to};
    return n;
}

static void form_body(const struct nmc_prov_kv *kv, size_t n, struct nmc_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        char *v = nmc_url_encode(kv[i].value);
        nmc_buf_printf(out, "%s%s=%s", i ? "&" : "", kv[i].name, v);
        free(v);
    }
}

static void post_callback(struct cb_job *j, const char *status)
{
    struct nmc_prov_kv kv[10];
    size_t n = cb_params(j, status, kv);
    char sig[NMC_PROV_TWILIO_SIG_LEN], sig_hdr[64], idem[37], idem_hdr[80];
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded", "User-Agent: TwilioProxy/1.1",
                             sig_hdr, idem_hdr, NULL};
    struct nmc_buf body = {0};
    struct nmc_prov_http_req req = {.provider = "fakes", .endpoint = "status_callback", .method = "POST",
                                    .url = j->url, .headers = headers, .max_attempts = 1, .timeout_ms = 5000};

    if (j->f->http == NULL || j->f->stopping)
        return;
    if (nmc_prov_twilio_sig_compute(j->f->o.auth_token, j->url, kv, n, sig) != 0)
        return;
    snprintf(sig_hdr, sizeof(sig_hdr), "X-Twilio-Signature: %s", sig);
    nmc_id_uuid4(idem);
    snprintf(idem_hdr, sizeof(idem_hdr), "I-Twilio-Idempotency-Token: %s", idem);
    form_body(kv, n, &body);
    req.body = body.data;
    req.body_len = body.len;
    if (nmc_prov_http_send(j->f->http, &req, j->f->callbacks_actor, 0, NULL) != 0)
        j->f->stats.callbacks_failed++;
    nmc_buf_free(&body);
}

static void on_callback_due(uv_timer_t *t)
{
    struct cb_job *j = nmc_container_of(t, struct cb_job, timer);

    post_callback(j, j->stage == 0 ? "sent" : "delivered");
    if (j->stage++ == 0)
        uv_timer_start(t, on_callback_due, (uint64_t)j->f->o.callback_delay_ms, 0);
    else
        uv_close((uv_handle_t *)t, on_job_closed);
}

static void schedule_callbacks(struct fakes *f, const struct fakes_msg *m, const struct nmc_form *form,
                               const char *account_sid)
{
    const char *url = nonempty(form, "StatusCallback");
    struct cb_job *j;

    if (!f->o.status_callbacks || url == NULL)
        return;
    j = nmc_xcalloc(1, sizeof(*j));
    j->f = f;
    memcpy(j->sid, m->sid, sizeof(j->sid));
    j->url = nmc_xstrdup(url);
    j->account_sid = nmc_xstrdup(account_sid);
    j->from = dup_or_null(nonempty(form, "From"));
    j->to = nmc_xstrdup(nmc_form_get(form, "To"));
    j->messaging_service_sid = dup_or_null(nonempty(form, "MessagingServiceSid"));
    uv_timer_init(f->loop, &j->timer);
    uv_timer_start(&j->timer, on_callback_due, (uint64_t)f->o.callback_delay_ms + (uint64_t)f->o.latency_ms, 0);
}

void fakes_twilio_on_callback_done(struct fakes *f, const struct nmc_msg *m)
{
    const struct nmc_prov_http_result *r = m->payload;
    struct nmc_log_rec *rec;

    if (m->type != NMC_MSG_PROV_HTTP || r == NULL)
        return;
    if (r->err == 0) {
        f->stats.callbacks_sent++;
        return;
    }
    f->stats.callbacks_failed++;
    rec = nmc_log_begin(NMC_LOG_WARN, "fakes", "status_callback.failed");
    nmc_log_int(rec, "status", r->status);
    nmc_log_error(rec, r->err, r->error[0] ? r->error : NULL);
    nmc_log_end(rec);
}

/* ---- POST /2010-04-01/Accounts/{sid}/Messages.json ---------------------- */

/* Injected faults: 1 when the request was taken care of. */
static int inject(struct fakes *f, struct nmc_http_req *req)
{
    double u = nmc_rng_unit();

    if (u < f->o.timeout_rate) {
        f->stats.injected_timeouts++;
        (void)nmc_http_req_handle(req); /* taken and never answered */
        return 1;
    }
    if (u < f->o.timeout_rate + f->o.fail_rate) {
        f->stats.injected_5xx++;
        answer_error(f, req, 500, 20500, "Internal Server Error");
        return 1;
    }
    return 0;
}

static void accept_message(struct fakes *f, struct nmc_http_req *req, const char *sid, const struct nmc_form *form)
{
    struct fakes_msg *m = record(f, sid, form);
    /* Twilio answers "accepted" when a Messaging Service picks the sender. */
    const char *status = nonempty(form, "From") ? "queued" : "accepted";

    f->stats.accepted++;
    schedule_callbacks(f, m, form, sid);
    answer(f, req, 201, message_json(sid, m->sid, form, status));
}

static void on_messages_create(struct nmc_http_req *req, void *ud)
{
    struct fakes *f = ud;
    const char *sid = nmc_http_req_param(req, "sid");
    struct nmc_form form = {0};
    const char *why;
    int code;

    f->stats.requests++;
    if (sid == NULL || !auth_ok(f, req, sid)) {
        f->stats.auth_failures++;
        answer_error(f, req, 401, 20003, "Authenticate");
        return;
    }
    if (inject(f, req))
        return;
    if (nmc_form_parse(req->body, req->body_len, MAX_FORM_PAIRS, &form) != 0) {
        f->stats.invalid++;
        answer_error(f, req, 400, 20001, "Unable to parse the request body");
        return;
    }
    code = validate(f, &form, &why);
    if (code == 0)
        accept_message(f, req, sid, &form);
    else {
        if (code == 21610)
            f->stats.unsubscribed++;
        else
            f->stats.invalid++;
        answer_error(f, req, 400, code, why);
    }
    nmc_form_free(&form);
}

int fakes_twilio_routes(struct fakes *f)
{
    return nmc_http_server_route(f->server, "POST", "/2010-04-01/Accounts/{sid}/Messages.json", on_messages_create, f);
}
