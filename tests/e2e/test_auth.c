/* Identity and access end to end (spec 000 section 4.5): Clerk-style RS256
 * tokens signed by an independent library (PyJWT, through
 * tests/support/jwt_keys/jwtgen.py) against a JWKS that `nmc-fakes --jwks`
 * publishes at CLERK_JWKS_URL; the refusal table (expired, nbf ahead, wrong
 * iss, wrong aud, unknown kid, alg none, HS256 keyed with the public key,
 * RS384, tampered payload, inactive user, TECH on an OWNER route, unknown
 * subject, no or bad credentials); key rotation picked up on an unknown kid;
 * the tenant API key; user admin; and a cross-tenant attempt on every
 * tenant route, which must answer 404 (or an empty list) and change nothing. */
#include <time.h>

#include "tests/e2e/test_scheduling_support.h"
#include "tests/support/fakes_proc.h"
#include "tests/support/jwt_keys/jwt_test_util.h"

#define ISS "https://clerk.nmc.test"
#define AUD "nmc-api"
#define TZ "America/Denver"

static struct jt_py g_py;
static struct nmc_fakes_proc g_fakes;
static char g_jwks_path[64];
static struct e2e_tenant A, B;
static char *g_tech_a_id;

/* Writes a JWKS document with the public keys named (NULL-terminated). */
static void write_jwks(const char *const *names)
{
    FILE *f = fopen(g_jwks_path, "w");
    assert_non_null(f);
    fputs("{\"keys\":[", f);
    for (size_t i = 0; names[i] != NULL; i++) {
        char *jwk = jt_read_jwk(&g_py, names[i]);
        assert_non_null(jwk);
        fprintf(f, "%s%s", i ? "," : "", jwk);
        free(jwk);
    }
    fputs("]}", f);
    fclose(f);
}

static void start_fakes(int port)
{
    const char *args[] = {"--jwks", g_jwks_path, NULL};
    assert_int_equal(nmc_fakes_proc_start(&g_fakes, port, args), 0);
}

static int setup(void **state)
{
    static const char *const k1[] = {"k1", NULL};
    assert_int_equal(jt_start(&g_py), 0);
    nmc_strlcpy(g_jwks_path, "/tmp/nmc-jwks-XXXXXX", sizeof(g_jwks_path));
    int fd = mkstemp(g_jwks_path);
    assert_true(fd >= 0);
    close(fd);
    write_jwks(k1);
    start_fakes(0);
    char url[128];
    snprintf(url, sizeof(url), "%s/.well-known/jwks.json", g_fakes.base_url);
    const char *env[] = {"CLERK_JWKS_URL", url, "CLERK_JWT_ISSUER", ISS, "CLERK_JWT_AUDIENCE", AUD, NULL};
    e2e_start(env);
    e2e_tenant_create("Tenant A", TZ, &A);
    e2e_tenant_create("Tenant B", TZ, &B);
    free(e2e_user_create(A.id, "user_owner_a", "OWNER", 1));
    g_tech_a_id = e2e_user_create(A.id, "user_tech_a", "TECH", 1);
    free(e2e_user_create(A.id, "user_off_a", "OWNER", 0));
    free(e2e_user_create(B.id, "user_owner_b", "OWNER", 1));
    return 0;
}

static int teardown(void **state)
{
    e2e_stop();
    nmc_fakes_proc_stop(&g_fakes);
    jt_stop(&g_py);
    unlink(g_jwks_path);
    free(g_tech_a_id);
    return 0;
}

/* ---- tokens ---- */

static char *claims_for(const char *sub, const char *iss, const char *aud, long exp_in, long nbf_in)
{
    long now = (long)time(NULL);
    return e2e_fmt("{\"sub\":\"%s\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%ld,\"nbf\":%ld,\"iat\":%ld,"
                   "\"sid\":\"sess_1\"}", sub, iss, aud, now + exp_in, now + nbf_in, now);
}

/* "Authorization: Bearer <token>" (caller frees). */
static char *bearer_with(const char *key, const char *alg, const char *claims)
{
    char *tok = jt_sign(&g_py, key, alg, NULL, NULL, claims);
    assert_non_null(tok);
    char *h = e2e_fmt("Authorization: Bearer %s", tok);
    free(tok);
    return h;
}

