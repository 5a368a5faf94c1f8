/* Tests for the nmc-fakes emulator (cmd/fakes*.c) as a process: signed
 * status callbacks received by the project's own HTTP server and checked
 * with providers/twilio_sig, fault and latency injection seen through the
 * Twilio client, the inspection routes, JWKS and the command line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "http/body.h"
#include "http/server.h"
#include "providers/http.h"
#include "providers/twilio.h"
#include "providers/twilio_sig.h"
#include "runtime/actor.h"
#include "runtime/clock.h"
#include "runtime/metrics.h"
#include "tests/support/fakes_proc.h"

#define SID "AC0123456789abcdef0123456789abcdef"
#define TOKEN "fakes-test-token"

extern char **environ;

struct callback {
    char status[16];
    char sid[40];
    int signature_ok;
    int has_idempotency_token;
};

struct fx {
    uv_loop_t loop;
    struct nmc_rt *rt;
    struct nmc_actor *actor;
    struct nmc_prov_http *http;
    struct nmc_http_server *server;
    struct nmc_fakes_proc fakes;
    int fakes_started;
    struct nmc_msg *got;
    int got_reply;           /* set with got */
    struct callback cbs[4];
    int ncbs;
    int two_callbacks;       /* set once ncbs reaches 2 */
    char cb_url[96];
};

static void on_msg(struct nmc_actor *self, struct nmc_msg *msg, void *state)
{
    struct fx *f = state;
    (void)self;
    nmc_rt_msg_keep(msg);
    assert_null(f->got);
    f->got = msg;
    f->got_reply = 1;
}

/* POST /cb: what a webhook receiver of ours does first, signature check. */
static void on_callback(struct nmc_http_req *req, void *ud)
{
    struct fx *f = ud;
    struct nmc_form form = {0};
    struct callback *c;

    assert_true(f->ncbs < 4);
    c = &f->cbs[f->ncbs++];
    assert_int_equal(nmc_form_parse(req->body, req->body_len, 32, &form), 0);
    c->signature_ok = nmc_prov_twilio_sig_valid_form(TOKEN, f->cb_url, &form,
                                                     nmc_http_req_header(req, "x-twilio-signature"));
    c->has_idempotency_token = nmc_http_req_header(req, "i-twilio-idempotency-token") != NULL;
    nmc_strlcpy(c->status, nmc_form_get(&form, "MessageStatus") ? nmc_form_get(&form, "MessageStatus") : "",
                sizeof(c->status));
    nmc_strlcpy(c->sid, nmc_form_get(&form, "MessageSid") ? nmc_form_get(&form, "MessageSid") : "", sizeof(c->sid));
    nmc_form_free(&form);
    f->two_callbacks = f->ncbs >= 2;
    nmc_http_respond(req, 204, "text/plain", "", 0, NULL);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: nothing within 10 s");
}

