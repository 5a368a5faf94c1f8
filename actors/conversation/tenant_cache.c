/* The conversation's tenant cache (tenant_cache.h). */
#include "actors/conversation/tenant_cache.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct nmc_tenant_cache {
    struct nmc_tenant_entry slots[NMC_TENANT_CACHE_SLOTS];
};

static size_t slot_of(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & (NMC_TENANT_CACHE_SLOTS - 1);
}

static void clear(struct nmc_tenant_entry *e)
{
    json_decref(e->doc);
    memset(e, 0, sizeof *e);
}

struct nmc_tenant_cache *nmc_tenant_cache_new(void)
{
    return nmc_xcalloc(1, sizeof(struct nmc_tenant_cache));
}

void nmc_tenant_cache_free(struct nmc_tenant_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < NMC_TENANT_CACHE_SLOTS; i++)
        json_decref(c->slots[i].doc);
    free(c);
}

const struct nmc_tenant_entry *nmc_tenant_cache_get(struct nmc_tenant_cache *c, const char *id, int64_t now_ms)
{
    if (c == NULL || id == NULL || id[0] == '\0')
        return NULL;
    const struct nmc_tenant_entry *e = &c->slots[slot_of(id)];
    if (e->id[0] == '\0' || strcmp(e->id, id) != 0 || now_ms >= e->valid_until_ms)
        return NULL;
    return e;
}

void nmc_tenant_cache_put(struct nmc_tenant_cache *c, const char *id, const char *version, const char *name,
                          const char *settings, int32_t offset_s, int32_t offset_later_s, int64_t now_ms)
{
    if (c == NULL || id == NULL || id[0] == '\0')
        return;
    struct nmc_tenant_entry *e = &c->slots[slot_of(id)];
    clear(e);
    if (version == NULL || name == NULL || settings == NULL || offset_s != offset_later_s ||
        strlen(id) >= sizeof e->id || strlen(version) >= sizeof e->version || strlen(name) >= sizeof e->name)
        return;
    nmc_strlcpy(e->id, id, sizeof e->id);
    nmc_strlcpy(e->version, version, sizeof e->version);
    nmc_strlcpy(e->name, name, sizeof e->name);
    e->doc = json_loads(settings, 0, NULL); /* rendering a reply reads this, never the text */
    e->offset_s = offset_s;
    e->valid_until_ms = now_ms + NMC_TENANT_CACHE_TTL_MS;
}

void nmc_tenant_cache_forget(struct nmc_tenant_cache *c, const char *id)
{
    if (c == NULL || id == NULL)
        return;
    struct nmc_tenant_entry *e = &c->slots[slot_of(id)];
    if (strcmp(e->id, id) == 0)
        clear(e);
}

void nmc_tenant_local_dow_time(int64_t now_ms, int32_t offset_s, char out[8])
{
    int64_t s = now_ms / 1000 - (now_ms % 1000 < 0 ? 1 : 0) + offset_s;
    int64_t days = s / 86400, sec = s % 86400;
    if (sec < 0) {
        sec += 86400;
        days--;
    }
    int dow = (int)(((days % 7) + 7 + 3) % 7) + 1; /* 1970-01-01 was a Thursday (ISO 4) */
    int h = (int)(sec / 3600), m = (int)(sec % 3600 / 60);
    out[0] = (char)('0' + dow);
    out[1] = ' ';
    out[2] = (char)('0' + h / 10);
    out[3] = (char)('0' + h % 10);
    out[4] = ':';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '\0';
}
