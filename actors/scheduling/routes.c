/* Scheduling routes: synchronous validation into text parameters, then
 * authentication and the actor (actors/scheduling/internal.h). Malformed
 * input answers 400 {"error":{"code","message"}} naming the problem; a
 * malformed id in the path answers 404 like any id the tenant does not own. */
#include "actors/scheduling/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/identity/identity.h"

#define MS_PER_DAY 86400000LL

/* ---- RFC 3339 -------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* n decimal digits at s into *out; 0 or NMC_EINVAL. */
static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return NMC_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* The zone suffix at s: "Z" or "+HH:MM"; its offset in minutes. */
static int parse_zone(const char *s, int *offset_min)
{
    int hh, mm;
    if ((s[0] == 'Z' || s[0] == 'z') && s[1] == '\0') {
        *offset_min = 0;
        return 0;
    }
    if ((s[0] != '+' && s[0] != '-') || strlen(s) != 6 || s[3] != ':' || digits(s + 1, 2, &hh) ||
        digits(s + 4, 2, &mm) || hh > 23 || mm > 59)
        return NMC_EINVAL;
    *offset_min = (s[0] == '-' ? -1 : 1) * (hh * 60 + mm);
    return 0;
}

int nmc_scheduling_parse_rfc3339(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, frac_ms = 0, off;
    if (s == NULL || strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) || s[13] != ':' ||
        digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
        return NMC_EINVAL;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return NMC_EINVAL;
    const char *p = s + 19;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
        if (n == 0 || n > 9)
            return NMC_EINVAL;
        for (; n < 3; n++)
            frac_ms *= 10;
    }
    if (parse_zone(p, &off) != 0)
        return NMC_EINVAL;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - (int64_t)off * 60;
    if (secs < 0)
        return NMC_EINVAL;
    *ms = secs * 1000 + frac_ms;
    return 0;
}

void nmc_scheduling_format_utc(int64_t ms, char out[32])
{
    int y, m, d;
    int64_t days = ms / MS_PER_DAY, rem = ms % MS_PER_DAY;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d", y, m, d, (int)(rem / 3600000),
                     (int)(rem / 60000 % 60), (int)(rem / 1000 % 60));
    if (ms % 1000 != 0)
        snprintf(out + n, 32 - (size_t)n, ".%03dZ", (int)(ms % 1000));
    else
        snprintf(out + n, 32 - (size_t)n, "Z");
}

static char *format_utc(int64_t ms)
{
    char buf[32];
    nmc_scheduling_format_utc(ms, buf);
    return nmc_xstrdup(buf);
}

/* ---- field helpers --------------------------------------------------- */

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* A copy of an optional string field of at most max characters (non-empty
 * when present); *bad set when present and invalid. */
static char *opt_text(json_t *body, const char *key, size_t max, int *bad)
{
    json_t *v = json_object_get(body, key);
    if (v == NULL || json_is_null(v))
        return NULL;
    const char *s = json_string_value(v);
    if (s == NULL || s[0] == '\0' || utf8_chars(s) > max) {
        *bad = 1;
        return NULL;
    }
    return nmc_xstrdup(s);
}

static char *uuid_field(json_t *v)
{
    const char *s = json_string_value(v);
    return nmc_is_uuid(s) ? nmc_xstrdup(s) : NULL;
}

/* An RFC 3339 string as canonical UTC text, or NULL. */
static char *time_text(const char *s, int64_t *ms)
{
    int64_t v;
    if (nmc_scheduling_parse_rfc3339(s, &v) != 0)
        return NULL;
    if (ms != NULL)
        *ms = v;
    return format_utc(v);
}

static void bad_request(struct nmc_http_req *req, struct sched_req *r, const char *message)
{
    nmc_http_respond_error(req, 400, "invalid_request", message);
    nmc_scheduling_req_free(r);
}

/* The {id} path parameter into r->id; NULL after answering 404. */
static struct sched_req *with_id(struct nmc_http_req *req, enum sched_kind kind, const char *what)
{
    const char *id = nmc_http_req_param(req, "id");
    if (!nmc_is_uuid(id)) {
        char msg[64];
        snprintf(msg, sizeof(msg), "%s not found", what);
        nmc_http_respond_error(req, 404, "not_found", msg);
        return NULL;
    }
    struct sched_req *r = nmc_scheduling_req_new(req, kind);
    nmc_strlcpy(r->id, id, sizeof(r->id));
    return r;
}

/* ---- resources ------------------------------------------------------- */

