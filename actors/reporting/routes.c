/* Reporting route (owner: report engineer): GET /v1/reports/daily. The
 * range is checked before authentication (400 names the problem); the
 * tenant comes only from the authenticated principal, so another tenant's
 * rows can never be selected. */
#include "actors/reporting/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/log.h"

/* Every day of [$2, $3] with the tenant's rollup, zeros where there is none
 * yet; latency quantiles are null for a day without a measured first reply. */
#define SQL_REPORT \
    "SELECT json_build_object('days', COALESCE(json_agg(json_build_object(" \
    "'day', to_char(g.day, 'YYYY-MM-DD'), 'calls_detected', COALESCE(r.calls_detected, 0)," \
    " 'conversations_started', COALESCE(r.conversations_started, 0)," \
    " 'first_replies', COALESCE(r.first_replies, 0)," \
    " 'first_response_p50_seconds', r.first_response_p50_seconds," \
    " 'first_response_p95_seconds', r.first_response_p95_seconds," \
    " 'appointments_booked', COALESCE(r.appointments_booked, 0)," \
    " 'appointments_cancelled', COALESCE(r.appointments_cancelled, 0)," \
    " 'attributed_revenue_cents', COALESCE(r.attributed_revenue_cents, 0)) ORDER BY g.day), '[]'::json))::text" \
    " FROM (SELECT generate_series($2::date::timestamp, $3::date::timestamp, interval '1 day')::date AS day) g" \
    " LEFT JOIN reporting_daily r ON r.tenant_id = $1::uuid AND r.day = g.day"

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static long days_from_civil(long y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DD" (a real calendar date, years 1970..9999) into *days. */
static int parse_day(const char *s, long *days)
{
    int v[8];
    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return NMC_EINVAL;
    for (int i = 0, k = 0; i < 10; i++) {
        if (i == 4 || i == 7)
            continue;
        if (s[i] < '0' || s[i] > '9')
            return NMC_EINVAL;
        v[k++] = s[i] - '0';
    }
    int y = v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3], m = v[4] * 10 + v[5], d = v[6] * 10 + v[7];
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > (m == 2 && leap ? 29 : dm[m - 1]))
        return NMC_EINVAL;
    *days = days_from_civil(y, m, d);
    return 0;
}

int nmc_reporting_parse_range(const char *from, const char *to, char *err, size_t errlen)
{
    long a = 0, b = 0;
    const char *msg = NULL;
    if (from == NULL || to == NULL)
        msg = "from and to are required (YYYY-MM-DD)";
    else if (parse_day(from, &a) != 0)
        msg = "from must be a calendar date YYYY-MM-DD";
    else if (parse_day(to, &b) != 0)
        msg = "to must be a calendar date YYYY-MM-DD";
    else if (b < a)
        msg = "to must not be before from";
    else if (b - a + 1 > NMC_REPORTING_MAX_DAYS)
        msg = "the range may span at most 92 days";
    if (msg == NULL)
        return 0;
    snprintf(err, errlen, "%s", msg);
    return NMC_EINVAL;
}

static void payload_free(void *p)
{
    nmc_reporting_job_free(p);
}

/* Hands the request to the actor through the auth step. */
static void submit(struct reporting *r, struct nmc_http_req *req, const char *from, const char *to)
{
    struct report_job *j = nmc_reporting_job_new(1);
    nmc_strlcpy(j->from, from, sizeof j->from);
    nmc_strlcpy(j->to, to, sizeof j->to);
    nmc_strlcpy(j->correlation_id, req->correlation_id, sizeof j->correlation_id);
    j->trace = req->trace;
    struct nmc_msg *m = nmc_rt_msg_new(MSG_REPORT_REQ, j, payload_free);
    nmc_identity_auth_msg_from_req(m, req);
    nmc_identity_auth_submit(r->app, req, NMC_AUTH_ALLOW_ANY, &j->auth, r->actor, m);
}

/* ud is the app: the module is looked up per request (NULL once stopped). */
static void on_daily(struct nmc_http_req *req, void *ud)
{
    struct reporting *r = ((struct nmc_app *)ud)->modules[NMC_SLOT_REPORTING];
    char err[128];
    char *from = nmc_http_req_query(req, "from"), *to = nmc_http_req_query(req, "to");
    if (r == NULL) {
        nmc_http_respond_error(req, 503, "unavailable", "the server is shutting down; retry");
    } else if (nmc_reporting_parse_range(from, to, err, sizeof err) != 0) {
        nmc_http_respond_error(req, 400, "invalid_request", err);
    } else {
        submit(r, req, from, to);
    }
    free(from);
    free(to);
}

void nmc_reporting_report_start(struct reporting *r, struct report_job *j)
{
    struct nmc_db_stmt st = { "reporting_daily_report", SQL_REPORT, 3, { j->auth.who.tenant_id, j->from, j->to } };
    struct nmc_msg ctx;
    memset(&ctx, 0, sizeof ctx);
    nmc_strlcpy(ctx.tenant_id, j->auth.who.tenant_id, sizeof ctx.tenant_id);
    nmc_strlcpy(ctx.correlation_id, j->correlation_id, sizeof ctx.correlation_id);
    j->span = nmc_trace_span_start("reporting.daily", &j->trace);
    nmc_trace_span_attr(j->span, "tenant_id", j->auth.who.tenant_id);
    nmc_trace_span_attr(j->span, "correlation_id", j->correlation_id);
    ctx.trace = j->span->ctx;
    nmc_reporting_job_track(r, j);
    int rc = nmc_db_query(nmc_app_db_slow(r->app), r->actor, j->id, &ctx, &st);
    if (rc != 0) {
        nmc_trace_span_error(j->span, nmc_strerror(rc));
        nmc_http_reply_error(j->auth.handle, 503, "unavailable", "the report could not be started; retry");
        nmc_reporting_job_free(j);
    }
}

void nmc_reporting_report_done(struct reporting *r, struct report_job *j, const struct nmc_db_result *res)
{
    (void)r;
    const PGresult *pr = res->status == 0 && res->nresults > 0 ? res->results[0] : NULL;
    const char *body = pr != NULL && PQntuples(pr) == 1 ? nmc_db_get(pr, 0, 0) : NULL;
    if (body != NULL) {
        nmc_trace_span_attr_int(j->span, "http.status_code", 200);
        nmc_http_reply_json(j->auth.handle, 200, body);
    } else {
        nmc_trace_span_attr_int(j->span, "http.status_code", 503);
        nmc_trace_span_error(j->span, res->message[0] ? res->message : nmc_strerror(res->status));
        struct nmc_log_rec *l = nmc_log_begin(NMC_LOG_ERROR, "reporting", "report.failed");
        nmc_log_ids(l, j->auth.who.tenant_id, j->correlation_id, NULL);
        nmc_log_error(l, res->status, res->message);
        nmc_log_end(l);
        nmc_http_reply_error(j->auth.handle, 503, "unavailable", "the report could not be read; retry");
    }
    nmc_reporting_job_free(j);
}

int nmc_reporting_routes(struct reporting *r)
{
    return nmc_http_server_route(r->app->http, "GET", "/v1/reports/daily", on_daily, r->app);
}
