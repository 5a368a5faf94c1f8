/* Reporting: one statement per domain event (owner: report engineer). The
 * appointment statements insert the event into the ledger first and apply
 * their effect only when that insert happened, so a redelivered event
 * changes nothing; activity statements are idempotent by themselves.
 * Every statement answers one row: (new in the ledger, rows applied,
 * attributed cents or, for a cancellation, whether its booking is known). */
#include "actors/reporting/reporting.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "runtime/json_scan.h"

/* Activity events (CallDetected, ConversationStarted, FirstReplySent) only
 * mark their local day for the rollup, which recomputes the day from the
 * base tables; the mark is idempotent by its key, so these events need no
 * ledger row (three per missed call on the hottest path). Their kpi
 * counters are counted where the state changes commit (telephony,
 * conversation), once per commit. $1 and $2 are typed so the statement
 * shares the appointment statements' parameters. $4: the event's time,
 * which names the local day it lands on. */
#define SQL_ACTIVITY \
    "WITH marked AS (INSERT INTO reporting_dirty_days (tenant_id, day)" \
    " SELECT t.id, ($4::timestamptz AT TIME ZONE t.timezone)::date FROM tenants t" \
    " WHERE t.id = $3::uuid AND $1::uuid IS NOT NULL AND $2::text IS NOT NULL" \
    " ON CONFLICT (tenant_id, day) DO NOTHING RETURNING 1)" \
    " SELECT 1, (SELECT count(*) FROM marked), 0"

/* $4 appointment, $5 price snapshot, $6 customer phone, $7 conversation,
 * $8 booked_at. Attribution: the conversation named by the booking or the
 * latest one with the customer's phone, started by a missed call in the 30
 * days before the booking; its caller's latest missed call before it.
 * booked_at carries whole seconds only, hence the one-second allowance. */
#define SQL_BOOKED \
    "WITH ledger AS (INSERT INTO reporting_processed_events (event_id, event_name, tenant_id)" \
    " VALUES ($1::uuid, $2, $3::uuid) ON CONFLICT (event_id) DO NOTHING RETURNING tenant_id)," \
    " appt AS (INSERT INTO reporting_appointments" \
    " (appointment_id, tenant_id, price_cents, conversation_id, booked_at)" \
    " SELECT $4::uuid, t.id, $5::bigint, $7::uuid, $8::timestamptz FROM ledger l JOIN tenants t ON t.id = l.tenant_id" \
    " ON CONFLICT (appointment_id) DO NOTHING" \
    " RETURNING appointment_id, tenant_id, price_cents, conversation_id, booked_at)," \
    " src AS (SELECT a.*, c.id AS conv_id, c.caller_e164 FROM appt a CROSS JOIN LATERAL (" \
    " SELECT c.id, c.caller_e164 FROM conversations c WHERE c.tenant_id = a.tenant_id AND c.trigger = 'missed_call'" \
    " AND (c.id = a.conversation_id OR c.caller_e164 = $6::text)" \
    " AND c.opened_at < a.booked_at + interval '1 second' AND c.opened_at > a.booked_at - interval '30 days'" \
    " ORDER BY (c.id = a.conversation_id) IS TRUE DESC, c.opened_at DESC LIMIT 1) c)," \
    " attr AS (INSERT INTO reporting_attributions (appointment_id, tenant_id, conversation_id, missed_call_id," \
    " price_cents) SELECT s.appointment_id, s.tenant_id, s.conv_id," \
    " (SELECT m.id FROM missed_calls m WHERE m.tenant_id = s.tenant_id AND m.from_e164 = s.caller_e164" \
    " AND m.detected_at < s.booked_at + interval '1 second' ORDER BY m.detected_at DESC LIMIT 1)," \
    " s.price_cents FROM src s" \
    " ON CONFLICT (appointment_id) DO NOTHING RETURNING price_cents)," \
    " marked AS (INSERT INTO reporting_dirty_days (tenant_id, day)" \
    " SELECT a.tenant_id, (a.booked_at AT TIME ZONE t.timezone)::date" \
    " FROM appt a JOIN tenants t ON t.id = a.tenant_id" \
    " ON CONFLICT (tenant_id, day) DO NOTHING RETURNING 1)" \
    " SELECT (SELECT count(*) FROM ledger), (SELECT count(*) FROM appt)," \
    " (SELECT COALESCE(sum(price_cents), 0) FROM attr)"

/* $4 appointment, $5 cancelled_at. Nothing is recorded while the booking is
 * not projected yet (events may arrive out of order): the third column is 0
 * and the caller asks for a retry. Both the booking's and the cancellation's
 * days change. */
