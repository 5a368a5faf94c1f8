/* The SQL of the scheduling module. Each request is one batch, usually one
 * statement; the statement returns the JSON answer built by the SQL
 * functions of migration 0021 together with the facts the actor needs to
 * pick a status (found? active? inside business hours?). Writes insert
 * their domain event in the same statement. Parameters are text. */
#include "actors/scheduling/internal.h"

#include <string.h>

/* ---- resources ---- */

static const char SQL_RES_CREATE[] =
    "INSERT INTO sched_resources AS r (tenant_id, name, business_hours, active) "
    "VALUES ($1, $2, $3::jsonb, coalesce($4::boolean, true)) RETURNING sched_resource_json(r)";

static const char SQL_RES_PATCH[] =
    "UPDATE sched_resources AS r SET name = coalesce($3, r.name), "
    "business_hours = coalesce($4::jsonb, r.business_hours), active = coalesce($5::boolean, r.active), "
    "updated_at = now() WHERE r.tenant_id = $1 AND r.id = $2 RETURNING sched_resource_json(r)";

static const char SQL_RES_GET[] =
    "SELECT sched_resource_json(r) FROM sched_resources r WHERE r.tenant_id = $1 AND r.id = $2";

static const char SQL_RES_LIST[] =
    "SELECT json_build_object('resources', coalesce(json_agg(sched_resource_json(r) ORDER BY r.created_at, r.id), "
    "'[]'::json)) FROM sched_resources r WHERE r.tenant_id = $1 AND ($2::boolean IS NULL OR r.active = $2::boolean)";

/* ---- availability ----
 * $1 tenant, $2 item, $3 from, $4 to, $5 resource or NULL, $6 granularity,
 * $7 slot limit, $8 the item's duration when cached (the catalog is then not
 * read). Each business-hours window is cut to [max(from, now()), to), the
 * live holds, appointments and busy blocks are subtracted as one multirange
 * per resource, and slots are generated only inside what is left: on the
 * granularity grid of local time (anchored at the window's local start),
 * ending inside a free range. No per-slot probes, so a 7-day search is a
 * few index scans. The answer is "resource epoch,..." for the actor to
 * format (to_char per slot cost more than the search). For the
 * transaction, JIT is off (its compile time dwarfs this millisecond query)
 * and the plan is the cached generic one (planning this statement costs
 * more than running it; its shape does not depend on the values). */
static const char SQL_AVAIL[] =
    "WITH it AS (SELECT $8::integer AS dur, true AS active WHERE $8::integer IS NOT NULL "
    "  UNION ALL SELECT i.duration_minutes, i.active FROM catalog_items i "
    "  WHERE $8::integer IS NULL AND i.tenant_id = $1 AND i.id = $2 AND i.deleted_at IS NULL), "
    "tz AS (SELECT t.timezone FROM tenants t WHERE t.id = $1), "
    "res AS (SELECT r.id, r.business_hours FROM sched_resources r "
    "  WHERE r.tenant_id = $1 AND r.active AND ($5::uuid IS NULL OR r.id = $5::uuid)), "
    "win AS (SELECT res.id AS resource_id, "
    "  bw.w * tstzrange(greatest($3::timestamptz, now()), $4::timestamptz) AS w, "
    "  lower(bw.w) + make_interval(mins => ($6::integer - bw.start_minute % $6::integer) % $6::integer) AS grid0 "
    "  FROM res, tz, "
    "  LATERAL sched_business_windows(res.business_hours, tz.timezone, $3::timestamptz, $4::timestamptz) AS bw), "
    "taken AS (SELECT x.resource_id, range_agg(x.period) AS m FROM ("
    "  SELECT s.resource_id, s.period FROM sched_slots s WHERE s.tenant_id = $1 "
    "    AND s.resource_id IN (SELECT id FROM res) AND s.period && tstzrange($3::timestamptz, $4::timestamptz) "
    "    AND (s.kind = 'appointment' OR s.expires_at > now()) "
    "  UNION ALL SELECT b.resource_id, b.period FROM sched_busy_blocks b WHERE b.tenant_id = $1 "
    "    AND b.resource_id IN (SELECT id FROM res) AND b.period && tstzrange($3::timestamptz, $4::timestamptz)"
    "  ) x GROUP BY x.resource_id), "
    "fr AS (SELECT win.resource_id, win.grid0, f FROM win LEFT JOIN taken ON taken.resource_id = win.resource_id, "
    "  LATERAL unnest(tstzmultirange(win.w) - coalesce(taken.m, '{}'::tstzmultirange)) AS f "
    "  WHERE NOT isempty(win.w)), "
    "free AS (SELECT fr.resource_id, s AS start, s + make_interval(mins => it.dur) AS stop FROM fr, it, "
    "  LATERAL generate_series(fr.grid0 + make_interval(secs => $6::integer * 60 * greatest(0, "
    "    ceil(extract(epoch FROM lower(fr.f) - fr.grid0) / ($6::integer * 60)))), "
    "    upper(fr.f) - make_interval(mins => it.dur), make_interval(mins => $6::integer)) AS s "
    "  WHERE it.active ORDER BY s, fr.resource_id LIMIT $7::integer + 1) "
    "SELECT (SELECT count(*) FROM it), (SELECT bool_and(active) FROM it), (SELECT max(dur) FROM it), "
    "(SELECT timezone FROM tz), (SELECT count(*) FROM free), "
    "(SELECT string_agg(f.resource_id::text || ' ' || extract(epoch FROM f.start)::bigint::text, ',' "
    "  ORDER BY f.start, f.resource_id) FROM (SELECT * FROM free ORDER BY start, resource_id LIMIT $7::integer) f), "
    "(SELECT count(*) FROM res)";

