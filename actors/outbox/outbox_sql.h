/* SQL of the outbox dispatcher (owner: sms engineer). */
#ifndef NMC_ACTORS_OUTBOX_OUTBOX_SQL_H
#define NMC_ACTORS_OUTBOX_OUTBOX_SQL_H

/* First statement of a transaction whose loss in a crash is harmless. */
#define NMC_OUTBOX_SQL_ASYNC_COMMIT "SELECT set_config('synchronous_commit', 'off', true)"

/* The same, for a finalise that only marks events dispatched, and with the
 * generic plan of NMC_OUTBOX_SQL_DONE (pkey lookups): PostgreSQL otherwise
 * planned it anew at every execution, as the array's length changes its
 * estimate (pg_stat_statements with track_planning: as many plans as
 * calls, 0.075 ms each at 50 calls/s). Not with NMC_OUTBOX_SQL_RETRY, whose
 * generic plan reads the whole pending index. */
#define NMC_OUTBOX_SQL_ASYNC_GENERIC \
    "SELECT set_config('synchronous_commit', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true)"

/* $1 instance, $2 limit, $3 lease ms. Skips rows another instance holds
 * (row lock or live lease); takes expired leases back. */
#define NMC_OUTBOX_SQL_CLAIM \
    "UPDATE outbox_events o SET locked_by = $1, locked_until = now() + $3::bigint * interval '1 millisecond'," \
    "  attempts = o.attempts + 1" \
    " FROM (SELECT id FROM outbox_events" \
    "       WHERE dispatched_at IS NULL AND available_at <= now()" \
    "         AND (locked_until IS NULL OR locked_until < now())" \
    "       ORDER BY available_at, id LIMIT $2::int FOR UPDATE SKIP LOCKED) c" \
    " WHERE o.id = c.id" \
    " RETURNING o.id, o.event_id, o.event_name, o.schema_version, o.attempts, o.payload::text, o.tenant_id," \
    "  o.correlation_id, o.causation_id, (extract(epoch FROM o.created_at) * 1000)::bigint"

/* $1 ids, $2 instance. A row whose lease another instance took is left to it.
 * "locked_by = $2" also means "not dispatched yet": every statement that
 * settles a row (DONE, RETRY) clears locked_by in the same update, and only
 * CLAIM (undispatched rows only) and the writers' fast-path inserts set it.
 * DONE and RENEW therefore do not test dispatched_at: with that test the
 * planner may answer them from outbox_events_pending_idx, reading every
 * pending entry (and the dead ones a busy table leaves) per statement
 * instead of one primary-key probe per id (13 ms per statement at 1,300
 * calls/s, measured). */
#define NMC_OUTBOX_SQL_DONE \
    "UPDATE outbox_events SET dispatched_at = now(), locked_by = NULL, locked_until = NULL, last_error = NULL" \
    " WHERE id = ANY($1::bigint[]) AND locked_by = $2"

/* $1 ids, $2 delays ms, $3 errors, $4 instance. */
#define NMC_OUTBOX_SQL_RETRY \
    "UPDATE outbox_events o SET available_at = now() + r.delay_ms * interval '1 millisecond'," \
    "  last_error = r.err, locked_by = NULL, locked_until = NULL" \
    " FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS r(id, delay_ms, err)" \
    " WHERE o.id = r.id AND o.locked_by = $4 AND o.dispatched_at IS NULL"

/* $1 ids, $2 errors. The dead letter keeps the event exactly as written. */
#define NMC_OUTBOX_SQL_DEAD \
    "WITH r AS (SELECT * FROM unnest($1::bigint[], $2::text[]) AS r(id, err))," \
    " m AS (DELETE FROM outbox_events o USING r WHERE o.id = r.id RETURNING o.*, r.err)" \
    " INSERT INTO outbox_events_errors (id, event_id, event_name, schema_version, payload, tenant_id," \
    "  correlation_id, causation_id, created_at, available_at, attempts, last_error, dispatched_at)" \
    " SELECT id, event_id, event_name, schema_version, payload, tenant_id, correlation_id, causation_id," \
    "  created_at, available_at, attempts, err, dispatched_at FROM m" \
    " ON CONFLICT (id) DO NOTHING"

/* $1 ids, $2 instance, $3 lease ms (see NMC_OUTBOX_SQL_DONE on locked_by). */
#define NMC_OUTBOX_SQL_RENEW \
    "UPDATE outbox_events SET locked_until = now() + $3::bigint * interval '1 millisecond'" \
    " WHERE id = ANY($1::bigint[]) AND locked_by = $2"

/* Pending events, the oldest one's age, and the dead letters waiting for a
 * requeue (a small table: it holds only what failed). */
#define NMC_OUTBOX_SQL_GAUGES \
    "SELECT count(*), COALESCE(extract(epoch FROM now() - min(created_at)), 0)::float8," \
    "  (SELECT count(*) FROM outbox_events_errors)" \
    " FROM outbox_events WHERE dispatched_at IS NULL"

#define NMC_OUTBOX_SQL_NOTIFY "SELECT pg_notify($1, '')"

/* Dead letters (dead_letters.h). $1 event name or NULL, $2 limit. One JSON
 * object per row, oldest failure first. */
#define NMC_OUTBOX_SQL_DEAD_LIST \
    "SELECT json_build_object('id', id, 'event_id', event_id, 'event_name', event_name," \
    "  'schema_version', schema_version, 'tenant_id', tenant_id, 'correlation_id', correlation_id," \
    "  'causation_id', causation_id, 'attempts', attempts, 'created_at', nmc_utc_text(created_at)," \
    "  'failed_at', nmc_utc_text(failed_at), 'last_error', last_error, 'payload', payload)::text" \
    " FROM outbox_events_errors WHERE ($1::text IS NULL OR event_name = $1::text)" \
    " ORDER BY failed_at, id LIMIT $2::int"

/* $1 ids (NULL: every one), $2 event name or NULL. Back as written, due
 * now, attempts reset; last_error keeps why it was dead-lettered until a
 * delivery settles it. Returns the ids moved. */
#define NMC_OUTBOX_SQL_DEAD_REQUEUE \
    "WITH d AS (DELETE FROM outbox_events_errors e" \
    "  WHERE ($1::bigint[] IS NULL OR e.id = ANY($1::bigint[])) AND ($2::text IS NULL OR e.event_name = $2::text)" \
    "  RETURNING e.*)" \
    " INSERT INTO outbox_events (id, event_id, event_name, schema_version, payload, tenant_id, correlation_id," \
    "  causation_id, created_at, available_at, attempts, last_error) OVERRIDING SYSTEM VALUE" \
    " SELECT id, event_id, event_name, schema_version, payload, tenant_id, correlation_id, causation_id, created_at," \
    "  now(), 0, last_error FROM d ORDER BY id RETURNING id"

#define NMC_OUTBOX_NOTIFY_CHANNEL "nmc_outbox"

#endif