static char *bearer(const char *sub)
{
    char *claims = claims_for(sub, ISS, AUD, 600, -5);
    char *h = bearer_with("k1", "RS256", claims);
    free(claims);
    return h;
}

static char *b64url(const char *s)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(s);
    struct nmc_buf b = {0};
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        char out[4] = {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], tbl[v & 63]};
        (void)nmc_buf_append(&b, out, i + 2 < n ? 4 : i + 1 < n ? 3 : 2);
    }
    return nmc_buf_steal(&b, NULL);
}

/* A token for user_tech_a whose payload is swapped for user_owner_a's
 * claims without re-signing. */
static char *tampered(void)
{
    char *claims = claims_for("user_tech_a", ISS, AUD, 600, -5);
    char *tok = jt_sign(&g_py, "k1", "RS256", NULL, NULL, claims);
    char *evil = claims_for("user_owner_a", ISS, AUD, 600, -5);
    char *payload = b64url(evil);
    char *dot1 = strchr(tok, '.'), *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    assert_non_null(dot2);
    *dot1 = '\0';
    char *h = e2e_fmt("Authorization: Bearer %s.%s%s", tok, payload, dot2);
    free(payload);
    free(evil);
    free(claims);
    free(tok);
    return h;
}

/* ---- tests ---- */

static void test_auth_valid_tokens_and_api_key_accepted(void **state)
{
    char *owner = bearer("user_owner_a"), *tech = bearer("user_tech_a");
    json_decref(e2e_must(201, owner, "POST", "/v1/catalog/items",
                         "{\"name\":\"Furnace tune-up\",\"price_cents\":9900,\"duration_minutes\":90}"));
    json_t *j = e2e_must(200, tech, "GET", "/v1/catalog/items", NULL);
    assert_int_equal(json_array_size(json_object_get(j, "items")), 1);
    json_decref(j);
    json_decref(e2e_must(200, A.key_hdr, "GET", "/v1/catalog/items", NULL));
    /* an audience array containing ours is fine too */
    long now = (long)time(NULL);
    char *claims = e2e_fmt("{\"sub\":\"user_owner_a\",\"iss\":\"" ISS "\",\"aud\":[\"other\",\"" AUD "\"],\"exp\":%ld}",
                           now + 300);
    char *multi = bearer_with("k1", "RS256", claims);
    json_decref(e2e_must(200, multi, "GET", "/v1/catalog/items", NULL));
    assert_true(e2e_metric("auth_accepted_total{kind=\"jwt\"}") >= 3);
    free(multi);
    free(claims);
    free(owner);
    free(tech);
}

struct row {
    const char *what;
    const char *key, *alg;
    const char *sub, *iss, *aud;
    long exp_in, nbf_in;
    int status;
    const char *code;
};