/* ---- resource locks ----
 * A hold's insert, a booking's update of its hold and a reschedule's move
 * each add a row version to sched_slots that PostgreSQL checks against the
 * exclusion constraint; two such transactions on one resource whose periods
 * overlap can each wait for the other there and deadlock (40P01). So the
 * writes of a resource take its row first (FOR NO KEY UPDATE: inserts'
 * foreign key checks are not blocked) and run one after the other; a
 * reschedule to another resource locks both, in id order. */
static const char SQL_LOCK_RESOURCE[] =
    "SELECT r.id FROM sched_resources r WHERE r.tenant_id = $1 AND r.id = $2 FOR NO KEY UPDATE";

static const char SQL_LOCK_HOLD_RESOURCE[] =
    "SELECT r.id FROM sched_resources r WHERE r.tenant_id = $1 AND r.id = "
    "(SELECT s.resource_id FROM sched_slots s WHERE s.tenant_id = $1 AND s.id = $2) FOR NO KEY UPDATE";

static const char SQL_LOCK_APPT_RESOURCES[] =
    "SELECT r.id FROM sched_resources r WHERE r.tenant_id = $1 AND r.id IN "
    "((SELECT a.resource_id FROM sched_appointments a WHERE a.tenant_id = $1 AND a.id = $2), $3::uuid) "
    "ORDER BY r.id FOR NO KEY UPDATE";

/* ---- holds ----
 * Two statements in one transaction: the first deletes the expired holds
 * that overlap the wanted period (leaving tombstones), the second inserts
 * the hold, whose overlap with anything live the exclusion constraint
 * refuses. $1 tenant, $2 resource, $3 item, $4 start, $5 TTL minutes,
 * $6..$9 customer name, phone, notes, conversation, $10 created_by,
 * $11 correlation id. */
static const char SQL_HOLD_CLEAN[] =
    "WITH gone AS (DELETE FROM sched_slots s WHERE s.tenant_id = $1 AND s.resource_id = $2 AND s.kind = 'hold' "
    "  AND s.expires_at <= now() AND s.period && tstzrange($4::timestamptz, $4::timestamptz + make_interval(mins => "
    "  coalesce((SELECT i.duration_minutes FROM catalog_items i WHERE i.tenant_id = $1 AND i.id = $3), 0))) "
    "  RETURNING s.id, s.tenant_id, s.expires_at) "
    "INSERT INTO sched_expired_holds (id, tenant_id, expired_at) SELECT id, tenant_id, expires_at FROM gone "
    "ON CONFLICT (id) DO NOTHING";

