/* Module teardown in `nmc serve`'s order (cmd/nmc.c on_http_drained:
 * modules stopped, nmc_rt_stop, db pool destroyed, runtime destroyed, loop
 * drained) with the app on the stack, so that whatever a stop function does
 * not free is unreachable afterwards and LeakSanitizer fails the test at
 * exit. The JWKS fetch of the auth actor is in flight when it stops (the
 * JWKS server accepts and never answers) and the maintenance timers (hold
 * GC, retention) are armed.
 *
 * Nothing is suppressed: every module (catalog, scheduling, maintenance,
 * identity auth and its JWKS cache, conversation with its Twilio http
 * client and breakers, reporting, telephony, the outbox with its flights,
 * id index and subscriptions) frees its state in its stop function, and
 * the loop closes with no handle left. (A "leak:libuv.so" suppression would
 * hide every allocation made inside a loop callback, i.e. nearly all
 * module state.) A second case checks that mail reaching the stopped
 * actors between stop and nmc_rt_stop (timers, and for maintenance a
 * retention round's database result) is dropped; a third that a webhook
 * telephony holds when it stops, and one arriving after, are answered 503
 * rather than left without a reply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "actors/app.h"
#include "actors/identity/auth_impl.h"
#include "actors/infra/infra.h"
#include "actors/maintenance/internal.h"
#include "actors/outbox/outbox.h"
#include "providers/twilio_sig.h"

/* A JWKS endpoint that accepts connections and never answers. */
struct silent {
    uv_tcp_t tcp;
    uv_tcp_t conns[8];
    int nconns;
    int port;
};

static void on_silent_connect(uv_stream_t *server, int status)
{
    struct silent *s = nmc_container_of(server, struct silent, tcp);
    if (status != 0 || s->nconns >= (int)NMC_ARRAY_SIZE(s->conns))
        return;
    uv_tcp_t *c = &s->conns[s->nconns];
    assert_int_equal(uv_tcp_init(server->loop, c), 0);
    assert_int_equal(uv_accept(server, (uv_stream_t *)c), 0);
    s->nconns++;
}

static void silent_start(uv_loop_t *loop, struct silent *s)
{
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_init(loop, &s->tcp), 0);
    assert_int_equal(uv_tcp_bind(&s->tcp, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->tcp, 8, on_silent_connect), 0);
    assert_int_equal(uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&bound, &len), 0);
    s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void silent_close(struct silent *s)
{
    for (int i = 0; i < s->nconns; i++)
        uv_close((uv_handle_t *)&s->conns[i], NULL);
    uv_close((uv_handle_t *)&s->tcp, NULL);
}

/* An app built as `nmc serve` builds it, on the fixture's own loop. */
struct fixture {
    uv_loop_t loop;
    struct nmc_config cfg;
    struct nmc_app app;
    struct silent jwks;
};

static void app_start(struct fixture *f)
{
    char err[256], url[128];
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    silent_start(&f->loop, &f->jwks);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/.well-known/jwks.json", f->jwks.port);
    setenv("CLERK_JWKS_URL", url, 1);
    setenv("CLERK_JWT_ISSUER", "https://clerk.teardown.test", 1);
    setenv("CLERK_JWT_AUDIENCE", "nmc-api", 1);
    setenv("DATABASE_URL", "host=/nonexistent-nmc-test dbname=x", 1); /* queries wait in the pool's queue */
    setenv("TWILIO_AUTH_TOKEN", "teardown-token", 1); /* webhook signatures */
    assert_int_equal(nmc_config_load(&f->cfg, NULL, NULL, err, sizeof(err)), 0);
    f->app.loop = &f->loop;
    f->app.cfg = &f->cfg;
    f->app.run_workers = 1;
    struct nmc_db_pool_opts dbo = {.conninfo = f->cfg.database_url, .size = 1};
    struct nmc_http_server_opts ho = {.bind_addr = "127.0.0.1", .port = 0, .max_body_bytes = 1 << 20,
                                      .header_timeout_ms = 1000, .idle_timeout_ms = 1000, .max_connections = 10};
    assert_int_equal(nmc_rt_create(&f->loop, 0, &f->app.rt), 0);
    assert_int_equal(nmc_db_pool_create(f->app.rt, &dbo, &f->app.db), 0);
    assert_int_equal(nmc_http_server_create(&f->loop, &ho, &f->app.http), 0);
    assert_int_equal(nmc_infra_init(&f->app), 0);
    assert_int_equal(nmc_app_init_modules(&f->app), 0);
    assert_non_null(nmc_identity_auth_state);
    /* Until the JWKS request reaches the silent server: it is in flight. */
    for (int i = 0; i < 200 && f->jwks.nconns == 0; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->jwks.nconns, 1);
}