/* name, business_hours, active into r->p[0..2]; NULL or the problem. */
static const char *resource_fields(json_t *body, int creating, struct sched_req *r, char *err, size_t errlen)
{
    int bad = 0;
    json_t *hours = json_object_get(body, "business_hours"), *active = json_object_get(body, "active");
    const char *name = json_string_value(json_object_get(body, "name"));
    if (creating && (name == NULL || hours == NULL))
        return "name and business_hours are required";
    if (!creating && json_object_size(body) == 0)
        return "nothing to change";
    r->p[0] = opt_text(body, "name", 200, &bad);
    if (bad || (r->p[0] != NULL && (r->p[0][0] == ' ' || r->p[0][strlen(r->p[0]) - 1] == ' ')))
        return "name must be a non-empty string of at most 200 characters without outer spaces";
    if (hours != NULL && nmc_identity_validate_hours(hours, err, errlen) != 0)
        return err;
    if (hours != NULL)
        r->p[1] = json_dumps(hours, JSON_COMPACT);
    if (active != NULL && !json_is_boolean(active))
        return "active must be true or false";
    if (active != NULL)
        r->p[2] = nmc_xstrdup(json_is_true(active) ? "true" : "false");
    return NULL;
}

static void on_resource_write(struct nmc_http_req *req, struct sched *s, enum sched_kind kind)
{
    static const char *const keys[] = {"name", "business_hours", "active", NULL};
    char err[256];
    struct sched_req *r = kind == S_RES_CREATE ? nmc_scheduling_req_new(req, kind) : with_id(req, kind, "resource");
    json_t *body = r != NULL ? nmc_identity_auth_body(req, keys) : NULL;
    if (body == NULL) {
        nmc_scheduling_req_free(r);
        return;
    }
    const char *why = resource_fields(body, kind == S_RES_CREATE, r, err, sizeof(err));
    if (why != NULL)
        bad_request(req, r, why);
    else
        nmc_scheduling_dispatch(req, s, r, NMC_AUTH_ALLOW_MANAGE);
    json_decref(body);
}

static void on_resource_create(struct nmc_http_req *req, void *ud)
{
    on_resource_write(req, ud, S_RES_CREATE);
}

static void on_resource_patch(struct nmc_http_req *req, void *ud)
{
    on_resource_write(req, ud, S_RES_PATCH);
}

static void on_resource_list(struct nmc_http_req *req, void *ud)
{
    struct sched_req *r = nmc_scheduling_req_new(req, S_RES_LIST);
    r->p[0] = nmc_http_req_query(req, "active");
    if (r->p[0] != NULL && strcmp(r->p[0], "true") != 0 && strcmp(r->p[0], "false") != 0) {
        bad_request(req, r, "active must be true or false");
        return;
    }
    nmc_scheduling_dispatch(req, ud, r, NMC_AUTH_ALLOW_ANY);
}

static void on_resource_get(struct nmc_http_req *req, void *ud)
{
    struct sched_req *r = with_id(req, S_RES_GET, "resource");
    if (r != NULL)
        nmc_scheduling_dispatch(req, ud, r, NMC_AUTH_ALLOW_ANY);
}

/* ---- availability and appointment listings ---------------------------- */

/* from and to (required, from < to, at most max_days apart) into p[a], p[b]. */
static const char *window(struct nmc_http_req *req, struct sched_req *r, int a, int b, int max_days)
{
    static char msg[96];
    char *from = nmc_http_req_query(req, "from"), *to = nmc_http_req_query(req, "to");
    int64_t f = 0, t = 0;
    const char *why = NULL;
    if (from == NULL || to == NULL)
        why = "from and to are required (RFC 3339)";
    else if ((r->p[a] = time_text(from, &f)) == NULL || (r->p[b] = time_text(to, &t)) == NULL)
        why = "from and to must be RFC 3339 date-times, e.g. 2026-03-08T08:00:00-05:00";
    else if (t <= f || t - f > (int64_t)max_days * MS_PER_DAY) {
        snprintf(msg, sizeof(msg), "to must be after from and at most %d days later", max_days);
        why = msg;
    }
    free(from);
    free(to);
    return why;
}

/* An optional uuid query parameter into p[i]; 1 when present and bad. */
static int query_uuid(struct nmc_http_req *req, const char *name, struct sched_req *r, int i)
{
    char *v = nmc_http_req_query(req, name);
    if (v == NULL)
        return 0;
    if (!nmc_is_uuid(v)) {
        free(v);
        return 1;
    }
    r->p[i] = v;
    return 0;
}