static const char SQL_HOLD[] =
    "WITH it AS (SELECT i.id, i.duration_minutes, i.active FROM catalog_items i "
    "  WHERE i.tenant_id = $1 AND i.id = $3 AND i.deleted_at IS NULL), "
    "rs AS (SELECT r.id, r.active FROM sched_resources r WHERE r.tenant_id = $1 AND r.id = $2), "
    "chk AS (SELECT tstzrange($4::timestamptz, $4::timestamptz + make_interval(mins => it.duration_minutes)) "
    "  AS period, $4::timestamptz > now() AS future FROM it), "
    "ok AS (SELECT chk.period, chk.future, sched_period_open($1, $2, chk.period) AS open FROM chk), "
    "ins AS (INSERT INTO sched_slots (tenant_id, resource_id, item_id, kind, period, expires_at, customer_name, "
    "  customer_phone, notes, conversation_id, created_by) "
    "  SELECT $1, rs.id, it.id, 'hold', ok.period, now() + make_interval(mins => $5::integer), $6, $7, $8, "
    "  $9::uuid, $10 FROM it, rs, ok WHERE it.active AND rs.active AND ok.future AND ok.open "
    "  RETURNING sched_hold_json(sched_slots) AS j), "
    "ev AS (INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id) "
    "  SELECT 'AppointmentHeld', 1, jsonb_build_object('hold_id', j->>'id', 'tenant_id', $1::uuid, "
    "  'resource_id', j->>'resource_id', 'item_id', j->>'item_id', 'start', j->>'start', 'end', j->>'end', "
    "  'expires_at', j->>'expires_at', 'customer_phone', j->'customer_phone', "
    "  'conversation_id', j->'conversation_id', 'held_by', $10::text), $1, $11 FROM ins RETURNING 1) "
    "SELECT (SELECT count(*) FROM it), (SELECT bool_and(active) FROM it), (SELECT count(*) FROM rs), "
    "(SELECT bool_and(active) FROM rs), (SELECT future FROM ok), (SELECT open FROM ok), (SELECT j FROM ins), "
    "(SELECT count(*) FROM ev)";

static const char SQL_HOLD_DELETE[] =
    "DELETE FROM sched_slots s WHERE s.tenant_id = $1 AND s.id = $2 AND s.kind = 'hold' RETURNING s.id";

/* ---- bookings ----
 * Statement 1 turns a live hold into an appointment with the item's price
 * snapshot and AppointmentBooked, unless the key was used before, and says
 * what happened. Statement 2 (a fresh snapshot: it sees a booking that a
 * concurrent request with the same key committed while statement 1 waited
 * on the hold's row lock) reads the appointment of the key.
 * $1 tenant, $2 hold, $3 idempotency key, $4 booked_by, $5 correlation id. */
