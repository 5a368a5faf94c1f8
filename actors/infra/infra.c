#include "actors/infra/infra.h"

#include <dirent.h>
#include <mbedtls/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/migrate.h"
#include "runtime/buf.h"
#include "runtime/cidr.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

enum { MSG_READY_CHECK = NMC_MSG_MODULE_PRIVATE + 0 };

struct infra {
    struct nmc_app *app;
    struct nmc_actor *actor;
    struct nmc_cidr_list allow;
    int latest_migration;
    struct nmc_metric *up;
};

static struct infra *g_infra;

int nmc_infra_latest_migration(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int latest = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        size_t len = strlen(n);
        if (len < 12 || strcmp(n + len - 7, ".up.sql") != 0)
            continue;
        char num[16];
        size_t i = 0;
        while (i < sizeof(num) - 1 && n[i] >= '0' && n[i] <= '9') {
            num[i] = n[i];
            i++;
        }
        num[i] = '\0';
        int64_t v;
        if (i > 0 && n[i] == '_' && nmc_parse_i64(num, 0, 1000000, &v) == 0 && v > latest)
            latest = (int)v;
    }
    closedir(d);
    return latest;
}

int nmc_infra_basic_auth_ok(const char *header, const char *userpass)
{
    if (header == NULL || strncasecmp(header, "Basic ", 6) != 0)
        return 0;
    const char *b64 = header + 6;
    while (*b64 == ' ')
        b64++;
    unsigned char dec[512];
    size_t n = 0;
    if (mbedtls_base64_decode(dec, sizeof(dec), &n, (const unsigned char *)b64, strlen(b64)) != 0)
        return 0;
    return nmc_ct_equal(dec, n, userpass, strlen(userpass));
}

static void on_healthz(struct nmc_http_req *req, void *ud)
{
    nmc_http_respond_json(req, 200, "{\"status\":\"ok\"}");
}

static void on_metrics(struct nmc_http_req *req, void *ud)
{
    struct infra *in = ud;
    const struct nmc_config *cfg = in->app->cfg;
    int allowed_ip = in->allow.n > 0 && nmc_cidr_list_match(&in->allow, req->remote_addr);
    int has_auth = cfg->metrics_basic_auth != NULL && cfg->metrics_basic_auth[0] != '\0';
    if (!allowed_ip) {
        if (!has_auth) {
            nmc_http_respond_error(req, 403, "forbidden",
                                   in->allow.n ? "address not in METRICS_ALLOW_CIDRS"
                                               : "metrics are closed: set METRICS_BASIC_AUTH or METRICS_ALLOW_CIDRS");
            return;
        }
        if (!nmc_infra_basic_auth_ok(nmc_http_req_header(req, "authorization"), cfg->metrics_basic_auth)) {
            static const char *const hdrs[] = {"WWW-Authenticate: Basic realm=\"metrics\"", NULL};
            const char *body = "{\"error\":{\"code\":\"unauthorized\",\"message\":\"metrics need basic auth\"}}";
            nmc_http_respond(req, 401, "application/json", body, strlen(body), hdrs);
            return;
        }
    }
    struct nmc_buf out = {0};
    if (nmc_metrics_render(&out) != 0) {
        nmc_buf_free(&out);
        nmc_http_respond_error(req, 500, "internal", "metrics rendering failed");
        return;
    }
    nmc_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len, NULL);
    nmc_buf_free(&out);
}

struct ready_check {
    struct nmc_http_handle h;
};

static void on_readyz(struct nmc_http_req *req, void *ud)
{
    struct infra *in = ud;
    struct ready_check *rc = nmc_xcalloc(1, sizeof(*rc));
    rc->h = nmc_http_req_handle(req);
    struct nmc_msg *m = nmc_rt_msg_new(MSG_READY_CHECK, rc, free);
    if (nmc_rt_send(in->actor, m) != 0)
        nmc_http_reply_error(rc->h, 503, "unavailable", "readiness check could not be queued");
}

