/* Bad input, end to end: the real server and database under a seeded sweep
 * of malformed requests on every route family. Each request starts from a
 * valid one (a tenant, a catalog item, a resource, a hold and an appointment
 * exist) and changes one thing: a field's value becomes a hostile one (wrong
 * type, out-of-range number, overlong, invalid UTF-8, control characters,
 * deep nesting), a field goes missing, an unknown or duplicate key appears,
 * a query parameter or a path id is replaced, or a Twilio webhook field,
 * correctly signed, carries such bytes.
 *
 * What every answer must be (guide: "bad input gets a clear error"): a
 * status below 500; for a 4xx a JSON body {"error":{"code","message"}}
 * with both strings non-empty; for a success of the /v1 API, JSON. After the sweep the server still answers,
 * and it stops cleanly (exit 0: no sanitizer report in the server either).
 * NMC_BAD_INPUT_SEED picks another sweep (the seed in use is printed);
 * NMC_BAD_INPUT_REQUESTS its length (default 2000). */
#include "tests/e2e/test_scheduling_support.h"

#include "http/body.h"
#include "providers/twilio_sig.h"

#define ADMIN "X-Admin-API-Key: " E2E_ADMIN_KEY
#define NUMBER "+15550007000"
#define TOKEN "test-auth-token"
#define MAX_FAILS 40

static struct e2e_tenant T;
static char *g_item, *g_res, *g_user, *g_hold, *g_appt;
static uint64_t g_rng;
static int g_requests, g_fails;
static int g_by_class[6]; /* answers by status / 100 */
static int g_unauthorized;
static struct nmc_buf g_report;
static const char *g_header; /* the hostile header of the request in flight, if any */

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static size_t pick(size_t n)
{
    return (size_t)(rnd() % n);
}

/* ---- hostile values ---- */

/* Raw strings (not all valid UTF-8); each also used as a query value, a path
 * id and a Twilio field. */
static const char *const nasty_raw[] = {
    "", " ", "x", "null", "-1", "0", "1.5", "99999999999999999999", "-9223372036854775809", "2147483648",
    "NaN", "1e400", "\xff\xfe", "\xc3\x28", "\xed\xa0\x80", "\xf4\x90\x80\x80", "caf\xc3\xa9", "\xf0\x9f\x94\xa7",
    "'; DROP TABLE tenants; --", "\"", "\\", "\t\r\n", "\x01\x7f", "<Response/>", "{business_name}", "{nope}",
    "\xe2\x80\xae", "+15550001000", "+1555000100000000000000000000", "+", "2026-02-30", "2026-03-08T08:00:00Z",
    "9999-12-31T23:59:59+23:59", "00000000-0000-0000-0000-000000000000", "ZZZZZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZZZZZZZZZ",
    "%00", "%", "a/b", "..", "SM00000000000000000000000000000000", "CA1", "no-answer", "completed", "STOP",
};

/* JSON values of every kind that a field may wrongly get. */
static const char *const nasty_json[] = {
    "null", "true", "false", "0", "-1", "1.5", "1e308", "-1e308", "9223372036854775807", "-9223372036854775808",
    "18446744073709551616", "2147483648", "-2147483649", "1E2", "-0", "[]", "{}", "[1,2,3]", "[null]",
    "{\"a\":{\"b\":[null]}}", "\"\\u0000\"", "\"\\ud800\"", "\"a\\u0000b\"", "[\"+15550001000\",\"+15550001000\"]",
    "{\"mon\":[[\"25:00\",\"17:00\"]]}", "{\"mon\":[[\"08:00\"]]}", "{\"mon\":\"x\"}", "{\"xyz\":[]}",
    "{\"mon\":[[\"17:00\",\"08:00\"],[\"00:00\",\"24:00\"]]}", "{\"business_hours\":[]}",
    "{\"first_reply_template_in_hours\":\"{nope}\"}", "{\"help_text\":\"\"}", "{\"unknown\":1}",
};

/* Appends one hostile JSON value: a listed one, a listed raw string as a
 * JSON string (escaped), the same bytes unescaped (invalid JSON when they
 * are), a long string or deep nesting. */