/* Runs the loop until *flag becomes nonzero. */
static void run_until(struct fx *f, const int *flag)
{
    uv_timer_t dog;

    uv_timer_init(&f->loop, &dog);
    uv_timer_start(&dog, on_watchdog, 10000, 0);
    while (!*flag)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&dog, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void start_fakes(struct fx *f, const char *const *extra)
{
    const char *args[24] = {"--twilio-auth-token", TOKEN, "--account-sid", SID};
    int n = 4;

    for (int i = 0; extra != NULL && extra[i] != NULL && n < 23; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    assert_int_equal(nmc_fakes_proc_start(&f->fakes, 0, args), 0);
    f->fakes_started = 1;
}

static int setup(void **state)
{
    struct fx *f = nmc_xcalloc(1, sizeof(*f));
    struct nmc_http_server_opts so = {.bind_addr = "127.0.0.1", .max_body_bytes = 65536, .header_timeout_ms = 5000,
                                      .idle_timeout_ms = 5000, .max_connections = 16};
    struct nmc_prov_http_opts ho = {.timeout_ms = 3000};

    nmc_metrics_reset();
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(nmc_rt_create(&f->loop, 0, &f->rt), 0);
    assert_int_equal(nmc_rt_actor_create(f->rt, "fakes-test", on_msg, f, 0, &f->actor), 0);
    assert_int_equal(nmc_prov_http_create(&f->loop, &ho, &f->http), 0);
    assert_int_equal(nmc_http_server_create(&f->loop, &so, &f->server), 0);
    assert_int_equal(nmc_http_server_route(f->server, "POST", "/cb", on_callback, f), 0);
    assert_int_equal(nmc_http_server_listen(f->server), 0);
    snprintf(f->cb_url, sizeof(f->cb_url), "http://127.0.0.1:%d/cb", nmc_http_server_port(f->server));
    *state = f;
    return 0;
}

static void on_server_down(void *ud)
{
    int *done = ud;
    *done = 1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    int down = 0;

    if (f->fakes_started)
        assert_int_equal(nmc_fakes_proc_stop(&f->fakes), 0);
    nmc_rt_msg_free(f->got);
    nmc_http_server_shutdown(f->server, 100, on_server_down, &down);
    run_until(f, &down);
    nmc_http_server_free(f->server);
    nmc_prov_http_destroy(f->http);
    nmc_rt_destroy(f->rt);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static struct nmc_prov_twilio *client(struct fx *f, int timeout_ms)
{
    struct nmc_prov_twilio_opts o = {.api_base = f->fakes.base_url, .account_sid = SID, .auth_token = TOKEN,
                                     .timeout_ms = timeout_ms, .max_attempts = 1, .breaker_off = 1};
    struct nmc_prov_twilio *t = NULL;

    assert_int_equal(nmc_prov_twilio_create(f->http, &o, &t), 0);
    return t;
}

static struct nmc_prov_twilio_sms_result *send_one(struct fx *f, struct nmc_prov_twilio *t, const char *to,
                                                   const char *status_callback)
{
    const struct nmc_prov_twilio_sms sms = {.to = to, .from = "+15550001000", .body = "hello",
                                            .status_callback = status_callback};
    nmc_rt_msg_free(f->got);
    f->got = NULL;
    f->got_reply = 0;
    assert_int_equal(nmc_prov_twilio_send_sms(t, &sms, f->actor, NULL, 0, NULL), 0);
    run_until(f, &f->got_reply);
    return f->got->payload;
}

static void test_fakes_status_callbacks_signed(void **state)
{
    struct fx *f = *state;
    const char *const extra[] = {"--status-callbacks", "--callback-delay-ms", "5", NULL};
    struct nmc_prov_twilio *t;
    struct nmc_prov_twilio_sms_result *r;
    char out[4096];

    start_fakes(f, extra);
    t = client(f, 3000);
    r = send_one(f, t, "+15551234567", f->cb_url);
    assert_int_equal(r->http_status, 201);
    run_until(f, &f->two_callbacks);
    assert_string_equal(f->cbs[0].status, "sent");
    assert_string_equal(f->cbs[1].status, "delivered");
    for (int i = 0; i < 2; i++) {
        assert_true(f->cbs[i].signature_ok);
        assert_true(f->cbs[i].has_idempotency_token);
        assert_string_equal(f->cbs[i].sid, r->sid);
    }
    assert_int_equal(nmc_fakes_proc_request(&f->fakes, "GET", "/_fakes/messages", NULL, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"status\":\"delivered\""));
    nmc_prov_twilio_destroy(t);
}

/* A GET through providers/http with the account's Basic auth. */
static struct nmc_prov_http_result *get_as_account(struct fx *f, const char *path_and_query)
{
    char url[512];
    struct nmc_prov_http_req req = {.provider = "test", .endpoint = "list", .url = url,
                                    .userpwd = SID ":" TOKEN, .max_attempts = 1};

    snprintf(url, sizeof(url), "%s%s", f->fakes.base_url, path_and_query);
    nmc_rt_msg_free(f->got);
    f->got = NULL;
    f->got_reply = 0;
    assert_int_equal(nmc_prov_http_send(f->http, &req, f->actor, 0, NULL), 0);
    run_until(f, &f->got_reply);
    assert_int_equal(f->got->type, NMC_MSG_PROV_HTTP);
    return f->got->payload;
}

static void test_fakes_list_filters_newest_first(void **state)
{
    struct fx *f = *state;
    struct nmc_prov_twilio *t;
    struct nmc_prov_http_result *r;
    char newest[40], today[32], path[160];
    json_t *j, *msgs;

    start_fakes(f, NULL);
    t = client(f, 3000);
    send_one(f, t, "+15551230001", NULL);
    send_one(f, t, "+15551230002", NULL);
    nmc_strlcpy(newest, ((struct nmc_prov_twilio_sms_result *)send_one(f, t, "+15551230002", NULL))->sid,
                sizeof(newest));
    nmc_clock_format_rfc3339(nmc_clock_now_ms(), today);
    today[10] = '\0';
    r = get_as_account(f, "/2010-04-01/Accounts/" SID "/Messages.json?To=%2B15551230002&PageSize=50");
    assert_int_equal(r->status, 200);
    j = json_loads(r->body, 0, NULL);
    msgs = json_object_get(j, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "sid")), newest);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "status")), "queued");
    json_decref(j);
    r = get_as_account(f, "/2010-04-01/Accounts/" SID "/Messages.json?PageSize=1");
    j = json_loads(r->body, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "messages")), 1);
    json_decref(j);
    snprintf(path, sizeof(path), "/2010-04-01/Accounts/" SID "/Messages.json?DateSent%%3E%%3D=%s", today);
    r = get_as_account(f, path);
    j = json_loads(r->body, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "messages")), 3);
    json_decref(j);
    r = get_as_account(f, "/2010-04-01/Accounts/" SID "/Messages.json?DateSent%3E%3D=2999-01-01");
    assert_non_null(strstr(r->body, "\"messages\":[]"));
    nmc_prov_twilio_destroy(t);
}