static void app_stop_modules(struct fixture *f)
{
    nmc_app_stop_modules(&f->app);
    assert_null(nmc_identity_auth_state);
    assert_null(f->app.modules[NMC_SLOT_CATALOG]);
    assert_null(f->app.modules[NMC_SLOT_SCHEDULING]);
    assert_null(f->app.modules[NMC_SLOT_MAINTENANCE]);
    assert_null(f->app.modules[NMC_SLOT_CONVERSATION]);
    assert_null(f->app.modules[NMC_SLOT_REPORTING]);
    assert_null(f->app.modules[NMC_SLOT_TELEPHONY]);
    assert_null(f->app.modules[NMC_SLOT_OUTBOX]);
}

/* The rest of on_http_drained, then the loop until every handle closed. */
static void app_finish(struct fixture *f)
{
    nmc_infra_stop(&f->app);
    nmc_rt_stop(f->app.rt);
    nmc_db_pool_destroy(f->app.db);
    nmc_rt_destroy(f->app.rt);
    nmc_http_server_shutdown(f->app.http, 0, NULL, NULL);
    silent_close(&f->jwks);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    nmc_http_server_free(f->app.http);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* no module left a handle open */
    nmc_config_free(&f->cfg);
}

static uint64_t handled(struct fixture *f, const char *actor)
{
    struct nmc_actor_stats st;
    nmc_rt_actor_stats(nmc_rt_actor_find(f->app.rt, actor), &st);
    return st.handled;
}

/* The outbox's public senders: a wake, an ack, and a handoff whose event
 * (with its payload) becomes a flight, or is freed by the runtime when a
 * stopped outbox drops it. */
static void send_outbox_mail(struct nmc_rt *rt)
{
    nmc_outbox_wake(rt);
    assert_int_equal(nmc_outbox_ack(rt, 42, "conversation", 0, NULL), 0);
    struct nmc_domain_event *ev = calloc(1, sizeof(*ev));
    assert_non_null(ev);
    ev->outbox_id = 42;
    ev->attempts = 1;
    nmc_strlcpy(ev->event_name, "CallDetected", sizeof(ev->event_name));
    ev->payload_json = nmc_xstrdup("{}");
    assert_int_equal(nmc_outbox_handoff(rt, ev, NULL), 0);
}

/* The outbox holds a flight (delivered to its subscribers, acks pending or
 * settled, never finalised: the database is unreachable) when it stops. */
static void test_app_stop_modules_frees_module_state(void **state)
{
    (void)state;
    struct fixture f;
    app_start(&f);
    uint64_t before = handled(&f, "outbox");
    send_outbox_mail(f.app.rt);
    for (int i = 0; i < 20; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_true(handled(&f, "outbox") >= before + 3);
    app_stop_modules(&f);
    app_finish(&f);
}

/* Mail for a stopped module (what a late timer, database result or
 * provider completion would bring) is dropped: ASan fails the test if a
 * handler reads the freed state. */
static void send_timer(struct nmc_rt *rt, const char *actor, uint64_t cookie)
{
    struct nmc_actor *a = nmc_rt_actor_find(rt, actor);
    assert_non_null(a);
    struct nmc_rt_timer_fire *fire = calloc(1, sizeof(*fire));
    assert_non_null(fire);
    fire->cookie = cookie;
    struct nmc_msg *m = nmc_rt_msg_new(NMC_MSG_TIMER, fire, free);
    m->cookie = cookie;
    assert_int_equal(nmc_rt_send(a, m), 0);
}

/* What a retention round in flight at stop would bring back. */
static void send_db_result(struct nmc_rt *rt, const char *actor, uint64_t cookie)
{
    struct nmc_db_result *res = calloc(1, sizeof(*res));
    assert_non_null(res);
    res->status = NMC_ESHUTDOWN;
    res->failed_stmt = -1;
    struct nmc_msg *m = nmc_rt_msg_new(NMC_MSG_DB_RESULT, res, free);
    m->cookie = cookie;
    assert_int_equal(nmc_rt_send(nmc_rt_actor_find(rt, actor), m), 0);
}

static void send_cache_invalidate(struct nmc_rt *rt)
{
    struct nmc_msg *m = nmc_rt_msg_new(NMC_MSG_CACHE_INVALIDATE, nmc_xstrdup("tenant"), free);
    assert_int_equal(nmc_rt_send(nmc_rt_actor_find(rt, "telephony"), m), 0);
}

static void test_app_stop_modules_late_mail_dropped(void **state)
{
    (void)state;
    struct fixture f;
    static const char *const actors[] = {"conversation", "reporting", "telephony", "outbox", "maintenance"};
    app_start(&f);
    app_stop_modules(&f);
    for (uint64_t cookie = 1; cookie <= 9; cookie++) /* every timer cookie the outbox has */
        for (size_t i = 0; i < NMC_ARRAY_SIZE(actors); i++)
            send_timer(f.app.rt, actors[i], cookie);
    for (uint64_t j = 0; j < MAINT_RETENTION_NJOBS; j++) {
        send_timer(f.app.rt, "maintenance", MAINT_TIMER_RETENTION + j);
        send_db_result(f.app.rt, "maintenance", MAINT_DB_RETENTION + j);
    }
    send_db_result(f.app.rt, "maintenance", MAINT_DB_HOLD_GC);
    send_outbox_mail(f.app.rt);
    send_cache_invalidate(f.app.rt);
    for (int i = 0; i < 20; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < NMC_ARRAY_SIZE(actors); i++)
        assert_int_equal(nmc_rt_actor_depth(nmc_rt_actor_find(f.app.rt, actors[i])), 0);
    app_finish(&f);
}

/* A non-blocking HTTP client on the fixture's loop: sends one request,
 * collects whatever comes back. */
struct client {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    char req[1024];
    char resp[4096];
    size_t resp_len;
};

static void on_client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct client *c = h->data;
    (void)hint;
    buf->base = c->resp + c->resp_len;
    buf->len = sizeof(c->resp) - 1 - c->resp_len;
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct client *c = s->data;
    (void)buf;
    if (n > 0) {
        c->resp_len += (size_t)n;
        c->resp[c->resp_len] = '\0';
    } else if (n < 0) {
        uv_read_stop(s);
    }
}

