/* End to end: missed call -> first SMS with the real nmc binary, a real
 * PostgreSQL and the Twilio emulator nmc-fakes (owner: sms engineer).
 * Covers the flow, replays x5 -> one SMS, signatures (valid, tampered body,
 * wrong URL, missing header), unknown number, STOP/START/HELP, and that
 * every emitted event payload conforms to its catalog schema. */
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http/body.h"
#include "providers/twilio_sig.h"
#include "tests/support/json_schema.h"
#include "tests/support/nmc_proc.h"
#include "tests/support/pgtest.h"

#define TOKEN "test-auth-token"
#define TENANT "11111111-1111-1111-1111-111111111111"
#define BUSINESS "+15550001000"

static char *db_url;
static struct nmc_proc nmc;
static pid_t fakes_pid;
static int fakes_port;
static PGconn *pg;
static char public_base[128];
static int call_seq;

/* ---- tiny blocking HTTP client ---- */

static int http_call(int port, const char *method, const char *target, const char *const *headers, const char *body,
                     char *resp, size_t resplen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[8192];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, target);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        n += snprintf(req + n, sizeof req - (size_t)n, "%s\r\n", headers[i]);
    if (body != NULL)
        n += snprintf(req + n, sizeof req - (size_t)n,
                      "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n%s", strlen(body),
                      body);
    else
        n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < resplen && (r = read(fd, resp + got, resplen - 1 - got)) > 0)
        got += (size_t)r;
    resp[got] = '\0';
    close(fd);
    int status = 0;
    if (sscanf(resp, "HTTP/1.1 %d", &status) != 1)
        return -1;
    return status;
}

struct kv {
    const char *k, *v;
};

/* Posts a form webhook signed for sign_url (NULL: the right public URL).
 * sig_mode: 0 valid, 1 no header, 2 tamper the body after signing. */
static int post_webhook(const char *path, const struct kv *kv, size_t n, const char *sign_url, int sig_mode,
                        char *resp, size_t resplen)
{
    struct nmc_prov_kv params[16];
    char body[4096] = "";
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        params[i] = (struct nmc_prov_kv){ kv[i].k, kv[i].v };
        char *ek = nmc_url_encode(kv[i].k), *ev = nmc_url_encode(kv[i].v);
        len += (size_t)snprintf(body + len, sizeof body - len, "%s%s=%s", i ? "&" : "", ek, ev);
        free(ek);
        free(ev);
    }
    char url[512], sig[NMC_PROV_TWILIO_SIG_LEN], hdr[128];
    snprintf(url, sizeof url, "%s%s", public_base, path);
    assert_int_equal(nmc_prov_twilio_sig_compute(TOKEN, sign_url ? sign_url : url, params, n, sig), 0);
    snprintf(hdr, sizeof hdr, "X-Twilio-Signature: %s", sig);
    if (sig_mode == 2)
        snprintf(body + len, sizeof body - len, "&Extra=1");
    const char *headers[] = { sig_mode == 1 ? NULL : hdr, NULL };
    return http_call(nmc.port, "POST", path, headers, body, resp, resplen);
}

static int missed_call(const char *sid, const char *from, const char *to, char *resp, size_t resplen)
{
    struct kv kv[] = { { "AccountSid", "ACtest" }, { "CallSid", sid }, { "CallStatus", "no-answer" },
                       { "CallDuration", "0" }, { "Direction", "inbound" }, { "From", from }, { "To", to } };
    return post_webhook("/webhooks/twilio/voice-status", kv, 7, NULL, 0, resp, resplen);
}

static int inbound_sms(const char *sid, const char *from, const char *body)
{
    char resp[4096];
    struct kv kv[] = { { "AccountSid", "ACtest" }, { "MessageSid", sid }, { "From", from }, { "To", BUSINESS },
                       { "Body", body }, { "NumMedia", "0" } };
    return post_webhook("/webhooks/twilio/sms", kv, 6, NULL, 0, resp, sizeof resp);
}

/* Messages the emulator accepted for to; bodies copied into last_body. */
static int fakes_count(const char *to, char *last_body, size_t lblen)
{
    char target[256], resp[65536];
    char *e = nmc_url_encode(to);
    snprintf(target, sizeof target, "/_fakes/messages?to=%s", e);
    free(e);
    if (http_call(fakes_port, "GET", target, NULL, NULL, resp, sizeof resp) != 200)
        return -1;
    json_t *j = json_loads(strstr(resp, "\r\n\r\n") + 4, 0, NULL);
    json_t *msgs = json_object_get(j, "messages");
    int n = (int)json_array_size(msgs);
    if (last_body != NULL && n > 0)
        snprintf(last_body, lblen, "%s", json_string_value(json_object_get(json_array_get(msgs, (size_t)n - 1), "body")));
    json_decref(j);
    return n;
}

