/* Admin tenant API. Route handlers validate synchronously and submit one
 * transaction whose completion reaches the "identity" actor, which answers
 * through the request's reply handle. PostgreSQL builds the JSON answers
 * (json_build_object), so a tenant is rendered the same way everywhere. */
#include "actors/identity/identity.h"

#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/body.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/log.h"

/* Weak: linked when the conversation module is. */
int nmc_conversation_template_validate(const char *tpl, char *err, size_t errlen) __attribute__((weak));
void nmc_conversation_set_paused(struct nmc_app *app, int paused) __attribute__((weak));
int nmc_conversation_paused(struct nmc_app *app) __attribute__((weak));

enum admin_op { OP_CREATE = 1, OP_LIST, OP_GET, OP_PATCH, OP_FLAGS_GET, OP_FLAGS_SET };

struct admin_req {
    enum admin_op op;
    struct nmc_http_handle h;
    char api_key[64];
    int json_stmt;      /* index of the statement whose row 0 col 0 is the answer */
    int invalidate;     /* numbers or settings changed: tell caches */
    int paused;         /* OP_FLAGS_SET: the value written */
};

struct identity {
    struct nmc_app *app;
    struct nmc_actor *actor;
};

static struct identity *g_identity;

#define TENANT_JSON                                                                                         \
    "json_build_object('id', t.id, 'name', t.name, 'timezone', t.timezone, "                                \
    "'compliance_status', t.compliance_status, 'settings', t.settings, 'api_key_prefix', t.api_key_prefix, " \
    "'phone_numbers', (SELECT coalesce(json_agg(n.e164 ORDER BY n.e164), '[]'::json) "                      \
    "FROM tenant_phone_numbers n WHERE n.tenant_id = t.id), "                                               \
    "'created_at', t.created_at, 'updated_at', t.updated_at)::text"

int nmc_identity_admin_check(struct nmc_http_req *req)
{
    const char *want = g_identity ? g_identity->app->cfg->admin_api_key : NULL;
    const char *got = nmc_http_req_header(req, "x-admin-api-key");
    if (want == NULL || want[0] == '\0') {
        nmc_http_respond_error(req, 401, "unauthorized", "admin API is disabled: ADMIN_API_KEY is not set");
        return NMC_EAUTH;
    }
    if (got == NULL || !nmc_ct_equal(got, strlen(got), want, strlen(want))) {
        struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_WARN, "infra", "admin.auth_failed");
        nmc_log_ids(r, NULL, req->correlation_id, NULL);
        nmc_log_str(r, "route", req->route);
        nmc_log_str(r, "remote_addr", req->remote_addr);
        nmc_log_end(r);
        nmc_http_respond_error(req, 401, "unauthorized",
                               got == NULL ? "missing X-Admin-API-Key header" : "wrong X-Admin-API-Key");
        return NMC_EAUTH;
    }
    return 0;
}

static int parse_hhmm(const char *s, int *minutes)
{
    if (s == NULL || strlen(s) != 5 || s[2] != ':')
        return NMC_EINVAL;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return NMC_EINVAL;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0))
        return NMC_EINVAL;
    *minutes = h * 60 + m;
    return 0;
}

static int validate_day(const char *day, json_t *ranges, char *err, size_t errlen)
{
    if (!json_is_array(ranges) || json_array_size(ranges) > 8) {
        snprintf(err, errlen, "business_hours.%s must be an array of at most 8 [\"HH:MM\",\"HH:MM\"] pairs", day);
        return NMC_EINVAL;
    }
    int prev_end = -1;
    size_t i;
    json_t *r;
    json_array_foreach(ranges, i, r) {
        int a, b;
        if (!json_is_array(r) || json_array_size(r) != 2 ||
            parse_hhmm(json_string_value(json_array_get(r, 0)), &a) ||
            parse_hhmm(json_string_value(json_array_get(r, 1)), &b)) {
            snprintf(err, errlen, "business_hours.%s[%zu] must be [\"HH:MM\",\"HH:MM\"] with 00:00..24:00", day, i);
            return NMC_EINVAL;
        }
        if (b <= a || a < prev_end) {
            snprintf(err, errlen, "business_hours.%s[%zu]: ranges must be increasing and not overlap", day, i);
            return NMC_EINVAL;
        }
        prev_end = b;
    }
    return 0;
}

