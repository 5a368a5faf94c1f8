/* Admin user routes (actors/identity/auth.h): map a Clerk subject to a
 * tenant, a role (OWNER|TECH) and an active flag. Guarded by the admin key.
 * The completions reach the "auth" actor, which also drops its cached
 * lookup of a changed subject so a deactivation bites at once here (other
 * instances within NMC_AUTH_CACHE_TTL_MS). */
#include "actors/identity/auth_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/identity/identity.h"
#include "runtime/log.h"

#define USER_JSON                                                                                           \
    "json_build_object('id', u.id, 'tenant_id', u.tenant_id, 'subject', u.subject, 'role', u.role, "       \
    "'active', u.active, "                                                                                  \
    "'created_at', to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "           \
    "'updated_at', to_char(u.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))"

enum users_op_kind { USERS_CREATE = 1, USERS_LIST, USERS_PATCH };

struct users_op {
    struct auth_op op; /* first */
    enum users_op_kind kind;
    struct nmc_http_handle h;
};

static void users_op_drop(struct auth_op *op)
{
    free(op);
}

static void reply_db_error(struct users_op *u, const struct nmc_db_result *r)
{
    if (r->status == NMC_EUNIQUE) {
        nmc_http_reply_error(u->h, 409, "subject_taken", "a user with this subject already exists");
    } else if (r->status == NMC_EFOREIGNKEY) {
        nmc_http_reply_error(u->h, 404, "not_found", "tenant not found");
    } else if (r->status == NMC_ECHECK) {
        nmc_http_reply_error(u->h, 400, "invalid_request", "a value breaks a database check");
    } else {
        struct nmc_log_rec *lr = nmc_log_begin(NMC_LOG_ERROR, "identity", "users.db_error");
        nmc_log_error(lr, r->status, r->message);
        nmc_log_str(lr, "sqlstate", r->sqlstate);
        nmc_log_end(lr);
        nmc_http_reply_error(u->h, 503, "unavailable", "database error, retry later");
    }
}

/* Row 0: the answer JSON in column 0 (NULL: not found); for PATCH the
 * subject in column 1. */
static void on_result(struct auth_op *op, struct nmc_msg *m)
{
    struct users_op *u = (struct users_op *)op;
    struct nmc_db_result *r = m->payload;
    nmc_identity_auth_op_unlink(op);
    if (r->status != 0) {
        reply_db_error(u, r);
        goto out;
    }
    const PGresult *res = r->nresults > 0 ? r->results[r->nresults - 1] : NULL;
    const char *json = res != NULL && PQntuples(res) > 0 ? nmc_db_get(res, 0, 0) : NULL;
    if (json == NULL) {
        nmc_http_reply_error(u->h, 404, "not_found", u->kind == USERS_PATCH ? "user not found" : "tenant not found");
        goto out;
    }
    if (u->kind == USERS_PATCH)
        nmc_identity_auth_forget(nmc_db_get(res, 0, 1));
    nmc_http_reply_json(u->h, u->kind == USERS_CREATE ? 201 : 200, json);
out:
    free(u);
}

static void submit(struct nmc_http_req *req, enum users_op_kind kind, const struct nmc_db_stmt *st)
{
    struct auth_state *as = nmc_identity_auth_state;
    struct users_op *u = nmc_xcalloc(1, sizeof(*u));
    struct nmc_msg ctx = {0};
    u->op.done = on_result;
    u->op.drop = users_op_drop;
    u->kind = kind;
    nmc_identity_auth_msg_from_req(&ctx, req);
    if (nmc_db_query(as->app->db, as->actor, (uint64_t)(uintptr_t)&u->op, &ctx, st) != 0) {
        nmc_http_respond_error(req, 503, "unavailable", "database queue is full, retry later");
        free(u);
        return;
    }
    u->h = nmc_http_req_handle(req);
    nmc_identity_auth_op_link(as, &u->op);
}