static void nasty_value(struct nmc_buf *b)
{
    switch (pick(6)) {
    case 0:
    case 1:
        (void)nmc_buf_puts(b, nasty_json[pick(NMC_ARRAY_SIZE(nasty_json))]);
        break;
    case 2:
        (void)nmc_buf_json_str(b, nasty_raw[pick(NMC_ARRAY_SIZE(nasty_raw))]);
        break;
    case 3:
        (void)nmc_buf_printf(b, "\"%s\"", nasty_raw[pick(NMC_ARRAY_SIZE(nasty_raw))]);
        break;
    case 4: {
        size_t n = (size_t)1 << (4 + pick(12)); /* 16 bytes .. 32 KiB */
        (void)nmc_buf_puts(b, "\"");
        for (size_t i = 0; i < n; i++)
            (void)nmc_buf_puts(b, i % 7 == 6 ? " " : "a");
        (void)nmc_buf_puts(b, "\"");
        break;
    }
    default: {
        size_t depth = 1 + pick(600);
        for (size_t i = 0; i < depth; i++)
            (void)nmc_buf_puts(b, pick(2) ? "[" : "{\"k\":");
        (void)nmc_buf_puts(b, "1");
        /* closing in the wrong order on purpose at times: invalid JSON */
        for (size_t i = 0; i < depth; i++)
            (void)nmc_buf_puts(b, pick(2) ? "]" : "}");
        break;
    }
    }
}

/* ---- JSON routes ---- */

struct field {
    const char *key;
    const char *value; /* valid JSON */
};

struct json_route {
    const char *method;
    const char *path; /* {}: the id of the row it works on (route_id()) */
    int id;           /* which id: 0 none, 1 tenant, 2 item, 3 resource, 4 appointment, 5 user */
    int admin;        /* admin key instead of the tenant's */
    struct field fields[8];
    const char *wrap; /* NULL, or the key of the one object the fields sit in */
};

static const struct json_route json_routes[] = {
    {"POST", "/v1/admin/tenants", 0, 1,
     {{"name", "\"Bad Input Two\""}, {"timezone", "\"America/Chicago\""}, {"phone_numbers", "[\"+15550007001\"]"},
      {"compliance_status", "\"approved\""},
      {"settings", "{\"business_hours\":{\"mon\":[[\"08:00\",\"17:00\"]]},\"first_reply_template_in_hours\":"
                   "\"Hi from {business_name}\"}"}}, NULL},
    {"PATCH", "/v1/admin/tenants/{}", 1, 1,
     {{"name", "\"Bad Input Co\""}, {"timezone", "\"America/New_York\""}, {"compliance_status", "\"pending\""},
      {"settings", "{\"help_text\":\"Call us\"}"}}, NULL},
    {"POST", "/v1/admin/tenants/{}/users", 1, 1,
     {{"subject", "\"user_bad_input\""}, {"role", "\"TECH\""}, {"active", "true"}}, NULL},
    {"PATCH", "/v1/admin/tenants/{}/users/{}", 5, 1, {{"role", "\"OWNER\""}, {"active", "false"}}, NULL},
    {"POST", "/v1/admin/flags", 0, 1, {{"pause_outbound_sms", "false"}}, NULL},
    {"POST", "/v1/catalog/items", 0, 0,
     {{"name", "\"Leak repair\""}, {"description", "\"Any leak\""}, {"price_cents", "12000"},
      {"duration_minutes", "60"}, {"aliases", "[\"leak\",\"drip\"]"}, {"priority", "1"}, {"active", "true"}}, NULL},
    {"PATCH", "/v1/catalog/items/{}", 2, 0, {{"price_cents", "15000"}, {"duration_minutes", "90"}, {"name", "\"Drain\""}}, NULL},
    {"POST", "/v1/catalog/match", 0, 0, {{"text", "\"my drain is clogged\""}, {"limit", "3"}}, NULL},
    {"POST", "/v1/scheduling/resources", 0, 0,
     {{"name", "\"Van 2\""}, {"business_hours", "{\"tue\":[[\"09:00\",\"17:00\"]]}"}, {"active", "true"}}, NULL},
    {"PATCH", "/v1/scheduling/resources/{}", 3, 0, {{"name", "\"Van 1\""}, {"active", "true"}}, NULL},
    {"POST", "/v1/scheduling/holds", 0, 0,
     {{"resource_id", "RES"}, {"item_id", "ITEM"}, {"start", "\"2030-01-07T10:00:00Z\""},
      {"customer_name", "\"Pat\""}, {"customer_phone", "\"+15550009999\""}, {"notes", "\"gate code 12\""}}, NULL},
    {"POST", "/v1/scheduling/bookings", 0, 0, {{"hold_id", "HOLD"}}, NULL},
    {"PATCH", "/v1/scheduling/appointments/{}", 4, 0,
     {{"status", "\"cancelled\""}, {"reason", "\"customer asked\""}, {"start", "\"2030-01-08T10:00:00Z\""}}, NULL},
    {"PATCH", "/v1/admin/tenants/{}", 1, 1,
     {{"business_hours", "{\"mon\":[[\"08:00\",\"17:00\"]]}"}, {"first_reply_template_in_hours", "\"Hi {business_name}\""},
      {"first_reply_template_after_hours", "\"Closed; {business_phone}\""}, {"help_text", "\"Reply STOP to opt out\""}},
     "settings"},
    {"PATCH", "/v1/scheduling/resources/{}", 3, 0,
     {{"mon", "[[\"08:00\",\"17:00\"]]"}, {"tue", "[[\"08:00\",\"12:00\"],[\"13:00\",\"17:00\"]]"},
      {"wed", "[]"}, {"thu", "[[\"22:00\",\"02:00\"]]"}, {"fri", "[[\"00:00\",\"23:59\"]]"}, {"sat", "[]"},
      {"sun", "[]"}},
     "business_hours"},
};