static void test_auth_jwt_table_refused_with_the_right_status(void **state)
{
    static const struct row rows[] = {
        {"expired", "k1", "RS256", "user_owner_a", ISS, AUD, -3600, -7200, 401, "expired"},
        {"nbf in the future", "k1", "RS256", "user_owner_a", ISS, AUD, 7200, 3600, 401, "not_yet_valid"},
        {"wrong iss", "k1", "RS256", "user_owner_a", "https://evil.test", AUD, 600, -5, 401, "bad_issuer"},
        {"wrong aud", "k1", "RS256", "user_owner_a", ISS, "someone-else", 600, -5, 401, "bad_audience"},
        {"unknown kid", "k2", "RS256", "user_owner_a", ISS, AUD, 600, -5, 401, "unknown_kid"},
        {"alg none", "k1", "none", "user_owner_a", ISS, AUD, 600, -5, 401, "bad_alg"},
        {"HS256 keyed with the public key", "k1", "HS256-pubkey", "user_owner_a", ISS, AUD, 600, -5, 401, "bad_alg"},
        {"RS384", "k1", "RS384", "user_owner_a", ISS, AUD, 600, -5, 401, "bad_alg"},
        {"inactive user", "k1", "RS256", "user_off_a", ISS, AUD, 600, -5, 403, "user_inactive"},
        {"unknown subject", "k1", "RS256", "user_nobody", ISS, AUD, 600, -5, 403, "unknown_user"},
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(rows); i++) {
        const struct row *r = &rows[i];
        char *claims = claims_for(r->sub, r->iss, r->aud, r->exp_in, r->nbf_in);
        char *h = bearer_with(r->key, r->alg, claims);
        json_t *j = NULL;
        int st = e2e_req(h, "GET", "/v1/catalog/items", NULL, &j);
        if (st != r->status || strcmp(e2e_code(j), r->code) != 0)
            fail_msg("%s: want %d %s, got %d %s", r->what, r->status, r->code, st, e2e_code(j));
        json_decref(j);
        free(h);
        free(claims);
    }
    /* tampered payload: the signature no longer matches */
    char *t = tampered();
    json_t *j = e2e_must(401, t, "GET", "/v1/catalog/items", NULL);
    assert_string_equal(e2e_code(j), "bad_signature");
    json_decref(j);
    free(t);
    /* TECH on an OWNER route */
    char *tech = bearer("user_tech_a");
    j = e2e_must(403, tech, "POST", "/v1/catalog/items", "{\"name\":\"X\",\"price_cents\":1,\"duration_minutes\":30}");
    assert_string_equal(e2e_code(j), "forbidden");
    json_decref(j);
    free(tech);
    /* no or bad credentials */
    static const struct {
        const char *hdr;
        const char *code;
    } creds[] = {
        {NULL, "unauthorized"},
        {"Authorization: Basic dXNlcjpwYXNz", "invalid_authorization"},
        {"Authorization: Bearer not.a.jwt", "malformed"},
        {"Authorization: Bearer ", "malformed"},
        {"X-API-Key: nmc_0000000000000000000000000000000000000000000000000", "invalid_api_key"},
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(creds); i++) {
        int st = e2e_req(creds[i].hdr, "GET", "/v1/catalog/items", NULL, &j);
        if (st != 401 || strcmp(e2e_code(j), creds[i].code) != 0)
            fail_msg("credential %s: want 401 %s, got %d %s", creds[i].hdr ? creds[i].hdr : "(none)", creds[i].code,
                     st, e2e_code(j));
        json_decref(j);
    }
    assert_true(e2e_metric("auth_refusals_total{code=\"expired\"}") >= 1);
}

