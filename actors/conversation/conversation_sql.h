/* SQL of the conversation actor (owner: sms engineer). The writes are the
 * functions of migration 0013; each call is one round trip. */
#ifndef NMC_ACTORS_CONVERSATION_CONVERSATION_SQL_H
#define NMC_ACTORS_CONVERSATION_CONVERSATION_SQL_H

/* $1 tenant, $2 caller, $3 dedupe key, $4 message id (or NULL). One row per
 * tenant; the m.* columns are NULL when no message matches. Columns 15-17
 * fill the tenant cache: the row's version (xmin) and the zone's UTC offset
 * now and in 15 minutes (tenant_cache.h). */
#define NMC_CONV_SQL_LOAD \
    "SELECT t.name, t.compliance_status, t.settings::text, nmc_local_dow_time(t.timezone)," \
    "  m.id, m.status, m.body, m.from_e164, m.to_e164, m.kind," \
    "  (extract(epoch FROM now() - m.updated_at) * 1000)::bigint," \
    "  (SELECT c.id FROM conversations c WHERE c.tenant_id = t.id AND c.caller_e164 = $2 AND c.status = 'open')," \
    "  to_char((m.created_at - interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD')," \
    "  (extract(epoch FROM m.created_at) * 1000)::bigint," \
    "  COALESCE((SELECT o.opted_out FROM sms_opt_outs o WHERE o.tenant_id = t.id AND o.phone_e164 = m.to_e164)," \
    "   false)," \
    "  t.xmin::text, nmc_utc_offset_s(t.timezone, now())," \
    "  nmc_utc_offset_s(t.timezone, now() + interval '15 minutes')" \
    " FROM tenants t LEFT JOIN messages m ON m.tenant_id = t.id" \
    "   AND (m.dedupe_key = $3 OR m.id = $4::uuid)" \
    " WHERE t.id = $1::uuid"

/* Columns 0-4: the intent; 5-8: the ConversationStarted it inserted (id,
 * event_id, payload, created_at in epoch ms; NULL when none), leased to
 * $15 for $16 ms (migration 0032: the outbox's fast path); 9: whether this
 * call recorded the intent. $17: the cached tenant version the body was
 * rendered from (NULL: read in this job), 'stale' when it changed
 * (migration 0035). */
#define NMC_CONV_SQL_FIRST_REPLY \
    "SELECT message_id, message_status, conversation_id, started, blocked, ev_id, ev_event_id, ev_payload," \
    " ev_created_ms, created FROM nmc_conv_first_reply(" \
    "$1::uuid, $2, $3, $4, $5, $6::timestamptz, $7, $8, $9, $10::bigint, $11::int, $12::int, $13, $14, $15," \
    " $16::bigint, $17)"

/* The lock nmc_conv_first_reply takes (migration 0044) on tenant $1 and
 * caller $2, until the transaction ends: the first statement of an
 * adoption, so that two adoptions for one caller take turns. */
#define NMC_CONV_SQL_CALLER_LOCK "SELECT pg_advisory_xact_lock(hashtext($1::uuid::text), hashtext($2))"

/* Of the messages Twilio lists with our body ($1 SIDs, $2 statuses, in
 * Twilio's order), the first that no other message of tenant $3 to $4
 * names: which Twilio message is our intent $5. Written to the intent
 * (provider_sid, nothing else: the mark that follows records the status)
 * in the same statement, after NMC_CONV_SQL_CALLER_LOCK in the same
 * transaction: a second intent with the same text to the same caller,
 * adopting at the same time, waits for the lock and then reads the SID as
 * taken (docs/decisions/ambiguous-sms.md). No row: none is ours. A caller
 * has few messages, read through messages_recipient_idx (migration 0043). */
#define NMC_CONV_SQL_ADOPT \
    "WITH pick AS (SELECT s.sid, s.status FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS s(sid, status, i)" \
    "  WHERE NOT EXISTS (SELECT 1 FROM messages o WHERE o.tenant_id = $3::uuid AND o.to_e164 = $4" \
    "    AND o.provider_sid = s.sid AND o.id <> $5::uuid)" \
    "  ORDER BY s.i LIMIT 1)" \
    " UPDATE messages m SET provider_sid = p.sid FROM pick p WHERE m.id = $5::uuid RETURNING p.sid, p.status"

#define NMC_CONV_SQL_INBOUND "SELECT nmc_conv_inbound($1::uuid, $2, $3, $4, $5)"

#define NMC_CONV_SQL_KEYWORD \
    "SELECT message_id, message_status FROM nmc_conv_keyword($1::uuid, $2, $3, $4, $5, $6::boolean, $7, $8, $9," \
    " $10::bigint, $11, $12)"

/* Marks sends Twilio accepted, set-based: element i of $1 message ids,
 * $2 statuses, $3 SIDs, $4 correlation and $5 causation ids is one send.
 * For each: the status moves forward only, the SID and queued_at are set
 * once, and a first reply gets first_queued_at once, with FirstReplySent
 * (leased to $6 for $7 ms): the CTE "old" locks the rows and reads
 * first_queued_at as it was (the latest committed version, READ COMMITTED),
 * so two marks of one send, in one statement or in two sessions, write one
 * event. One row per event written: (first response ms, the event as in
 * NMC_CONV_SQL_FIRST_REPLY's columns 5-8, i: 1-based position in the
 * arrays). One statement for a whole group: per send it took 0.105 ms of
 * execution where a statement of its own took 0.265 ms (pg_stat_statements
 * at 1,500 calls/s, bench/README.md). Was nmc_conv_mark_sent
 * (migrations 0013-0038), which 0040 drops. */
