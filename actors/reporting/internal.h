/* Private to actors/reporting/ (owner: report engineer): the actor's state,
 * the request the report route hands to the actor, and what the files of
 * the module share (reporting.c: actor, events, rollups; routes.c: the
 * report route; events.c: one statement per domain event). */
#ifndef NMC_ACTORS_REPORTING_INTERNAL_H
#define NMC_ACTORS_REPORTING_INTERNAL_H

#include "actors/identity/auth.h"
#include "actors/reporting/reporting.h"
#include "runtime/trace.h"

#define MSG_REPORT_REQ (NMC_MSG_MODULE_PRIVATE + 100 * NMC_SLOT_REPORTING)

/* Work waiting for the database, found again by id (the DB cookie), so a
 * result for a job already answered finds nothing instead of freed memory.
 * Event jobs wait in the queue until a batch takes them, then in r->batch.
 * nmc_reporting_stop() frees them all with the state. */
struct report_job {
    struct report_job *prev, *next;
    uint64_t id;
    int is_http;
    /* event jobs: ev is a copy without payload (its ids are e's params) */
    struct nmc_domain_event ev;
    struct nmc_reporting_event e;
    /* report requests */
    struct nmc_auth_ctx auth;
    char from[11], to[11];
    char correlation_id[NMC_ID_LEN];
    struct nmc_trace_ctx trace;
    struct nmc_span *span;   /* "reporting.project" or "reporting.daily", ended by free */
};

struct reporting {
    struct nmc_app *app;
    struct nmc_actor *actor;
    uint64_t p95_timer, rollup_timer;
    uint64_t flush_timer;   /* the coalescing delay of the next batch is running */
    int flush_due;          /* that delay ran out: the next flush sends what waits */
    int p95_inflight, rollup_inflight;
    int dirty_local;   /* this instance marked days since the last recompute */
    int sweep_ticks;   /* recompute anyway every sweep_every ticks (marks of other instances) */
    int sweep_every;   /* NMC_REPORTING_SWEEP_MS / NMC_REPORTING_ROLLUP_MS, at least 1 */
    int64_t rollup_started_ms, rollup_resume_ms; /* duty-cycle cap (nmc_reporting_rollup_resume_ms) */
    uint64_t next_id;
    struct report_job live; /* sentinel */
    /* Group commit: events that arrive while a batch is in the database
     * wait and go together in the next one (one commit for up to
     * NMC_REPORTING_BATCH_EVENTS events in up to NMC_REPORTING_BATCH_STMTS statements). */
    struct report_job *batch[NMC_REPORTING_BATCH_EVENTS];
    size_t stmt_of[NMC_REPORTING_BATCH_EVENTS]; /* batch[i]'s statement: activity marks of one tenant and quarter hour share one */
    size_t nstmts;
    size_t nbatch;
    uint64_t batch_cookie;  /* 0: no batch in flight */
    struct report_job queue;      /* sentinel: events waiting for the next batch, oldest first */
};

/* Registers GET /v1/reports/daily (routes.c). */
NMC_MUST_CHECK int nmc_reporting_routes(struct reporting *r);
/* Starts a report request the auth step let through (routes.c). Takes job. */
void nmc_reporting_report_start(struct reporting *r, struct report_job *job);
/* Answers a report request from its database result and frees job. */
void nmc_reporting_report_done(struct reporting *r, struct report_job *job, const struct nmc_db_result *res);
/* Job list (reporting.c): new jobs are unlinked; track links one into r's
 * live list under a fresh id; free unlinks it from whichever list holds it
 * and releases its statement (accepts NULL). */
struct report_job *nmc_reporting_job_new(int is_http);
void nmc_reporting_job_track(struct reporting *r, struct report_job *job);
void nmc_reporting_job_free(struct report_job *job);

#endif