/* Validates role (required when creating) and active; 0 or answers 400. */
static int validate_user(struct nmc_http_req *req, json_t *body, int creating)
{
    json_t *subject = json_object_get(body, "subject");
    json_t *role = json_object_get(body, "role");
    json_t *active = json_object_get(body, "active");
    const char *s = json_string_value(subject), *r = json_string_value(role);
    const char *why = NULL;
    if (creating && (s == NULL || s[0] == '\0' || strlen(s) > 255))
        why = "subject must be a non-empty string of at most 255 characters (the JWT sub)";
    else if ((creating || role != NULL) && (r == NULL || (strcmp(r, "OWNER") != 0 && strcmp(r, "TECH") != 0)))
        why = "role must be \"OWNER\" or \"TECH\"";
    else if (active != NULL && !json_is_boolean(active))
        why = "active must be true or false";
    else if (!creating && role == NULL && active == NULL)
        why = "nothing to change: give role and/or active";
    if (why == NULL)
        return 0;
    nmc_http_respond_error(req, 400, "invalid_request", why);
    return NMC_EINVAL;
}

static const char *bool_text(json_t *v)
{
    return v == NULL ? NULL : json_is_true(v) ? "true" : "false";
}

static int tenant_param(struct nmc_http_req *req, const char **id)
{
    if (nmc_identity_admin_check(req) != 0)
        return NMC_EAUTH;
    *id = nmc_http_req_param(req, "id");
    if (!nmc_is_uuid(*id)) {
        nmc_http_respond_error(req, 404, "not_found", "tenant not found");
        return NMC_ENOTFOUND;
    }
    return 0;
}

static void on_create(struct nmc_http_req *req, void *ud)
{
    static const char *const keys[] = {"subject", "role", "active", NULL};
    const char *tenant;
    if (tenant_param(req, &tenant) != 0)
        return;
    json_t *body = nmc_identity_auth_body(req, keys);
    if (body == NULL)
        return;
    if (validate_user(req, body, 1) == 0) {
        struct nmc_db_stmt st = {
            .name = "users_create",
            .sql = "INSERT INTO users AS u (tenant_id, subject, role, active) "
                   "VALUES ($1, $2, $3, coalesce($4::boolean, true)) RETURNING " USER_JSON,
            .nparams = 4,
            .params = {tenant, json_string_value(json_object_get(body, "subject")),
                       json_string_value(json_object_get(body, "role")),
                       bool_text(json_object_get(body, "active"))},
        };
        submit(req, USERS_CREATE, &st);
    }
    json_decref(body);
}

static void on_list(struct nmc_http_req *req, void *ud)
{
    const char *tenant;
    if (tenant_param(req, &tenant) != 0)
        return;
    struct nmc_db_stmt st = {
        .name = "users_list",
        .sql = "SELECT json_build_object('users', coalesce((SELECT json_agg(" USER_JSON " ORDER BY u.created_at, u.id) "
               "FROM users u WHERE u.tenant_id = t.id), '[]'::json)) FROM tenants t WHERE t.id = $1",
        .nparams = 1,
        .params = {tenant},
    };
    submit(req, USERS_LIST, &st);
}

static void on_patch(struct nmc_http_req *req, void *ud)
{
    static const char *const keys[] = {"role", "active", NULL};
    const char *tenant;
    if (tenant_param(req, &tenant) != 0)
        return;
    const char *user = nmc_http_req_param(req, "user_id");
    if (!nmc_is_uuid(user)) {
        nmc_http_respond_error(req, 404, "not_found", "user not found");
        return;
    }
    json_t *body = nmc_identity_auth_body(req, keys);
    if (body == NULL)
        return;
    if (validate_user(req, body, 0) == 0) {
        struct nmc_db_stmt st = {
            .name = "users_patch",
            .sql = "UPDATE users AS u SET role = coalesce($3, u.role), active = coalesce($4::boolean, u.active), "
                   "updated_at = now() WHERE u.tenant_id = $1 AND u.id = $2 RETURNING " USER_JSON ", u.subject",
            .nparams = 4,
            .params = {tenant, user, json_string_value(json_object_get(body, "role")),
                       bool_text(json_object_get(body, "active"))},
        };
        submit(req, USERS_PATCH, &st);
    }
    json_decref(body);
}

int nmc_identity_users_routes(struct auth_state *st)
{
    struct nmc_http_server *http = st->app->http;
    int rc;
    if ((rc = nmc_http_server_route(http, "POST", "/v1/admin/tenants/{id}/users", on_create, st)) ||
        (rc = nmc_http_server_route(http, "GET", "/v1/admin/tenants/{id}/users", on_list, st)) ||
        (rc = nmc_http_server_route(http, "PATCH", "/v1/admin/tenants/{id}/users/{user_id}", on_patch, st)))
        return rc;
    return 0;
}