static const char *route_id(int which)
{
    switch (which) {
    case 1: return T.id;
    case 2: return g_item;
    case 3: return g_res;
    case 4: return g_appt;
    default: return "";
    }
}

/* A field's valid value: the names RES, ITEM and HOLD stand for the ids the setup created. */
static void put_value(struct nmc_buf *b, const char *v)
{
    if (strcmp(v, "RES") == 0)
        (void)nmc_buf_printf(b, "\"%s\"", g_res);
    else if (strcmp(v, "ITEM") == 0)
        (void)nmc_buf_printf(b, "\"%s\"", g_item);
    else if (strcmp(v, "HOLD") == 0)
        (void)nmc_buf_printf(b, "\"%s\"", g_hold);
    else
        (void)nmc_buf_puts(b, v);
}

/* tmpl with each "{}" replaced by the next of args (NULL-terminated). */
static void fill(char *out, size_t n, const char *tmpl, const char *const *args)
{
    size_t o = 0;
    for (const char *t = tmpl; *t != '\0' && o + 1 < n; t++) {
        if (t[0] == '{' && t[1] == '}' && *args != NULL) {
            o += (size_t)snprintf(out + o, n - o, "%s", *args++);
            if (o >= n)
                o = n - 1;
            t++;
        } else {
            out[o++] = *t;
        }
    }
    out[o] = '\0';
}

/* ---- the check of every answer ---- */

static void record(const char *method, const char *path, const char *body, const char *why, int status,
                   const struct nmc_test_http_resp *r)
{
    g_fails++;
    if (g_fails > MAX_FAILS)
        return;
    (void)nmc_buf_printf(&g_report, "  %s %.200s -> %d (%s)%s%.300s%s%s%.120s\n      answer: %.300s\n", method, path,
                         status, why, body != NULL ? "\n      body: " : "", body != NULL ? body : "",
                         body != NULL && strlen(body) > 300 ? "..." : "", g_header ? "\n      header: " : "",
                         g_header ? g_header : "", r != NULL && r->body ? r->body : "");
}