static void test_auth_rbac_tech_reads_and_books_owner_manages(void **state)
{
    char *owner = bearer("user_owner_a"), *tech = bearer("user_tech_a");
    char *item = e2e_item_create(&A, "Boiler check", 12000, 60);
    char *res = e2e_resource_create(&A, "Tess", "08:00", "17:00");
    char *item_path = e2e_fmt("/v1/catalog/items/%s", item), *res_path = e2e_fmt("/v1/scheduling/resources/%s", res);
    /* OWNER-only routes */
    json_decref(e2e_must(403, tech, "PATCH", item_path, "{\"priority\":3}"));
    json_decref(e2e_must(403, tech, "DELETE", item_path, NULL));
    json_decref(e2e_must(403, tech, "POST", "/v1/scheduling/resources", "{\"name\":\"X\",\"business_hours\":{}}"));
    json_decref(e2e_must(403, tech, "PATCH", res_path, "{\"name\":\"Y\"}"));
    json_decref(e2e_must(200, owner, "PATCH", item_path, "{\"priority\":3}"));
    json_decref(e2e_must(200, owner, "PATCH", res_path, "{\"name\":\"Tessa\"}"));
    /* TECH reads the schedule and books */
    char *q = e2e_fmt("%s/quote", item_path);
    json_decref(e2e_must(200, tech, "GET", q, NULL));
    json_decref(e2e_must(200, tech, "GET", "/v1/scheduling/resources", NULL));
    json_decref(e2e_must(200, tech, "POST", "/v1/catalog/match", "{\"text\":\"boiler\"}"));
    char *start = e2e_future(3, "09:00", TZ), *end = e2e_future(4, "00:00", TZ);
    char *avail = e2e_fmt("/v1/scheduling/availability?item_id=%s&from=%s&to=%s", item, start, end);
    json_decref(e2e_must(200, tech, "GET", avail, NULL));
    char *body = e2e_fmt("{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\"}", res, item, start);
    json_t *h = e2e_must(201, tech, "POST", "/v1/scheduling/holds", body);
    char *bbody = e2e_fmt("{\"hold_id\":\"%s\"}", e2e_str(h, "id"));
    json_t *a = NULL;
    assert_int_equal(e2e_req2(tech, "Idempotency-Key: tech-1", "POST", "/v1/scheduling/bookings", bbody, &a), 201);
    assert_string_equal(e2e_str(a, "booked_by"), "user_tech_a");
    char *list = e2e_fmt("/v1/scheduling/appointments?from=%s&to=%s", start, end);
    json_decref(e2e_must(200, tech, "GET", list, NULL));
    /* deactivation bites at once; reactivation too */
    char *upath = e2e_fmt("/v1/admin/tenants/%s/users/%s", A.id, g_tech_a_id);
    json_decref(e2e_must(200, "X-Admin-API-Key: " E2E_ADMIN_KEY, "PATCH", upath, "{\"active\":false}"));
    json_t *e = e2e_must(403, tech, "GET", "/v1/catalog/items", NULL);
    assert_string_equal(e2e_code(e), "user_inactive");
    json_decref(e);
    json_decref(e2e_must(200, "X-Admin-API-Key: " E2E_ADMIN_KEY, "PATCH", upath, "{\"active\":true}"));
    json_decref(e2e_must(200, tech, "GET", "/v1/catalog/items", NULL));
    /* promoted to OWNER: may manage */
    json_decref(e2e_must(200, "X-Admin-API-Key: " E2E_ADMIN_KEY, "PATCH", upath, "{\"role\":\"OWNER\"}"));
    json_decref(e2e_must(200, tech, "PATCH", item_path, "{\"priority\":4}"));
    json_decref(e2e_must(200, "X-Admin-API-Key: " E2E_ADMIN_KEY, "PATCH", upath, "{\"role\":\"TECH\"}"));
    /* the user admin validates and is guarded */
    json_decref(e2e_must(401, NULL, "PATCH", upath, "{\"active\":false}"));
    json_decref(e2e_must(400, "X-Admin-API-Key: " E2E_ADMIN_KEY, "PATCH", upath, "{\"role\":\"ADMIN\"}"));
    char *ucreate = e2e_fmt("/v1/admin/tenants/%s/users", A.id);
    json_decref(e2e_must(409, "X-Admin-API-Key: " E2E_ADMIN_KEY, "POST", ucreate,
                         "{\"subject\":\"user_owner_b\",\"role\":\"TECH\"}"));
    json_decref(e2e_must(404, "X-Admin-API-Key: " E2E_ADMIN_KEY, "POST",
                         "/v1/admin/tenants/00000000-0000-4000-8000-000000000000/users",
                         "{\"subject\":\"new_user\",\"role\":\"TECH\"}"));
    json_t *users = e2e_must(200, "X-Admin-API-Key: " E2E_ADMIN_KEY, "GET", ucreate, NULL);
    assert_int_equal(json_array_size(json_object_get(users, "users")), 3);
    json_decref(users);
    free(ucreate);
    free(upath);
    free(list);
    json_decref(a);
    free(bbody);
    json_decref(h);
    free(body);
    free(avail);
    free(start);
    free(end);
    free(q);
    free(item_path);
    free(res_path);
    free(item);
    free(res);
    free(owner);
    free(tech);
}

/* Rotation: a token signed by a key published after start-up is accepted
 * once the JWKS is refetched on its unknown kid (at most once per 5 s). */
static void test_auth_refetches_jwks_on_unknown_kid(void **state)
{
    static const char *const both[] = {"k1", "k2", NULL};
    int port = g_fakes.port;
    nmc_fakes_proc_stop(&g_fakes);
    write_jwks(both);
    start_fakes(port);
    sleep(6); /* past the refetch rate limit left by the unknown-kid row */
    char *claims = claims_for("user_owner_a", ISS, AUD, 600, -5);
    char *h = bearer_with("k2", "RS256", claims);
    json_decref(e2e_must(200, h, "GET", "/v1/catalog/items", NULL));
    assert_true(e2e_metric("auth_jwks_fetches_total{outcome=\"ok\"}") >= 2);
    free(h);
    free(claims);
}

