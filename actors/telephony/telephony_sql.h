/* SQL of the telephony actor (owner: perf engineer). Each webhook is ONE
 * statement: the webhook_events insert is the dedupe, and every later CTE
 * runs only for a row it returned, so a replay writes nothing else.
 * Parameters are cast to base types, never left to take a column's domain
 * type (migration 0034): a parameter of a domain type is converted by
 * domain_in, which builds the domain's constraint checks anew for every
 * execution (OidInputFunctionCall gives it a fresh FmgrInfo each time), where
 * a text parameter costs a copy and the column's domain check runs once, in
 * the insert. */
#ifndef NMC_ACTORS_TELEPHONY_TELEPHONY_SQL_H
#define NMC_ACTORS_TELEPHONY_TELEPHONY_SQL_H

#define NMC_TELEPHONY_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#define NMC_TELEPHONY_SQL_NUMBER_TENANT "SELECT tenant_id FROM tenant_phone_numbers WHERE e164 = $1"

/* The lease columns of an event inserted for the outbox's fast path
 * (actors/outbox/outbox.h): owner $o (NULL: unleased), lease ms $l. */
#define NMC_TELEPHONY_LEASE_COLS(o, l) \
    o "::text, CASE WHEN " o "::text IS NULL THEN NULL ELSE now() + " l "::bigint * interval '1 millisecond' END," \
    " CASE WHEN " o "::text IS NULL THEN 0 ELSE 1 END"

/* What a webhook statement returns: (stored, events) 0/1 each, then the
 * event (id, event_id, payload, created_at in epoch ms; NULL without one). */
#define NMC_TELEPHONY_SQL_RESULT \
    " SELECT (SELECT count(*) FROM wh)::int, (SELECT count(*) FROM ev)::int, ev.id, ev.event_id," \
    "  ev.payload::text, (extract(epoch FROM ev.created_at) * 1000)::bigint FROM (SELECT 1) one LEFT JOIN ev ON true"

/* NMC_TELEPHONY_SQL_VOICE and its CTEs (wh, mc, ev), which
 * NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY extends. $1 event key, $2 tenant,
 * $3 payload, $4 CallSid, $5 From, $6 To, $7 CallStatus, $8 CallDuration,
 * $9 missed, $10 correlation id, $11 lease owner, $12 lease ms. Returns
 * NMC_TELEPHONY_SQL_RESULT. missed_calls'
 * unique key keeps one event per call even if Twilio sends the final
 * status with a new token. */
#define NMC_TELEPHONY_SQL_VOICE_CTES \
    "WITH wh AS (" \
    "  INSERT INTO webhook_events (provider, event_id, tenant_id, payload)" \
    "  VALUES ('twilio', $1::text, $2::uuid, $3::jsonb)" \
    "  ON CONFLICT (provider, event_id) DO NOTHING RETURNING received_at)," \
    " mc AS (" \
    "  INSERT INTO missed_calls (tenant_id, call_sid, from_e164, to_e164, call_status, duration_s, detected_at)" \
    "  SELECT $2::uuid, $4::text, $5::text, $6::text, $7::text, $8::int, wh.received_at FROM wh WHERE $9::boolean" \
    "  ON CONFLICT (tenant_id, call_sid) DO NOTHING RETURNING id, detected_at)," \
    " ev AS (" \
    "  INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id, causation_id," \
    "    locked_by, locked_until, attempts)" \
    "  SELECT 'CallDetected', 1, jsonb_build_object('tenant_id', $2::text, 'call_sid', $4::text," \
    "    'from', $5::text, 'to', $6::text, 'call_status', $7::text, 'duration_seconds', $8::int," \
    "    'missed_call_id', mc.id, 'detected_at', " NMC_TELEPHONY_TS("mc.detected_at") ")," \
    "    $2::uuid, $10, 'twilio:' || $1, " NMC_TELEPHONY_LEASE_COLS("$11", "$12") \
    "  FROM mc RETURNING id, event_id, payload, created_at)"

#define NMC_TELEPHONY_SQL_VOICE NMC_TELEPHONY_SQL_VOICE_CTES NMC_TELEPHONY_SQL_RESULT