static void check(const char *method, const char *path, const char *body, int status,
                  const struct nmc_test_http_resp *r)
{
    g_requests++;
    if (status >= 100 && status < 600)
        g_by_class[status / 100]++;
    if (status == 401 || status == 403)
        g_unauthorized++;
    if (status < 0) {
        record(method, path, body, "no answer", status, NULL);
        return;
    }
    if (status >= 500) {
        record(method, path, body, "server error", status, r);
        return;
    }
    if (status < 400 && status != 204 && strncmp(path, "/v1/", 4) == 0) {
        json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
        if (!json_is_object(j) && !json_is_array(j))
            record(method, path, body, "success without a JSON body", status, r);
        json_decref(j);
        return;
    }
    if (status >= 400) {
        json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
        json_t *e = json_object_get(j, "error");
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (code == NULL || code[0] == '\0' || msg == NULL || msg[0] == '\0')
            record(method, path, body, "4xx without a JSON error", status, r);
        json_decref(j);
    }
}

static void send_checked(const char *cred, const char *extra, const char *method, const char *path, const char *body)
{
    const char *hdrs[] = {cred, extra};
    struct nmc_test_http_resp r;
    memset(&r, 0, sizeof r);
    int status = e2e_raw(method, path, hdrs, 2, body, &r);
    check(method, path, body, status, status >= 0 ? &r : NULL);
    if (status >= 0)
        nmc_test_http_resp_free(&r);
}

/* ---- the kinds of bad request ---- */

/* One request header with a hostile value, or a second Content-Type. */
static char *nasty_header(void)
{
    static const char *const names[] = {"Idempotency-Key", "X-Correlation-Id", "traceparent", "Content-Type",
                                        "X-API-Key", "Authorization", "I-Twilio-Idempotency-Token"};
    const char *v = nasty_raw[pick(NMC_ARRAY_SIZE(nasty_raw))];
    struct nmc_buf h = {0};
    (void)nmc_buf_printf(&h, "%s: ", names[pick(NMC_ARRAY_SIZE(names))]);
    if (pick(4) == 0) { /* long */
        for (size_t i = 0; i < 300; i++)
            (void)nmc_buf_puts(&h, "k");
    } else {
        /* raw bytes, but never a line break: that would be another header */
        for (const char *p = v; *p != '\0'; p++)
            (void)nmc_buf_printf(&h, "%c", *p == '\r' || *p == '\n' ? '_' : *p);
    }
    return nmc_buf_steal(&h, NULL);
}

static void bad_json_request(void)
{
    const struct json_route *rt = &json_routes[pick(NMC_ARRAY_SIZE(json_routes))];
    size_t nf = 0;
    while (nf < 8 && rt->fields[nf].key != NULL)
        nf++;
    size_t target = pick(nf), op = pick(10);
    struct nmc_buf b = {0};
    if (rt->wrap != NULL)
        (void)nmc_buf_printf(&b, "{\"%s\":", rt->wrap);
    (void)nmc_buf_puts(&b, "{");
    int first = 1;
    for (size_t i = 0; i < nf; i++) {
        if (i == target && op == 0)
            continue; /* missing field */
        (void)nmc_buf_printf(&b, "%s\"%s\":", first ? "" : ",", rt->fields[i].key);
        first = 0;
        if (i == target && op >= 3)
            nasty_value(&b);
        else
            put_value(&b, rt->fields[i].value);
        if (i == target && op == 1) { /* the same key twice */
            (void)nmc_buf_printf(&b, ",\"%s\":", rt->fields[i].key);
            nasty_value(&b);
        }
    }
    if (op == 2) { /* an unknown key */
        (void)nmc_buf_printf(&b, "%s\"%s\":", first ? "" : ",", pick(2) ? "extra" : "Name");
        nasty_value(&b);
    }
    (void)nmc_buf_puts(&b, rt->wrap != NULL ? "}}" : "}");
    if (op == 9 && b.len > 2) /* cut short */
        b.len = 1 + pick(b.len - 1), b.data[b.len] = '\0';

    char path[256];
    const char *ids[] = {rt->id == 5 ? T.id : route_id(rt->id), g_user, NULL};
    fill(path, sizeof path, rt->path, ids);
    char idem[64];
    snprintf(idem, sizeof idem, "Idempotency-Key: bad-input-%d", g_requests);
    char *extra = pick(6) == 0 ? nasty_header() : NULL;
    g_header = extra;
    send_checked(rt->admin ? ADMIN : T.key_hdr, extra != NULL ? extra : strstr(path, "bookings") ? idem : NULL,
                 rt->method, path, b.data);
    g_header = NULL;
    free(extra);
    nmc_buf_free(&b);
}

