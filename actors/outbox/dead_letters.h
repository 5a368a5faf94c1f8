/* Dead letters (outbox_events_errors): the operator's view of them and the
 * way back (owner: sms engineer). An event moves there when a consumer
 * fails it permanently or it fails OUTBOX_MAX_ATTEMPTS times (outbox.h).
 * What it started stays where it stopped: a first reply whose CallDetected
 * was dead-lettered before the send stays 'pending' or 'retry'. Once the
 * cause is fixed, requeueing the event resumes it: the row goes back to
 * outbox_events as it was (same id, event_id, payload, created_at), due now,
 * with its attempts reset, and every consumer is idempotent (events.md), so
 * what was done already is not done twice.
 * Synchronous (blocking libpq), like db/migrate.c: for `nmc outbox`, never
 * on the serving loop. */
#ifndef NMC_ACTORS_OUTBOX_DEAD_LETTERS_H
#define NMC_ACTORS_OUTBOX_DEAD_LETTERS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "runtime/common.h"

#define NMC_DEAD_LETTERS_LIMIT_MAX 10000

/* Writes the dead letters, oldest failure first, one JSON object per line
 * (id, event_id, event_name, schema_version, tenant_id, correlation_id,
 * causation_id, attempts, created_at, failed_at, last_error, payload), at
 * most limit (1..NMC_DEAD_LETTERS_LIMIT_MAX), only those named event_name
 * when it is not NULL. *n gets the count written. Errors: NMC_EDB (the
 * server's message in err). */
NMC_MUST_CHECK int nmc_dead_letters_list(const char *conninfo, const char *event_name, int limit, FILE *out,
                                         size_t *n, char *err, size_t errlen);

/* Moves dead letters back to outbox_events in one transaction and wakes
 * the dispatchers (NOTIFY nmc_outbox; their slow poll would find them
 * too): those with the given ids (nids > 0), or every one (nids == 0),
 * only those named event_name when it is not NULL. All or nothing: when
 * an id names no dead letter, nothing moves and err names the first such
 * id (NMC_ENOTFOUND). Writes each requeued id to out, one per line (out
 * may be NULL); *n gets their count. Errors: NMC_ENOTFOUND, NMC_EINVAL
 * (ids given with event_name), NMC_EDB. */
NMC_MUST_CHECK int nmc_dead_letters_requeue(const char *conninfo, const int64_t *ids, size_t nids,
                                            const char *event_name, FILE *out, size_t *n, char *err,
                                            size_t errlen);

#endif