/* NMC_TELEPHONY_SQL_VOICE plus the conversation's first reply in the same
 * statement (actors/conversation/conversation.h, PREPARE/COMMITTED): for a
 * new missed call, nmc_conv_first_reply (migration 0035) runs on the
 * CallDetected row just inserted, so the intent commits with the webhook.
 * $13 dedupe key, $14 body, $15 status, $16 repeat window minutes, $17 the
 * cached tenant's version. Returns NMC_TELEPHONY_SQL_RESULT's columns,
 * then nmc_conv_first_reply's ten (6-15: message_id, message_status,
 * conversation_id, started, blocked, the ConversationStarted event in
 * 11-14, created; NULL when no call was recorded), then detected_at (16). */
#define NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY \
    NMC_TELEPHONY_SQL_VOICE_CTES "," \
    " fr AS (" \
    "  SELECT f.* FROM ev CROSS JOIN mc CROSS JOIN LATERAL nmc_conv_first_reply($2::uuid, $5, $6, 'missed_call', $4," \
    "    mc.detected_at, $13, $14, $15, ev.id, 1, $16::int, $10, ev.event_id::text, $11, $12::bigint, $17) f)" \
    " SELECT (SELECT count(*) FROM wh)::int, (SELECT count(*) FROM ev)::int, ev.id, ev.event_id," \
    "  ev.payload::text, (extract(epoch FROM ev.created_at) * 1000)::bigint," \
    "  fr.message_id, fr.message_status, fr.conversation_id, fr.started, fr.blocked, fr.ev_id, fr.ev_event_id," \
    "  fr.ev_payload, fr.ev_created_ms, fr.created, " NMC_TELEPHONY_TS("mc.detected_at") \
    " FROM (SELECT 1) one LEFT JOIN ev ON true LEFT JOIN mc ON true LEFT JOIN fr ON true"

/* NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY for a whole batch of missed calls in
 * one statement, set-based: element i of each array is one webhook (in
 * order: $1 event keys, $2 tenants, $3 payloads, $4 CallSids, $5 From,
 * $6 To, $7 CallStatus, $8 CallDuration (NULL elements for none),
 * $9 correlation ids, $12 dedupe keys, $13 bodies, $14 statuses, $15 repeat
 * windows in minutes, $16 cached tenant versions); $10 lease owner and $11
 * lease ms are the batch's. One row per webhook, in order: the 17 columns of
 * NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY, then i. A webhook or call that comes
 * twice in one batch is stored for its first position only (the inserts'
 * ON CONFLICT skips the repeat; "whi" and "mci" name the position each
 * stored row belongs to). Per webhook it took 0.46 ms of execution where
 * a statement of its own took 0.61 ms (pg_stat_statements at 1,500 calls/s,
 * bench/README.md).
 * Lock order. Two such statements in flight at once (two connections of one
 * instance, or two instances) may hold webhooks of the same callers or the
 * same webhooks (Twilio's retries) in opposite orders. Each takes its locks in
 * three phases, and in one order within each phase, whatever the order the
 * webhooks came in: the webhook keys by key, the missed calls by (tenant,
 * CallSid) (bytewise: COLLATE "C", one order whatever the database's
 * collation, and the cheapest), and the callers' locks of nmc_conv_first_reply (migration 0044)
 * by the two hashes the lock is named by, then position, so that two calls
 * of one caller are decided in the order they came. Before, the callers were
 * decided in the join's order and two batches could deadlock: PostgreSQL
 * aborted one after deadlock_timeout (1 s) and the actor retried it one
 * webhook per transaction. */
/* The first statement of a transaction with
 * NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY_MANY: its generic plan (every table
 * reached by key; the other statements of such a transaction are
 * generic-planned already). PostgreSQL otherwise plans a statement with
 * array parameters anew at every execution, as the arrays' length changes
 * its estimates (pg_stat_statements with track_planning: as many plans as
 * calls; 0.67 ms of planning per execution for the smaller mark statement). */
#define NMC_TELEPHONY_SQL_GENERIC_PLANS "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)"