static void bad_query_request(void)
{
    static const struct {
        const char *path;
        const char *params[4];
        int admin;
    } q[] = {
        {"/v1/reports/daily", {"from", "to"}, 0},
        {"/v1/scheduling/availability", {"item_id", "from", "to", "resource_id"}, 0},
        {"/v1/scheduling/appointments", {"from", "to", "resource_id", "status"}, 0},
        {"/v1/catalog/items", {"active", "limit", "cursor"}, 0},
        {"/v1/scheduling/resources", {"active"}, 0},
        {"/v1/admin/tenants", {"limit", "cursor", "compliance_status"}, 1},
    };
    static const char *const good[] = {"2030-01-07", "2030-01-07T00:00:00Z", "2030-01-09T00:00:00Z", "true", "10"};
    size_t k = pick(NMC_ARRAY_SIZE(q));
    struct nmc_buf p = {0};
    (void)nmc_buf_puts(&p, q[k].path);
    char sep = '?';
    for (size_t i = 0; i < 4 && q[k].params[i] != NULL; i++) {
        const char *name = q[k].params[i];
        char *v;
        if (pick(2))
            v = nmc_url_encode(nasty_raw[pick(NMC_ARRAY_SIZE(nasty_raw))]);
        else if (strcmp(name, "item_id") == 0)
            v = nmc_xstrdup(g_item);
        else if (strcmp(name, "resource_id") == 0)
            v = nmc_xstrdup(g_res);
        else
            v = nmc_xstrdup(good[pick(NMC_ARRAY_SIZE(good))]);
        if (pick(8) == 0) /* a raw, undecodable escape */
            (void)nmc_buf_printf(&p, "%c%s=%%zz%s", sep, name, v);
        else
            (void)nmc_buf_printf(&p, "%c%s=%s", sep, name, v);
        if (pick(6) == 0) /* the same parameter twice */
            (void)nmc_buf_printf(&p, "&%s=%s", name, v);
        sep = '&';
        free(v);
    }
    send_checked(q[k].admin ? ADMIN : T.key_hdr, NULL, "GET", p.data, NULL);
    nmc_buf_free(&p);
}

static void bad_path_request(void)
{
    static const struct {
        const char *method, *fmt;
        int admin;
    } p[] = {
        {"GET", "/v1/admin/tenants/{}", 1},
        {"GET", "/v1/admin/tenants/{}/users", 1},
        {"GET", "/v1/catalog/items/{}", 0},
        {"GET", "/v1/catalog/items/{}/quote", 0},
        {"DELETE", "/v1/catalog/items/{}", 0},
        {"GET", "/v1/scheduling/resources/{}", 0},
        {"DELETE", "/v1/scheduling/holds/{}", 0},
        {"GET", "/v1/scheduling/appointments/{}", 0},
    };
    size_t k = pick(NMC_ARRAY_SIZE(p));
    char *id = nmc_url_encode(nasty_raw[pick(NMC_ARRAY_SIZE(nasty_raw))]);
    if (id[0] == '\0') {
        free(id);
        id = nmc_xstrdup("%20");
    }
    char path[512];
    const char *ids[] = {id, NULL};
    fill(path, sizeof path, p[k].fmt, ids);
    send_checked(p[k].admin ? ADMIN : T.key_hdr, NULL, p[k].method, path, NULL);
    free(id);
}

