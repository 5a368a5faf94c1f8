/* Request authentication (actors/identity/auth.h). A route handler extracts
 * the credential synchronously and hands a job to the "auth" actor, which
 * verifies it (JWT against the cached JWKS, or the API key's hash), maps it
 * to a principal (users row or tenant), checks the route's roles, and then
 * forwards the route's own message to the module actor or answers the
 * refusal itself. Lookups are cached briefly; a JWKS fetch parks the jobs
 * that need it and resumes them when the keys arrive. */
#include "actors/identity/auth_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "actors/identity/identity.h"
#include "http/body.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#define MSG_AUTH_JOB (NMC_MSG_MODULE_PRIVATE + 100 * NMC_SLOT_IDENTITY + 50)
#define API_KEY_MAX 200
#define CACHE_MAX_ENTRIES 20000
#define JWKS_RETRY_EMPTY_MS 1000 /* no keys at all: one fetch attempt per second at most */
#define NS_PER_MS 1000000ull

struct auth_state *nmc_identity_auth_state;

enum cred_kind { CRED_JWT = 1, CRED_API_KEY };

struct auth_job {
    struct auth_op op;              /* first: cookies point here */
    enum cred_kind kind;
    char *token;                    /* JWT, owned */
    size_t token_len;
    char key_hash[65];              /* hex SHA-256 of the API key */
    char sub[NMC_PROV_JWT_SUB_MAX];  /* the verified token's subject */
    unsigned allow;
    int refetched;                  /* a JWKS fetch already ran for this job */
    struct nmc_http_handle handle;  /* copy: ctx lives in inner's payload */
    struct nmc_auth_ctx *ctx;
    struct nmc_actor *to;
    struct nmc_msg *inner;          /* owned until forwarded */
    char correlation_id[NMC_ID_LEN];
};

struct auth_cache_entry {
    struct auth_cache_entry *next;
    char key[NMC_PROV_JWT_SUB_MAX + 8];
    struct nmc_auth_principal who;
    int active;
    uint64_t expires_ns;
};

static struct nmc_metric *m_refusals, *m_accepted, *m_jwks_fetches;

static void metrics_register(void)
{
    m_refusals = nmc_metrics_counter("auth_refusals_total", "Tenant API requests refused by authentication",
                                     "code");
    m_accepted = nmc_metrics_counter("auth_accepted_total", "Tenant API requests authenticated", "kind");
    m_jwks_fetches = nmc_metrics_counter("auth_jwks_fetches_total", "JWKS fetches by outcome", "outcome");
}

/* ---- operation list ------------------------------------------------- */

void nmc_identity_auth_op_link(struct auth_state *st, struct auth_op *op)
{
    op->next = st->ops.next;
    op->prev = &st->ops;
    st->ops.next->prev = op;
    st->ops.next = op;
}

void nmc_identity_auth_op_unlink(struct auth_op *op)
{
    if (op->next == NULL)
        return;
    op->prev->next = op->next;
    op->next->prev = op->prev;
    op->next = op->prev = NULL;
}

/* ---- cache ---------------------------------------------------------- */