#define NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY_MANY \
    "WITH req AS (SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[]," \
    "   $7::text[], $8::int[], $9::text[], $12::text[], $13::text[], $14::text[], $15::int[], $16::text[])" \
    "   WITH ORDINALITY AS r(key, tenant, payload, sid, caller, business, call_status, duration, corr, dedupe, body," \
    "   fstatus, repeat_min, tver, i))," \
    " wh AS (INSERT INTO webhook_events (provider, event_id, tenant_id, payload)" \
    "  SELECT 'twilio', r.key, r.tenant, r.payload::jsonb FROM req r ORDER BY r.key COLLATE \"C\", r.i" \
    "  ON CONFLICT (provider, event_id) DO NOTHING RETURNING event_id, received_at)," \
    " whi AS (SELECT DISTINCT ON (wh.event_id) r.*, wh.received_at FROM wh JOIN req r ON r.key = wh.event_id" \
    "  ORDER BY wh.event_id, r.i)," \
    " mc AS (INSERT INTO missed_calls (tenant_id, call_sid, from_e164, to_e164, call_status, duration_s, detected_at)" \
    "  SELECT w.tenant, w.sid, w.caller, w.business, w.call_status, w.duration, w.received_at FROM whi w" \
    "  ORDER BY w.tenant, w.sid COLLATE \"C\", w.i" \
    "  ON CONFLICT (tenant_id, call_sid) DO NOTHING RETURNING id, tenant_id, call_sid, detected_at)," \
    " mci AS (SELECT DISTINCT ON (mc.id) w.*, mc.id AS mc_id, mc.detected_at FROM mc" \
    "  JOIN whi w ON w.tenant = mc.tenant_id AND w.sid = mc.call_sid ORDER BY mc.id, w.i)," \
    " ev AS (INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id, causation_id," \
    "    locked_by, locked_until, attempts)" \
    "  SELECT 'CallDetected', 1, jsonb_build_object('tenant_id', m.tenant::text, 'call_sid', m.sid," \
    "    'from', m.caller, 'to', m.business, 'call_status', m.call_status, 'duration_seconds', m.duration," \
    "    'missed_call_id', m.mc_id, 'detected_at', " NMC_TELEPHONY_TS("m.detected_at") ")," \
    "    m.tenant, m.corr, 'twilio:' || m.key, " NMC_TELEPHONY_LEASE_COLS("$10", "$11") \
    "  FROM mci m ORDER BY m.i RETURNING id, event_id, payload, created_at)," \
    " evi AS (SELECT m.*, ev.id AS ev_id, ev.event_id AS ev_event_id, ev.payload AS ev_payload," \
    "  ev.created_at AS ev_created FROM ev JOIN mci m ON m.mc_id = (ev.payload->>'missed_call_id')::bigint)," \
    " fr AS (SELECT e.i, f.* FROM (SELECT * FROM evi ORDER BY hashtext(evi.tenant::text), hashtext(evi.caller), evi.i" \
    "  OFFSET 0) e CROSS JOIN LATERAL nmc_conv_first_reply(e.tenant, e.caller, e.business," \
    "  'missed_call', e.sid, e.detected_at, e.dedupe, e.body, e.fstatus, e.ev_id, 1, e.repeat_min, e.corr," \
    "  e.ev_event_id::text, $10, $11::bigint, e.tver) f)," \
    " frn AS (SELECT count(*) AS n FROM fr)" /* every reply is recorded, whatever the join below reads */ \
    " SELECT (w.i IS NOT NULL)::int, (e.i IS NOT NULL)::int, e.ev_id, e.ev_event_id, e.ev_payload::text," \
    "  (extract(epoch FROM e.ev_created) * 1000)::bigint," \
    "  f.message_id, f.message_status, f.conversation_id, f.started, f.blocked, f.ev_id, f.ev_event_id," \
    "  f.ev_payload, f.ev_created_ms, f.created, " NMC_TELEPHONY_TS("e.detected_at") ", r.i" \
    " FROM req r CROSS JOIN frn LEFT JOIN whi w ON w.i = r.i LEFT JOIN evi e ON e.i = r.i" \
    " LEFT JOIN fr f ON f.i = r.i ORDER BY r.i"