static const char SQL_BOOK[] =
    "WITH prior AS (SELECT a.id FROM sched_appointments a WHERE a.tenant_id = $1 AND a.idempotency_key = $3), "
    "slot AS (SELECT s.kind, s.expires_at <= now() AS expired FROM sched_slots s "
    "  WHERE s.tenant_id = $1 AND s.id = $2), "
    "upd AS (UPDATE sched_slots s SET kind = 'appointment', expires_at = NULL "
    "  WHERE s.tenant_id = $1 AND s.id = $2 AND s.kind = 'hold' AND s.expires_at > now() "
    "  AND NOT EXISTS (SELECT 1 FROM prior) RETURNING s.*), "
    "appt AS (INSERT INTO sched_appointments (tenant_id, resource_id, item_id, hold_id, period, status, item_name, "
    "  price_cents, duration_minutes, customer_name, customer_phone, notes, conversation_id, idempotency_key, "
    "  booked_by) SELECT upd.tenant_id, upd.resource_id, upd.item_id, upd.id, upd.period, 'booked', i.name, "
    "  i.price_cents, i.duration_minutes, upd.customer_name, upd.customer_phone, upd.notes, upd.conversation_id, "
    "  $3, $4 FROM upd JOIN catalog_items i ON i.tenant_id = upd.tenant_id AND i.id = upd.item_id "
    "  RETURNING sched_appointment_json(sched_appointments) AS j), "
    "ev AS (INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id) "
    "  SELECT 'AppointmentBooked', 1, jsonb_build_object('appointment_id', j->>'id', 'tenant_id', $1::uuid, "
    "  'hold_id', j->>'hold_id', 'resource_id', j->>'resource_id', 'item_id', j->>'item_id', "
    "  'item_name', j->>'item_name', 'start', j->>'start', 'end', j->>'end', "
    "  'price_cents', (j->>'price_cents')::bigint, 'currency', 'USD', "
    "  'duration_minutes', (j->>'duration_minutes')::integer, 'customer_phone', j->'customer_phone', "
    "  'conversation_id', j->'conversation_id', 'booked_by', j->>'booked_by', 'booked_at', j->>'created_at'), "
    "  $1, $5 FROM appt RETURNING 1) "
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM appt) THEN 'booked' "
    "  WHEN EXISTS (SELECT 1 FROM prior) THEN 'replay' "
    "  WHEN EXISTS (SELECT 1 FROM slot WHERE kind = 'hold' AND expired) THEN 'expired' "
    "  WHEN EXISTS (SELECT 1 FROM sched_expired_holds x WHERE x.tenant_id = $1 AND x.id = $2) THEN 'expired' "
    "  WHEN EXISTS (SELECT 1 FROM slot WHERE kind = 'appointment') THEN 'booked_already' "
    "  WHEN EXISTS (SELECT 1 FROM slot) THEN 'conflict' ELSE 'not_found' END, "
    "(SELECT j FROM appt), (SELECT count(*) FROM ev)";

static const char SQL_BOOK_LOOKUP[] =
    "SELECT sched_appointment_json(a), a.hold_id FROM sched_appointments a "
    "WHERE a.tenant_id = $1 AND a.idempotency_key = $2";

/* ---- appointments ---- */

static const char SQL_APPT_LIST[] =
    "SELECT json_build_object('appointments', coalesce(json_agg(x.j ORDER BY x.rn) FILTER (WHERE x.rn <= $6::integer), "
    "'[]'::json), 'truncated', count(*) > $6::integer) FROM (SELECT sched_appointment_json(a) AS j, "
    "  row_number() OVER (ORDER BY lower(a.period), a.id) AS rn "
    "  FROM sched_appointments a WHERE a.tenant_id = $1 AND a.period && tstzrange($2::timestamptz, $3::timestamptz) "
    "  AND ($4::uuid IS NULL OR a.resource_id = $4::uuid) AND ($5::text IS NULL OR a.status = $5) "
    "  ORDER BY lower(a.period), a.id LIMIT $6::integer + 1) x";

static const char SQL_APPT_GET[] =
    "SELECT sched_appointment_json(a) FROM sched_appointments a WHERE a.tenant_id = $1 AND a.id = $2";

/* Cancel is idempotent: an appointment already cancelled answers as it is,
 * without a second event. $1 tenant, $2 id, $3 reason, $4 correlation id. */
static const char SQL_APPT_CANCEL[] =
    "WITH a AS (SELECT * FROM sched_appointments x WHERE x.tenant_id = $1 AND x.id = $2 FOR UPDATE), "
    "upd AS (UPDATE sched_appointments x SET status = 'cancelled', cancelled_at = now(), updated_at = now(), "
    "  cancel_reason = $3 FROM a WHERE x.id = a.id AND a.status = 'booked' "
    "  RETURNING x.hold_id, sched_appointment_json(x) AS j), "
    "freed AS (DELETE FROM sched_slots s USING upd WHERE s.tenant_id = $1 AND s.id = upd.hold_id RETURNING s.id), "
    "ev AS (INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id) "
    "  SELECT 'AppointmentCancelled', 1, jsonb_build_object('appointment_id', j->>'id', 'tenant_id', $1::uuid, "
    "  'resource_id', j->>'resource_id', 'item_id', j->>'item_id', 'start', j->>'start', 'end', j->>'end', "
    "  'price_cents', (j->>'price_cents')::bigint, 'reason', j->'cancel_reason', "
    "  'customer_phone', j->'customer_phone', 'conversation_id', j->'conversation_id', "
    "  'cancelled_at', j->>'cancelled_at'), $1, $4 FROM upd RETURNING 1) "
    "SELECT coalesce((SELECT j FROM upd), (SELECT sched_appointment_json(a) FROM a)), (SELECT count(*) FROM ev), "
    "(SELECT count(*) FROM freed)";