static void test_fakes_list_needs_auth(void **state)
{
    struct fx *f = *state;

    start_fakes(f, NULL);
    assert_int_equal(nmc_fakes_proc_request(&f->fakes, "GET", "/2010-04-01/Accounts/" SID "/Messages.json", NULL,
                                            NULL, 0), 401);
}

static void test_fakes_timeout_after_accept_records(void **state)
{
    struct fx *f = *state;
    const char *const extra[] = {"--timeout-rate", "1", "--timeout-after-accept", NULL};
    struct nmc_prov_twilio *t;
    char out[4096];

    start_fakes(f, extra);
    t = client(f, 300);
    assert_int_equal(send_one(f, t, "+15551234567", NULL)->err, NMC_ETIMEDOUT);
    /* The provider processed it: the ambiguous outcome callers must resolve. */
    assert_int_equal(nmc_fakes_proc_request(&f->fakes, "GET", "/_fakes/messages", NULL, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"count\":1"));
    nmc_prov_twilio_destroy(t);
}

static void test_fakes_timeout_rate_never_answers(void **state)
{
    struct fx *f = *state;
    const char *const extra[] = {"--timeout-rate", "1", NULL};
    struct nmc_prov_twilio *t;
    struct nmc_prov_twilio_sms_result *r;

    start_fakes(f, extra);
    t = client(f, 300);
    r = send_one(f, t, "+15551234567", NULL);
    assert_int_equal(r->err, NMC_ETIMEDOUT);
    assert_int_equal(r->kind, NMC_PROV_HTTP_TIMEOUT);
    nmc_prov_twilio_destroy(t);
}

static void test_fakes_latency_delays_answer(void **state)
{
    struct fx *f = *state;
    const char *const extra[] = {"--latency-ms", "150", NULL};
    struct nmc_prov_twilio *t;
    struct nmc_prov_twilio_sms_result *r;

    start_fakes(f, extra);
    t = client(f, 3000);
    r = send_one(f, t, "+15551234567", NULL);
    assert_int_equal(r->http_status, 201);
    assert_true(r->latency_ms >= 150.0);
    /* Errors are delayed too. */
    r = send_one(f, t, "not-a-number", NULL);
    assert_int_equal(r->code, NMC_PROV_TWILIO_ERR_INVALID_TO);
    assert_true(r->latency_ms >= 150.0);
    nmc_prov_twilio_destroy(t);
}

static void test_fakes_messages_filter_clear_and_stats(void **state)
{
    struct fx *f = *state;
    struct nmc_prov_twilio *t;
    char out[8192];
    json_t *j;

    start_fakes(f, NULL);
    t = client(f, 3000);
    send_one(f, t, "+15551230001", NULL);
    send_one(f, t, "+15551230002", NULL);
    send_one(f, t, "+15551230002", NULL);
    assert_int_equal(nmc_fakes_proc_request(&f->fakes, "GET", "/_fakes/messages?to=%2B15551230002", NULL, out,
                                            sizeof(out)), 200);
    j = json_loads(out, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 2);
    json_decref(j);
    assert_int_equal(nmc_fakes_proc_request(&f->fakes, "GET", "/_fakes/stats", NULL, out, sizeof(out)), 200);
    j = json_loads(out, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "requests")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 3);
    json_decref(j);
    assert_int_equal(nmc_fakes_proc_request(&f->fakes, "DELETE", "/_fakes/messages", NULL, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"deleted\":3"));
    assert_int_equal(nmc_fakes_proc_request(&f->fakes, "GET", "/_fakes/messages", NULL, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"count\":0"));
    nmc_prov_twilio_destroy(t);
}

/* PUT /_fakes/faults changes the fault injection of a running emulator;
 * each bad request gets a 400 with a JSON error and changes nothing. */