static int wait_count(const char *to, int want, int ms, char *last_body, size_t lblen)
{
    int n = -1;
    for (int waited = 0; waited <= ms; waited += 20) {
        n = fakes_count(to, last_body, lblen);
        if (n >= want)
            return n;
        usleep(20000);
    }
    return n;
}

static void caller_number(char out[20])
{
    snprintf(out, 20, "+1555%07d", 2000000 + (++call_seq) * 7 + (int)(getpid() % 1000));
}

/* ---- fixtures ---- */

static void start_fakes(void)
{
    char bin[512], port[16];
    fakes_port = nmc_proc_free_port();
    snprintf(port, sizeof port, "%d", fakes_port);
    nmc_proc_bin("nmc-fakes", bin, sizeof bin);
    fakes_pid = fork();
    if (fakes_pid == 0) {
        execl(bin, bin, "--port", port, "--twilio-auth-token", TOKEN, "--status-callbacks", "--unsubscribed",
              "+15559990000", (char *)NULL);
        _exit(127);
    }
    char resp[1024];
    for (int i = 0; i < 200 && http_call(fakes_port, "GET", "/_fakes/stats", NULL, NULL, resp, sizeof resp) != 200; i++)
        usleep(20000);
}

static int setup(void **state)
{
    (void)state;
    db_url = pgtest_db_create();
    start_fakes();
    nmc_proc_init(&nmc, db_url);
    char api[128];
    snprintf(api, sizeof api, "http://127.0.0.1:%d", fakes_port);
    nmc_proc_setenv(&nmc, "TWILIO_API_BASE", api);
    nmc_proc_setenv(&nmc, "TWILIO_AUTH_TOKEN", TOKEN);
    snprintf(public_base, sizeof public_base, "http://127.0.0.1:%d", nmc.port);
    nmc_proc_setenv(&nmc, "PUBLIC_BASE_URL", public_base);
    assert_int_equal(nmc_proc_migrate(&nmc, "up"), 0);
    pg = pgtest_connect(db_url);
    pgtest_exec(pg, "INSERT INTO tenants (id, name, timezone, api_key_hash, api_key_prefix, compliance_status)"
                    " VALUES ('" TENANT "', 'Demo Plumbing', 'America/New_York', 'h', 'p', 'approved');"
                    "INSERT INTO tenant_phone_numbers (tenant_id, e164) VALUES ('" TENANT "', '" BUSINESS "')");
    assert_int_equal(nmc_proc_start(&nmc, NULL), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int code = 0;
    long ms = 0;
    nmc_proc_stop(&nmc, &code, &ms);
    nmc_proc_free(&nmc);
    if (fakes_pid > 0) {
        kill(fakes_pid, SIGTERM);
        waitpid(fakes_pid, NULL, 0);
    }
    PQfinish(pg);
    pgtest_db_drop(db_url);
    return 0;
}

/* ---- tests ---- */

static void test_first_sms_missed_call_replayed_five_times_sends_one(void **state)
{
    (void)state;
    char caller[20], sid[40], resp[4096], body[2048];
    caller_number(caller);
    snprintf(sid, sizeof sid, "CAe2e%08d", call_seq);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(missed_call(sid, caller, BUSINESS, resp, sizeof resp), 200);
        assert_non_null(strstr(resp, "Content-Type: text/xml"));
        assert_non_null(strstr(resp, "<Response/>"));
    }
    assert_int_equal(wait_count(caller, 1, 5000, body, sizeof body), 1);
    assert_non_null(strstr(body, "Demo Plumbing"));
    usleep(500000); /* nothing else may arrive */
    assert_int_equal(fakes_count(caller, NULL, 0), 1);
    char q[512];
    snprintf(q, sizeof q, "SELECT count(*) FROM webhook_events WHERE event_id LIKE 'voice:%s:%%'", sid);
    assert_int_equal(pgtest_int(pg, q), 1);
    snprintf(q, sizeof q, "SELECT count(*) FROM outbox_events WHERE event_name = 'CallDetected'"
                          " AND payload->>'call_sid' = '%s'", sid);
    assert_int_equal(pgtest_int(pg, q), 1);
    snprintf(q, sizeof q, "SELECT count(*) FROM first_responses f JOIN messages m ON m.id = f.message_id"
                          " WHERE m.to_e164 = '%s' AND f.first_queued_at IS NOT NULL", caller);
    assert_int_equal(pgtest_int(pg, q), 1);
}

static void test_first_sms_emitted_payloads_match_catalog(void **state)
{
    (void)state;
    PGresult *r = PQexec(pg, "SELECT event_name, schema_version, payload::text FROM outbox_events"
                             " UNION ALL SELECT event_name, schema_version, payload::text FROM outbox_events_errors");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_true(PQntuples(r) > 0);
    for (int i = 0; i < PQntuples(r); i++) {
        char err[512];
        if (json_schema_validate_event(PQgetvalue(r, i, 0), (int)strtol(PQgetvalue(r, i, 1), NULL, 10), PQgetvalue(r, i, 2), err,
                                       sizeof err) != 0)
            fail_msg("%s: %s", PQgetvalue(r, i, 0), err);
    }
    PQclear(r);
}

