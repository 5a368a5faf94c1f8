/* Module teardown in `nmc serve`'s order (cmd/nmc.c on_http_drained:
 * modules stopped, nmc_rt_stop, db pool destroyed, runtime destroyed, loop
 * drained) with the app on the stack, so that whatever a stop function does
 * not free is unreachable afterwards and LeakSanitizer fails the test at
 * exit. The JWKS fetch of the auth actor is in flight when it stops (the
 * JWKS server accepts and never answers) and the maintenance timer is armed.
 *
 * Leaks of modules this test does not cover are suppressed by name below
 * (their owners track them); catalog, scheduling, maintenance, identity
 * auth and the JWKS cache are not. */
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
    return "leak:nmc_conversation_init\n"
           "leak:nmc_telephony_init\n"
           "leak:nmc_outbox_init\n"
           "leak:nmc_outbox_subscribe\n"
           "leak:uv_loop_init\n"
           "leak:libuv.so\n"
           "leak:libcurl.so\n";
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

static void test_app_stop_modules_frees_module_state(void **state)
{
    uv_loop_t loop;
    struct nmc_config cfg;
    struct nmc_app app;
    struct silent jwks = {0};
    char err[256], url[128];
    memset(&app, 0, sizeof(app));
    assert_int_equal(uv_loop_init(&loop), 0);
    silent_start(&loop, &jwks);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/.well-known/jwks.json", jwks.port);
    setenv("CLERK_JWKS_URL", url, 1);
    setenv("CLERK_JWT_ISSUER", "https://clerk.teardown.test", 1);
    setenv("CLERK_JWT_AUDIENCE", "nmc-api", 1);
    setenv("DATABASE_URL", "host=/nonexistent-nmc-test dbname=x", 1);
    assert_int_equal(nmc_config_load(&cfg, NULL, NULL, err, sizeof(err)), 0);
    app.loop = &loop;
    app.cfg = &cfg;
    app.run_workers = 1;
    struct nmc_db_pool_opts dbo = {.conninfo = cfg.database_url, .size = 1};
    struct nmc_http_server_opts ho = {.bind_addr = "127.0.0.1", .port = 0, .max_body_bytes = 1 << 20,
                                      .header_timeout_ms = 1000, .idle_timeout_ms = 1000, .max_connections = 10};
    assert_int_equal(nmc_rt_create(&loop, 0, &app.rt), 0);
    assert_int_equal(nmc_db_pool_create(app.rt, &dbo, &app.db), 0);
    assert_int_equal(nmc_http_server_create(&loop, &ho, &app.http), 0);
    assert_int_equal(nmc_infra_init(&app), 0);
    assert_int_equal(nmc_app_init_modules(&app), 0);
    assert_non_null(nmc_identity_auth_state);
    /* Until the JWKS request reaches the silent server: it is in flight. */
    for (int i = 0; i < 200 && jwks.nconns == 0; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(jwks.nconns, 1);

    nmc_app_stop_modules(&app);
    assert_null(nmc_identity_auth_state);
    assert_null(app.modules[NMC_SLOT_CATALOG]);
    assert_null(app.modules[NMC_SLOT_SCHEDULING]);
    assert_null(app.modules[NMC_SLOT_MAINTENANCE]);
    nmc_infra_stop(&app);
    nmc_rt_stop(app.rt);
    nmc_db_pool_destroy(app.db);
    nmc_rt_destroy(app.rt);
    nmc_http_server_shutdown(app.http, 0, NULL, NULL);
    silent_close(&jwks);
    uv_run(&loop, UV_RUN_DEFAULT);
    nmc_http_server_free(app.http);
    (void)uv_loop_close(&loop); /* busy while other modules leave handles open */
    nmc_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_stop_modules_frees_module_state),
    };
    return cmocka_run_group_tests_name("module_teardown", tests, NULL, NULL);
}