static void on_client_connect(uv_connect_t *req, int status)
{
    struct client *c = req->data;
    uv_buf_t b = uv_buf_init(c->req, (unsigned)strlen(c->req));
    assert_int_equal(status, 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, on_client_alloc, on_client_read), 0);
    assert_int_equal(uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, NULL), 0);
}

/* Posts a signed inbound-SMS webhook to the app's server. */
static void webhook_send(struct fixture *f, struct client *c, const char *sid)
{
    static const char path[] = "/webhooks/twilio/sms";
    char url[512], sig[NMC_PROV_TWILIO_SIG_LEN], body[256];
    struct sockaddr_in addr;
    const struct nmc_prov_kv params[] = {
        {"MessageSid", sid}, {"From", "+15550001111"}, {"To", "+15550002222"}, {"Body", "hi"}};
    memset(c, 0, sizeof(*c));
    snprintf(url, sizeof(url), "%s%s", f->cfg.public_base_url, path);
    assert_int_equal(nmc_prov_twilio_sig_compute(f->cfg.twilio_auth_token, url, params, 4, sig), 0);
    snprintf(body, sizeof(body), "MessageSid=%s&From=%%2B15550001111&To=%%2B15550002222&Body=hi", sid);
    snprintf(c->req, sizeof(c->req),
             "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n"
             "X-Twilio-Signature: %s\r\nContent-Length: %zu\r\n\r\n%s",
             path, sig, strlen(body), body);
    assert_int_equal(uv_tcp_init(&f->loop, &c->tcp), 0);
    c->tcp.data = c;
    c->connect.data = c;
    uv_ip4_addr("127.0.0.1", nmc_http_server_port(f->app.http), &addr);
    assert_int_equal(uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr, on_client_connect), 0);
}

static int answered(const struct client *c)
{
    return strstr(c->resp, "\r\n\r\n") != NULL;
}

static void run_until_answered(struct fixture *f, const struct client *c)
{
    for (int i = 0; i < 2000 && !answered(c); i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        uv_sleep(1);
    }
    assert_true(answered(c));
}

/* The webhook waits in telephony for its number's lookup (the database is
 * unreachable: the query stays in the pool's queue) when telephony stops:
 * stop answers it 503 (Twilio retries). One that arrives after stop is
 * answered 503 by the route. */
static void test_app_stop_modules_answers_held_webhooks(void **state)
{
    (void)state;
    struct fixture f;
    struct client held, late;
    app_start(&f);
    assert_int_equal(nmc_http_server_listen(f.app.http), 0);
    uint64_t before = handled(&f, "telephony");
    webhook_send(&f, &held, "SM1");
    for (int i = 0; i < 2000 && handled(&f, "telephony") == before; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        uv_sleep(1);
    }
    assert_true(handled(&f, "telephony") > before);
    for (int i = 0; i < 20; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(held.resp_len, 0); /* still waiting for the database */

    app_stop_modules(&f);
    run_until_answered(&f, &held);
    assert_memory_equal(held.resp, "HTTP/1.1 503", 12);
    webhook_send(&f, &late, "SM2");
    run_until_answered(&f, &late);
    assert_memory_equal(late.resp, "HTTP/1.1 503", 12);
    uv_close((uv_handle_t *)&held.tcp, NULL);
    uv_close((uv_handle_t *)&late.tcp, NULL);
    app_finish(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_stop_modules_frees_module_state),
        cmocka_unit_test(test_app_stop_modules_late_mail_dropped),
        cmocka_unit_test(test_app_stop_modules_answers_held_webhooks),
    };
    return cmocka_run_group_tests_name("module_teardown", tests, NULL, NULL);
}
