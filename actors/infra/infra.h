/* The infra module: GET /healthz, GET /readyz, GET /metrics.
 * /healthz answers while the process runs; /readyz answers 200 only when
 * PostgreSQL answers, every migration file is applied and the SMS kill
 * switch has been read (app->ops_flags_pending), else 503;
 * /metrics renders the registry behind METRICS_BASIC_AUTH and/or
 * METRICS_ALLOW_CIDRS (neither configured: 403 for everyone). */
#ifndef NMC_ACTORS_INFRA_H
#define NMC_ACTORS_INFRA_H

#include "actors/app.h"

NMC_MUST_CHECK int nmc_infra_init(struct nmc_app *app);
void nmc_infra_stop(struct nmc_app *app);

/* Highest migration version among files in dir (0 if none); exposed for tests. */
int nmc_infra_latest_migration(const char *dir);

/* Checks an Authorization header against "user:pass"; 1 when it matches
 * (constant time over the credentials). */
int nmc_infra_basic_auth_ok(const char *header, const char *userpass);

#endif
