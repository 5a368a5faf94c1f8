/* Helpers shared by the first-SMS end-to-end suites (owner: sms engineer):
 * the real nmc binary, a fresh PostgreSQL database per file and the Twilio
 * emulator nmc-fakes. Header-only (static functions) because every
 * tests/e2e/test_*.c is its own executable; include it once per suite.
 *
 *   e2e_setup(fakes_args);               // database, migrations, emulator
 *   nmc_proc_setenv(&E.nmc, ...);        // extra knobs
 *   assert_int_equal(nmc_proc_start(&E.nmc, NULL), 0);
 *   e2e_missed_call("CA..", caller, business, NULL) -> 200
 *   e2e_sms_count(caller) -> messages nmc-fakes accepted for caller
 *   e2e_teardown();
 *
 * Every helper fails the current cmocka test on a broken harness (cannot
 * connect, unparseable answer) and returns what the product did otherwise. */
#ifndef NMC_TESTS_E2E_FIRST_SMS_E2E_H
#define NMC_TESTS_E2E_FIRST_SMS_E2E_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http/body.h"
#include "providers/twilio_sig.h"
#include "tests/support/fakes_proc.h"
#include "tests/support/nmc_proc.h"
#include "tests/support/pgtest.h"

#define E2E_TOKEN "test-auth-token"
#define E2E_ADMIN_KEY "X-Admin-API-Key: test-admin-key"
#define E2E_RESP_MAX (1 << 20)

static struct {
    char *db_url;
    struct nmc_proc nmc;
    struct nmc_fakes_proc fakes;
    PGconn *pg;
    char public_base[128];
    int seq;
} E;

static inline void e2e_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static inline int64_t e2e_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a small blocking HTTP/1.1 client (Connection: close) ---- */