static size_t cache_hash(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void cache_clear(struct auth_state *st)
{
    for (size_t i = 0; i < st->nbuckets; i++) {
        struct auth_cache_entry *e = st->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
        st->buckets[i] = NULL;
    }
    st->nentries = 0;
}

static struct auth_cache_entry **cache_slot(struct auth_state *st, const char *key)
{
    struct auth_cache_entry **pp = &st->buckets[cache_hash(key) % st->nbuckets];
    while (*pp != NULL && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void cache_forget(struct auth_state *st, const char *key)
{
    struct auth_cache_entry **pp = cache_slot(st, key), *e = *pp;
    if (e == NULL)
        return;
    *pp = e->next;
    free(e);
    st->nentries--;
}

/* The cached principal for key, or NULL when absent or stale. */
static const struct auth_cache_entry *cache_get(struct auth_state *st, const char *key)
{
    struct auth_cache_entry *e = *cache_slot(st, key);
    if (e != NULL && e->expires_ns <= nmc_clock_mono_ns()) {
        cache_forget(st, key);
        return NULL;
    }
    return e;
}

static void cache_put(struct auth_state *st, const char *key, const struct nmc_auth_principal *who, int active)
{
    if (strlen(key) >= sizeof(((struct auth_cache_entry *)0)->key))
        return;
    cache_forget(st, key);
    if (st->nentries >= CACHE_MAX_ENTRIES)
        cache_clear(st);
    struct auth_cache_entry *e = nmc_xcalloc(1, sizeof(*e));
    struct auth_cache_entry **head = &st->buckets[cache_hash(key) % st->nbuckets];
    nmc_strlcpy(e->key, key, sizeof(e->key));
    e->who = *who;
    e->active = active;
    e->expires_ns = nmc_clock_mono_ns() + NMC_AUTH_CACHE_TTL_MS * NS_PER_MS;
    e->next = *head;
    *head = e;
    st->nentries++;
}

void nmc_identity_auth_forget(const char *subject)
{
    char key[NMC_PROV_JWT_SUB_MAX + 8];
    if (nmc_identity_auth_state == NULL || subject == NULL)
        return;
    snprintf(key, sizeof(key), "sub:%s", subject);
    cache_forget(nmc_identity_auth_state, key);
}

/* ---- jobs ----------------------------------------------------------- */

static void job_free(struct auth_job *job)
{
    if (job == NULL)
        return;
    nmc_identity_auth_op_unlink(&job->op);
    if (job->token != NULL) {
        memset(job->token, 0, job->token_len);
        free(job->token);
    }
    nmc_rt_msg_free(job->inner);
    free(job);
}

static void job_payload_free(void *p)
{
    job_free(p);
}

static void job_drop(struct auth_op *op)
{
    job_free((struct auth_job *)op);
}

static void job_refuse(struct auth_job *job, int status, const char *code, const char *message)
{
    const char *labels[] = {code};
    nmc_metrics_add(m_refusals, labels, 1);
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_INFO, "identity", "auth.refused");
    nmc_log_ids(r, NULL, job->correlation_id, NULL);
    nmc_log_int(r, "http_status", status);
    nmc_log_str(r, "code", code);
    nmc_log_end(r);
    (void)nmc_http_reply_error(job->handle, status, code, message);
    job_free(job);
}

static unsigned role_bit(enum nmc_auth_role role)
{
    switch (role) {
    case NMC_AUTH_ROLE_TECH: return NMC_AUTH_ALLOW_TECH;
    case NMC_AUTH_ROLE_OWNER: return NMC_AUTH_ALLOW_OWNER;
    case NMC_AUTH_ROLE_MACHINE: return NMC_AUTH_ALLOW_MACHINE;
    default: return 0;
    }
}

/* Authorizes the principal for the job's route and forwards the route's
 * message, or refuses. Consumes job. */
static void job_finish(struct auth_job *job, const struct nmc_auth_principal *who, int active)
{
    if (!active) {
        job_refuse(job, 403, "user_inactive", "this user is deactivated");
        return;
    }
    if ((role_bit(who->role) & job->allow) == 0) {
        job_refuse(job, 403, "forbidden", "this role may not use this route");
        return;
    }
    const char *labels[] = {job->kind == CRED_JWT ? "jwt" : "api_key"};
    nmc_metrics_add(m_accepted, labels, 1);
    job->ctx->who = *who;
    nmc_strlcpy(job->inner->tenant_id, who->tenant_id, sizeof(job->inner->tenant_id));
    struct nmc_msg *inner = job->inner;
    struct nmc_http_handle h = job->handle;
    struct nmc_actor *to = job->to;
    job->inner = NULL;
    job_free(job);
    if (nmc_rt_send(to, inner) != 0)
        (void)nmc_http_reply_error(h, 503, "unavailable", "the service is overloaded, retry later");
}

/* ---- lookups -------------------------------------------------------- */

static const PGresult *first_result(const struct nmc_db_result *r)
{
    return r->nresults > 0 ? r->results[0] : NULL;
}

static int lookup_failed(struct auth_job *job, const struct nmc_db_result *r)
{
    if (r->status == 0 && first_result(r) != NULL)
        return 0;
    struct nmc_log_rec *lr = nmc_log_begin(NMC_LOG_ERROR, "identity", "auth.lookup_failed");
    nmc_log_ids(lr, NULL, job->correlation_id, NULL);
    nmc_log_error(lr, r->status, r->message);
    nmc_log_end(lr);
    job_refuse(job, 503, "unavailable", "cannot check the credentials now, retry later");
    return 1;
}

static void on_user_row(struct auth_op *op, struct nmc_msg *m)
{
    struct auth_job *job = (struct auth_job *)op;
    struct nmc_db_result *r = m->payload;
    char key[NMC_PROV_JWT_SUB_MAX + 8];
    nmc_identity_auth_op_unlink(op);
    if (lookup_failed(job, r))
        return;
    const PGresult *res = first_result(r);
    if (PQntuples(res) == 0) {
        job_refuse(job, 403, "unknown_user", "no user of any tenant has this token's subject");
        return;
    }
    struct nmc_auth_principal who = {.role = NMC_AUTH_ROLE_TECH};
    nmc_strlcpy(who.user_id, nmc_db_get(res, 0, 0), sizeof(who.user_id));
    nmc_strlcpy(who.tenant_id, nmc_db_get(res, 0, 1), sizeof(who.tenant_id));
    if (strcmp(nmc_db_get(res, 0, 2), "OWNER") == 0)
        who.role = NMC_AUTH_ROLE_OWNER;
    nmc_strlcpy(who.subject, job->sub, sizeof(who.subject));
    int active = strcmp(nmc_db_get(res, 0, 3), "t") == 0;
    snprintf(key, sizeof(key), "sub:%s", job->sub);
    cache_put(nmc_identity_auth_state, key, &who, active);
    job_finish(job, &who, active);
}

static void on_key_row(struct auth_op *op, struct nmc_msg *m)
{
    struct auth_job *job = (struct auth_job *)op;
    struct nmc_db_result *r = m->payload;
    char key[80];
    nmc_identity_auth_op_unlink(op);
    if (lookup_failed(job, r))
        return;
    const PGresult *res = first_result(r);
    const char *hash = PQntuples(res) > 0 ? nmc_db_get(res, 0, 1) : "";
    /* The index lookup found the row by hash; the comparison is repeated in
     * constant time so no code path compares key material byte by byte. */
    if (PQntuples(res) == 0 || !nmc_ct_equal(hash, strlen(hash), job->key_hash, strlen(job->key_hash))) {
        job_refuse(job, 401, "invalid_api_key", "the X-API-Key is not a tenant API key");
        return;
    }
    struct nmc_auth_principal who = {.role = NMC_AUTH_ROLE_MACHINE};
    nmc_strlcpy(who.tenant_id, nmc_db_get(res, 0, 0), sizeof(who.tenant_id));
    snprintf(who.subject, sizeof(who.subject), "api_key:%s", nmc_db_get(res, 0, 2));
    snprintf(key, sizeof(key), "key:%s", job->key_hash);
    cache_put(nmc_identity_auth_state, key, &who, 1);
    job_finish(job, &who, 1);
}

/* Looks the job's subject or key hash up: cache first, else one query. */
static void job_lookup(struct auth_state *st, struct auth_job *job)
{
    char key[NMC_PROV_JWT_SUB_MAX + 8];
    int jwt = job->kind == CRED_JWT;
    snprintf(key, sizeof(key), jwt ? "sub:%s" : "key:%s", jwt ? job->sub : job->key_hash);
    const struct auth_cache_entry *e = cache_get(st, key);
    if (e != NULL) {
        job_finish(job, &e->who, e->active);
        return;
    }
    struct nmc_db_stmt q = {.nparams = 1, .params = {jwt ? job->sub : job->key_hash}};
    if (jwt) {
        q.name = "auth_user_by_subject";
        q.sql = "SELECT u.id, u.tenant_id, u.role, u.active FROM users u WHERE u.subject = $1";
    } else {
        q.name = "auth_tenant_by_key";
        q.sql = "SELECT t.id, t.api_key_hash, t.api_key_prefix FROM tenants t WHERE t.api_key_hash = $1";
    }
    job->op.done = jwt ? on_user_row : on_key_row;
    if (nmc_db_query(st->app->db, st->actor, (uint64_t)(uintptr_t)&job->op, job->inner, &q) != 0) {
        job_refuse(job, 503, "unavailable", "cannot check the credentials now, retry later");
        return;
    }
    nmc_identity_auth_op_link(st, &job->op);
}

/* ---- JWKS ----------------------------------------------------------- */

/* The keys are fetched, cached, refreshed (NMC_AUTH_JWKS_MAX_AGE_MS) and
 * refetched on an unknown kid (NMC_AUTH_JWKS_REFETCH_MS apart) by the
 * providers/jwt.h key cache; a job whose kid is unknown while a fetch is in
 * flight waits for it here, parked, instead of being refused at once. */

static void job_verify(struct auth_state *st, struct auth_job *job);

static void parked_add(struct auth_state *st, struct auth_job *job)
{
    struct auth_op *op = &job->op;
    op->next = st->parked.next;
    op->prev = &st->parked;
    st->parked.next->prev = op;
    st->parked.next = op;
    st->nparked++;
}

/* Re-runs every parked job once the fetch is over, whatever its outcome;
 * a job is parked at most once, so this cannot loop. */
static void parked_resume(struct auth_state *st)
{
    while (st->parked.prev != &st->parked) {
        struct auth_job *job = (struct auth_job *)st->parked.prev;
        nmc_identity_auth_op_unlink(&job->op);
        st->nparked--;
        job->refetched = 1;
        job_verify(st, job);
    }
}

static void jwks_outcome(const char *outcome)
{
    const char *labels[] = {outcome};
    nmc_metrics_add(m_jwks_fetches, labels, 1);
}

/* A completion of the key cache (NMC_MSG_PROV_JWKS): the cache installs
 * the keys or keeps the old ones (and logs why); the waiting jobs go on. */
static void on_jwks_fetched(struct auth_state *st, const struct nmc_msg *m)
{
    jwks_outcome(nmc_prov_jwks_cache_on_fetched(st->jwks, m) == 0 ? "ok" : "error");
    parked_resume(st);
}

/* Verifies the job's token; an unknown kid parks the job behind a fetch. */
static void job_verify(struct auth_state *st, struct auth_job *job)
{
    struct nmc_prov_jwt_claims claims;
    int pending = 0;
    int rc = nmc_prov_jwks_cache_verify(st->jwks, &st->policy, job->token, job->token_len, &claims, &pending);
    if (rc == NMC_PROV_JWT_EUNKNOWN_KID && pending && !job->refetched) {
        if (st->nparked >= NMC_AUTH_MAX_PARKED) {
            job_refuse(job, 503, "auth_unavailable", "too many requests wait for the signing keys");
            return;
        }
        parked_add(st, job);
        return;
    }
    if (rc == NMC_PROV_JWT_EUNKNOWN_KID && nmc_prov_jwks_cache_keys(st->jwks) == NULL) {
        job_refuse(job, 503, "auth_unavailable", "the token signing keys could not be fetched, retry later");
        return;
    }
    if (rc != 0) {
        job_refuse(job, 401, nmc_prov_jwt_errcode(rc), nmc_prov_jwt_strerror(rc));
        return;
    }
    nmc_strlcpy(job->sub, claims.sub, sizeof(job->sub));
    job_lookup(st, job);
}

/* ---- the actor ------------------------------------------------------ */

/* state is not used: after nmc_identity_auth_stop() freed it, late mail
 * (a canceled JWKS fetch, a query result) can still reach this actor until
 * the runtime stops, and must be dropped, not dispatched. */
static void on_message(struct nmc_actor *self, struct nmc_msg *m, void *state)
{
    struct auth_state *st = nmc_identity_auth_state;
    (void)state;
    if (st == NULL || st->actor != self)
        return;
    if (m->type == MSG_AUTH_JOB) {
        struct auth_job *job = m->payload;
        m->payload = NULL; /* the job lives on past this message */
        if (job->kind == CRED_JWT)
            job_verify(st, job);
        else
            job_lookup(st, job);
        return;
    }
    if (m->type == NMC_MSG_PROV_JWKS && st->jwks != NULL) {
        on_jwks_fetched(st, m);
        return;
    }
    if (m->type == NMC_MSG_DB_RESULT && m->cookie != 0) {
        struct auth_op *op = (struct auth_op *)(uintptr_t)m->cookie;
        op->done(op, m);
    }
}

/* ---- submit (runs in the route handler) ------------------------------ */

static void refuse_now(struct nmc_http_req *req, struct auth_job *job, int status, const char *code,
                       const char *message)
{
    const char *labels[] = {code};
    nmc_metrics_add(m_refusals, labels, 1);
    nmc_http_respond_error(req, status, code, message);
    job_free(job);
}

/* Fills job from req's credential; 0, or answers the refusal and frees job. */
static int job_credential(struct auth_state *st, struct nmc_http_req *req, struct auth_job *job)
{
    const char *authz = nmc_http_req_header(req, "authorization");
    const char *key = nmc_http_req_header(req, "x-api-key");
    if (authz != NULL) {
        if (strncasecmp(authz, "Bearer", 6) != 0 || (authz[6] != ' ' && authz[6] != '\0')) {
            refuse_now(req, job, 401, "invalid_authorization", "Authorization must be 'Bearer <token>'");
            return NMC_EAUTH;
        }
        const char *t = authz + 6;
        while (*t == ' ')
            t++;
        size_t len = strlen(t);
        while (len > 0 && t[len - 1] == ' ')
            len--;
        if (st->policy.issuer == NULL || st->policy.audience == NULL || st->jwks == NULL) {
            refuse_now(req, job, 401, "jwt_not_configured",
                       "bearer tokens are not accepted: CLERK_JWT_ISSUER, CLERK_JWT_AUDIENCE and CLERK_JWKS_URL "
                       "must be set");
            return NMC_EAUTH;
        }
        if (len == 0 || len > NMC_PROV_JWT_MAX_TOKEN) {
            refuse_now(req, job, 401, nmc_prov_jwt_errcode(NMC_PROV_JWT_EMALFORMED),
                       nmc_prov_jwt_strerror(NMC_PROV_JWT_EMALFORMED));
            return NMC_EAUTH;
        }
        job->kind = CRED_JWT;
        job->token = nmc_xstrndup(t, len);
        job->token_len = len;
        return 0;
    }
    if (key != NULL && key[0] != '\0' && strlen(key) <= API_KEY_MAX) {
        job->kind = CRED_API_KEY;
        nmc_identity_hash_key(key, job->key_hash);
        return 0;
    }
    if (key != NULL)
        refuse_now(req, job, 401, "invalid_api_key", "the X-API-Key is not a tenant API key");
    else
        refuse_now(req, job, 401, "unauthorized",
                   "credentials required: Authorization: Bearer <token> or X-API-Key: <tenant key>");
    return NMC_EAUTH;
}

void nmc_identity_auth_submit(struct nmc_app *app, struct nmc_http_req *req, unsigned allow,
                              struct nmc_auth_ctx *ctx, struct nmc_actor *to, struct nmc_msg *msg)
{
    struct auth_state *st = nmc_identity_auth_state;
    if (st == NULL || st->app != app || to == NULL) {
        nmc_http_respond_error(req, 503, "unavailable", "authentication is not running");
        nmc_rt_msg_free(msg);
        return;
    }
    struct auth_job *job = nmc_xcalloc(1, sizeof(*job));
    job->op.drop = job_drop;
    job->inner = msg;
    job->allow = allow;
    job->to = to;
    job->ctx = ctx;
    nmc_strlcpy(job->correlation_id, req->correlation_id, sizeof(job->correlation_id));
    if (job_credential(st, req, job) != 0)
        return;
    ctx->handle = nmc_http_req_handle(req);
    ctx->received_ns = req->received_ns;
    job->handle = ctx->handle;
    struct nmc_http_handle h = ctx->handle;
    struct nmc_msg *jm = nmc_rt_msg_new(MSG_AUTH_JOB, job, job_payload_free);
    nmc_identity_auth_msg_from_req(jm, req);
    if (nmc_rt_send(st->actor, jm) != 0)
        (void)nmc_http_reply_error(h, 503, "unavailable", "the service is overloaded, retry later");
}

/* ---- helpers -------------------------------------------------------- */

json_t *nmc_identity_auth_body(struct nmc_http_req *req, const char *const *allowed)
{
    char err[256];
    json_t *body = nmc_json_parse_object(req->body, req->body_len, err, sizeof(err));
    if (body == NULL) {
        nmc_http_respond_error(req, 400, "invalid_json", err);
        return NULL;
    }
    if (nmc_json_check_keys(body, allowed, err, sizeof(err)) != 0) {
        nmc_http_respond_error(req, 400, "invalid_request", err);
        json_decref(body);
        return NULL;
    }
    return body;
}

void nmc_identity_auth_msg_from_req(struct nmc_msg *msg, const struct nmc_http_req *req)
{
    nmc_strlcpy(msg->correlation_id, req->correlation_id, sizeof(msg->correlation_id));
    msg->trace = req->trace;
}

/* ---- life cycle ------------------------------------------------------ */

static const char *nonempty(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* The key cache on a client of its own, when CLERK_JWKS_URL is set, and a
 * first fetch to warm it (a failure is retried on demand, at most once per
 * JWKS_RETRY_EMPTY_MS until keys arrive). */
static int jwks_start(struct auth_state *st)
{
    struct nmc_prov_jwks_cache_opts o = {
        .url = nonempty(st->app->cfg->clerk_jwks_url),
        .ttl_ms = NMC_AUTH_JWKS_MAX_AGE_MS,
        .min_interval_ms = NMC_AUTH_JWKS_REFETCH_MS,
        .min_interval_empty_ms = JWKS_RETRY_EMPTY_MS,
    };
    if (o.url == NULL)
        return 0;
    int rc = nmc_prov_http_create(st->app->loop, NULL, &st->http);
    if (rc == 0)
        rc = nmc_prov_jwks_cache_create(st->http, st->actor, &o, &st->jwks);
    if (rc == 0 && nmc_prov_jwks_cache_refresh(st->jwks) < 0)
        jwks_outcome("error");
    return rc;
}

int nmc_identity_auth_init(struct nmc_app *app)
{
    struct auth_state *st = nmc_identity_auth_state;
    if (st != NULL && st->app == app)
        return 0;
    metrics_register();
    st = nmc_xcalloc(1, sizeof(*st));
    st->app = app;
    st->ops.next = st->ops.prev = &st->ops;
    st->parked.next = st->parked.prev = &st->parked;
    st->nbuckets = 1024;
    st->buckets = nmc_xcalloc(st->nbuckets, sizeof(*st->buckets));
    st->policy.issuer = nonempty(app->cfg->clerk_jwt_issuer);
    st->policy.audience = nonempty(app->cfg->clerk_jwt_audience);
    st->policy.leeway_s = -1;
    int rc = nmc_rt_actor_create(app->rt, "auth", on_message, st, 0, &st->actor);
    if (rc != 0) {
        free(st->buckets);
        free(st);
        return rc;
    }
    /* Installed from here on, even if a step below fails: the actor's
     * handler reads it, and nmc_identity_auth_stop() frees what was made. */
    nmc_identity_auth_state = st;
    rc = jwks_start(st);
    if (rc == 0 && app->http != NULL)
        rc = nmc_identity_users_routes(st);
    return rc;
}

static void drop_list(struct auth_op *head)
{
    while (head->next != head) {
        struct auth_op *op = head->next;
        nmc_identity_auth_op_unlink(op);
        op->drop(op);
    }
}

void nmc_identity_auth_stop(struct nmc_app *app)
{
    struct auth_state *st = nmc_identity_auth_state;
    if (st == NULL || st->app != app)
        return;
    drop_list(&st->parked);
    drop_list(&st->ops);
    cache_clear(st);
    free(st->buckets);
    nmc_prov_jwks_cache_destroy(st->jwks); /* its canceled completion is dropped by on_message */
    nmc_prov_http_destroy(st->http);       /* freed once the loop runs its close callbacks */
    nmc_identity_auth_state = NULL;
    free(st);
}
