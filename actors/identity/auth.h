/* Request authentication for the tenant API (spec 000 section 4.5).
 * Owner: sched engineer. actors/identity/auth.c defines nmc_identity_auth_*;
 * actors/identity/users.c the admin user routes:
 *   POST  /v1/admin/tenants/{id}/users            {"subject","role","active"}
 *   GET   /v1/admin/tenants/{id}/users
 *   PATCH /v1/admin/tenants/{id}/users/{user_id}  {"role","active"}
 *
 * Two kinds of credentials:
 *   Authorization: Bearer <JWT>  Clerk RS256 tokens checked by providers/jwt.h
 *                                against CLERK_JWKS_URL (fetched with curl
 *                                multi, cached, refetched on an unknown kid at
 *                                most once per NMC_AUTH_JWKS_REFETCH_MS), then
 *                                sub -> users row (tenant, OWNER|TECH, active),
 *                                cached NMC_AUTH_CACHE_TTL_MS;
 *   X-API-Key: <tenant key>      machine clients; SHA-256 hex looked up in
 *                                tenants.api_key_hash, compared in constant time.
 * Outcomes: no or bad credentials -> 401; a valid token whose subject is not
 * a user, an inactive user, or a role the route does not allow -> 403; JWKS
 * never fetched -> 503. Every refusal is {"error":{"code","message"}}.
 *
 * All of it runs on the actor named "auth", created by
 * nmc_identity_auth_init() (idempotent: modules that need it call it). */
#ifndef NMC_ACTORS_IDENTITY_AUTH_H
#define NMC_ACTORS_IDENTITY_AUTH_H

#include <jansson.h>
#include "actors/app.h"
#include "http/server.h"
#include "providers/jwt.h"

#define NMC_AUTH_JWKS_REFETCH_MS 5000      /* unknown kid: at most one refetch per this */
#define NMC_AUTH_JWKS_MAX_AGE_MS 3600000   /* keys older than this are refreshed in the background */
#define NMC_AUTH_CACHE_TTL_MS 10000        /* user and API key lookups */
#define NMC_AUTH_MAX_PARKED 4096           /* requests waiting for a JWKS fetch; past it 503 */

enum nmc_auth_role { NMC_AUTH_ROLE_NONE = 0, NMC_AUTH_ROLE_TECH, NMC_AUTH_ROLE_OWNER, NMC_AUTH_ROLE_MACHINE };

/* Which principals a route admits (bits). The tenant API key acts for the
 * business itself, so routes that admit owners usually admit it too. */
#define NMC_AUTH_ALLOW_TECH 1u
#define NMC_AUTH_ALLOW_OWNER 2u
#define NMC_AUTH_ALLOW_MACHINE 4u
#define NMC_AUTH_ALLOW_ANY (NMC_AUTH_ALLOW_TECH | NMC_AUTH_ALLOW_OWNER | NMC_AUTH_ALLOW_MACHINE)
#define NMC_AUTH_ALLOW_MANAGE (NMC_AUTH_ALLOW_OWNER | NMC_AUTH_ALLOW_MACHINE)

struct nmc_auth_principal {
    char tenant_id[NMC_ID_LEN];
    char user_id[NMC_ID_LEN];            /* "" for the API key */
    char subject[NMC_PROV_JWT_SUB_MAX];  /* JWT sub, or "api_key:<prefix>" */
    enum nmc_auth_role role;
};

/* Embedded in the payload of the message a route hands to its actor. */
struct nmc_auth_ctx {
    struct nmc_http_handle handle;       /* set by submit: where the answer goes */
    struct nmc_auth_principal who;       /* set on success */
    uint64_t received_ns;                /* the request's arrival (monotonic) */
};

/* Creates the "auth" actor, fetches the JWKS (when CLERK_JWKS_URL is set) and
 * registers the admin user routes, once per runtime; later calls return 0. */
NMC_MUST_CHECK int nmc_identity_auth_init(struct nmc_app *app);
/* Frees the actor's state and pending work (after the HTTP server drained). */
void nmc_identity_auth_stop(struct nmc_app *app);

/* Authenticates req for a route admitting allow. Always takes msg. ctx must
 * point into msg's payload. On success msg (with ctx->who filled and
 * msg->tenant_id set) is sent to `to` on a later turn; on refusal the request
 * is answered (401/403/503) and msg freed. The caller must not answer req
 * after this call. Requires nmc_identity_auth_init(). */
void nmc_identity_auth_submit(struct nmc_app *app, struct nmc_http_req *req, unsigned allow,
                              struct nmc_auth_ctx *ctx, struct nmc_actor *to, struct nmc_msg *msg);

/* Drops the cached lookup of subject (users.c after a change). */
void nmc_identity_auth_forget(const char *subject);

/* ---- helpers shared by the tenant API handlers ---- */

/* Parses req's body as a JSON object with keys among allowed (NULL-
 * terminated). NULL after answering 400 {"error":{"code":"invalid_request"}}. */
json_t *nmc_identity_auth_body(struct nmc_http_req *req, const char *const *allowed);
/* Fills msg's correlation id and trace from req (a new message for an actor). */
void nmc_identity_auth_msg_from_req(struct nmc_msg *msg, const struct nmc_http_req *req);

#endif
