/* Tests for providers/twilio.c: the request body and response parsing
 * against golden files, then real sends through libcurl to nmc-fakes
 * (201, 21610, wrong credentials, messaging service, 5xx retry). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "providers/breaker.h"
#include "providers/http.h"
#include "providers/twilio.h"
#include "runtime/actor.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/metrics.h"
#include "tests/support/fakes_proc.h"

#define SID "AC0123456789abcdef0123456789abcdef"
#define TOKEN "prov-test-token"
#define UNSUB "+15550009999"

static char *golden(const char *name, size_t *len)
{
    char path[512];
    FILE *fp;
    struct nmc_buf b = {0};
    char chunk[4096];
    size_t n;

    snprintf(path, sizeof(path), "%s/tests/providers/golden/%s", NMC_SOURCE_DIR, name);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        assert_int_equal(nmc_buf_append(&b, chunk, n), 0);
    fclose(fp);
    return nmc_buf_steal(&b, len);
}

/* An HTTP result as providers/http would deliver it. */
static struct nmc_prov_http_result http_result(long status, enum nmc_prov_http_kind kind, char *body, size_t len)
{
    struct nmc_prov_http_result r = {.status = status, .kind = kind, .body = body, .body_len = len, .attempts = 1};
    r.err = kind == NMC_PROV_HTTP_OK ? 0 : NMC_EPROVIDER;
    return r;
}

/* ---- fixture: loop, runtime, actor, http client, twilio client ---------- */

struct fx {
    uv_loop_t loop;
    struct nmc_rt *rt;
    struct nmc_actor *actor;
    struct nmc_prov_http *http;
    struct nmc_prov_twilio *tw;
    struct nmc_msg *got;
};

static struct nmc_fakes_proc fakes;

static void on_msg(struct nmc_actor *self, struct nmc_msg *msg, void *state)
{
    struct fx *f = state;
    (void)self;
    nmc_rt_msg_keep(msg);
    assert_null(f->got);
    f->got = msg;
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    fail_msg("watchdog: no completion within 10 s");
}

static struct nmc_prov_twilio_sms_result *wait_result(struct fx *f)
{
    uv_timer_t dog;

    uv_timer_init(&f->loop, &dog);
    uv_timer_start(&dog, on_watchdog, 10000, 0);
    while (f->got == NULL)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&dog, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->got->type, NMC_MSG_PROV_TWILIO_SMS);
    return f->got->payload;
}

static void fx_client(struct fx *f, const char *token, const char *mg)
{
    struct nmc_prov_twilio_opts o = {.api_base = fakes.base_url, .account_sid = SID, .auth_token = token,
                                     .messaging_service_sid = mg};
    nmc_prov_twilio_destroy(f->tw);
    f->tw = NULL;
    assert_int_equal(nmc_prov_twilio_create(f->http, &o, &f->tw), 0);
}