static inline int e2e_connect(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct timeval tv = { 15, 0 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One request; returns the status (-1: no answer) and the answer's body
 * (NUL-terminated) in resp. ctype may be NULL when body is NULL. */
static inline int e2e_http(int port, const char *method, const char *target, const char *const *headers,
                    const char *ctype, const char *body, char *resp, size_t resplen)
{
    char head[4096];
    int fd = e2e_connect(port), status = -1;
    if (fd < 0)
        return -1;
    size_t n = (size_t)snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
                                method, target);
    for (size_t i = 0; headers != NULL && headers[i] != NULL && n < sizeof head; i++)
        n += (size_t)snprintf(head + n, sizeof head - n, "%s\r\n", headers[i]);
    if (n < sizeof head)
        n += (size_t)snprintf(head + n, sizeof head - n, "%s%s%sContent-Length: %zu\r\n\r\n",
                              ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "",
                              body ? strlen(body) : 0);
    assert_true(n < sizeof head);
    if (send(fd, head, n, MSG_NOSIGNAL) != (ssize_t)n ||
        (body != NULL && send(fd, body, strlen(body), MSG_NOSIGNAL) != (ssize_t)strlen(body)))
        goto out;
    char *buf = malloc(E2E_RESP_MAX);
    assert_non_null(buf);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < E2E_RESP_MAX && (r = read(fd, buf + got, E2E_RESP_MAX - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    const char *sep = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1 || sep == NULL)
        status = -1;
    if (resp != NULL && resplen > 0)
        snprintf(resp, resplen, "%s", sep != NULL ? sep + 4 : "");
    free(buf);
out:
    close(fd);
    return status;
}

/* ---- Twilio webhooks, signed as Twilio signs them ---- */

struct e2e_kv {
    const char *k, *v;
};

/* Builds the form body of kv and its X-Twilio-Signature header for the
 * public URL (public_base + target: path and query). */
static inline void e2e_sign_for(const char *public_base, const char *target, const struct e2e_kv *kv, size_t n,
                                char *body, size_t bodylen, char hdr[128])
{
    struct nmc_prov_kv params[16];
    char url[512], sig[NMC_PROV_TWILIO_SIG_LEN];
    size_t len = 0;
    assert_true(n <= 16);
    body[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        params[i] = (struct nmc_prov_kv){ kv[i].k, kv[i].v };
        char *ek = nmc_url_encode(kv[i].k), *ev = nmc_url_encode(kv[i].v);
        len += (size_t)snprintf(body + len, bodylen - len, "%s%s=%s", i ? "&" : "", ek, ev);
        free(ek);
        free(ev);
        assert_true(len < bodylen);
    }
    snprintf(url, sizeof url, "%s%s", public_base, target);
    assert_int_equal(nmc_prov_twilio_sig_compute(E2E_TOKEN, url, params, n, sig), 0);
    snprintf(hdr, 128, "X-Twilio-Signature: %s", sig);
}

static inline void e2e_sign(const char *target, const struct e2e_kv *kv, size_t n, char *body, size_t bodylen,
                            char hdr[128])
{
    e2e_sign_for(E.public_base, target, kv, n, body, bodylen, hdr);
}

/* A signed webhook to the instance on port whose PUBLIC_BASE_URL is public_base. */
static inline int e2e_webhook_at(int port, const char *public_base, const char *target, const struct e2e_kv *kv,
                                 size_t n)
{
    char body[4096], hdr[128], resp[4096];
    e2e_sign_for(public_base, target, kv, n, body, sizeof body, hdr);
    const char *headers[] = { hdr, NULL };
    return e2e_http(port, "POST", target, headers, "application/x-www-form-urlencoded", body, resp, sizeof resp);
}

static inline int e2e_webhook(const char *target, const struct e2e_kv *kv, size_t n)
{
    return e2e_webhook_at(E.nmc.port, E.public_base, target, kv, n);
}

/* A missed call ("no-answer") sent to the instance on port. */
static inline int e2e_missed_call_at(int port, const char *public_base, const char *sid, const char *from,
                                     const char *to)
{
    struct e2e_kv kv[] = { { "AccountSid", "ACtest" }, { "CallSid", sid }, { "CallStatus", "no-answer" },
                           { "CallDuration", "0" }, { "Direction", "inbound" }, { "From", from }, { "To", to } };
    return e2e_webhook_at(port, public_base, "/webhooks/twilio/voice-status", kv, NMC_ARRAY_SIZE(kv));
}

static inline int e2e_missed_call(const char *sid, const char *from, const char *to)
{
    return e2e_missed_call_at(E.nmc.port, E.public_base, sid, from, to);
}

static inline int e2e_inbound_sms(const char *sid, const char *from, const char *to, const char *text)
{
    struct e2e_kv kv[] = { { "AccountSid", "ACtest" }, { "MessageSid", sid }, { "From", from }, { "To", to },
                           { "Body", text }, { "NumMedia", "0" } };
    return e2e_webhook("/webhooks/twilio/sms", kv, NMC_ARRAY_SIZE(kv));
}

/* A status callback for our message mid (as Twilio sends it to the
 * StatusCallback URL we gave, ?mid=<uuid>). error_code may be NULL. */
static inline int e2e_status_callback(const char *mid, const char *sid, const char *status, const char *error_code)
{
    char target[160];
    snprintf(target, sizeof target, "/webhooks/twilio/message-status?mid=%s", mid);
    struct e2e_kv kv[] = { { "AccountSid", "ACtest" }, { "MessageSid", sid }, { "MessageStatus", status },
                           { "ErrorCode", error_code } };
    return e2e_webhook(target, kv, error_code != NULL ? 4 : 3);
}

/* A distinct E.164 caller per call in this process. */
static inline void e2e_caller(char out[20])
{
    snprintf(out, 20, "+1555%07d", 3000000 + (++E.seq) * 13 + (int)(getpid() % 1000));
}

/* ---- nmc-fakes ---- */

/* The messages nmc-fakes accepted for to, as its JSON array (the caller
 * decrefs the document *doc), or NULL when it does not answer. */
static inline json_t *e2e_sms_list(const char *to, json_t **doc)
{
    char target[128], *resp = malloc(E2E_RESP_MAX);
    assert_non_null(resp);
    char *e = nmc_url_encode(to);
    snprintf(target, sizeof target, "/_fakes/messages?to=%s", e);
    free(e);
    *doc = NULL;
    if (e2e_http(E.fakes.port, "GET", target, NULL, NULL, NULL, resp, E2E_RESP_MAX) == 200)
        *doc = json_loads(resp, 0, NULL);
    free(resp);
    json_t *msgs = json_object_get(*doc, "messages");
    if (*doc != NULL)
        assert_true(json_is_array(msgs));
    return msgs;
}

/* Messages nmc-fakes accepted for to (-1 if it does not answer); the body of
 * the newest into last_body when given. */
static inline int e2e_sms_count_body(const char *to, char *last_body, size_t lblen)
{
    json_t *doc, *msgs = e2e_sms_list(to, &doc);
    int n = msgs != NULL ? (int)json_array_size(msgs) : -1;
    if (last_body != NULL && n > 0)
        snprintf(last_body, lblen, "%s", json_string_value(json_object_get(json_array_get(msgs, (size_t)n - 1), "body")));
    json_decref(doc);
    return n;
}

static inline int e2e_sms_count(const char *to)
{
    return e2e_sms_count_body(to, NULL, 0);
}

/* Waits up to ms for at least want messages to to; returns the count. */
static inline int e2e_wait_sms(const char *to, int want, int ms)
{
    int64_t end = e2e_now_ms() + ms;
    int n;
    while ((n = e2e_sms_count(to)) < want && e2e_now_ms() < end)
        e2e_sleep_ms(25);
    return n;
}

/* The count of every message nmc-fakes accepted, per recipient, as a JSON
 * object {"+1555...": n}; caller decrefs. */
static inline json_t *e2e_sms_by_to(void)
{
    char *resp = malloc(E2E_RESP_MAX);
    assert_non_null(resp);
    assert_int_equal(e2e_http(E.fakes.port, "GET", "/_fakes/messages", NULL, NULL, NULL, resp, E2E_RESP_MAX), 200);
    json_t *j = json_loads(resp, 0, NULL), *out = json_object();
    free(resp);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "messages"), i, m) {
        const char *to = json_string_value(json_object_get(m, "to"));
        json_t *c = json_object_get(out, to);
        json_object_set_new(out, to, json_integer(c != NULL ? json_integer_value(c) + 1 : 1));
    }
    json_decref(j);
    return out;
}

