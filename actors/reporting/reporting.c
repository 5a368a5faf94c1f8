/* Reporting (owner: sms engineer). See reporting.h. */
#include "actors/reporting/reporting.h"

#include <stdlib.h>
#include <string.h>

#include "actors/outbox/outbox.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#define REFRESH_MS 10000
#define CK_REFRESH 1

#define SQL_P95 \
    "SELECT COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM first_queued_at - triggered_at))," \
    " 0)::float8, count(*) FROM first_responses" \
    " WHERE first_queued_at IS NOT NULL AND first_queued_at > now() - interval '15 minutes'"

struct reporting {
    struct nmc_app *app;
    struct nmc_actor *actor;
    uint64_t timer;
    int query_inflight;
    int stopping;
};

static struct {
    struct nmc_metric *p95, *started, *first_replies, *window;
} M;

static void register_metrics(void)
{
    M.p95 = nmc_metrics_gauge("slo_first_sms_p95_seconds",
                              "P95 of missed call/inbound SMS to first reply queued, last 15 minutes", NULL);
    M.window = nmc_metrics_gauge("slo_first_sms_window_samples", "First responses in the P95 window", NULL);
    M.started = nmc_metrics_counter("kpi_conversations_started_total", "Conversations started", NULL);
    M.first_replies = nmc_metrics_counter("kpi_first_replies_sent_total", "First replies accepted by Twilio", NULL);
}

static void refresh(struct reporting *r)
{
    struct nmc_db_stmt st = { "reporting_p95", SQL_P95, 0, { NULL } };
    if (r->query_inflight == 0 && nmc_db_query(r->app->db, r->actor, CK_REFRESH, NULL, &st) == 0)
        r->query_inflight = 1;
}

static void on_p95(struct reporting *r, const struct nmc_db_result *res)
{
    r->query_inflight = 0;
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

static void on_event(struct reporting *r, const struct nmc_msg *msg)
{
    const struct nmc_domain_event *ev = msg->payload;
    if (strcmp(ev->event_name, "ConversationStarted") == 0)
        nmc_metrics_inc(M.started);
    else if (strcmp(ev->event_name, "FirstReplySent") == 0)
        nmc_metrics_inc(M.first_replies);
    (void)nmc_outbox_ack(r->app->rt, ev->outbox_id, "reporting", 0, NULL);
}

static void arm(struct reporting *r)
{
    if (r->stopping || nmc_rt_timer_start(r->actor, REFRESH_MS, CK_REFRESH, &r->timer) != 0)
        r->timer = 0;
}

static void on_message(struct nmc_actor *self, struct nmc_msg *msg, void *state)
{
    struct reporting *r = state;
    switch (msg->type) {
    case NMC_MSG_DOMAIN_EVENT:
        on_event(r, msg);
        break;
    case NMC_MSG_DB_RESULT:
        on_p95(r, msg->payload);
        break;
    case NMC_MSG_TIMER:
        r->timer = 0;
        refresh(r);
        arm(r);
        break;
    default:
        break;
    }
}

int nmc_reporting_init(struct nmc_app *app)
{
    struct reporting *r = nmc_xcalloc(1, sizeof *r);
    r->app = app;
    register_metrics();
    int rc = nmc_rt_actor_create(app->rt, "reporting", on_message, r, 0, &r->actor);
    if (rc == 0 && nmc_outbox_subscribe != NULL)
        rc = nmc_outbox_subscribe(app, "ConversationStarted", r->actor);
    if (rc == 0 && nmc_outbox_subscribe != NULL)
        rc = nmc_outbox_subscribe(app, "FirstReplySent", r->actor);
    if (rc != 0) {
        free(r);
        return rc;
    }
    app->modules[NMC_SLOT_REPORTING] = r;
    if (app->run_workers)
        arm(r);
    return 0;
}

void nmc_reporting_stop(struct nmc_app *app)
{
    struct reporting *r = app->modules[NMC_SLOT_REPORTING];
    if (r == NULL)
        return;
    r->stopping = 1;
    nmc_rt_timer_cancel(app->rt, r->timer);
    r->timer = 0;
}
