/* Twilio Messages client on providers/http. */
#include "providers/twilio.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "http/body.h"
#include "providers/breaker.h"

struct nmc_prov_twilio {
    struct nmc_prov_http *http;
    struct nmc_prov_breaker *breaker;
    char *url;             /* .../Accounts/{sid}/Messages.json */
    char *userpwd;         /* sid:token (secret) */
    char *messaging_service_sid;
    int timeout_ms, max_attempts;
};

static int alnum_only(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s))
            return 0;
    return 1;
}

/* The breaker belongs to the http client so calls in flight never outlive it. */
static int find_breaker(struct nmc_prov_twilio *t, const struct nmc_prov_twilio_opts *o)
{
    struct nmc_prov_breaker_opts bo;

    if (o->breaker_off)
        return 0;
    nmc_prov_breaker_opts_twilio(&bo, o->baseline_p95_ms);
    t->breaker = nmc_prov_http_breaker(t->http, &bo);
    return t->breaker ? 0 : NMC_EINVAL;
}

int nmc_prov_twilio_create(struct nmc_prov_http *http, const struct nmc_prov_twilio_opts *o,
                           struct nmc_prov_twilio **out)
{
    struct nmc_prov_twilio *t;
    struct nmc_buf b = {0};
    size_t blen;

    if (http == NULL || o == NULL || out == NULL || o->api_base == NULL || o->auth_token == NULL ||
        *o->auth_token == '\0' || !alnum_only(o->account_sid) ||
        (o->messaging_service_sid != NULL && !alnum_only(o->messaging_service_sid)))
        return NMC_EINVAL;
    t = nmc_xcalloc(1, sizeof(*t));
    t->http = http;
    if (find_breaker(t, o) != 0) {
        free(t);
        return NMC_EINVAL;
    }
    blen = strlen(o->api_base);
    while (blen > 0 && o->api_base[blen - 1] == '/')
        blen--;
    nmc_buf_printf(&b, "%.*s/2010-04-01/Accounts/%s/Messages.json", (int)blen, o->api_base, o->account_sid);
    t->url = nmc_buf_steal(&b, NULL);
    nmc_buf_printf(&b, "%s:%s", o->account_sid, o->auth_token);
    t->userpwd = nmc_buf_steal(&b, NULL);
    t->messaging_service_sid = o->messaging_service_sid ? nmc_xstrdup(o->messaging_service_sid) : NULL;
    t->timeout_ms = o->timeout_ms;
    t->max_attempts = o->max_attempts;
    *out = t;
    return 0;
}

void nmc_prov_twilio_destroy(struct nmc_prov_twilio *t)
{
    if (t == NULL)
        return;
    if (t->userpwd != NULL)
        memset(t->userpwd, 0, strlen(t->userpwd));
    free(t->userpwd);
    free(t->url);
    free(t->messaging_service_sid);
    free(t);
}

struct nmc_prov_breaker *nmc_prov_twilio_breaker(struct nmc_prov_twilio *t)
{
    return t->breaker;
}

static void form_add(struct nmc_buf *out, const char *name, const char *value)
{
    char *enc = nmc_url_encode(value);

    if (out->len > 0)
        nmc_buf_append(out, "&", 1);
    nmc_buf_puts(out, name);
    nmc_buf_append(out, "=", 1);
    nmc_buf_puts(out, enc);
    free(enc);
}

int nmc_prov_twilio_form(const struct nmc_prov_twilio *t, const struct nmc_prov_twilio_sms *sms, struct nmc_buf *out)
{
    if (sms == NULL || sms->to == NULL || *sms->to == '\0' || sms->body == NULL || *sms->body == '\0')
        return NMC_EINVAL;
    if ((sms->from == NULL || *sms->from == '\0') && t->messaging_service_sid == NULL)
        return NMC_EINVAL;
    form_add(out, "To", sms->to);
    if (sms->from != NULL && *sms->from != '\0')
        form_add(out, "From", sms->from);
    else
        form_add(out, "MessagingServiceSid", t->messaging_service_sid);
    form_add(out, "Body", sms->body);
    if (sms->status_callback != NULL && *sms->status_callback != '\0')
        form_add(out, "StatusCallback", sms->status_callback);
    return 0;
}