static void on_availability(struct nmc_http_req *req, void *ud)
{
    struct sched_req *r = nmc_scheduling_req_new(req, S_AVAIL);
    const char *why = NULL;
    if (query_uuid(req, "item_id", r, 0) || r->p[0] == NULL)
        why = "item_id is required and must be a UUID";
    else if (query_uuid(req, "resource_id", r, 3))
        why = "resource_id must be a UUID";
    else
        why = window(req, r, 1, 2, NMC_SCHED_MAX_SEARCH_DAYS);
    if (why != NULL)
        bad_request(req, r, why);
    else
        nmc_scheduling_dispatch(req, ud, r, NMC_AUTH_ALLOW_ANY);
}

static void on_appointment_list(struct nmc_http_req *req, void *ud)
{
    struct sched_req *r = nmc_scheduling_req_new(req, S_APPT_LIST);
    const char *why = window(req, r, 0, 1, NMC_SCHED_MAX_LIST_DAYS);
    if (why == NULL && query_uuid(req, "resource_id", r, 2))
        why = "resource_id must be a UUID";
    if (why == NULL && (r->p[3] = nmc_http_req_query(req, "status")) != NULL && strcmp(r->p[3], "booked") != 0 &&
        strcmp(r->p[3], "cancelled") != 0)
        why = "status must be booked or cancelled";
    if (why != NULL)
        bad_request(req, r, why);
    else
        nmc_scheduling_dispatch(req, ud, r, NMC_AUTH_ALLOW_ANY);
}

static void on_appointment_get(struct nmc_http_req *req, void *ud)
{
    struct sched_req *r = with_id(req, S_APPT_GET, "appointment");
    if (r != NULL)
        nmc_scheduling_dispatch(req, ud, r, NMC_AUTH_ALLOW_ANY);
}

/* ---- holds and bookings ---------------------------------------------- */

static const char *hold_fields(json_t *body, struct sched_req *r)
{
    int bad = 0;
    const char *phone;
    if ((r->p[0] = uuid_field(json_object_get(body, "resource_id"))) == NULL)
        return "resource_id is required and must be a UUID";
    if ((r->p[1] = uuid_field(json_object_get(body, "item_id"))) == NULL)
        return "item_id is required and must be a UUID";
    if ((r->p[2] = time_text(json_string_value(json_object_get(body, "start")), NULL)) == NULL)
        return "start is required and must be an RFC 3339 date-time, e.g. 2026-03-08T08:00:00-05:00";
    if ((r->p[3] = opt_text(body, "customer_name", 200, &bad)), bad)
        return "customer_name must be a non-empty string of at most 200 characters";
    phone = json_string_value(json_object_get(body, "customer_phone"));
    if (phone == NULL && json_object_get(body, "customer_phone") != NULL &&
        !json_is_null(json_object_get(body, "customer_phone")))
        return "customer_phone must be an E.164 number like +15550001000";
    if (phone != NULL && !nmc_is_e164(phone))
        return "customer_phone must be an E.164 number like +15550001000";
    r->p[4] = phone != NULL ? nmc_xstrdup(phone) : NULL;
    if ((r->p[5] = opt_text(body, "notes", 2000, &bad)), bad)
        return "notes must be a non-empty string of at most 2000 characters";
    if (json_object_get(body, "conversation_id") != NULL &&
        (r->p[6] = uuid_field(json_object_get(body, "conversation_id"))) == NULL)
        return "conversation_id must be a UUID";
    return NULL;
}

static void on_hold_create(struct nmc_http_req *req, void *ud)
{
    static const char *const keys[] = {"resource_id", "item_id", "start", "customer_name", "customer_phone",
                                       "notes", "conversation_id", NULL};
    json_t *body = nmc_identity_auth_body(req, keys);
    if (body == NULL)
        return;
    struct sched_req *r = nmc_scheduling_req_new(req, S_HOLD);
    const char *why = hold_fields(body, r);
    if (why != NULL)
        bad_request(req, r, why);
    else
        nmc_scheduling_dispatch(req, ud, r, NMC_AUTH_ALLOW_ANY);
    json_decref(body);
}

static void on_hold_delete(struct nmc_http_req *req, void *ud)
{
    struct sched_req *r = with_id(req, S_HOLD_DELETE, "hold");
    if (r != NULL)
        nmc_scheduling_dispatch(req, ud, r, NMC_AUTH_ALLOW_ANY);
}

