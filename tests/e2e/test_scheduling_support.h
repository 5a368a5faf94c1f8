/* Shared by the catalog, scheduling and auth end-to-end tests (owner: sched
 * engineer). Header-only (static functions): only the tests/support C files are
 * linked into every test. One real `nmc serve` on a fresh database
 * (tests/support/pgtest.h, `nmc migrate up` first), plain blocking HTTP
 * (tests/support/http_client.h) and a blocking libpq connection for SQL
 * checks. The request helpers never call cmocka asserts, so threads may
 * use them; the setup helpers assert. */
#ifndef NMC_TESTS_E2E_SCHEDULING_SUPPORT_H
#define NMC_TESTS_E2E_SCHEDULING_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "runtime/buf.h"
#include "runtime/common.h"
#include "tests/support/http_client.h"
#include "tests/support/json_schema.h"
#include "tests/support/nmc_proc.h"
#include "tests/support/pgtest.h"

#define E2E_ADMIN_KEY "test-admin-key"
#define E2E_TIMEOUT_MS 15000

struct e2e {
    char *db;
    struct nmc_proc nmc;
    PGconn *pg;
};

static struct e2e E;

/* Starts nmc on a fresh database; env is NULL or {name, value, ..., NULL}. */
static inline void e2e_start(const char *const *env)
{
    memset(&E, 0, sizeof(E));
    E.db = pgtest_db_create();
    nmc_proc_init(&E.nmc, E.db);
    for (size_t i = 0; env != NULL && env[i] != NULL; i += 2)
        nmc_proc_setenv(&E.nmc, env[i], env[i + 1]);
    assert_int_equal(nmc_proc_migrate(&E.nmc, "up"), 0);
    assert_int_equal(nmc_proc_start(&E.nmc, NULL), 0);
    E.pg = pgtest_connect(E.db);
}

/* SIGTERM must end the server cleanly (exit 0: no sanitizer report). */
static inline void e2e_stop_server(void)
{
    int code = -1;
    long ms = 0;
    assert_int_equal(nmc_proc_stop(&E.nmc, &code, &ms), 0);
    assert_int_equal(code, 0);
}

static inline void e2e_restart(void)
{
    e2e_stop_server();
    assert_int_equal(nmc_proc_start(&E.nmc, NULL), 0);
}

static inline void e2e_stop(void)
{
    e2e_stop_server();
    nmc_proc_free(&E.nmc);
    PQfinish(E.pg);
    pgtest_db_drop(E.db);
    memset(&E, 0, sizeof(E));
}

/* One request on its own connection. hdrs: NULL-terminated "Name: value"
 * lines (NULL entries are skipped up to the terminator count n). Returns the
 * status (or a negative errno) and, when out is not NULL, the response. */
static inline int e2e_raw(const char *method, const char *path, const char *const *hdrs, size_t nhdrs, const char *body,
                   struct nmc_test_http_resp *out)
{
    struct nmc_buf b = {0};
    struct nmc_test_http_resp r;
    (void)nmc_buf_printf(&b, "%s %s HTTP/1.1\r\nHost: nmc.test\r\nConnection: close\r\n", method, path);
    for (size_t i = 0; i < nhdrs; i++)
        if (hdrs[i] != NULL)
            (void)nmc_buf_printf(&b, "%s\r\n", hdrs[i]);
    if (body != NULL)
        (void)nmc_buf_printf(&b, "Content-Type: application/json\r\nContent-Length: %zu\r\n", strlen(body));
    (void)nmc_buf_puts(&b, "\r\n");
    if (body != NULL)
        (void)nmc_buf_puts(&b, body);
    int rc = nmc_test_http_request(E.nmc.port, b.data, E2E_TIMEOUT_MS, &r);
    nmc_buf_free(&b);
    if (rc != 0)
        return rc;
    rc = r.status;
    if (out != NULL)
        *out = r;
    else
        nmc_test_http_resp_free(&r);
    return rc;
}

/* A request with one credential header (may be NULL) and an optional
 * extra header; the JSON answer (NULL when none) in *json if asked. */
static inline int e2e_req2(const char *cred, const char *extra, const char *method, const char *path, const char *body,
                    json_t **json)
{
    const char *hdrs[] = {cred, extra};
    struct nmc_test_http_resp r;
    int status = e2e_raw(method, path, hdrs, 2, body, &r);
    if (json != NULL)
        *json = NULL;
    if (status < 0)
        return status;
    if (json != NULL && r.body_len > 0)
        *json = json_loadb(r.body, r.body_len, 0, NULL);
    nmc_test_http_resp_free(&r);
    return status;
}

static inline int e2e_req(const char *cred, const char *method, const char *path, const char *body, json_t **json)
{
    return e2e_req2(cred, NULL, method, path, body, json);
}

/* The error code of an error answer ("" when not one). */
static inline const char *e2e_code(json_t *j)
{
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    return c != NULL ? c : "";
}

/* A request that must answer want; returns the JSON (caller decrefs). */
static inline json_t *e2e_must(int want, const char *cred, const char *method, const char *path, const char *body)
{
    json_t *j = NULL;
    int st = e2e_req(cred, method, path, body, &j);
    if (st != want) {
        char *s = j != NULL ? json_dumps(j, 0) : NULL;
        fail_msg("%s %s: want %d, got %d: %s", method, path, want, st, s != NULL ? s : "(no JSON)");
    }
    return j;
}

