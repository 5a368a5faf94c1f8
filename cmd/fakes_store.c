/* nmc-fakes: the recording of accepted messages and their JSON views. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cmd/fakes.h"
#include "http/body.h"
#include "runtime/clock.h"

static char *dup_nonempty(const struct nmc_form *form, const char *name)
{
    const char *v = nmc_form_get(form, name);
    return v != NULL && *v != '\0' ? nmc_xstrdup(v) : NULL;
}

void fakes_store_fill(struct fakes_msg *m, const char *account_sid, const struct nmc_form *form)
{
    unsigned char rnd[16];

    memset(m, 0, sizeof(*m));
    nmc_random_bytes(rnd, sizeof(rnd));
    m->sid[0] = 'S';
    m->sid[1] = 'M';
    nmc_hex(m->sid + 2, rnd, sizeof(rnd));
    m->account_sid = nmc_xstrdup(account_sid);
    m->to = dup_nonempty(form, "To");
    m->from = dup_nonempty(form, "From");
    m->messaging_service_sid = dup_nonempty(form, "MessagingServiceSid");
    m->body = dup_nonempty(form, "Body");
    m->status_callback = dup_nonempty(form, "StatusCallback");
    /* Twilio answers "accepted" when a Messaging Service picks the sender. */
    nmc_strlcpy(m->status, m->from ? "queued" : "accepted", sizeof(m->status));
    m->received_at_ns = nmc_clock_now_ns();
}

void fakes_msg_free(struct fakes_msg *m)
{
    free(m->account_sid);
    free(m->to);
    free(m->from);
    free(m->messaging_service_sid);
    free(m->body);
    free(m->status_callback);
    memset(m, 0, sizeof(*m));
}

size_t fakes_store_add(struct fakes *f, struct fakes_msg *m)
{
    if (f->nmsgs >= f->o.max_records) {
        f->stats.records_dropped++;
        fakes_msg_free(m);
        return SIZE_MAX;
    }
    if (f->nmsgs == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 256;
        f->msgs = nmc_xrealloc(f->msgs, f->cap * sizeof(*f->msgs));
    }
    f->msgs[f->nmsgs] = *m;
    memset(m, 0, sizeof(*m));
    return f->nmsgs++;
}

struct fakes_msg *fakes_store_find(struct fakes *f, size_t index, const char *sid)
{
    if (index >= f->nmsgs || strcmp(f->msgs[index].sid, sid) != 0)
        return NULL;
    return &f->msgs[index];
}

void fakes_store_clear(struct fakes *f)
{
    for (size_t i = 0; i < f->nmsgs; i++)
        fakes_msg_free(&f->msgs[i]);
    f->nmsgs = 0;
}

static void rfc2822(int64_t ns, char out[40])
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

json_t *fakes_store_resource(const struct fakes_msg *m)
{
    char date[40], uri[160];
    int sent = strcmp(m->status, "queued") != 0 && strcmp(m->status, "accepted") != 0;

    rfc2822(m->received_at_ns, date);
    snprintf(uri, sizeof(uri), "/2010-04-01/Accounts/%s/Messages/%s.json", m->account_sid, m->sid);
    return json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s?, s:s, s:s, s:n, s:n, s:s?, s:s?, s:s, s:s, s:n, s:s, s:s, "
                     "s:s?, s:s}",
                     "account_sid", m->account_sid, "api_version", "2010-04-01", "body", m->body, "date_created",
                     date, "date_updated", date, "date_sent", sent ? date : NULL, "direction", "outbound-api",
                     "status", m->status, "error_code", "error_message", "from", m->from, "messaging_service_sid",
                     m->messaging_service_sid, "num_media", "0", "num_segments", "1", "price", "price_unit", "USD",
                     "sid", m->sid, "to", m->to, "uri", uri);
}

json_t *fakes_store_record(const struct fakes_msg *m)
{
    return json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:I}", "sid", m->sid, "status", m->status,
                     "account_sid", m->account_sid, "to", m->to, "from", m->from, "messaging_service_sid",
                     m->messaging_service_sid, "body", m->body, "status_callback", m->status_callback,
                     "received_at_ns", (json_int_t)m->received_at_ns);
}