#define NMC_CONV_SQL_MARK_SENT \
    "WITH req AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])" \
    "   WITH ORDINALITY AS r(message_id, status, sid, correlation, causation, i))," \
    " old AS (SELECT o.id, o.first_queued_at FROM messages o WHERE o.id = ANY($1::uuid[]) ORDER BY o.id FOR UPDATE)," \
    " up AS (UPDATE messages u SET" \
    "   status = CASE WHEN nmc_sms_status_advances(u.status, r.status) THEN r.status ELSE u.status END," \
    "   hold_reason = CASE WHEN nmc_sms_status_advances(u.status, r.status) THEN NULL ELSE u.hold_reason END," \
    "   provider_sid = COALESCE(u.provider_sid, r.sid), queued_at = COALESCE(u.queued_at, now())," \
    "   first_queued_at = CASE WHEN u.triggered_at IS NOT NULL THEN COALESCE(u.first_queued_at, u.queued_at, now()) END," \
    "   attempts = u.attempts + 1, error_code = NULL, error_message = NULL, updated_at = now()" \
    "  FROM old JOIN req r ON r.message_id = old.id WHERE u.id = old.id" \
    "  RETURNING u.id, u.tenant_id, u.conversation_id, u.to_e164, u.provider_sid, u.triggered_at, u.first_queued_at," \
    "   old.first_queued_at AS was, r.i, r.correlation, r.causation)," \
    " ev AS (INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id, causation_id," \
    "   locked_by, locked_until, attempts)" \
    "  SELECT 'FirstReplySent', 1, jsonb_build_object('tenant_id', up.tenant_id, 'conversation_id', up.conversation_id," \
    "   'message_id', up.id, 'to', up.to_e164, 'provider_sid', up.provider_sid," \
    "   'triggered_at', nmc_utc_text(up.triggered_at), 'queued_at', nmc_utc_text(up.first_queued_at)," \
    "   'first_response_ms', (extract(epoch FROM up.first_queued_at - up.triggered_at) * 1000)::bigint)," \
    "   up.tenant_id, up.correlation, up.causation, $6::text," \
    "   CASE WHEN $6::text IS NOT NULL THEN now() + $7::bigint * interval '1 millisecond' END," \
    "   CASE WHEN $6::text IS NOT NULL THEN 1 ELSE 0 END" \
    "  FROM up WHERE up.triggered_at IS NOT NULL AND up.was IS NULL" \
    "  RETURNING id, event_id, payload, created_at)" \
    " SELECT (extract(epoch FROM up.first_queued_at - up.triggered_at) * 1000)::bigint, ev.id, ev.event_id," \
    "  ev.payload::text, (extract(epoch FROM ev.created_at) * 1000)::bigint, up.i" \
    " FROM ev JOIN up ON up.id = (ev.payload->>'message_id')::uuid"

#define NMC_CONV_SQL_MARK_FAILED "SELECT nmc_conv_mark_failed($1::uuid, $2, $3, $4, $5::boolean)"

#define NMC_CONV_SQL_RELEASE "SELECT nmc_conv_release_held()"

/* $1 tenant, $2 max age in minutes, $3 correlation, $4 causation (migration 0014). */
#define NMC_CONV_SQL_RELEASE_COMPLIANCE \
    "SELECT released, expired FROM nmc_conv_release_compliance($1::uuid, $2::int, $3, $4)"

/* $1 max age in minutes (migration 0015). */
#define NMC_CONV_SQL_RELEASE_PROVIDER "SELECT released, expired FROM nmc_conv_release_provider($1::int)"

/* $1 message, $2 reason ('pause', 'compliance' or 'provider'). */
#define NMC_CONV_SQL_HOLD "SELECT nmc_conv_hold($1::uuid, $2)"

/* $1 message: a released send ('retry') becomes this job's to send; no row
 * when another job took it first. */
#define NMC_CONV_SQL_CLAIM_RETRY \
    "UPDATE messages SET status = 'pending', updated_at = now() WHERE id = $1::uuid AND status = 'retry'" \
    " RETURNING status"

/* The fleet's SMS kill switch (migration 0039): no row, never set. */
#define NMC_CONV_SQL_FLAGS "SELECT enabled FROM ops_flags WHERE name = 'pause_outbound_sms'"

/* First statement of the mark transaction (only NMC_CONV_SQL_MARK_SENT
 * follows it): its loss in a crash is harmless (the outbox redelivers and
 * the send is found queued), and NMC_CONV_SQL_MARK_SENT runs its generic
 * plan (pkey lookups), which PostgreSQL otherwise made anew at every
 * execution because the arrays' length changes its estimates: 0.67 ms of
 * planning per mark at 50 calls/s against 0.26 ms of execution
 * (pg_stat_statements with track_planning). */
#define NMC_CONV_SQL_ASYNC_COMMIT \
    "SELECT set_config('synchronous_commit', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true)"

#endif