static void ready_start(struct infra *in, struct nmc_msg *m)
{
    struct ready_check *rc = m->payload;
    static const struct nmc_db_stmt q = {
        .name = "infra_ready",
        .sql = "SELECT coalesce(max(version), 0), count(*) FROM schema_migrations",
    };
    struct nmc_http_handle *h = nmc_xmalloc(sizeof(*h));
    *h = rc->h;
    if (nmc_db_query(in->app->db, in->actor, (uint64_t)(uintptr_t)h, m, &q) != 0) {
        nmc_http_reply_error(*h, 503, "unavailable", "database queue is full");
        free(h);
    }
}

static void ready_done(struct infra *in, struct nmc_msg *m)
{
    struct nmc_db_result *r = m->payload;
    struct nmc_http_handle *h = (struct nmc_http_handle *)(uintptr_t)m->cookie;
    int ok = 0;
    char why[160] = "database unreachable";
    if (r->status == 0 && r->nresults == 1 && PQntuples(r->results[0]) == 1) {
        int64_t v = 0;
        const char *s = nmc_db_get(r->results[0], 0, 0);
        if (s != NULL && nmc_parse_i64(s, 0, INT64_MAX, &v) == 0 && v >= in->latest_migration) {
            ok = !in->app->ops_flags_pending;
            if (!ok) /* the SMS kill switch is not known yet: nothing may be sent */
                snprintf(why, sizeof(why), "ops flags (pause_outbound_sms) not read from the database yet");
        } else
            snprintf(why, sizeof(why), "migrations pending: database at %lld, files at %d", (long long)v,
                     in->latest_migration);
    } else if (r->status != 0 && strcmp(r->sqlstate, "42P01") == 0) {
        snprintf(why, sizeof(why), "migrations not applied: run nmc migrate up");
    }
    in->app->ready = ok;
    nmc_metrics_set(in->up, NULL, ok);
    if (ok)
        nmc_http_reply_json(*h, 200, "{\"status\":\"ready\"}");
    else
        nmc_http_reply_error(*h, 503, "not_ready", why);
    free(h);
}

static void on_message(struct nmc_actor *self, struct nmc_msg *m, void *state)
{
    struct infra *in = state;
    if (m->type == MSG_READY_CHECK)
        ready_start(in, m);
    else if (m->type == NMC_MSG_DB_RESULT)
        ready_done(in, m);
}

int nmc_infra_init(struct nmc_app *app)
{
    struct infra *in = nmc_xcalloc(1, sizeof(*in));
    in->app = app;
    in->latest_migration = nmc_infra_latest_migration(nmc_db_migrate_default_dir());
    in->up = nmc_metrics_gauge("nmc_ready", "1 when the database answers and migrations are current", NULL);
    int rc = 0;
    char err[200];
    if (app->cfg->metrics_allow_cidrs != NULL &&
        (rc = nmc_cidr_list_parse(app->cfg->metrics_allow_cidrs, &in->allow, err, sizeof(err))) != 0)
        goto out;
    if ((rc = nmc_rt_actor_create(app->rt, "infra", on_message, in, 1024, &in->actor)) != 0)
        goto out;
    if (app->http != NULL) {
        if ((rc = nmc_http_server_route(app->http, "GET", "/healthz", on_healthz, in)) != 0 ||
            (rc = nmc_http_server_route(app->http, "GET", "/readyz", on_readyz, in)) != 0 ||
            (rc = nmc_http_server_route(app->http, "GET", "/metrics", on_metrics, in)) != 0)
            goto out;
    }
    g_infra = in;
out:
    if (rc) {
        nmc_cidr_list_free(&in->allow);
        free(in);
    }
    return rc;
}

void nmc_infra_stop(struct nmc_app *app)
{
    if (g_infra == NULL)
        return;
    nmc_cidr_list_free(&g_infra->allow);
    free(g_infra);
    g_infra = NULL;
}
