/* A per-instance cache of what the first reply needs of a tenant (owner:
 * perf engineer; private to actors/conversation/): its name, its settings
 * (templates, business hours) and its zone's UTC offset, so that a missed
 * call can render its reply and record the intent without reading the
 * tenant first (one round trip fewer on the first-SMS path).
 *
 * Correctness does not rest on the cache: the entry carries the tenants
 * row's xmin when it was read, and nmc_conv_first_reply (migration 0035)
 * refuses a body rendered from an older row ('stale'), after which the
 * caller reads the tenant and renders again. The UTC offset is cached only
 * while it is the same now and 15 minutes later (no DST change in between),
 * for at most NMC_TENANT_CACHE_TTL_MS. One slot per hash value: a
 * collision replaces the older tenant. */
#ifndef NMC_ACTORS_CONVERSATION_TENANT_CACHE_H
#define NMC_ACTORS_CONVERSATION_TENANT_CACHE_H

#include <stdint.h>
#include "runtime/actor.h"
#include "runtime/common.h"

#define NMC_TENANT_CACHE_SLOTS 1024
#define NMC_TENANT_CACHE_TTL_MS (10 * 60 * 1000)

struct nmc_tenant_cache;
struct json_t;

struct nmc_tenant_entry {
    char id[NMC_ID_LEN];
    char version[24];    /* tenants.xmin */
    char name[201];
    struct json_t *doc;  /* its settings, parsed once when stored (NULL if they do not parse), owned */
    int32_t offset_s;    /* UTC offset of the tenant's zone */
    int64_t valid_until_ms;
};

struct nmc_tenant_cache *nmc_tenant_cache_new(void);
void nmc_tenant_cache_free(struct nmc_tenant_cache *c);
/* The live entry of tenant id at now_ms, or NULL. */
const struct nmc_tenant_entry *nmc_tenant_cache_get(struct nmc_tenant_cache *c, const char *id, int64_t now_ms);
/* Stores what a tenant read returned (offset_later_s: the offset 15
 * minutes later; when it differs nothing is cached). NULL or oversized
 * fields store nothing. */
void nmc_tenant_cache_put(struct nmc_tenant_cache *c, const char *id, const char *version, const char *name,
                          const char *settings, int32_t offset_s, int32_t offset_later_s, int64_t now_ms);
void nmc_tenant_cache_forget(struct nmc_tenant_cache *c, const char *id);
/* ISO day of week and local time at now_ms with the offset, as the
 * database's nmc_local_dow_time() writes it: "1 08:30" (Monday = 1). */
void nmc_tenant_local_dow_time(int64_t now_ms, int32_t offset_s, char out[8]);

#endif
