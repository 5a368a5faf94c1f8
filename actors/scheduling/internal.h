/* Private to actors/scheduling/: the request a route hands to the
 * "scheduling" actor, the actor's state, and the functions the files of the
 * module share (scheduling.c: actor, cache, answers; routes.c: validation
 * and routes; statements.c: SQL). Owner: sched engineer. */
#ifndef NMC_ACTORS_SCHEDULING_INTERNAL_H
#define NMC_ACTORS_SCHEDULING_INTERNAL_H

#include "actors/identity/auth.h"
#include "actors/scheduling/scheduling.h"
#include "db/pool.h"

#define MSG_SCHED_REQ (NMC_MSG_MODULE_PRIVATE + 100 * NMC_SLOT_SCHEDULING)
#define SCHED_MAX_PARAMS 8
#define SCHED_MAX_STMTS 3
/* Holds, bookings and reschedules first lock their resources' rows
 * (statement 0, results unused); their own statements follow. */
#define SCHED_LOCK_STMTS 1

enum sched_kind {
    S_RES_CREATE = 1, S_RES_LIST, S_RES_GET, S_RES_PATCH,
    S_AVAIL,
    S_HOLD, S_HOLD_DELETE,
    S_BOOK, S_BOOK_LOOKUP,
    S_APPT_LIST, S_APPT_GET, S_APPT_CANCEL, S_APPT_RESCHEDULE
};

/* Parameter slots per kind (p[i], validated text, NULL = absent):
 *   S_RES_CREATE / S_RES_PATCH  name, business_hours (JSON), active
 *   S_RES_LIST                  active
 *   S_AVAIL                     item_id, from, to, resource_id
 *   S_HOLD                      resource_id, item_id, start, customer_name, customer_phone, notes, conversation_id
 *   S_BOOK / S_BOOK_LOOKUP      hold_id, idempotency key
 *   S_APPT_LIST                 from, to, resource_id, status
 *   S_APPT_CANCEL               reason
 *   S_APPT_RESCHEDULE           start, resource_id
 * id holds the {id} path parameter. */
struct sched_req {
    struct sched_req *prev, *next;   /* live list while the database works */
    enum sched_kind kind;
    struct nmc_auth_ctx auth;
    char id[NMC_ID_LEN];
    char *p[SCHED_MAX_PARAMS];
    char num[3][16];                 /* numeric parameters the actor adds (TTL, granularity, ...) */
    uint64_t cache_gen;              /* availability: cache generation at submit */
    int cached_duration;             /* availability: duration from the cache, 0 if none */
    int retries;                     /* runs again after a deadlock or serialization failure */
    char correlation_id[NMC_ID_LEN];
    struct nmc_trace_ctx trace;      /* the request's; the actor's span once started */
    struct nmc_span *span;           /* "scheduling.<op>", ended with the answer */
};

struct sched_item_meta;

struct sched_tenant_cache {
    struct sched_tenant_cache *next;
    char tenant[NMC_ID_LEN];
    struct sched_item_meta *items;
};

#define SCHED_CACHE_BUCKETS 512

struct sched {
    struct nmc_app *app;
    struct nmc_actor *actor;
    struct sched_req live;           /* sentinel */
    struct sched_tenant_cache *buckets[SCHED_CACHE_BUCKETS];
    size_t ntenants;
    uint64_t gen;
};

struct sched_req *nmc_scheduling_req_new(const struct nmc_http_req *req, enum sched_kind kind);
void nmc_scheduling_req_free(struct sched_req *r);
/* Hands r to authentication and then to the actor (auth.h semantics). */
void nmc_scheduling_dispatch(struct nmc_http_req *req, struct sched *s, struct sched_req *r, unsigned allow);
/* Fills stmts for r; returns how many, and whether they form a transaction. */
size_t nmc_scheduling_stmts(const struct sched_req *r, struct nmc_db_stmt *stmts, int *txn);
/* ms since the epoch (>= 0) as "YYYY-MM-DDTHH:MM:SSZ", with ".mmm" when
 * not whole seconds (routes.c). */
void nmc_scheduling_format_utc(int64_t ms, char out[32]);
/* Registers the routes (routes.c). */
NMC_MUST_CHECK int nmc_scheduling_routes(struct sched *s);

#endif