static inline const char *e2e_str(json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    if (s == NULL)
        fail_msg("JSON has no string \"%s\"", key);
    return s;
}

/* printf into a new string (caller frees). */
static inline char *e2e_fmt(const char *fmt, ...) NMC_PRINTF(1, 2);
static inline char *e2e_fmt(const char *fmt, ...)
{
    struct nmc_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    (void)nmc_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return nmc_buf_steal(&b, NULL);
}

struct e2e_tenant {
    char id[40];
    char key_hdr[128]; /* "X-API-Key: ..." */
};

static inline void e2e_tenant_create(const char *name, const char *tz, struct e2e_tenant *t)
{
    char *body = e2e_fmt("{\"name\":\"%s\",\"timezone\":\"%s\"}", name, tz);
    json_t *j = e2e_must(201, "X-Admin-API-Key: " E2E_ADMIN_KEY, "POST", "/v1/admin/tenants", body);
    nmc_strlcpy(t->id, e2e_str(j, "id"), sizeof(t->id));
    snprintf(t->key_hdr, sizeof(t->key_hdr), "X-API-Key: %s", e2e_str(j, "api_key"));
    json_decref(j);
    free(body);
}

/* Creates a user; returns its id (caller frees). */
static inline char *e2e_user_create(const char *tenant, const char *subject, const char *role, int active)
{
    char *path = e2e_fmt("/v1/admin/tenants/%s/users", tenant);
    char *body = e2e_fmt("{\"subject\":\"%s\",\"role\":\"%s\",\"active\":%s}", subject, role,
                         active ? "true" : "false");
    json_t *j = e2e_must(201, "X-Admin-API-Key: " E2E_ADMIN_KEY, "POST", path, body);
    char *id = nmc_xstrdup(e2e_str(j, "id"));
    json_decref(j);
    free(body);
    free(path);
    return id;
}

/* Creates an item; returns its id (caller frees). */
static inline char *e2e_item_create(const struct e2e_tenant *t, const char *name, int price, int minutes)
{
    char *body = e2e_fmt("{\"name\":\"%s\",\"price_cents\":%d,\"duration_minutes\":%d}", name, price, minutes);
    json_t *j = e2e_must(201, t->key_hdr, "POST", "/v1/catalog/items", body);
    char *id = nmc_xstrdup(e2e_str(j, "id"));
    json_decref(j);
    free(body);
    return id;
}

/* Creates a resource open from..to local time every day; id (caller frees). */
static inline char *e2e_resource_create(const struct e2e_tenant *t, const char *name, const char *from, const char *to)
{
    static const char *const days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    struct nmc_buf b = {0};
    (void)nmc_buf_printf(&b, "{\"name\":\"%s\",\"business_hours\":{", name);
    for (int i = 0; i < 7; i++)
        (void)nmc_buf_printf(&b, "%s\"%s\":[[\"%s\",\"%s\"]]", i ? "," : "", days[i], from, to);
    (void)nmc_buf_puts(&b, "}}");
    json_t *j = e2e_must(201, t->key_hdr, "POST", "/v1/scheduling/resources", b.data);
    char *id = nmc_xstrdup(e2e_str(j, "id"));
    json_decref(j);
    nmc_buf_free(&b);
    return id;
}

/* A database value as text (caller frees) / integer. */
static inline char *e2e_sql(const char *sql)
{
    return pgtest_value(E.pg, sql);
}

static inline int64_t e2e_sql_int(const char *sql)
{
    return pgtest_int(E.pg, sql);
}

/* "YYYY-MM-DDTHH:MM:SSZ" of the database's now() + days at local time hh:mm
 * in zone tz (as UTC text; caller frees). */
static inline char *e2e_future(int days, const char *hhmm, const char *tz)
{
    char *sql = e2e_fmt("SELECT to_char((((now() AT TIME ZONE '%s')::date + %d) + '%s'::time) AT TIME ZONE '%s' "
                        "AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", tz, days, hhmm, tz);
    char *v = e2e_sql(sql);
    free(sql);
    return v;
}

/* Every outbox payload of event name conforms to its schema; returns how many. */
static inline int e2e_events_valid(const char *name)
{
    char *sql = e2e_fmt("SELECT payload::text, schema_version FROM outbox_events WHERE event_name = '%s' ORDER BY id",
                        name);
    PGresult *r = PQexec(E.pg, sql);
    char err[512];
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        assert_string_equal(PQgetvalue(r, i, 1), "1");
        if (json_schema_validate_event(name, 1, PQgetvalue(r, i, 0), err, sizeof(err)) != 0)
            fail_msg("%s payload %s: %s", name, PQgetvalue(r, i, 0), err);
    }
    PQclear(r);
    free(sql);
    return n;
}

/* A counter or gauge from /metrics (0 when absent). series: the full series
 * text before the value, e.g. "scheduling_hold_success_total". */
static inline double e2e_metric(const char *series)
{
    const char *hdrs[] = {"Authorization: Basic bTpt"}; /* m:m */
    struct nmc_test_http_resp r;
    double v = 0;
    if (e2e_raw("GET", "/metrics", hdrs, 1, NULL, &r) != 200)
        fail_msg("/metrics did not answer 200");
    size_t n = strlen(series);
    for (const char *p = r.body; p != NULL && *p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
    }
    nmc_test_http_resp_free(&r);
    return v;
}

#endif