static void copy_str(json_t *obj, const char *key, char *dst, size_t len)
{
    const char *v = json_string_value(json_object_get(obj, key));
    if (v != NULL)
        nmc_strlcpy(dst, v, len);
}

/* 2xx: the message resource; sid and status must be there. A status that
 * is not one of Twilio's message statuses reads "accepted": the message
 * exists (it has a sid), and the database takes only statuses it knows. */
static void parse_created(json_t *j, struct nmc_prov_twilio_sms_result *out)
{
    static const char *const known[] = { "accepted", "scheduled", "queued", "sending", "sent", "delivered",
                                         "undelivered", "failed", "canceled", "read" };
    copy_str(j, "sid", out->sid, sizeof(out->sid));
    copy_str(j, "status", out->status, sizeof(out->status));
    if (out->sid[0] == '\0' || out->status[0] == '\0') {
        out->err = NMC_EPARSE;
        nmc_strlcpy(out->message, "Twilio answered 2xx without sid and status", sizeof(out->message));
        return;
    }
    size_t i = 0;
    while (i < NMC_ARRAY_SIZE(known) && strcmp(out->status, known[i]) != 0)
        i++;
    if (i == NMC_ARRAY_SIZE(known))
        nmc_strlcpy(out->status, "accepted", sizeof(out->status));
}

/* 4xx/5xx: Twilio's error document {"code","message","more_info","status"}. */
static void parse_error(json_t *j, struct nmc_prov_twilio_sms_result *out)
{
    json_t *code = json_object_get(j, "code");

    if (json_is_integer(code) && json_integer_value(code) > 0 && json_integer_value(code) < 1000000)
        out->code = (int)json_integer_value(code);
    copy_str(j, "message", out->message, sizeof(out->message));
}

void nmc_prov_twilio_sms_result_parse(const struct nmc_prov_http_result *r, struct nmc_prov_twilio_sms_result *out)
{
    json_t *j = NULL;

    memset(out, 0, sizeof(*out));
    out->err = r->err;
    out->kind = r->kind;
    out->http_status = r->status;
    out->attempts = r->attempts;
    out->latency_ms = r->latency_ms;
    out->total_ms = r->total_ms;
    nmc_strlcpy(out->message, r->error, sizeof(out->message));
    if (r->status > 0 && r->body_len > 0)
        j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, NULL);
    if (r->kind == NMC_PROV_HTTP_OK) {
        if (json_is_object(j))
            parse_created(j, out);
        else {
            out->err = NMC_EPARSE;
            nmc_strlcpy(out->message, "Twilio answered 2xx without a JSON object", sizeof(out->message));
        }
    } else if (json_is_object(j)) {
        parse_error(j, out);
    }
    json_decref(j);
}

static void free_result(void *p)
{
    free(p);
}

static void *shape(struct nmc_prov_http_result *res, nmc_payload_free_cb *payload_free)
{
    struct nmc_prov_twilio_sms_result *out = nmc_xmalloc(sizeof(*out));

    nmc_prov_twilio_sms_result_parse(res, out);
    nmc_prov_http_result_free(res);
    *payload_free = free_result;
    return out;
}

int nmc_prov_twilio_send_sms(struct nmc_prov_twilio *t, const struct nmc_prov_twilio_sms *sms,
                             struct nmc_actor *reply_to, const struct nmc_msg *parent, uint64_t cookie, uint64_t *id)
{
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                          "Accept: application/json", NULL};
    struct nmc_buf form = {0};
    struct nmc_prov_http_req req = {0};
    int rc;

    if (t == NULL || reply_to == NULL)
        return NMC_EINVAL;
    rc = nmc_prov_twilio_form(t, sms, &form);
    if (rc != 0)
        goto out;
    req.provider = "twilio";
    req.endpoint = "messages_create";
    req.method = "POST";
    req.url = t->url;
    req.headers = headers;
    req.body = form.data;
    req.body_len = form.len;
    req.userpwd = t->userpwd;
    req.timeout_ms = t->timeout_ms;
    req.max_attempts = t->max_attempts;
    req.breaker = t->breaker;
    req.parent = parent;
    req.shape = shape;
    req.msg_type = NMC_MSG_PROV_TWILIO_SMS;
    rc = nmc_prov_http_send(t->http, &req, reply_to, cookie, id);
out:
    nmc_buf_free(&form);
    return rc;
}
