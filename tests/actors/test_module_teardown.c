/* Module teardown in `nmc serve`'s order (cmd/nmc.c on_http_drained:
 * modules stopped, nmc_rt_stop, db pool destroyed, runtime destroyed, loop
 * drained) with the app on the stack, so that whatever a stop function does
 * not free is unreachable afterwards and LeakSanitizer fails the test at
 * exit. The JWKS fetch of the auth actor is in flight when it stops (the
 * JWKS server accepts and never answers) and the maintenance timer is armed.
 *
 * Leaks of modules this test does not cover are suppressed by name below
 * (their owners track them); catalog, scheduling, maintenance, identity
 * auth, the JWKS cache, conversation (with its Twilio http client and
 * breakers) and reporting are not. A second case checks that mail reaching
 * conversation and reporting between stop and nmc_rt_stop is dropped. */
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

/* Read by LeakSanitizer at start-up. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:nmc_telephony_init\n"
           "leak:nmc_outbox_init\n"
           "leak:nmc_outbox_subscribe\n"
           "leak:uv_loop_init\n"
           "leak:libuv.so\n";
}

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
    setenv("DATABASE_URL", "host=/nonexistent-nmc-test dbname=x", 1);
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
    (void)uv_loop_close(&f->loop); /* busy while other modules leave handles open */
    nmc_config_free(&f->cfg);
}

static void test_app_stop_modules_frees_module_state(void **state)
{
    (void)state;
    struct fixture f;
    app_start(&f);
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

static void test_app_stop_modules_late_mail_dropped(void **state)
{
    (void)state;
    struct fixture f;
    app_start(&f);
    app_stop_modules(&f);
    for (uint64_t cookie = 1; cookie <= 2; cookie++) {
        send_timer(f.app.rt, "conversation", cookie);
        send_timer(f.app.rt, "reporting", cookie);
    }
    for (int i = 0; i < 20; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(nmc_rt_actor_depth(nmc_rt_actor_find(f.app.rt, "conversation")), 0);
    assert_int_equal(nmc_rt_actor_depth(nmc_rt_actor_find(f.app.rt, "reporting")), 0);
    app_finish(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_stop_modules_frees_module_state),
        cmocka_unit_test(test_app_stop_modules_late_mail_dropped),
    };
    return cmocka_run_group_tests_name("module_teardown", tests, NULL, NULL);
}