/* Reschedule = hold + book in one transaction: the appointment's slot row
 * moves to the new period (the exclusion constraint judges it against
 * everything else live), the appointment follows, AppointmentRescheduled is
 * written. $1 tenant, $2 id, $3 start, $4 resource or NULL, $5 correlation. */
static const char SQL_RESCHED_CLEAN[] =
    "WITH a AS (SELECT x.resource_id, x.duration_minutes FROM sched_appointments x "
    "  WHERE x.tenant_id = $1 AND x.id = $2), "
    "gone AS (DELETE FROM sched_slots s USING a WHERE s.tenant_id = $1 "
    "  AND s.resource_id = coalesce($4::uuid, a.resource_id) AND s.kind = 'hold' AND s.expires_at <= now() "
    "  AND s.period && tstzrange($3::timestamptz, $3::timestamptz + make_interval(mins => a.duration_minutes)) "
    "  RETURNING s.id, s.tenant_id, s.expires_at) "
    "INSERT INTO sched_expired_holds (id, tenant_id, expired_at) SELECT id, tenant_id, expires_at FROM gone "
    "ON CONFLICT (id) DO NOTHING";

static const char SQL_RESCHED[] =
    "WITH a AS (SELECT * FROM sched_appointments x WHERE x.tenant_id = $1 AND x.id = $2 FOR UPDATE), "
    "np AS (SELECT tstzrange($3::timestamptz, $3::timestamptz + make_interval(mins => a.duration_minutes)) AS period, "
    "  coalesce($4::uuid, a.resource_id) AS resource_id FROM a WHERE a.status = 'booked'), "
    "ok AS (SELECT np.period, np.resource_id, lower(np.period) > now() AS future, "
    "  sched_period_open($1, np.resource_id, np.period) AS open, "
    "  EXISTS (SELECT 1 FROM sched_resources r WHERE r.tenant_id = $1 AND r.id = np.resource_id) AS res_found "
    "  FROM np), "
    "slot AS (UPDATE sched_slots s SET period = ok.period, resource_id = ok.resource_id FROM a, ok "
    "  WHERE s.tenant_id = $1 AND s.id = a.hold_id AND ok.future AND ok.open RETURNING s.id), "
    "upd AS (UPDATE sched_appointments x SET period = ok.period, resource_id = ok.resource_id, updated_at = now() "
    "  FROM ok, slot WHERE x.tenant_id = $1 AND x.id = $2 RETURNING sched_appointment_json(x) AS j), "
    "ev AS (INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id) "
    "  SELECT 'AppointmentRescheduled', 1, jsonb_build_object('appointment_id', j->>'id', 'tenant_id', $1::uuid, "
    "  'resource_id', j->>'resource_id', 'item_id', j->>'item_id', 'start', j->>'start', 'end', j->>'end', "
    "  'previous_resource_id', a.resource_id, 'previous_start', sched_ts(lower(a.period)), "
    "  'previous_end', sched_ts(upper(a.period)), 'customer_phone', j->'customer_phone', "
    "  'conversation_id', j->'conversation_id', 'rescheduled_at', j->>'updated_at'), $1, $5 "
    "  FROM upd, a RETURNING 1) "
    "SELECT (SELECT count(*) FROM a), (SELECT status FROM a), (SELECT res_found FROM ok), (SELECT future FROM ok), "
    "(SELECT open FROM ok), (SELECT j FROM upd), (SELECT count(*) FROM ev)";

#define STMT(nm, q, ...)                                                                                    \
    (struct nmc_db_stmt)                                                                                    \
    {                                                                                                       \
        .name = nm, .sql = q, .nparams = (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)), \
        .params = {__VA_ARGS__}                                                                             \
    }