/* A correctly signed Twilio webhook with one field hostile. */
static void bad_webhook(void)
{
    static const struct {
        const char *path;
        const char *keys[8];
        const char *values[8];
    } w[] = {
        {"/webhooks/twilio/voice-status",
         {"AccountSid", "CallSid", "CallStatus", "CallDuration", "Direction", "From", "To"},
         {"ACtest", "CA{}", "no-answer", "0", "inbound", "+1555{}", NUMBER}},
        {"/webhooks/twilio/sms",
         {"AccountSid", "MessageSid", "From", "To", "Body", "NumMedia"},
         {"ACtest", "SM{}", "+1555{}", NUMBER, "hello", "0"}},
        {"/webhooks/twilio/message-status",
         {"AccountSid", "MessageSid", "MessageStatus", "ErrorCode", "To"},
         {"ACtest", "SM{}", "delivered", "30003", "+15550009999"}},
    };
    size_t k = pick(NMC_ARRAY_SIZE(w)), n = 0;
    while (n < 8 && w[k].keys[n] != NULL)
        n++;
    size_t target = pick(n), op = pick(8);
    char vals[9][64];
    struct nmc_prov_kv kv[9];
    for (size_t i = 0; i < n; i++) {
        char seq[16];
        snprintf(seq, sizeof seq, "%07d", 1000000 + g_requests);
        const char *args[] = {seq, NULL};
        fill(vals[i], sizeof vals[i], w[k].values[i], args);
        kv[i].name = w[k].keys[i];
        kv[i].value = i == target && op >= 3 ? nasty_raw[pick(NMC_ARRAY_SIZE(nasty_raw))] : vals[i];
    }
    if (op == 0) { /* a field missing */
        kv[target] = kv[n - 1];
        n--;
    } else if (op == 1) { /* a field twice, the second value hostile */
        kv[n].name = kv[target].name;
        kv[n++].value = nasty_raw[pick(NMC_ARRAY_SIZE(nasty_raw))];
    } else if (op == 2) { /* an unknown field */
        kv[n].name = pick(2) ? "Extra" : nasty_raw[pick(NMC_ARRAY_SIZE(nasty_raw))];
        kv[n++].value = nasty_raw[pick(NMC_ARRAY_SIZE(nasty_raw))];
    }
    char target_path[160];
    if (k == 2) {
        char *mid = nmc_url_encode(pick(2) ? g_appt : nasty_raw[pick(NMC_ARRAY_SIZE(nasty_raw))]);
        snprintf(target_path, sizeof target_path, "%s?mid=%s", w[k].path, mid);
        free(mid);
    } else {
        snprintf(target_path, sizeof target_path, "%s", w[k].path);
    }
    struct nmc_buf body = {0};
    for (size_t i = 0; i < n; i++) {
        char *ek = nmc_url_encode(kv[i].name), *ev = nmc_url_encode(kv[i].value);
        (void)nmc_buf_printf(&body, "%s%s=%s", i ? "&" : "", ek, ev);
        free(ek);
        free(ev);
    }
    char url[256], sig[NMC_PROV_TWILIO_SIG_LEN], hdr[160];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", E.nmc.port, target_path);
    assert_int_equal(nmc_prov_twilio_sig_compute(TOKEN, url, kv, n, sig), 0);
    snprintf(hdr, sizeof hdr, "X-Twilio-Signature: %s", sig);

    struct nmc_buf raw = {0};
    (void)nmc_buf_printf(&raw,
                         "POST %s HTTP/1.1\r\nHost: nmc.test\r\nConnection: close\r\n%s\r\n",
                         target_path, hdr);
    char *extra = pick(6) == 0 ? nasty_header() : NULL;
    if (extra != NULL)
        (void)nmc_buf_printf(&raw, "%s\r\n", extra);
    g_header = extra;
    (void)nmc_buf_printf(&raw, "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n%s",
                         body.len, body.data);
    struct nmc_test_http_resp r;
    memset(&r, 0, sizeof r);
    int rc = nmc_test_http_request(E.nmc.port, raw.data, E2E_TIMEOUT_MS, &r);
    check("POST", target_path, body.data, rc == 0 ? r.status : rc, rc == 0 ? &r : NULL);
    if (rc == 0)
        nmc_test_http_resp_free(&r);
    g_header = NULL;
    free(extra);
    nmc_buf_free(&raw);
    nmc_buf_free(&body);
}

/* ---- fixture ---- */

/* A hold on the resource for the item, days from now at 10:00; its id. */
static char *new_hold(int days)
{
    char *start = e2e_future(days, "10:00", "America/New_York");
    char *body = e2e_fmt("{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\"}", g_res, g_item, start);
    json_t *h = e2e_must(201, T.key_hdr, "POST", "/v1/scheduling/holds", body);
    char *id = nmc_xstrdup(e2e_str(h, "id"));
    json_decref(h);
    free(body);
    free(start);
    return id;
}