static void test_first_sms_signature_failures_are_401(void **state)
{
    (void)state;
    char caller[20], resp[4096];
    caller_number(caller);
    struct kv kv[] = { { "CallSid", "CAsig0001" }, { "CallStatus", "no-answer" }, { "From", caller }, { "To", BUSINESS } };
    assert_int_equal(post_webhook("/webhooks/twilio/voice-status", kv, 4, NULL, 2, resp, sizeof resp), 401);
    assert_int_equal(post_webhook("/webhooks/twilio/voice-status", kv, 4, "http://evil.example/webhooks/twilio/voice-status",
                                  0, resp, sizeof resp), 401);
    assert_int_equal(post_webhook("/webhooks/twilio/voice-status", kv, 4, NULL, 1, resp, sizeof resp), 401);
    usleep(300000);
    assert_int_equal(fakes_count(caller, NULL, 0), 0);
    assert_int_equal(pgtest_int(pg, "SELECT count(*) FROM webhook_events WHERE event_id LIKE 'voice:CAsig0001%'"), 0);
}

static void test_first_sms_unknown_number_gets_empty_twiml(void **state)
{
    (void)state;
    char caller[20], resp[4096];
    caller_number(caller);
    assert_int_equal(missed_call("CAunknown01", caller, "+15557770000", resp, sizeof resp), 200);
    assert_non_null(strstr(resp, "<Response/>"));
    usleep(300000);
    assert_int_equal(fakes_count(caller, NULL, 0), 0);
}

static void test_first_sms_stop_start_help(void **state)
{
    (void)state;
    char caller[20], resp[4096], body[2048], sid[40];
    caller_number(caller);
    assert_int_equal(inbound_sms("SMstop0001", caller, "  stop "), 200);
    assert_int_equal(wait_count(caller, 1, 5000, body, sizeof body), 1);
    assert_non_null(strstr(body, "unsubscribed"));
    snprintf(sid, sizeof sid, "CAstop%08d", call_seq);
    assert_int_equal(missed_call(sid, caller, BUSINESS, resp, sizeof resp), 200);
    usleep(500000);
    assert_int_equal(fakes_count(caller, NULL, 0), 1); /* opted out: no first reply */
    assert_int_equal(inbound_sms("SMhelp0001", caller, "HELP"), 200);
    assert_int_equal(wait_count(caller, 2, 5000, body, sizeof body), 2);
    assert_non_null(strstr(body, "Reply STOP"));
    assert_int_equal(inbound_sms("SMstart001", caller, "Start"), 200);
    assert_int_equal(wait_count(caller, 3, 5000, body, sizeof body), 3);
    assert_non_null(strstr(body, "resubscribed"));
    char q[256];
    snprintf(q, sizeof q, "SELECT opted_out::int FROM sms_opt_outs WHERE phone_e164 = '%s'", caller);
    assert_int_equal(pgtest_int(pg, q), 0);
}

static void test_first_sms_twilio_21610_opts_out_without_retry(void **state)
{
    (void)state;
    char resp[4096];
    const char *caller = "+15559990000"; /* nmc-fakes answers 21610 for it */
    assert_int_equal(missed_call("CA21610001", caller, BUSINESS, resp, sizeof resp), 200);
    for (int i = 0; i < 250 && pgtest_int(pg, "SELECT count(*) FROM outbox_events_errors"
                                              " WHERE payload->>'call_sid' = 'CA21610001'") == 0; i++)
        usleep(20000);
    assert_int_equal(pgtest_int(pg, "SELECT count(*) FROM outbox_events_errors WHERE payload->>'call_sid' = 'CA21610001'"), 1);
    assert_int_equal(pgtest_int(pg, "SELECT attempts FROM outbox_events_errors WHERE payload->>'call_sid' = 'CA21610001'"), 1);
    assert_int_equal(pgtest_int(pg, "SELECT opted_out::int FROM sms_opt_outs WHERE phone_e164 = '+15559990000'"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_sms_missed_call_replayed_five_times_sends_one),
        cmocka_unit_test(test_first_sms_signature_failures_are_401),
        cmocka_unit_test(test_first_sms_unknown_number_gets_empty_twiml),
        cmocka_unit_test(test_first_sms_stop_start_help),
        cmocka_unit_test(test_first_sms_twilio_21610_opts_out_without_retry),
        cmocka_unit_test(test_first_sms_emitted_payloads_match_catalog),
    };
    return cmocka_run_group_tests_name("e2e_first_sms", tests, setup, teardown);
}