static size_t writes(const struct sched_req *r, struct nmc_db_stmt *st, int *txn)
{
    const char *t = r->auth.who.tenant_id, *const *p = (const char *const *)r->p;
    const char *by = r->auth.who.subject, *corr = r->correlation_id;
    switch (r->kind) {
    case S_HOLD:
        *txn = 1;
        st[0] = STMT("sched_lock_resource", SQL_LOCK_RESOURCE, t, p[0]);
        st[1] = STMT("sched_hold_clean", SQL_HOLD_CLEAN, t, p[0], p[1], p[2]);
        st[2] = STMT("sched_hold", SQL_HOLD, t, p[0], p[1], p[2], r->num[0], p[3], p[4], p[5], p[6], by, corr);
        return 3;
    case S_BOOK:
        *txn = 1;
        st[0] = STMT("sched_lock_hold_resource", SQL_LOCK_HOLD_RESOURCE, t, p[0]);
        st[1] = STMT("sched_book", SQL_BOOK, t, p[0], p[1], by, corr);
        st[2] = STMT("sched_book_lookup", SQL_BOOK_LOOKUP, t, p[1]);
        return 3;
    case S_APPT_RESCHEDULE:
        *txn = 1;
        st[0] = STMT("sched_lock_appt_resources", SQL_LOCK_APPT_RESOURCES, t, r->id, p[1]);
        st[1] = STMT("sched_resched_clean", SQL_RESCHED_CLEAN, t, r->id, p[0], p[1]);
        st[2] = STMT("sched_resched", SQL_RESCHED, t, r->id, p[0], p[1], corr);
        return 3;
    case S_APPT_CANCEL:
        st[0] = STMT("sched_appt_cancel", SQL_APPT_CANCEL, t, r->id, p[0], corr);
        return 1;
    default:
        return 0;
    }
}

size_t nmc_scheduling_stmts(const struct sched_req *r, struct nmc_db_stmt *st, int *txn)
{
    const char *t = r->auth.who.tenant_id, *const *p = (const char *const *)r->p;
    *txn = 0;
    memset(st, 0, SCHED_MAX_STMTS * sizeof(*st));
    switch (r->kind) {
    case S_RES_CREATE:
        st[0] = STMT("sched_res_create", SQL_RES_CREATE, t, p[0], p[1], p[2]);
        return 1;
    case S_RES_PATCH:
        st[0] = STMT("sched_res_patch", SQL_RES_PATCH, t, r->id, p[0], p[1], p[2]);
        return 1;
    case S_RES_GET:
        st[0] = STMT("sched_res_get", SQL_RES_GET, t, r->id);
        return 1;
    case S_RES_LIST:
        st[0] = STMT("sched_res_list", SQL_RES_LIST, t, p[0]);
        return 1;
    case S_AVAIL:
        *txn = 1;
        st[0] = (struct nmc_db_stmt){.name = "sched_no_jit", .sql = "SET LOCAL jit = off"};
        st[1] = (struct nmc_db_stmt){.name = "sched_generic_plan", .sql = "SET LOCAL plan_cache_mode = force_generic_plan"};
        st[2] = STMT("sched_availability", SQL_AVAIL, t, p[0], p[1], p[2], p[3], r->num[0], r->num[1],
                     r->cached_duration > 0 ? r->num[2] : NULL);
        return 3;
    case S_HOLD_DELETE:
        st[0] = STMT("sched_hold_delete", SQL_HOLD_DELETE, t, r->id);
        return 1;
    case S_BOOK_LOOKUP:
        st[0] = STMT("sched_book_lookup", SQL_BOOK_LOOKUP, t, p[1]);
        return 1;
    case S_APPT_LIST:
        st[0] = STMT("sched_appt_list", SQL_APPT_LIST, t, p[0], p[1], p[2], p[3], r->num[0]);
        return 1;
    case S_APPT_GET:
        st[0] = STMT("sched_appt_get", SQL_APPT_GET, t, r->id);
        return 1;
    default:
        return writes(r, st, txn);
    }
}