static int setup(void **state)
{
    (void)state;
    /* first SMS go to a closed local port (nothing to send them to here) */
    static const char *const env[] = {"TWILIO_API_BASE", "http://127.0.0.1:9", NULL};
    e2e_start(env);
    e2e_tenant_create("Bad Input Co", "America/New_York", &T);
    char *path = e2e_fmt("/v1/admin/tenants/%s", T.id);
    json_decref(e2e_must(200, ADMIN, "PATCH", path,
                         "{\"phone_numbers\":[\"" NUMBER "\"],\"compliance_status\":\"approved\"}"));
    free(path);
    g_user = e2e_user_create(T.id, "user_bad_input_0", "TECH", 1);
    g_item = e2e_item_create(&T, "Drain cleaning", 9900, 60);
    g_res = e2e_resource_create(&T, "Van 1", "00:00", "23:59");
    g_hold = new_hold(3);
    char *book = e2e_fmt("{\"hold_id\":\"%s\"}", g_hold);
    json_t *a = NULL;
    assert_int_equal(e2e_req2(T.key_hdr, "Idempotency-Key: bad-input-setup", "POST", "/v1/scheduling/bookings",
                              book, &a),
                     201);
    g_appt = nmc_xstrdup(e2e_str(a, "id"));
    json_decref(a);
    free(book);
    /* a fresh hold for the sweep's bookings (the first one is booked) */
    free(g_hold);
    g_hold = new_hold(4);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_stop();
    free(g_item);
    free(g_res);
    free(g_user);
    free(g_hold);
    free(g_appt);
    return 0;
}

static void test_bad_input_sweep_every_answer_is_a_clear_4xx_or_success(void **state)
{
    (void)state;
    const char *s = getenv("NMC_BAD_INPUT_SEED"), *n = getenv("NMC_BAD_INPUT_REQUESTS");
    int64_t seed = 20261207, total = 2000;
    if (s != NULL && s[0] != '\0' && nmc_parse_i64(s, 1, INT64_MAX, &seed) != 0)
        fail_msg("NMC_BAD_INPUT_SEED must be a positive integer, got '%s'", s);
    if (n != NULL && n[0] != '\0' && nmc_parse_i64(n, 100, 1000000, &total) != 0)
        fail_msg("NMC_BAD_INPUT_REQUESTS must be an integer from 100 to 1000000, got '%s'", n);
    g_rng = (uint64_t)seed;
    print_message("bad input sweep: seed %lld, %lld requests\n", (long long)seed, (long long)total);
    for (int64_t i = 0; i < total; i++) {
        switch (pick(10)) {
        case 0:
        case 1:
        case 2:
        case 3:
            bad_json_request();
            break;
        case 4:
        case 5:
            bad_query_request();
            break;
        case 6:
            bad_path_request();
            break;
        default:
            bad_webhook();
            break;
        }
    }
    print_message("answers: %d 2xx, %d 4xx (%d of them 401/403), %d 5xx\n", g_by_class[2], g_by_class[4],
                  g_unauthorized, g_by_class[5]);
    /* the sweep reached past authentication and into the handlers: most
     * requests are refused on their content, and some mutations (an
     * unknown-to-be-harmless value, a valid id) are accepted */
    assert_true(g_by_class[2] > total / 50);
    assert_true(g_by_class[4] > total / 2);
    assert_true(g_unauthorized < total / 50);
    /* still serving, and still sound */
    json_t *hz = NULL;
    assert_int_equal(e2e_req(NULL, "GET", "/healthz", NULL, &hz), 200);
    json_decref(hz);
    if (g_fails > 0) {
        fprintf(stderr, "%d of %d requests got a wrong answer (seed %lld; first %d):\n%s", g_fails, g_requests,
                (long long)seed, MAX_FAILS, g_report.data);
        fail_msg("%d of %d requests got a wrong answer (seed %lld): listed above", g_fails, g_requests,
                 (long long)seed);
    }
    nmc_buf_free(&g_report);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input_sweep_every_answer_is_a_clear_4xx_or_success),
    };
    return cmocka_run_group_tests_name("e2e_bad_input", tests, setup, teardown);
}
