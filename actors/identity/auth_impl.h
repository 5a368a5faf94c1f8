/* Private to actors/identity/auth.c and users.c: the "auth" actor's state
 * and the operations whose completions it dispatches. Owner: sched engineer. */
#ifndef NMC_ACTORS_IDENTITY_AUTH_IMPL_H
#define NMC_ACTORS_IDENTITY_AUTH_IMPL_H

#include "actors/identity/auth.h"
#include "providers/http.h"

/* Every DB or provider cookie of the auth actor points at one of these,
 * first member of the operation; done() consumes the completion message
 * and frees the operation. Live operations are listed so stop frees them. */
struct auth_op {
    void (*done)(struct auth_op *op, struct nmc_msg *m);
    void (*drop)(struct auth_op *op);  /* frees without answering (shutdown) */
    struct auth_op *prev, *next;
};

struct auth_cache_entry;

struct auth_state {
    struct nmc_app *app;
    struct nmc_actor *actor;
    struct nmc_prov_http *http;        /* JWKS fetches; NULL without CLERK_JWKS_URL */
    struct nmc_prov_jwks_cache *jwks;  /* the keys; NULL without CLERK_JWKS_URL */
    struct nmc_prov_jwt_policy policy;
    struct auth_op ops;                /* sentinel of live operations */
    struct auth_op parked;             /* sentinel of jobs waiting for the JWKS */
    size_t nparked;
    struct auth_cache_entry **buckets; /* sub / key hash -> principal */
    size_t nbuckets, nentries;
};

extern struct auth_state *nmc_identity_auth_state;

void nmc_identity_auth_op_link(struct auth_state *st, struct auth_op *op);
void nmc_identity_auth_op_unlink(struct auth_op *op);
/* Registers the admin user routes (users.c). */
NMC_MUST_CHECK int nmc_identity_users_routes(struct auth_state *st);

#endif