/* Tenant B's credentials against every tenant route with tenant A's ids. */
static void test_auth_cross_tenant_every_route_404(void **state)
{
    char *b = bearer("user_owner_b");
    char *item = e2e_item_create(&A, "Secret service", 50000, 60);
    char *res = e2e_resource_create(&A, "Alice", "08:00", "17:00");
    char *b_item = e2e_item_create(&B, "B service", 100, 60);
    char *b_res = e2e_resource_create(&B, "Bea", "08:00", "17:00");
    char *s1 = e2e_future(5, "09:00", TZ), *s2 = e2e_future(5, "11:00", TZ), *to = e2e_future(6, "00:00", TZ);
    char *hb = e2e_fmt("{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\"}", res, item, s1);
    json_t *hold = e2e_must(201, A.key_hdr, "POST", "/v1/scheduling/holds", hb);
    free(hb);
    hb = e2e_fmt("{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\"}", res, item, s2);
    json_t *h2 = e2e_must(201, A.key_hdr, "POST", "/v1/scheduling/holds", hb);
    char *bb = e2e_fmt("{\"hold_id\":\"%s\"}", e2e_str(h2, "id"));
    json_t *appt = NULL;
    assert_int_equal(e2e_req2(A.key_hdr, "Idempotency-Key: shared-key", "POST", "/v1/scheduling/bookings", bb, &appt),
                     201);
    const char *hold_id = e2e_str(hold, "id"), *appt_id = e2e_str(appt, "id");
    struct {
        const char *method;
        char *path;
        char *body;
    } calls[] = {
        {"GET", e2e_fmt("/v1/catalog/items/%s", item), NULL},
        {"PATCH", e2e_fmt("/v1/catalog/items/%s", item), e2e_fmt("{\"active\":false}")},
        {"DELETE", e2e_fmt("/v1/catalog/items/%s", item), NULL},
        {"GET", e2e_fmt("/v1/catalog/items/%s/quote", item), NULL},
        {"GET", e2e_fmt("/v1/scheduling/resources/%s", res), NULL},
        {"PATCH", e2e_fmt("/v1/scheduling/resources/%s", res), e2e_fmt("{\"active\":false}")},
        {"GET", e2e_fmt("/v1/scheduling/availability?item_id=%s&from=%s&to=%s", item, s1, to), NULL},
        {"GET", e2e_fmt("/v1/scheduling/availability?item_id=%s&from=%s&to=%s&resource_id=%s", b_item, s1, to, res),
         NULL},
        {"POST", e2e_fmt("/v1/scheduling/holds"),
         e2e_fmt("{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\"}", res, item, s2)},
        {"POST", e2e_fmt("/v1/scheduling/holds"),
         e2e_fmt("{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\"}", b_res, item, s2)},
        {"POST", e2e_fmt("/v1/scheduling/holds"),
         e2e_fmt("{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\"}", res, b_item, s2)},
        {"DELETE", e2e_fmt("/v1/scheduling/holds/%s", hold_id), NULL},
        {"GET", e2e_fmt("/v1/scheduling/appointments/%s", appt_id), NULL},
        {"PATCH", e2e_fmt("/v1/scheduling/appointments/%s", appt_id), e2e_fmt("{\"status\":\"cancelled\"}")},
        {"PATCH", e2e_fmt("/v1/scheduling/appointments/%s", appt_id), e2e_fmt("{\"start\":\"%s\"}", s1)},
    };
    const char *creds[] = {b, B.key_hdr};
    for (size_t c = 0; c < 2; c++)
        for (size_t i = 0; i < NMC_ARRAY_SIZE(calls); i++) {
            json_t *j = NULL;
            int st = e2e_req(creds[c], calls[i].method, calls[i].path, calls[i].body, &j);
            if (st != 404)
                fail_msg("cross-tenant %s %s: want 404, got %d %s", calls[i].method, calls[i].path, st, e2e_code(j));
            json_decref(j);
        }
    /* booking A's hold (body reference) */
    char *idem = e2e_fmt("Idempotency-Key: x-%s", hold_id);
    char *book = e2e_fmt("{\"hold_id\":\"%s\"}", hold_id);
    assert_int_equal(e2e_req2(b, idem, "POST", "/v1/scheduling/bookings", book, NULL), 404);
    /* lists and matching show none of A's data */
    json_t *j = e2e_must(200, b, "GET", "/v1/catalog/items", NULL);
    assert_int_equal(json_array_size(json_object_get(j, "items")), 1);
    json_decref(j);
    j = e2e_must(200, b, "POST", "/v1/catalog/match", "{\"text\":\"secret service\"}");
    assert_int_equal(json_array_size(json_object_get(j, "matches")), 0);
    json_decref(j);
    j = e2e_must(200, b, "GET", "/v1/scheduling/resources", NULL);
    assert_int_equal(json_array_size(json_object_get(j, "resources")), 1);
    json_decref(j);
    char *list = e2e_fmt("/v1/scheduling/appointments?from=%s&to=%s", s1, to);
    j = e2e_must(200, b, "GET", list, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "appointments")), 0);
    json_decref(j);
    /* idempotency keys are per tenant: B's "shared-key" books B's own hold */
    free(hb);
    hb = e2e_fmt("{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\"}", b_res, b_item, s2);
    json_t *bh = e2e_must(201, b, "POST", "/v1/scheduling/holds", hb);
    char *bbook = e2e_fmt("{\"hold_id\":\"%s\"}", e2e_str(bh, "id"));
    json_t *bappt = NULL;
    assert_int_equal(e2e_req2(b, "Idempotency-Key: shared-key", "POST", "/v1/scheduling/bookings", bbook, &bappt), 201);
    assert_string_not_equal(e2e_str(bappt, "id"), appt_id);
    /* admin user routes are scoped by the path's tenant */
    char *upath = e2e_fmt("/v1/admin/tenants/%s/users/%s", B.id, g_tech_a_id);
    json_decref(e2e_must(404, "X-Admin-API-Key: " E2E_ADMIN_KEY, "PATCH", upath, "{\"active\":false}"));
    /* and nothing of A's changed */
    char *sql = e2e_fmt("SELECT count(*) FROM catalog_items WHERE id = '%s' AND active AND deleted_at IS NULL", item);
    assert_int_equal(e2e_sql_int(sql), 1);
    free(sql);
    sql = e2e_fmt("SELECT count(*) FROM sched_slots WHERE id = '%s' AND kind = 'hold'", hold_id);
    assert_int_equal(e2e_sql_int(sql), 1);
    free(sql);
    sql = e2e_fmt("SELECT count(*) FROM sched_appointments WHERE id = '%s' AND status = 'booked' AND "
                  "lower(period) = '%s'", appt_id, s2);
    assert_int_equal(e2e_sql_int(sql), 1);
    free(sql);
    sql = e2e_fmt("SELECT count(*) FROM sched_resources WHERE id = '%s' AND active", res);
    assert_int_equal(e2e_sql_int(sql), 1);
    free(sql);
    for (size_t i = 0; i < NMC_ARRAY_SIZE(calls); i++) {
        free(calls[i].path);
        free(calls[i].body);
    }
    free(upath);
    json_decref(bappt);
    free(bbook);
    json_decref(bh);
    free(list);
    free(book);
    free(idem);
    json_decref(appt);
    free(bb);
    json_decref(h2);
    json_decref(hold);
    free(hb);
    free(s1);
    free(s2);
    free(to);
    free(item);
    free(res);
    free(b_item);
    free(b_res);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_valid_tokens_and_api_key_accepted),
        cmocka_unit_test(test_auth_jwt_table_refused_with_the_right_status),
        cmocka_unit_test(test_auth_rbac_tech_reads_and_books_owner_manages),
        cmocka_unit_test(test_auth_refetches_jwks_on_unknown_kid),
        cmocka_unit_test(test_auth_cross_tenant_every_route_404),
    };
    return cmocka_run_group_tests_name("e2e_auth", tests, setup, teardown);
}