#define SQL_CANCELLED \
    "WITH known AS (SELECT appointment_id FROM reporting_appointments WHERE appointment_id = $4::uuid" \
    " AND tenant_id = $3::uuid)," \
    " ledger AS (INSERT INTO reporting_processed_events (event_id, event_name, tenant_id)" \
    " SELECT $1::uuid, $2, $3::uuid FROM known ON CONFLICT (event_id) DO NOTHING RETURNING tenant_id)," \
    " upd AS (UPDATE reporting_appointments a SET cancelled_at = $5::timestamptz FROM ledger" \
    " WHERE a.appointment_id = $4::uuid AND a.cancelled_at IS NULL" \
    " RETURNING a.tenant_id, a.booked_at, a.cancelled_at)," \
    " marked AS (INSERT INTO reporting_dirty_days (tenant_id, day)" \
    " SELECT u.tenant_id, (v.ts AT TIME ZONE t.timezone)::date FROM upd u JOIN tenants t ON t.id = u.tenant_id" \
    " CROSS JOIN LATERAL (VALUES (u.booked_at), (u.cancelled_at)) v(ts)" \
    " ON CONFLICT (tenant_id, day) DO NOTHING RETURNING 1)" \
    " SELECT (SELECT count(*) FROM ledger), (SELECT count(*) FROM upd), (SELECT count(*) FROM known)"

enum { EV_BOOKED = 1, EV_CANCELLED, EV_STARTED, EV_FIRST_REPLY, EV_CALL };

static const struct {
    const char *name;
    int kind;
    const char *time_field;
} events[] = {
    {"AppointmentBooked", EV_BOOKED, "booked_at"},
    {"AppointmentCancelled", EV_CANCELLED, "cancelled_at"},
    {"ConversationStarted", EV_STARTED, "opened_at"},
    {"FirstReplySent", EV_FIRST_REPLY, "triggered_at"},
    {"CallDetected", EV_CALL, "detected_at"},
};

static void set_err(char *err, size_t errlen, const char *event, const char *field)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s payload: %s is missing or malformed", event, field);
}

/* s when it is a usable field value (1 to NMC_REPORTING_FIELD_MAX bytes;
 * uuid: a UUID), else NULL. */
static const char *checked(const char *s, int uuid)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > NMC_REPORTING_FIELD_MAX || (uuid && !nmc_is_uuid(s)))
        return NULL;
    return s;
}

/* A string field of a parsed payload, or NULL; uuid: must be a UUID when present. */
static const char *field(json_t *doc, const char *key, int uuid)
{
    return checked(json_string_value(json_object_get(doc, key)), uuid);
}

/* s when it is shaped like an RFC 3339 date-time (PostgreSQL parses the
 * rest), or NULL. */
static const char *timestamp(const char *s)
{
    if (s == NULL || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't'))
        return NULL;
    return s;
}

static void stmt_init(struct nmc_reporting_event *out, const struct nmc_domain_event *ev, const char *name,
                      const char *sql, const char *tenant)
{
    out->stmt.name = name;
    out->stmt.sql = sql;
    out->stmt.params[0] = ev->event_id;
    out->stmt.params[1] = ev->event_name;
    out->stmt.params[2] = tenant;
}

/* The appointment's own fields ($4..); NULL or the name of the bad one. */
static const char *appointment_params(struct nmc_reporting_event *out, int kind, const char *when)
{
    json_t *d = out->doc;
    const char *appt = field(d, "appointment_id", 1);
    if (appt == NULL)
        return "appointment_id";
    out->stmt.params[3] = appt;
    if (kind == EV_CANCELLED) {
        out->stmt.params[4] = when;
        out->stmt.nparams = 5;
        return NULL;
    }
    json_t *price = json_object_get(d, "price_cents");
    if (!json_is_integer(price) || json_integer_value(price) < 0)
        return "price_cents";
    snprintf(out->price, sizeof out->price, "%lld", (long long)json_integer_value(price));
    json_t *conv = json_object_get(d, "conversation_id");
    if (conv != NULL && !json_is_null(conv) && field(d, "conversation_id", 1) == NULL)
        return "conversation_id";
    out->stmt.params[4] = out->price;
    out->stmt.params[5] = field(d, "customer_phone", 0); /* absent or null: attribution by conversation only */
    out->stmt.params[6] = field(d, "conversation_id", 1);
    out->stmt.params[7] = when;
    out->stmt.nparams = 8;
    return NULL;
}