/* $1 event key, $2 tenant, $3 payload, $4 MessageSid, $5 From, $6 To,
 * $7 Body, $8 correlation id, $9 NumMedia, $10 lease owner, $11 lease ms.
 * Returns NMC_TELEPHONY_SQL_RESULT. */
#define NMC_TELEPHONY_SQL_SMS \
    "WITH wh AS (" \
    "  INSERT INTO webhook_events (provider, event_id, tenant_id, payload)" \
    "  VALUES ('twilio', $1::text, $2::uuid, $3::jsonb)" \
    "  ON CONFLICT (provider, event_id) DO NOTHING RETURNING received_at)," \
    " ev AS (" \
    "  INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id, causation_id," \
    "    locked_by, locked_until, attempts)" \
    "  SELECT 'InboundSmsReceived', 1, jsonb_build_object('tenant_id', $2::text, 'message_sid', $4::text," \
    "    'from', $5::text, 'to', $6::text, 'body', $7::text, 'num_media', $9::int," \
    "    'received_at', " NMC_TELEPHONY_TS("wh.received_at") ")," \
    "    $2::uuid, $8, 'twilio:' || $1, " NMC_TELEPHONY_LEASE_COLS("$10", "$11") \
    "  FROM wh RETURNING id, event_id, payload, created_at)" \
    NMC_TELEPHONY_SQL_RESULT

/* $1 event key, $2 payload, $3 our message id (?mid=, may be NULL),
 * $4 MessageSid, $5 MessageStatus, $6 ErrorCode. The message is found by
 * our id only (every send carries it in its StatusCallback URL; provider_sid
 * has no index, so that these updates stay heap-only: migration 0040): a
 * callback without one is stored and changes nothing. The status moves
 * forward only (nmc_sms_status_advances, migration 0012), and so does the
 * error code: a late callback's ErrorCode never lands on a status it did not
 * set (a 'delivered' message with error 30003 read as a failure); 21610 ("the
 * recipient replied STOP") records the opt-out in the same transaction. */
#define NMC_TELEPHONY_SQL_STATUS \
    "WITH msg AS (" \
    "  SELECT id, tenant_id, to_e164 FROM messages WHERE id = $3::uuid)," \
    " wh AS (" \
    "  INSERT INTO webhook_events (provider, event_id, tenant_id, payload)" \
    "  VALUES ('twilio', $1::text, (SELECT tenant_id FROM msg), $2::jsonb)" \
    "  ON CONFLICT (provider, event_id) DO NOTHING RETURNING 1)," \
    " up AS (" \
    "  UPDATE messages m SET" \
    "    status = CASE WHEN nmc_sms_status_advances(m.status, $5::text) THEN $5::text ELSE m.status END," \
    "    hold_reason = CASE WHEN nmc_sms_status_advances(m.status, $5::text) THEN NULL ELSE m.hold_reason END," \
    "    provider_sid = COALESCE(m.provider_sid, $4::text)," \
    "    error_code = CASE WHEN nmc_sms_status_advances(m.status, $5::text)" \
    "                      THEN COALESCE($6::text, m.error_code) ELSE m.error_code END," \
    "    queued_at = CASE WHEN m.queued_at IS NULL AND nmc_sms_status_rank($5::text) >= 10" \
    "                     THEN now() ELSE m.queued_at END," \
    "    updated_at = now()" \
    "  FROM msg WHERE m.id = msg.id AND EXISTS (SELECT 1 FROM wh)" \
    "  RETURNING m.id, m.tenant_id, m.to_e164)," \
    " oo AS (" \
    "  INSERT INTO sms_opt_outs (tenant_id, phone_e164, opted_out, source)" \
    "  SELECT tenant_id, to_e164, true, 'twilio_21610' FROM up WHERE $6::text = '21610'" \
    "  ON CONFLICT (tenant_id, phone_e164) DO UPDATE SET opted_out = true, source = 'twilio_21610'," \
    "    keyword = NULL, updated_at = now() RETURNING 1)" \
    " SELECT (SELECT count(*) FROM wh)::int, 0, (SELECT count(*) FROM up)::int, (SELECT count(*) FROM oo)::int"

#endif
