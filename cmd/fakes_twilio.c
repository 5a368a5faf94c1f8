/* nmc-fakes: Twilio's Messages resource (create and list), with Basic
 * auth, Twilio's validation errors and fault injection. */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <mbedtls/base64.h>
#include "cmd/fakes.h"
#include "http/body.h"
#include "runtime/clock.h"

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

/* ---- fault injection ------------------------------------------------------ */

enum fault { FAULT_NONE = 0, FAULT_ANSWERED, FAULT_SWALLOW };

/* Draws the fault of one create: a 500 (answered here), a timeout (the
 * request taken and never answered: here, or after it was processed with
 * --timeout-after-accept) or none. */
static enum fault inject(struct fakes *f, struct nmc_http_req *req)
{
    double u = nmc_rng_unit();

    if (u < f->o.timeout_rate) {
        f->stats.injected_timeouts++;
        if (f->o.timeout_after_accept)
            return FAULT_SWALLOW;
        (void)nmc_http_req_handle(req);
        return FAULT_ANSWERED;
    }
    if (u < f->o.timeout_rate + f->o.fail_rate) {
        f->stats.injected_5xx++;
        answer_error(f, req, 500, 20500, "Internal Server Error");
        return FAULT_ANSWERED;
    }
    return FAULT_NONE;
}

/* ---- POST /2010-04-01/Accounts/{sid}/Messages.json ---------------------- */

static char *accept_message(struct fakes *f, const char *sid, const struct nmc_form *form)
{
    struct fakes_msg m;
    size_t index;
    char *json;
    json_t *j;

    fakes_store_fill(&m, sid, form);
    f->stats.accepted++;
    j = fakes_store_resource(&m);
    json = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    index = fakes_store_add(f, &m);
    if (index != SIZE_MAX)
        fakes_callbacks_schedule(f, index, &f->msgs[index]);
    return json;
}

/* Validates and records; the answer's status and JSON (taken by the caller). */
static int process(struct fakes *f, const char *sid, struct nmc_http_req *req, char **json)
{
    struct nmc_form form = {0};
    const char *why;
    int code;

    if (nmc_form_parse(req->body, req->body_len, MAX_FORM_PAIRS, &form) != 0) {
        f->stats.invalid++;
        *json = error_json(20001, "Unable to parse the request body", 400);
        return 400;
    }
    code = validate(f, &form, &why);
    if (code == 0)
        *json = accept_message(f, sid, &form);
    else {
        if (code == 21610)
            f->stats.unsubscribed++;
        else
            f->stats.invalid++;
        *json = error_json(code, why, 400);
    }
    nmc_form_free(&form);
    return code == 0 ? 201 : 400;
}

static void on_messages_create(struct nmc_http_req *req, void *ud)
{
    struct fakes *f = ud;
    const char *sid = nmc_http_req_param(req, "sid");
    enum fault fault;
    char *json = NULL;
    int status;

    f->stats.requests++;
    if (sid == NULL || !auth_ok(f, req, sid)) {
        f->stats.auth_failures++;
        answer_error(f, req, 401, 20003, "Authenticate");
        return;
    }
    if ((fault = inject(f, req)) == FAULT_ANSWERED)
        return;
    status = process(f, sid, req, &json);
    if (fault == FAULT_SWALLOW) {
        (void)nmc_http_req_handle(req); /* processed, the answer lost */
        free(json);
        return;
    }
    answer(f, req, status, json);
}

/* ---- GET /2010-04-01/Accounts/{sid}/Messages.json (list, newest first) ------ */

/* DateSent>= takes YYYY-MM-DD (compared by day) or an RFC 3339 instant. */
static int sent_since(const struct fakes_msg *m, const char *since)
{
    char at[32];

    if (since == NULL)
        return 1;
    nmc_clock_format_rfc3339(m->received_at_ns / 1000000, at);
    return strlen(since) == 10 ? strncmp(at, since, 10) >= 0 : strcmp(at, since) >= 0;
}

static int list_match(const struct fakes_msg *m, const char *sid, const char *to, const char *from,
                      const char *since)
{
    return strcmp(m->account_sid, sid) == 0 && (to == NULL || (m->to && strcmp(m->to, to) == 0)) &&
           (from == NULL || (m->from && strcmp(m->from, from) == 0)) && sent_since(m, since);
}

static int64_t page_size(const struct nmc_http_req *req)
{
    char *v = nmc_http_req_query(req, "PageSize");
    int64_t n = 50;

    if (v != NULL && nmc_parse_i64(v, 1, 1000, &n) != 0)
        n = 50;
    free(v);
    return n;
}

static void on_messages_list(struct nmc_http_req *req, void *ud)
{
    struct fakes *f = ud;
    const char *sid = nmc_http_req_param(req, "sid");
    char *to = nmc_http_req_query(req, "To"), *from = nmc_http_req_query(req, "From");
    char *since = nmc_http_req_query(req, "DateSent>=");
    int64_t max = page_size(req);
    json_t *arr = json_array(), *page;
    char *json;

    if (sid == NULL || !auth_ok(f, req, sid)) {
        f->stats.auth_failures++;
        answer_error(f, req, 401, 20003, "Authenticate");
        goto out;
    }
    for (size_t i = f->nmsgs; i > 0 && (int64_t)json_array_size(arr) < max; i--)
        if (list_match(&f->msgs[i - 1], sid, to, from, since))
            json_array_append_new(arr, fakes_store_resource(&f->msgs[i - 1]));
    page = json_pack("{s:O, s:i, s:I, s:I, s:n, s:n, s:s}", "messages", arr, "page", 0, "page_size", (json_int_t)max,
                     "start", (json_int_t)0, "next_page_uri", "previous_page_uri", "uri", req->target);
    json = json_dumps(page, JSON_COMPACT);
    json_decref(page);
    answer(f, req, 200, json);
out:
    json_decref(arr);
    free(to);
    free(from);
    free(since);
}

int fakes_twilio_routes(struct fakes *f)
{
    int rc = nmc_http_server_route(f->server, "POST", "/2010-04-01/Accounts/{sid}/Messages.json",
                                   on_messages_create, f);
    rc |= nmc_http_server_route(f->server, "GET", "/2010-04-01/Accounts/{sid}/Messages.json", on_messages_list, f);
    return rc ? NMC_EINVAL : 0;
}