int nmc_reporting_event_build(const struct nmc_domain_event *ev, struct nmc_reporting_event *out, char *err,
                              size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t i = 0;
    while (i < NMC_ARRAY_SIZE(events) && strcmp(events[i].name, ev->event_name) != 0)
        i++;
    if (i == NMC_ARRAY_SIZE(events))
        return NMC_ENOTFOUND;
    out->kind = events[i].kind;
    const char *payload = ev->payload_json != NULL ? ev->payload_json : "";
    const char *tenant = NULL, *when = NULL;
    int parsed;
    if (out->kind <= EV_CANCELLED) { /* appointments: several fields, a number among them */
        out->doc = json_loads(payload, 0, NULL);
        parsed = json_is_object(out->doc);
        tenant = field(out->doc, "tenant_id", 1);
        when = timestamp(field(out->doc, events[i].time_field, 0));
    } else { /* activity (three per missed call): two strings, read in place */
        const char *keys[2] = { "tenant_id", events[i].time_field };
        enum nmc_json_got got[2];
        parsed = nmc_json_object_strings(payload, strlen(payload), keys, 2, &out->fields[0][0],
                                         sizeof out->fields[0], got) == 0;
        if (parsed && got[0] == NMC_JSON_STRING)
            tenant = checked(out->fields[0], 1);
        if (parsed && got[1] == NMC_JSON_STRING)
            when = timestamp(checked(out->fields[1], 0));
    }
    const char *bad = !parsed ? "the payload" : tenant == NULL ? "tenant_id"
                      : when == NULL ? events[i].time_field : !nmc_is_uuid(ev->event_id) ? "event_id" : NULL;
    if (bad == NULL && out->kind <= EV_CANCELLED) {
        out->projector = NMC_REPORTING_APPOINTMENTS;
        stmt_init(out, ev, out->kind == EV_BOOKED ? "reporting_booked" : "reporting_cancelled",
                  out->kind == EV_BOOKED ? SQL_BOOKED : SQL_CANCELLED, tenant);
        bad = appointment_params(out, out->kind, when);
    } else if (bad == NULL) {
        out->projector = NMC_REPORTING_ACTIVITY;
        stmt_init(out, ev, "reporting_activity", SQL_ACTIVITY, tenant);
        out->stmt.params[3] = when;
        out->stmt.nparams = 4;
    }
    if (bad != NULL) {
        set_err(err, errlen, ev->event_name, bad);
        return NMC_EINVAL;
    }
    return 0;
}

int nmc_reporting_activity_key(const struct nmc_reporting_event *e, char *key, size_t n)
{
    const struct nmc_db_stmt *st = &e->stmt;
    const char *tenant = st->nparams >= 4 ? st->params[2] : NULL, *when = st->nparams >= 4 ? st->params[3] : NULL;
    size_t len = when != NULL ? strlen(when) : 0;
    if (e->projector != NMC_REPORTING_ACTIVITY || tenant == NULL || len < 17 || when[len - 1] != 'Z' ||
        when[10] != 'T' || when[13] != ':' || when[14] < '0' || when[14] > '5' || when[15] < '0' || when[15] > '9')
        return 0;
    int minute = (when[14] - '0') * 10 + (when[15] - '0');
    int w = snprintf(key, n, "%s %.13s %d", tenant, when, minute / 15);
    return w > 0 && (size_t)w < n;
}

void nmc_reporting_event_clear(struct nmc_reporting_event *e)
{
    if (e == NULL)
        return;
    json_decref(e->doc);
    memset(e, 0, sizeof *e);
}

size_t nmc_reporting_batch_plan(const struct nmc_reporting_event *const *evs, size_t n, size_t *stmt_of,
                                size_t *nstmts)
{
    /* each event's key is computed once (in the scratch slot keys[nkeys])
     * and compared with the batch's distinct keys, at most one per statement */
    char keys[NMC_REPORTING_BATCH_STMTS + 1][128];
    size_t key_stmt[NMC_REPORTING_BATCH_STMTS], nkeys = 0, taken = 0;
    *nstmts = 0;
    while (taken < n && taken < NMC_REPORTING_BATCH_EVENTS) {
        size_t shared = SIZE_MAX;
        int keyed = nmc_reporting_activity_key(evs[taken], keys[nkeys], sizeof keys[nkeys]);
        for (size_t k = 0; keyed && k < nkeys && shared == SIZE_MAX; k++)
            if (strcmp(keys[nkeys], keys[k]) == 0)
                shared = key_stmt[k];
        if (shared == SIZE_MAX) {
            if (*nstmts == NMC_REPORTING_BATCH_STMTS)
                break; /* it needs a statement of its own: the next batch takes it */
            shared = (*nstmts)++;
            if (keyed)
                key_stmt[nkeys++] = shared;
        }
        stmt_of[taken++] = shared;
    }
    return taken;
}
