/* The identity module's admin side (spec 004 sections 2 and 5):
 *   POST  /v1/admin/tenants        create a tenant, its numbers, its API key (shown once)
 *   GET   /v1/admin/tenants        list tenants
 *   GET   /v1/admin/tenants/{id}   one tenant
 *   PATCH /v1/admin/tenants/{id}   change name, timezone, compliance, settings, numbers
 *   GET   /v1/admin/flags          the SMS kill switch: the fleet's value and this instance's state
 *   POST  /v1/admin/flags          set pause_outbound_sms for every instance (ops_flags, NOTIFY)
 * All guarded by X-Admin-API-Key == ADMIN_API_KEY (constant time). */
#ifndef NMC_ACTORS_IDENTITY_H
#define NMC_ACTORS_IDENTITY_H

#include <jansson.h>
#include "actors/app.h"

NMC_MUST_CHECK int nmc_identity_init(struct nmc_app *app);
void nmc_identity_stop(struct nmc_app *app);

/* 0 when the request carries the admin key; otherwise it has already
 * answered 401 and returns NMC_EAUTH. */
int nmc_identity_admin_check(struct nmc_http_req *req);

/* Validates a tenant create (creating=1) or patch body; 0 or NMC_EINVAL
 * with the problem in err. Exposed for tests. */
NMC_MUST_CHECK int nmc_identity_validate_tenant(json_t *body, int creating, char *err, size_t errlen);
/* Validates {"mon": [["08:00","17:00"], ...], ...}; 0 or NMC_EINVAL. */
NMC_MUST_CHECK int nmc_identity_validate_hours(json_t *hours, char *err, size_t errlen);
/* A new tenant API key ("nmc_" + 48 hex) and its hex SHA-256. */
void nmc_identity_new_api_key(char key[64], char hash_hex[65]);
void nmc_identity_hash_key(const char *key, char hash_hex[65]);

#endif
