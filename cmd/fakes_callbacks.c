/* nmc-fakes: status callbacks ("sent", then "delivered") POSTed to the
 * message's StatusCallback, form-encoded and signed with
 * X-Twilio-Signature as Twilio does, through providers/http. */
#include <stdlib.h>
#include <string.h>
#include "cmd/fakes.h"
#include "http/body.h"
#include "providers/twilio_sig.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/log.h"

struct cb_job {
    uv_timer_t timer;
    struct fakes *f;
    size_t index;  /* of the message in the store, to update its status */
    int stage;     /* 0: "sent" next, 1: "delivered" next */
    char sid[35];
    char *url, *account_sid, *from, *to, *messaging_service_sid;
};

static char *dup_or_null(const char *s)
{
    return s ? nmc_xstrdup(s) : NULL;
}

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

/* The callback's parameters; returns how many. */
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
    const char *status = j->stage == 0 ? "sent" : "delivered";
    struct fakes_msg *m;

    if (j->f->stopping || j->f->http == NULL) {
        uv_close((uv_handle_t *)t, on_job_closed);
        return;
    }
    if ((m = fakes_store_find(j->f, j->index, j->sid)) != NULL)
        nmc_strlcpy(m->status, status, sizeof(m->status));
    post_callback(j, status);
    if (j->stage++ == 0)
        uv_timer_start(t, on_callback_due, (uint64_t)j->f->o.callback_delay_ms, 0);
    else
        uv_close((uv_handle_t *)t, on_job_closed);
}

void fakes_callbacks_schedule(struct fakes *f, size_t index, const struct fakes_msg *m)
{
    struct cb_job *j;

    if (!f->o.status_callbacks || m->status_callback == NULL)
        return;
    j = nmc_xcalloc(1, sizeof(*j));
    j->f = f;
    j->index = index;
    memcpy(j->sid, m->sid, sizeof(j->sid));
    j->url = nmc_xstrdup(m->status_callback);
    j->account_sid = nmc_xstrdup(m->account_sid);
    j->from = dup_or_null(m->from);
    j->to = nmc_xstrdup(m->to);
    j->messaging_service_sid = dup_or_null(m->messaging_service_sid);
    uv_timer_init(f->loop, &j->timer);
    uv_timer_start(&j->timer, on_callback_due, (uint64_t)f->o.callback_delay_ms + (uint64_t)f->o.latency_ms, 0);
}

void fakes_callbacks_on_done(struct fakes *f, const struct nmc_msg *m)
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
