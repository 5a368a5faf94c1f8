/* The catalog module (spec 000 section 4.4): a tenant's services with
 * price, duration, aliases and priority. Owner: sched engineer.
 *
 *   POST   /v1/catalog/items             OWNER | API key     201 item
 *   GET    /v1/catalog/items[?active=]   any                 {"items":[...]}
 *   GET    /v1/catalog/items/{id}        any                 item
 *   PATCH  /v1/catalog/items/{id}        OWNER | API key     item
 *   DELETE /v1/catalog/items/{id}        OWNER | API key     204 (soft delete)
 *   GET    /v1/catalog/items/{id}/quote  any                 price and duration; inactive: 410
 *   POST   /v1/catalog/match             any                 {"text"} -> ranked matches
 *
 * Every change writes CatalogUpdated to the outbox in the same statement,
 * then (after COMMIT) wakes the outbox and sends NMC_MSG_CACHE_INVALIDATE to
 * the "scheduling" actor. The "catalog" actor caches each tenant's active
 * items for matching; the cache is dropped on local changes, on
 * NMC_MSG_CACHE_INVALIDATE, on CatalogUpdated from other instances, and
 * after NMC_CATALOG_CACHE_TTL_MS. actors/catalog/catalog.c defines the
 * actor and routes, actors/catalog/match.c the ranking. */
#ifndef NMC_ACTORS_CATALOG_H
#define NMC_ACTORS_CATALOG_H

#include <stddef.h>
#include <stdint.h>
#include "actors/app.h"

#define NMC_CATALOG_CACHE_TTL_MS 60000
#define NMC_CATALOG_MAX_PRICE_CENTS 100000000 /* $1,000,000.00 */
#define NMC_CATALOG_MIN_DURATION 15
#define NMC_CATALOG_MAX_DURATION 480
#define NMC_CATALOG_MAX_ALIASES 32
#define NMC_CATALOG_MAX_TEXT 2000             /* match text, bytes */
#define NMC_CATALOG_SHORT_TERM 4              /* terms shorter than this match whole words only */

NMC_MUST_CHECK int nmc_catalog_init(struct nmc_app *app);
void nmc_catalog_stop(struct nmc_app *app);

/* ---- matching (actors/catalog/match.c), pure functions ---- */

/* An item as the matcher sees it; strings are borrowed. */
struct nmc_catalog_entry {
    const char *id;
    const char *name;
    const char *const *aliases;
    size_t naliases;
    int priority;
};

struct nmc_catalog_match {
    size_t index;          /* into the entries given */
    size_t match_len;      /* normalized length of the best matching term */
    int priority;
    int exact_name;        /* 1 when the term that matched is the item's own name */
    const char *term;      /* the name or alias that matched (borrowed) */
};

/* Normalizes s for matching: ASCII letters lower-cased, every run of
 * characters other than ASCII letters, digits and non-ASCII bytes becomes
 * one space, no leading or trailing space. Writes at most outlen-1 bytes
 * and a NUL; returns the normalized length (0 for a blank string). */
size_t nmc_catalog_normalize(const char *s, char *out, size_t outlen);

/* Length of the longest of entry's terms (name, aliases) found in the
 * normalized text ntext, or 0. A term matches where it starts a word; it must
 * also end a word if it is shorter than NMC_CATALOG_SHORT_TERM ("ac" does not
 * match "actually", "clog" matches "clogged"). Fills *m when matching. */
size_t nmc_catalog_match_entry(const struct nmc_catalog_entry *e, const char *ntext, struct nmc_catalog_match *m);

/* Ranks entries against text: only matching entries, best first by match
 * length, then priority, then exact name, then name and id (stable). Writes
 * at most max matches into out and returns how many. */
size_t nmc_catalog_rank(const struct nmc_catalog_entry *entries, size_t n, const char *text,
                        struct nmc_catalog_match *out, size_t max);

#endif