int nmc_identity_validate_hours(json_t *hours, char *err, size_t errlen)
{
    static const char *const days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun", NULL};
    if (!json_is_object(hours)) {
        snprintf(err, errlen, "business_hours must be an object keyed by mon..sun");
        return NMC_EINVAL;
    }
    if (nmc_json_check_keys(hours, days, err, errlen) != 0)
        return NMC_EINVAL;
    const char *day;
    json_t *ranges;
    json_object_foreach(hours, day, ranges) {
        if (validate_day(day, ranges, err, errlen) != 0)
            return NMC_EINVAL;
    }
    return 0;
}

static int validate_template(const char *key, json_t *v, char *err, size_t errlen)
{
    const char *s = json_string_value(v);
    if (s == NULL || s[0] == '\0' || strlen(s) > 1600) {
        snprintf(err, errlen, "settings.%s must be a non-empty string of at most 1600 characters", key);
        return NMC_EINVAL;
    }
    if (nmc_conversation_template_validate != NULL) {
        char why[200];
        if (nmc_conversation_template_validate(s, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "settings.%s: %s", key, why);
            return NMC_EINVAL;
        }
    }
    return 0;
}

static int validate_settings(json_t *settings, char *err, size_t errlen)
{
    static const char *const keys[] = {"business_hours", "first_reply_template_in_hours",
                                       "first_reply_template_after_hours", "help_text", NULL};
    if (!json_is_object(settings)) {
        snprintf(err, errlen, "settings must be an object");
        return NMC_EINVAL;
    }
    if (nmc_json_check_keys(settings, keys, err, errlen) != 0)
        return NMC_EINVAL;
    const char *key;
    json_t *v;
    json_object_foreach(settings, key, v) {
        int rc = strcmp(key, "business_hours") == 0 ? nmc_identity_validate_hours(v, err, errlen)
                                                    : validate_template(key, v, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int validate_numbers(json_t *nums, char *err, size_t errlen)
{
    if (!json_is_array(nums) || json_array_size(nums) > 100) {
        snprintf(err, errlen, "phone_numbers must be an array of at most 100 E.164 strings");
        return NMC_EINVAL;
    }
    size_t i, j;
    json_t *v;
    json_array_foreach(nums, i, v) {
        const char *s = json_string_value(v);
        if (!nmc_is_e164(s)) {
            snprintf(err, errlen, "phone_numbers[%zu] is not an E.164 number (like +15550001000)", i);
            return NMC_EINVAL;
        }
        for (j = 0; j < i; j++)
            if (strcmp(s, json_string_value(json_array_get(nums, j))) == 0) {
                snprintf(err, errlen, "phone_numbers[%zu] repeats %s", i, s);
                return NMC_EINVAL;
            }
    }
    return 0;
}

static int validate_string(json_t *body, const char *key, size_t max, int required, char *err, size_t errlen)
{
    json_t *v = json_object_get(body, key);
    if (v == NULL) {
        if (required)
            snprintf(err, errlen, "%s is required", key);
        return required ? NMC_EINVAL : 0;
    }
    const char *s = json_string_value(v);
    if (s == NULL || s[0] == '\0' || strlen(s) > max) {
        snprintf(err, errlen, "%s must be a non-empty string of at most %zu characters", key, max);
        return NMC_EINVAL;
    }
    return 0;
}

int nmc_identity_validate_tenant(json_t *body, int creating, char *err, size_t errlen)
{
    static const char *const keys[] = {"name", "timezone", "phone_numbers", "compliance_status", "settings", NULL};
    if (nmc_json_check_keys(body, keys, err, errlen) != 0)
        return NMC_EINVAL;
    if (validate_string(body, "name", 200, creating, err, errlen) ||
        validate_string(body, "timezone", 64, creating, err, errlen))
        return NMC_EINVAL;
    json_t *cs = json_object_get(body, "compliance_status");
    if (cs != NULL) {
        const char *s = json_string_value(cs);
        if (s == NULL || (strcmp(s, "pending") && strcmp(s, "approved") && strcmp(s, "rejected"))) {
            snprintf(err, errlen, "compliance_status must be one of pending, approved, rejected");
            return NMC_EINVAL;
        }
    }
    json_t *nums = json_object_get(body, "phone_numbers");
    if (nums != NULL && validate_numbers(nums, err, errlen))
        return NMC_EINVAL;
    json_t *settings = json_object_get(body, "settings");
    if (settings != NULL && validate_settings(settings, err, errlen))
        return NMC_EINVAL;
    if (!creating && json_object_size(body) == 0) {
        snprintf(err, errlen, "nothing to change: give at least one field");
        return NMC_EINVAL;
    }
    return 0;
}

void nmc_identity_hash_key(const char *key, char hash_hex[65])
{
    unsigned char d[32];
    mbedtls_sha256_ret((const unsigned char *)key, strlen(key), d, 0);
    nmc_hex(hash_hex, d, sizeof(d));
}

void nmc_identity_new_api_key(char key[64], char hash_hex[65])
{
    unsigned char raw[24];
    char hex[49];
    nmc_random_bytes(raw, sizeof(raw));
    nmc_hex(hex, raw, sizeof(raw));
    snprintf(key, 64, "nmc_%s", hex);
    nmc_identity_hash_key(key, hash_hex);
}

/* A PostgreSQL text[] literal of the strings in arr (validated E.164, so
 * no quoting is needed beyond the braces). */
static char *pg_text_array(json_t *arr)
{
    struct nmc_buf b = {0};
    nmc_buf_puts(&b, "{");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (i)
            nmc_buf_puts(&b, ",");
        nmc_buf_puts(&b, json_string_value(v));
    }
    nmc_buf_puts(&b, "}");
    return nmc_buf_steal(&b, NULL);
}

static json_t *parse_body(struct nmc_http_req *req)
{
    char err[256];
    const char *ct = nmc_http_req_header(req, "content-type");
    if (ct == NULL || strncmp(ct, "application/json", 16) != 0) {
        nmc_http_respond_error(req, 415, "unsupported_media_type", "Content-Type must be application/json");
        return NULL;
    }
    json_t *body = nmc_json_parse_object(req->body, req->body_len, err, sizeof(err));
    if (body == NULL)
        nmc_http_respond_error(req, 400, "invalid_json", err);
    return body;
}

/* Admin check, JSON body, validation: NULL when the request was answered. */
static json_t *admin_body(struct nmc_http_req *req, int creating)
{
    char err[256];
    if (nmc_identity_admin_check(req) != 0)
        return NULL;
    json_t *body = parse_body(req);
    if (body == NULL)
        return NULL;
    if (nmc_identity_validate_tenant(body, creating, err, sizeof(err)) != 0) {
        nmc_http_respond_error(req, 400, "invalid_request", err);
        json_decref(body);
        return NULL;
    }
    return body;
}

static struct admin_req *admin_req_new(struct nmc_http_req *req, enum admin_op op)
{
    struct admin_req *ar = nmc_xcalloc(1, sizeof(*ar));
    ar->op = op;
    ar->h = nmc_http_req_handle(req);
    return ar;
}

static void submit(struct admin_req *ar, struct nmc_http_req *req, struct nmc_db_stmt *stmts, size_t n, int txn)
{
    struct nmc_msg ctx;
    memset(&ctx, 0, sizeof(ctx));
    nmc_strlcpy(ctx.correlation_id, req->correlation_id, sizeof(ctx.correlation_id));
    ctx.trace = req->trace;
    int rc = txn ? nmc_db_txn(g_identity->app->db, g_identity->actor, (uint64_t)(uintptr_t)ar, &ctx, stmts, n)
                 : nmc_db_submit(g_identity->app->db, g_identity->actor, (uint64_t)(uintptr_t)ar, &ctx, stmts, n);
    if (rc != 0) {
        nmc_http_reply_error(ar->h, 503, "unavailable", "database is overloaded, retry later");
        free(ar);
    }
}

static void on_create(struct nmc_http_req *req, void *ud)
{
    json_t *body = admin_body(req, 1);
    if (body == NULL)
        return;
    struct admin_req *ar = admin_req_new(req, OP_CREATE);
    char hash[65], prefix[13];
    nmc_identity_new_api_key(ar->api_key, hash);
    nmc_strlcpy(prefix, ar->api_key, sizeof(prefix));
    json_t *nums = json_object_get(body, "phone_numbers");
    char *numarr = nums ? pg_text_array(nums) : nmc_xstrdup("{}");
    json_t *settings = json_object_get(body, "settings");
    char *settings_s = settings ? json_dumps(settings, JSON_COMPACT) : nmc_xstrdup("{}");
    const char *cs = json_string_value(json_object_get(body, "compliance_status"));
    struct nmc_db_stmt st[2] = {
        {.name = "admin_tz_check", .sql = "SELECT now() AT TIME ZONE $1", .nparams = 1,
         .params = {json_string_value(json_object_get(body, "timezone"))}},
        {.name = "admin_tenant_create",
         .sql = "WITH t AS (INSERT INTO tenants (name, timezone, compliance_status, settings, api_key_hash, "
                "api_key_prefix) VALUES ($1, $2, coalesce($3, 'pending'), $4::jsonb, $5, $6) RETURNING *), "
                "n AS (INSERT INTO tenant_phone_numbers (tenant_id, e164) SELECT t.id, x FROM t, "
                "unnest($7::text[]) x RETURNING e164) "
                "SELECT json_build_object('id', t.id, 'name', t.name, 'timezone', t.timezone, "
                "'compliance_status', t.compliance_status, 'settings', t.settings, 'api_key_prefix', "
                "t.api_key_prefix, 'phone_numbers', (SELECT coalesce(json_agg(e164 ORDER BY e164), '[]'::json) "
                "FROM n), 'created_at', t.created_at, 'updated_at', t.updated_at)::text FROM t",
         .nparams = 7,
         .params = {json_string_value(json_object_get(body, "name")),
                    json_string_value(json_object_get(body, "timezone")), cs, settings_s, hash, prefix, numarr}},
    };
    ar->json_stmt = 1;
    ar->invalidate = 1;
    submit(ar, req, st, 2, 1);
    free(numarr);
    free(settings_s);
    json_decref(body);
}

static void on_list(struct nmc_http_req *req, void *ud)
{
    if (nmc_identity_admin_check(req) != 0)
        return;
    char *lim = nmc_http_req_query(req, "limit");
    int64_t limit = 100;
    if (lim != NULL && nmc_parse_i64(lim, 1, 1000, &limit) != 0) {
        free(lim);
        nmc_http_respond_error(req, 400, "invalid_request", "limit must be an integer from 1 to 1000");
        return;
    }
    free(lim);
    char lbuf[24];
    snprintf(lbuf, sizeof(lbuf), "%lld", (long long)limit);
    struct admin_req *ar = admin_req_new(req, OP_LIST);
    struct nmc_db_stmt st = {
        .name = "admin_tenant_list",
        .sql = "SELECT json_build_object('tenants', coalesce(json_agg(x.j ORDER BY x.created_at, x.id), '[]'::json))"
               "::text FROM (SELECT t.id, t.created_at, " TENANT_JSON "::json AS j FROM tenants t "
               "ORDER BY t.created_at, t.id LIMIT $1::int) x",
        .nparams = 1,
        .params = {lbuf},
    };
    submit(ar, req, &st, 1, 0);
}

static void on_get(struct nmc_http_req *req, void *ud)
{
    if (nmc_identity_admin_check(req) != 0)
        return;
    const char *id = nmc_http_req_param(req, "id");
    if (!nmc_is_uuid(id)) {
        nmc_http_respond_error(req, 404, "not_found", "tenant not found");
        return;
    }
    struct admin_req *ar = admin_req_new(req, OP_GET);
    struct nmc_db_stmt st = {
        .name = "admin_tenant_get",
        .sql = "SELECT " TENANT_JSON " FROM tenants t WHERE t.id = $1",
        .nparams = 1,
        .params = {id},
    };
    submit(ar, req, &st, 1, 0);
}

static void on_patch(struct nmc_http_req *req, void *ud)
{
    const char *id = nmc_http_req_param(req, "id");
    if (!nmc_is_uuid(id)) {
        if (nmc_identity_admin_check(req) == 0)
            nmc_http_respond_error(req, 404, "not_found", "tenant not found");
        return;
    }
    json_t *body = admin_body(req, 0);
    if (body == NULL)
        return;
    struct admin_req *ar = admin_req_new(req, OP_PATCH);
    json_t *settings = json_object_get(body, "settings");
    char *settings_s = settings ? json_dumps(settings, JSON_COMPACT) : NULL;
    json_t *nums = json_object_get(body, "phone_numbers");
    char *numarr = nums ? pg_text_array(nums) : NULL;
    const char *tz = json_string_value(json_object_get(body, "timezone"));
    struct nmc_db_stmt st[5];
    size_t n = 0;
    memset(st, 0, sizeof(st));
    st[n++] = (struct nmc_db_stmt){.name = "admin_tz_check", .sql = "SELECT now() AT TIME ZONE $1",
                                   .nparams = 1, .params = {tz ? tz : "UTC"}};
    st[n++] = (struct nmc_db_stmt){
        .name = "admin_tenant_patch",
        .sql = "WITH old AS (SELECT id, compliance_status FROM tenants WHERE id = $1 FOR UPDATE), "
               "upd AS (UPDATE tenants t SET name = coalesce($2, t.name), timezone = coalesce($3, t.timezone), "
               "compliance_status = coalesce($4, t.compliance_status), "
               "settings = t.settings || coalesce($5::jsonb, '{}'::jsonb), updated_at = now() "
               "FROM old WHERE t.id = old.id RETURNING t.id, t.compliance_status), "
               "ev AS (INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id) "
               "SELECT 'ComplianceStatusChanged', 1, json_build_object('tenant_id', upd.id, 'from', "
               "old.compliance_status, 'to', upd.compliance_status), upd.id, $6 FROM upd JOIN old ON old.id = upd.id "
               "WHERE old.compliance_status IS DISTINCT FROM upd.compliance_status RETURNING 1) "
               "SELECT upd.id, (SELECT count(*) FROM ev) FROM upd",
        .nparams = 6,
        .params = {id, json_string_value(json_object_get(body, "name")), tz,
                   json_string_value(json_object_get(body, "compliance_status")), settings_s, req->correlation_id}};
    if (numarr != NULL) {
        st[n++] = (struct nmc_db_stmt){.name = "admin_numbers_clear",
                                       .sql = "DELETE FROM tenant_phone_numbers WHERE tenant_id = $1",
                                       .nparams = 1, .params = {id}};
        st[n++] = (struct nmc_db_stmt){.name = "admin_numbers_set",
                                       .sql = "INSERT INTO tenant_phone_numbers (tenant_id, e164) "
                                              "SELECT $1, x FROM unnest($2::text[]) x",
                                       .nparams = 2, .params = {id, numarr}};
    }
    st[n++] = (struct nmc_db_stmt){.name = "admin_tenant_get",
                                   .sql = "SELECT " TENANT_JSON " FROM tenants t WHERE t.id = $1",
                                   .nparams = 1, .params = {id}};
    ar->json_stmt = (int)n - 1;
    ar->invalidate = 1;
    submit(ar, req, st, n, 1);
    free(settings_s);
    free(numarr);
    json_decref(body);
}

/* The fleet's SMS kill switch (migration 0039, actors/conversation/conversation.h). */
#define FLAGS_JSON "json_build_object('pause_outbound_sms', f.enabled, 'updated_at', f.updated_at)::text"

static void on_flags_get(struct nmc_http_req *req, void *ud)
{
    if (nmc_identity_admin_check(req) != 0)
        return;
    struct admin_req *ar = admin_req_new(req, OP_FLAGS_GET);
    struct nmc_db_stmt st = {.name = "admin_flags_get",
                             .sql = "SELECT " FLAGS_JSON " FROM ops_flags f WHERE f.name = 'pause_outbound_sms'"};
    submit(ar, req, &st, 1, 0);
}

static void on_flags(struct nmc_http_req *req, void *ud)
{
    char err[256];
    static const char *const keys[] = {"pause_outbound_sms", NULL};
    if (nmc_identity_admin_check(req) != 0)
        return;
    json_t *body = parse_body(req);
    if (body == NULL)
        return;
    json_t *p = json_object_get(body, "pause_outbound_sms");
    const char *why = NULL;
    if (nmc_json_check_keys(body, keys, err, sizeof(err)) != 0)
        why = err;
    else if (p == NULL)
        why = "pause_outbound_sms is required (true or false)";
    else if (!json_is_boolean(p))
        why = "pause_outbound_sms must be true or false";
    if (why != NULL) {
        nmc_http_respond_error(req, 400, "invalid_request", why);
        json_decref(body);
        return;
    }
    if (nmc_conversation_set_paused == NULL || nmc_conversation_paused == NULL) {
        nmc_http_respond_error(req, 501, "not_implemented", "the conversation module is not linked");
        json_decref(body);
        return;
    }
    struct admin_req *ar = admin_req_new(req, OP_FLAGS_SET);
    ar->paused = json_is_true(p);
    json_decref(body);
    /* the row and the notification commit together; a flip is rare, so the
     * NOTIFY's commit-time lock costs nothing on the hot path */
    struct nmc_db_stmt st[2] = {
        {.name = "admin_flags_set",
         .sql = "INSERT INTO ops_flags AS f (name, enabled, correlation_id) VALUES ('pause_outbound_sms', $1, $2) "
                "ON CONFLICT (name) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now(), "
                "correlation_id = EXCLUDED.correlation_id RETURNING " FLAGS_JSON,
         .nparams = 2,
         .params = {ar->paused ? "true" : "false", req->correlation_id}},
        {.name = "admin_flags_notify", .sql = "SELECT pg_notify('" NMC_OPS_FLAGS_CHANNEL "', 'pause_outbound_sms')"},
    };
    submit(ar, req, st, 2, 1);
}

/* {"pause_outbound_sms": the fleet's switch (false while never set),
 * "updated_at" (null while never set), "environment_pause": this instance's
 * PAUSE_OUTBOUND_SMS, "paused_on_this_instance": either, or the switch not
 * read yet}. */
static void reply_flags(struct admin_req *ar, const char *row_json, const char *correlation_id)
{
    struct nmc_app *app = g_identity->app;
    json_t *row = row_json != NULL ? json_loads(row_json, 0, NULL) : NULL;
    json_t *out = json_object();
    json_t *v = json_object_get(row, "pause_outbound_sms");
    json_object_set_new(out, "pause_outbound_sms", json_boolean(json_is_true(v)));
    json_t *at = json_object_get(row, "updated_at");
    json_object_set(out, "updated_at", at != NULL ? at : json_null());
    json_object_set_new(out, "environment_pause", json_boolean(app->cfg->pause_outbound_sms));
    int here = nmc_conversation_paused != NULL && nmc_conversation_paused(app);
    json_object_set_new(out, "paused_on_this_instance", json_boolean(here));
    char *text = json_dumps(out, JSON_COMPACT);
    if (ar->op == OP_FLAGS_SET) {
        struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_WARN, "infra", "admin.flag_changed");
        nmc_log_ids(r, NULL, correlation_id, NULL);
        nmc_log_bool(r, "pause_outbound_sms", ar->paused);
        nmc_log_bool(r, "paused_on_this_instance", here);
        nmc_log_end(r);
    }
    nmc_http_reply_json(ar->h, 200, text != NULL ? text : "{}");
    free(text);
    json_decref(out);
    json_decref(row);
}

static void reply_db_error(struct admin_req *ar, const struct nmc_db_result *r)
{
    if (r->failed_stmt == 0 && strcmp(r->sqlstate, "22023") == 0) {
        nmc_http_reply_error(ar->h, 400, "invalid_request", "timezone is not a known IANA time zone");
    } else if (r->status == NMC_EUNIQUE && strstr(r->constraint, "e164") != NULL) {
        nmc_http_reply_error(ar->h, 409, "conflict", "a phone number is already owned by another tenant");
    } else if (r->status == NMC_EFOREIGNKEY) {
        nmc_http_reply_error(ar->h, 404, "not_found", "tenant not found");
    } else if (r->status == NMC_ECHECK) {
        nmc_http_reply_error(ar->h, 400, "invalid_request", "a value breaks a database check");
    } else {
        struct nmc_log_rec *lr = nmc_log_begin(NMC_LOG_ERROR, "infra", "admin.db_error");
        nmc_log_error(lr, r->status, r->message);
        nmc_log_str(lr, "sqlstate", r->sqlstate);
        nmc_log_end(lr);
        nmc_http_reply_error(ar->h, 503, "unavailable", "database error, retry later");
    }
}

/* Tells the modules that cache tenant data (number -> tenant, settings,
 * hours) that tenant_json's tenant changed. */
static void invalidate_caches(struct nmc_msg *m, const char *tenant_json)
{
    json_t *j = json_loads(tenant_json, 0, NULL);
    const char *tid = json_string_value(json_object_get(j, "id"));
    char tenant[NMC_ID_LEN] = "";
    if (tid != NULL)
        nmc_strlcpy(tenant, tid, sizeof(tenant));
    json_decref(j);
    static const char *const actors[] = {"telephony", "conversation", "scheduling"};
    for (size_t i = 0; i < NMC_ARRAY_SIZE(actors); i++) {
        struct nmc_actor *a = nmc_rt_actor_find(g_identity->app->rt, actors[i]);
        if (a == NULL)
            continue;
        struct nmc_msg *inv = nmc_rt_msg_new(NMC_MSG_CACHE_INVALIDATE, nmc_xstrdup(tenant), free);
        nmc_rt_msg_inherit(inv, m);
        nmc_strlcpy(inv->tenant_id, tenant, sizeof(inv->tenant_id));
        (void)nmc_rt_send(a, inv);
    }
}

static void reply_created(struct admin_req *ar, const char *tenant_json)
{
    json_error_t jerr;
    json_t *j = json_loads(tenant_json, 0, &jerr);
    if (j == NULL) {
        nmc_http_reply_error(ar->h, 500, "internal", "tenant JSON from the database did not parse");
        return;
    }
    json_object_set_new(j, "api_key", json_string(ar->api_key));
    char *s = json_dumps(j, JSON_COMPACT);
    nmc_http_reply_json(ar->h, 201, s);
    free(s);
    json_decref(j);
}

static void on_db_result(struct nmc_msg *m)
{
    struct nmc_db_result *r = m->payload;
    struct admin_req *ar = (struct admin_req *)(uintptr_t)m->cookie;
    if (r->status != 0) {
        reply_db_error(ar, r);
        goto out;
    }
    const PGresult *res = (size_t)ar->json_stmt < r->nresults ? r->results[ar->json_stmt] : NULL;
    const char *json = res && PQntuples(res) > 0 ? nmc_db_get(res, 0, 0) : NULL;
    if (ar->op == OP_FLAGS_GET || ar->op == OP_FLAGS_SET) {
        if (ar->op == OP_FLAGS_SET) /* committed and notified: this instance applies it at once */
            nmc_conversation_set_paused(g_identity->app, ar->paused);
        reply_flags(ar, json, m->correlation_id);
        goto out;
    }
    if (json == NULL) {
        nmc_http_reply_error(ar->h, 404, "not_found", "tenant not found");
        goto out;
    }
    if (ar->invalidate)
        invalidate_caches(m, json);
    if (ar->op == OP_CREATE)
        reply_created(ar, json);
    else
        nmc_http_reply_json(ar->h, 200, json);
    if (ar->op == OP_PATCH) {
        struct nmc_actor *ob = nmc_rt_actor_find(g_identity->app->rt, "outbox");
        if (ob != NULL)
            (void)nmc_rt_send(ob, nmc_rt_msg_new(NMC_MSG_OUTBOX_WAKE, NULL, NULL));
    }
out:
    memset(ar->api_key, 0, sizeof(ar->api_key));
    free(ar);
}

static void on_message(struct nmc_actor *self, struct nmc_msg *m, void *state)
{
    if (m->type == NMC_MSG_DB_RESULT)
        on_db_result(m);
}

int nmc_identity_init(struct nmc_app *app)
{
    struct identity *id = nmc_xcalloc(1, sizeof(*id));
    id->app = app;
    int rc = nmc_rt_actor_create(app->rt, "identity", on_message, id, 0, &id->actor);
    if (rc) {
        free(id);
        return rc;
    }
    g_identity = id;
    app->modules[NMC_SLOT_IDENTITY] = id;
    if (app->http == NULL)
        return 0;
    if ((rc = nmc_http_server_route(app->http, "POST", "/v1/admin/tenants", on_create, id)) ||
        (rc = nmc_http_server_route(app->http, "GET", "/v1/admin/tenants", on_list, id)) ||
        (rc = nmc_http_server_route(app->http, "GET", "/v1/admin/tenants/{id}", on_get, id)) ||
        (rc = nmc_http_server_route(app->http, "PATCH", "/v1/admin/tenants/{id}", on_patch, id)) ||
        (rc = nmc_http_server_route(app->http, "GET", "/v1/admin/flags", on_flags_get, id)) ||
        (rc = nmc_http_server_route(app->http, "POST", "/v1/admin/flags", on_flags, id)))
        return rc;
    return 0;
}

void nmc_identity_stop(struct nmc_app *app)
{
    if (g_identity == NULL)
        return;
    free(g_identity);
    g_identity = NULL;
    app->modules[NMC_SLOT_IDENTITY] = NULL;
}