/* 1 when key is 1..255 printable ASCII characters. */
static int idempotency_key_ok(const char *key)
{
    size_t n = key != NULL ? strlen(key) : 0;
    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x21 || key[i] > 0x7e)
            return 0;
    return 1;
}

static void on_booking(struct nmc_http_req *req, void *ud)
{
    static const char *const keys[] = {"hold_id", NULL};
    const char *key = nmc_http_req_header(req, "idempotency-key");
    if (!idempotency_key_ok(key)) {
        nmc_http_respond_error(req, 400, "invalid_request",
                               "an Idempotency-Key header of 1..255 printable ASCII characters is required");
        return;
    }
    json_t *body = nmc_identity_auth_body(req, keys);
    if (body == NULL)
        return;
    struct sched_req *r = nmc_scheduling_req_new(req, S_BOOK);
    r->p[1] = nmc_xstrdup(key);
    if ((r->p[0] = uuid_field(json_object_get(body, "hold_id"))) == NULL)
        bad_request(req, r, "hold_id is required and must be a UUID");
    else
        nmc_scheduling_dispatch(req, ud, r, NMC_AUTH_ALLOW_ANY);
    json_decref(body);
}

/* PATCH: {"status":"cancelled","reason"?} or {"start","resource_id"?}. */
static const char *appointment_change(json_t *body, struct sched_req *r)
{
    int bad = 0;
    json_t *status = json_object_get(body, "status");
    if (status != NULL) {
        if (json_object_get(body, "start") != NULL || json_object_get(body, "resource_id") != NULL)
            return "cancel (status) and reschedule (start, resource_id) cannot be combined";
        if (!json_is_string(status) || strcmp(json_string_value(status), "cancelled") != 0)
            return "status can only be changed to \"cancelled\"";
        r->kind = S_APPT_CANCEL;
        if ((r->p[0] = opt_text(body, "reason", 500, &bad)), bad)
            return "reason must be a non-empty string of at most 500 characters";
        return NULL;
    }
    if (json_object_get(body, "reason") != NULL)
        return "reason goes with status \"cancelled\"";
    r->kind = S_APPT_RESCHEDULE;
    if ((r->p[0] = time_text(json_string_value(json_object_get(body, "start")), NULL)) == NULL)
        return "give status \"cancelled\", or start (RFC 3339) to reschedule";
    if (json_object_get(body, "resource_id") != NULL &&
        (r->p[1] = uuid_field(json_object_get(body, "resource_id"))) == NULL)
        return "resource_id must be a UUID";
    return NULL;
}

static void on_appointment_patch(struct nmc_http_req *req, void *ud)
{
    static const char *const keys[] = {"status", "reason", "start", "resource_id", NULL};
    struct sched_req *r = with_id(req, S_APPT_CANCEL, "appointment");
    json_t *body = r != NULL ? nmc_identity_auth_body(req, keys) : NULL;
    if (body == NULL) {
        nmc_scheduling_req_free(r);
        return;
    }
    const char *why = appointment_change(body, r);
    if (why != NULL)
        bad_request(req, r, why);
    else
        nmc_scheduling_dispatch(req, ud, r, NMC_AUTH_ALLOW_ANY);
    json_decref(body);
}

int nmc_scheduling_routes(struct sched *s)
{
    static const struct {
        const char *method, *pattern;
        nmc_http_handler_cb cb;
    } routes[] = {
        {"POST", "/v1/scheduling/resources", on_resource_create},
        {"GET", "/v1/scheduling/resources", on_resource_list},
        {"GET", "/v1/scheduling/resources/{id}", on_resource_get},
        {"PATCH", "/v1/scheduling/resources/{id}", on_resource_patch},
        {"GET", "/v1/scheduling/availability", on_availability},
        {"POST", "/v1/scheduling/holds", on_hold_create},
        {"DELETE", "/v1/scheduling/holds/{id}", on_hold_delete},
        {"POST", "/v1/scheduling/bookings", on_booking},
        {"GET", "/v1/scheduling/appointments", on_appointment_list},
        {"GET", "/v1/scheduling/appointments/{id}", on_appointment_get},
        {"PATCH", "/v1/scheduling/appointments/{id}", on_appointment_patch},
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(routes); i++) {
        int rc = nmc_http_server_route(s->app->http, routes[i].method, routes[i].pattern, routes[i].cb, s);
        if (rc != 0)
            return rc;
    }
    return 0;
}