/* ---- nmc's /metrics ---- */

/* The value of one series, e.g. "first_sms_blocked_total{reason=\"compliance\"}";
 * 0 when the series is not there yet, -1 when /metrics does not answer. */
static inline double e2e_metric(const char *series)
{
    const char *headers[] = { "Authorization: Basic bTpt", NULL }; /* m:m */
    char *resp = malloc(E2E_RESP_MAX);
    assert_non_null(resp);
    double v = -1;
    if (e2e_http(E.nmc.port, "GET", "/metrics", headers, NULL, NULL, resp, E2E_RESP_MAX) == 200) {
        v = 0;
        size_t sl = strlen(series);
        for (const char *p = resp; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
            if (strncmp(p, series, sl) == 0 && p[sl] == ' ') {
                v = strtod(p + sl + 1, NULL);
                break;
            }
    }
    free(resp);
    return v;
}

/* ---- admin API ---- */

/* POST /v1/admin/tenants; the new tenant's id into id. */
static inline void e2e_create_tenant(const char *name, const char *number, const char *compliance, char id[40])
{
    char body[512], resp[4096];
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"timezone\":\"America/New_York\",\"phone_numbers\":[\"%s\"],"
             "\"compliance_status\":\"%s\"}", name, number, compliance);
    const char *headers[] = { E2E_ADMIN_KEY, NULL };
    int st = e2e_http(E.nmc.port, "POST", "/v1/admin/tenants", headers, "application/json", body, resp, sizeof resp);
    if (st != 201)
        fail_msg("POST /v1/admin/tenants: %d %s", st, resp);
    json_t *j = json_loads(resp, 0, NULL);
    const char *v = json_string_value(json_object_get(j, "id"));
    assert_non_null(v);
    snprintf(id, 40, "%s", v);
    json_decref(j);
}

/* An admin API request to the instance on port. */
static inline int e2e_admin_at(int port, const char *method, const char *target, const char *json_body, char *resp,
                               size_t resplen)
{
    const char *headers[] = { E2E_ADMIN_KEY, NULL };
    return e2e_http(port, method, target, headers, "application/json", json_body, resp, resplen);
}

static inline int e2e_admin(const char *method, const char *target, const char *json_body, char *resp, size_t resplen)
{
    return e2e_admin_at(E.nmc.port, method, target, json_body, resp, resplen);
}

/* ---- fixtures ---- */

/* A fresh database with the migrations applied, nmc-fakes started with
 * fakes_args (NULL-terminated, may be NULL) and nmc prepared (not started)
 * against both. */
static inline void e2e_setup(const char *const *fakes_args)
{
    E.db_url = pgtest_db_create();
    assert_int_equal(nmc_fakes_proc_start(&E.fakes, 0, fakes_args), 0);
    nmc_proc_init(&E.nmc, E.db_url);
    nmc_proc_setenv(&E.nmc, "TWILIO_API_BASE", E.fakes.base_url);
    nmc_proc_setenv(&E.nmc, "TWILIO_AUTH_TOKEN", E2E_TOKEN);
    nmc_proc_setenv(&E.nmc, "OUTBOX_POLL_INTERVAL_MS", "200");
    snprintf(E.public_base, sizeof E.public_base, "http://127.0.0.1:%d", E.nmc.port);
    nmc_proc_setenv(&E.nmc, "PUBLIC_BASE_URL", E.public_base);
    assert_int_equal(nmc_proc_migrate(&E.nmc, "up"), 0);
    E.pg = pgtest_connect(E.db_url);
}

/* Restarts nmc-fakes on its port with new arguments (its records start
 * empty). */
static inline void e2e_restart_fakes(const char *const *fakes_args)
{
    int port = E.fakes.port;
    nmc_fakes_proc_stop(&E.fakes);
    assert_int_equal(nmc_fakes_proc_start(&E.fakes, port, fakes_args), 0);
}

static inline void e2e_teardown(void)
{
    int code = 0;
    long ms = 0;
    if (E.nmc.pid > 0)
        nmc_proc_stop(&E.nmc, &code, &ms);
    nmc_proc_free(&E.nmc);
    nmc_fakes_proc_stop(&E.fakes);
    PQfinish(E.pg);
    E.pg = NULL;
    pgtest_db_drop(E.db_url);
    E.db_url = NULL;
}

/* An integer from SQL (printf-style). */
static inline int64_t e2e_sql_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int64_t e2e_sql_int(const char *fmt, ...)
{
    char q[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    return pgtest_int(E.pg, q);
}

/* A text value from SQL into out ("" for no row or NULL). */
static inline void e2e_sql_text(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void e2e_sql_text(char *out, size_t outlen, const char *fmt, ...)
{
    char q[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    char *v = pgtest_value(E.pg, q);
    snprintf(out, outlen, "%s", v != NULL ? v : "");
    free(v);
}

#endif