static void test_fakes_faults_changed_while_running(void **state)
{
    struct fx *f = *state;
    struct nmc_prov_twilio *t;
    struct nmc_prov_twilio_sms_result *r;
    char out[4096], before[4096];

    start_fakes(f, NULL);
    t = client(f, 300);
    assert_int_equal(send_one(f, t, "+15551230101", NULL)->http_status, 201);
    assert_int_equal(nmc_fakes_proc_request(&f->fakes, "PUT", "/_fakes/faults", "{\"fail_rate\":1}", out, sizeof(out)),
                     200);
    assert_non_null(strstr(out, "\"fail_rate\":1"));
    assert_int_equal(send_one(f, t, "+15551230102", NULL)->http_status, 500);
    assert_int_equal(nmc_fakes_proc_request(&f->fakes, "PUT", "/_fakes/faults",
                                            "{\"fail_rate\":0,\"timeout_rate\":1,\"timeout_after_accept\":true}", out,
                                            sizeof(out)),
                     200);
    r = send_one(f, t, "+15551230103", NULL);
    assert_int_equal(r->err, NMC_ETIMEDOUT);
    assert_int_equal(nmc_fakes_proc_request(&f->fakes, "GET", "/_fakes/messages?to=%2B15551230103", NULL, out,
                                            sizeof(out)),
                     200);
    assert_non_null(strstr(out, "\"count\":1")); /* created, the answer lost */

    static const char *const bad[] = {
        "not json", "[]", "{\"fail_rate\":2}", "{\"fail_rate\":-0.1}", "{\"timeout_rate\":\"half\"}",
        "{\"fail_rate\":0.6,\"timeout_rate\":0.6}", "{\"latency_ms\":5}", "{\"timeout_after_accept\":1}",
    };
    assert_int_equal(nmc_fakes_proc_request(&f->fakes, "GET", "/_fakes/faults", NULL, before, sizeof(before)), 200);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(nmc_fakes_proc_request(&f->fakes, "PUT", "/_fakes/faults", bad[i], out, sizeof(out)), 400);
        json_t *j = json_loads(out, 0, NULL);
        assert_true(json_is_string(json_object_get(j, "error")));
        json_decref(j);
        assert_int_equal(nmc_fakes_proc_request(&f->fakes, "GET", "/_fakes/faults", NULL, out, sizeof(out)), 200);
        assert_string_equal(out, before);
    }
    assert_int_equal(nmc_fakes_proc_request(&f->fakes, "PUT", "/_fakes/faults", "{\"timeout_rate\":0}", out,
                                            sizeof(out)),
                     200);
    assert_int_equal(send_one(f, t, "+15551230104", NULL)->http_status, 201);
    nmc_prov_twilio_destroy(t);
}

static void test_fakes_jwks_served_from_file(void **state)
{
    struct fx *f = *state;
    char path[] = "/tmp/nmc-fakes-jwks-XXXXXX", out[512];
    const char jwks[] = "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"k1\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}";
    const char *extra[] = {"--jwks", path, NULL};
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, jwks, strlen(jwks)), (ssize_t)strlen(jwks));
    close(fd);
    start_fakes(f, extra);
    assert_int_equal(nmc_fakes_proc_request(&f->fakes, "GET", "/.well-known/jwks.json", NULL, out, sizeof(out)), 200);
    assert_string_equal(out, jwks);
    unlink(path);
}

static void test_fakes_jwks_absent_without_flag(void **state)
{
    struct fx *f = *state;

    start_fakes(f, NULL);
    assert_int_equal(nmc_fakes_proc_request(&f->fakes, "GET", "/.well-known/jwks.json", NULL, NULL, 0), 404);
}

/* Runs nmc-fakes with args to completion; its exit code. */
static int run_fakes(const char *const *args)
{
    const char *dir = getenv("NMC_BUILD_DIR");
    char bin[512];
    const char *argv[8] = {bin};
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int st, n = 1;

    snprintf(bin, sizeof(bin), "%s/nmc-fakes", dir ? dir : ".");
    for (int i = 0; args[i] != NULL && n < 7; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
    assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_fakes_command_line_errors_exit_2(void **state)
{
    (void)state;
    assert_int_equal(run_fakes((const char *const[]){"--port", "0", "--bogus", NULL}), 2);
    assert_int_equal(run_fakes((const char *const[]){"--port", "0", "--fail-rate", "2", NULL}), 2);
    assert_int_equal(run_fakes((const char *const[]){"--port", "x", NULL}), 2);
    assert_int_equal(run_fakes((const char *const[]){"--latency-ms", "5", NULL}), 2);
    assert_int_equal(run_fakes((const char *const[]){"--port", "0", "--jwks", "/nonexistent/jwks.json", NULL}), 2);
    assert_int_equal(run_fakes((const char *const[]){"--port", NULL}), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fakes_status_callbacks_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fakes_list_filters_newest_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fakes_list_needs_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fakes_timeout_after_accept_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fakes_timeout_rate_never_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fakes_latency_delays_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fakes_messages_filter_clear_and_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fakes_faults_changed_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fakes_jwks_served_from_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fakes_jwks_absent_without_flag, setup, teardown),
        cmocka_unit_test(test_fakes_command_line_errors_exit_2),
    };
    return cmocka_run_group_tests_name("providers_fakes", tests, NULL, NULL);
}