static int setup(void **state)
{
    struct fx *f = nmc_xcalloc(1, sizeof(*f));
    struct nmc_prov_http_opts ho = {.timeout_ms = 3000, .backoff_base_ms = 5, .backoff_max_ms = 20};

    nmc_metrics_reset();
    nmc_rng_seed(1);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(nmc_rt_create(&f->loop, 0, &f->rt), 0);
    assert_int_equal(nmc_rt_actor_create(f->rt, "twilio-test", on_msg, f, 0, &f->actor), 0);
    assert_int_equal(nmc_prov_http_create(&f->loop, &ho, &f->http), 0);
    fx_client(f, TOKEN, NULL);
    assert_int_equal(nmc_fakes_proc_request(&fakes, "DELETE", "/_fakes/messages", NULL, NULL, 0), 200);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    nmc_rt_msg_free(f->got);
    nmc_prov_twilio_destroy(f->tw);
    nmc_prov_http_destroy(f->http);
    nmc_rt_destroy(f->rt);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static int group_setup(void **state)
{
    const char *const args[] = {"--twilio-auth-token", TOKEN, "--account-sid", SID, "--unsubscribed", UNSUB, NULL};
    (void)state;
    return nmc_fakes_proc_start(&fakes, 0, args);
}

static int group_teardown(void **state)
{
    (void)state;
    return nmc_fakes_proc_stop(&fakes) == 0 ? 0 : -1;
}

/* ---- golden files --------------------------------------------------------- */

static void test_twilio_form_matches_golden(void **state)
{
    struct fx *f = *state;
    const struct nmc_prov_twilio_sms sms = {
        .to = "+15551234567", .from = "+15550001000",
        .body = "Sorry we missed your call! Reply here & we'll help.",
        .status_callback = "https://nmc.example.com/v1/webhooks/twilio/sms-status"};
    struct nmc_buf b = {0};
    size_t len;
    char *want = golden("twilio_messages_request.form", &len);

    assert_int_equal(nmc_prov_twilio_form(f->tw, &sms, &b), 0);
    assert_string_equal(b.data, want);
    nmc_buf_free(&b);
    free(want);
}

static void test_twilio_form_needs_sender_and_body(void **state)
{
    struct fx *f = *state;
    struct nmc_buf b = {0};
    const struct nmc_prov_twilio_sms no_from = {.to = "+15551234567", .body = "x"};
    const struct nmc_prov_twilio_sms no_body = {.to = "+15551234567", .from = "+15550001000", .body = ""};
    const struct nmc_prov_twilio_sms no_to = {.from = "+15550001000", .body = "x"};

    assert_int_equal(nmc_prov_twilio_form(f->tw, &no_from, &b), NMC_EINVAL);
    assert_int_equal(nmc_prov_twilio_form(f->tw, &no_body, &b), NMC_EINVAL);
    assert_int_equal(nmc_prov_twilio_form(f->tw, &no_to, &b), NMC_EINVAL);
    assert_int_equal(nmc_prov_twilio_send_sms(f->tw, &no_to, f->actor, NULL, 0, NULL), NMC_EINVAL);
    fx_client(f, TOKEN, "MG0123456789abcdef0123456789abcdef");
    assert_int_equal(nmc_prov_twilio_form(f->tw, &no_from, &b), 0);
    assert_string_equal(b.data, "To=%2B15551234567&MessagingServiceSid=MG0123456789abcdef0123456789abcdef&Body=x");
    nmc_buf_free(&b);
}

static void test_twilio_sms_result_parse_created(void **state)
{
    size_t len;
    char *body = golden("twilio_messages_201.json", &len);
    struct nmc_prov_http_result r = http_result(201, NMC_PROV_HTTP_OK, body, len);
    struct nmc_prov_twilio_sms_result out;
    (void)state;

    nmc_prov_twilio_sms_result_parse(&r, &out);
    assert_int_equal(out.err, 0);
    assert_int_equal(out.http_status, 201);
    assert_string_equal(out.sid, "SM9f2b3c4d5e6f708192a3b4c5d6e7f801");
    assert_string_equal(out.status, "queued");
    assert_int_equal(out.code, 0);
    free(body);
}

/* A 201 whose status Twilio has not documented: the message exists, so it
 * reads "accepted" (the database's status domain takes no other). */
static void test_twilio_sms_result_parse_unknown_status_is_accepted(void **state)
{
    static const char body[] = "{\"sid\": \"SM00000000000000000000000000000001\", \"status\": \"in-orbit\"}";
    struct nmc_prov_http_result r = http_result(201, NMC_PROV_HTTP_OK, (char *)body, sizeof body - 1);
    struct nmc_prov_twilio_sms_result out;
    (void)state;

    nmc_prov_twilio_sms_result_parse(&r, &out);
    assert_int_equal(out.err, 0);
    assert_string_equal(out.sid, "SM00000000000000000000000000000001");
    assert_string_equal(out.status, "accepted");
}

static void test_twilio_sms_result_parse_unsubscribed(void **state)
{
    size_t len;
    char *body = golden("twilio_error_21610.json", &len);
    struct nmc_prov_http_result r = http_result(400, NMC_PROV_HTTP_4XX, body, len);
    struct nmc_prov_twilio_sms_result out;
    (void)state;

    nmc_prov_twilio_sms_result_parse(&r, &out);
    assert_int_equal(out.err, NMC_EPROVIDER);
    assert_int_equal(out.code, NMC_PROV_TWILIO_ERR_UNSUBSCRIBED);
    assert_string_equal(out.message, "Attempt to send to unsubscribed recipient");
    assert_string_equal(out.sid, "");
    free(body);
}

static void test_twilio_sms_result_parse_auth_error(void **state)
{
    size_t len;
    char *body = golden("twilio_error_20003.json", &len);
    struct nmc_prov_http_result r = http_result(401, NMC_PROV_HTTP_4XX, body, len);
    struct nmc_prov_twilio_sms_result out;
    (void)state;

    nmc_prov_twilio_sms_result_parse(&r, &out);
    assert_int_equal(out.code, 20003);
    assert_string_equal(out.message, "Authenticate");
    free(body);
}

static void test_twilio_sms_result_parse_garbage(void **state)
{
    char ok_html[] = "<html>ok</html>", no_sid[] = "{\"status\":\"queued\"}", bad_5xx[] = "oops";
    struct nmc_prov_http_result r = http_result(201, NMC_PROV_HTTP_OK, ok_html, strlen(ok_html));
    struct nmc_prov_twilio_sms_result out;
    (void)state;

    nmc_prov_twilio_sms_result_parse(&r, &out);
    assert_int_equal(out.err, NMC_EPARSE);
    r = http_result(201, NMC_PROV_HTTP_OK, no_sid, strlen(no_sid));
    nmc_prov_twilio_sms_result_parse(&r, &out);
    assert_int_equal(out.err, NMC_EPARSE);
    r = http_result(503, NMC_PROV_HTTP_5XX, bad_5xx, strlen(bad_5xx));
    nmc_prov_twilio_sms_result_parse(&r, &out);
    assert_int_equal(out.err, NMC_EPROVIDER);
    assert_int_equal(out.code, 0);
}

static void test_twilio_create_bad_opts(void **state)
{
    struct fx *f = *state;
    struct nmc_prov_twilio *t = NULL;
    struct nmc_prov_twilio_opts o = {.api_base = "http://x", .account_sid = "AC1/../x", .auth_token = "t"};

    assert_int_equal(nmc_prov_twilio_create(f->http, &o, &t), NMC_EINVAL);
    o.account_sid = SID;
    o.auth_token = "";
    assert_int_equal(nmc_prov_twilio_create(f->http, &o, &t), NMC_EINVAL);
    o.auth_token = "t";
    o.api_base = NULL;
    assert_int_equal(nmc_prov_twilio_create(f->http, &o, &t), NMC_EINVAL);
    assert_null(t);
}

/* ---- against nmc-fakes ------------------------------------------------------ */

static void test_twilio_send_sms_created(void **state)
{
    struct fx *f = *state;
    const struct nmc_prov_twilio_sms sms = {.to = "+15551234567", .from = "+15550001000", .body = "Hi & welcome",
                                            .status_callback = "http://127.0.0.1:9/cb"};
    struct nmc_msg parent = {0};
    struct nmc_prov_twilio_sms_result *r;
    char listing[8192];
    json_t *j, *m;

    nmc_strlcpy(parent.tenant_id, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", sizeof(parent.tenant_id));
    assert_int_equal(nmc_prov_twilio_send_sms(f->tw, &sms, f->actor, &parent, 9, NULL), 0);
    r = wait_result(f);
    assert_int_equal(r->err, 0);
    assert_int_equal(r->http_status, 201);
    assert_string_equal(r->status, "queued");
    assert_int_equal(strlen(r->sid), 34);
    assert_memory_equal(r->sid, "SM", 2);
    assert_int_equal(r->attempts, 1);
    assert_int_equal(f->got->cookie, 9);
    assert_string_equal(f->got->tenant_id, parent.tenant_id);

    assert_int_equal(nmc_fakes_proc_request(&fakes, "GET", "/_fakes/messages", NULL, listing, sizeof(listing)), 200);
    j = json_loads(listing, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 1);
    m = json_array_get(json_object_get(j, "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "sid")), r->sid);
    assert_string_equal(json_string_value(json_object_get(m, "body")), "Hi & welcome");
    assert_string_equal(json_string_value(json_object_get(m, "to")), "+15551234567");
    assert_string_equal(json_string_value(json_object_get(m, "status_callback")), "http://127.0.0.1:9/cb");
    assert_true(json_integer_value(json_object_get(m, "received_at_ns")) > 0);
    json_decref(j);
}

static void test_twilio_send_sms_unsubscribed_not_retried(void **state)
{
    struct fx *f = *state;
    const struct nmc_prov_twilio_sms sms = {.to = UNSUB, .from = "+15550001000", .body = "hello"};
    struct nmc_prov_twilio_sms_result *r;

    assert_int_equal(nmc_prov_twilio_send_sms(f->tw, &sms, f->actor, NULL, 0, NULL), 0);
    r = wait_result(f);
    assert_int_equal(r->err, NMC_EPROVIDER);
    assert_int_equal(r->kind, NMC_PROV_HTTP_4XX);
    assert_int_equal(r->http_status, 400);
    assert_int_equal(r->code, NMC_PROV_TWILIO_ERR_UNSUBSCRIBED);
    assert_int_equal(r->attempts, 1);
    /* A 4xx is the caller's problem, not the provider's health. */
    assert_int_equal(nmc_prov_breaker_state(nmc_prov_twilio_breaker(f->tw)), NMC_PROV_BREAKER_CLOSED);
}

static void test_twilio_send_sms_invalid_to(void **state)
{
    struct fx *f = *state;
    const struct nmc_prov_twilio_sms sms = {.to = "5551234567", .from = "+15550001000", .body = "hello"};
    struct nmc_prov_twilio_sms_result *r;

    assert_int_equal(nmc_prov_twilio_send_sms(f->tw, &sms, f->actor, NULL, 0, NULL), 0);
    r = wait_result(f);
    assert_int_equal(r->code, NMC_PROV_TWILIO_ERR_INVALID_TO);
    assert_int_equal(r->attempts, 1);
}

static void test_twilio_send_sms_wrong_token(void **state)
{
    struct fx *f = *state;
    const struct nmc_prov_twilio_sms sms = {.to = "+15551234567", .from = "+15550001000", .body = "hello"};
    struct nmc_prov_twilio_sms_result *r;
    char stats[1024];

    fx_client(f, "not-the-token", NULL);
    assert_int_equal(nmc_prov_twilio_send_sms(f->tw, &sms, f->actor, NULL, 0, NULL), 0);
    r = wait_result(f);
    assert_int_equal(r->http_status, 401);
    assert_int_equal(r->code, 20003);
    assert_int_equal(r->attempts, 1);
    assert_int_equal(nmc_fakes_proc_request(&fakes, "GET", "/_fakes/messages", NULL, stats, sizeof(stats)), 200);
    assert_non_null(strstr(stats, "\"count\":0"));
}

static void test_twilio_send_sms_messaging_service_accepted(void **state)
{
    struct fx *f = *state;
    const struct nmc_prov_twilio_sms sms = {.to = "+15551234567", .body = "via service"};
    struct nmc_prov_twilio_sms_result *r;

    fx_client(f, TOKEN, "MG0123456789abcdef0123456789abcdef");
    assert_int_equal(nmc_prov_twilio_send_sms(f->tw, &sms, f->actor, NULL, 0, NULL), 0);
    r = wait_result(f);
    assert_int_equal(r->err, 0);
    assert_string_equal(r->status, "accepted");
}

static void test_twilio_send_sms_5xx_retried_until_success(void **state)
{
    struct fx *f = *state;
    struct nmc_fakes_proc flaky;
    /* Seeded so the 50% fault rate fails some attempts and not others. */
    const char *const args[] = {"--twilio-auth-token", TOKEN, "--fail-rate", "0.5", "--seed", "3", NULL};
    const struct nmc_prov_twilio_sms sms = {.to = "+15551234567", .from = "+15550001000", .body = "retry me"};
    struct nmc_prov_twilio_opts o = {.account_sid = SID, .auth_token = TOKEN, .max_attempts = 8,
                                     .breaker_off = 1};
    struct nmc_prov_twilio *t = NULL;
    struct nmc_prov_twilio_sms_result *r;
    char stats[1024];
    json_t *j;

    assert_int_equal(nmc_fakes_proc_start(&flaky, 0, args), 0);
    o.api_base = flaky.base_url;
    assert_int_equal(nmc_prov_twilio_create(f->http, &o, &t), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(nmc_prov_twilio_send_sms(t, &sms, f->actor, NULL, 0, NULL), 0);
        r = wait_result(f);
        assert_int_equal(r->err, 0);
        assert_int_equal(r->http_status, 201);
        nmc_rt_msg_free(f->got);
        f->got = NULL;
    }
    assert_int_equal(nmc_fakes_proc_request(&flaky, "GET", "/_fakes/stats", NULL, stats, sizeof(stats)), 200);
    j = json_loads(stats, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 4);
    assert_true(json_integer_value(json_object_get(j, "injected_5xx")) > 0);
    json_decref(j);
    nmc_prov_twilio_destroy(t);
    assert_int_equal(nmc_fakes_proc_stop(&flaky), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_twilio_form_matches_golden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twilio_form_needs_sender_and_body, setup, teardown),
        cmocka_unit_test(test_twilio_sms_result_parse_created),
        cmocka_unit_test(test_twilio_sms_result_parse_unknown_status_is_accepted),
        cmocka_unit_test(test_twilio_sms_result_parse_unsubscribed),
        cmocka_unit_test(test_twilio_sms_result_parse_auth_error),
        cmocka_unit_test(test_twilio_sms_result_parse_garbage),
        cmocka_unit_test_setup_teardown(test_twilio_create_bad_opts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twilio_send_sms_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twilio_send_sms_unsubscribed_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twilio_send_sms_invalid_to, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twilio_send_sms_wrong_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twilio_send_sms_messaging_service_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twilio_send_sms_5xx_retried_until_success, setup, teardown),
    };
    return cmocka_run_group_tests_name("providers_twilio", tests, group_setup, group_teardown);
}
