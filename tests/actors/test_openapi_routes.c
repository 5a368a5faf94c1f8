/* openapi.yaml and the router must describe the same routes: builds the
 * application as `nmc serve --role all` does (every linked module registers
 * its routes), lists the router's routes and compares them with the
 * operations under `paths:` in openapi.yaml, both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "actors/app.h"
#include "actors/infra/infra.h"

#define MAX_ROUTES 256

struct route_set {
    char *items[MAX_ROUTES];
    size_t n;
};

static void set_add(struct route_set *s, const char *method, const char *path)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s %s", method, path);
    assert_true(s->n < MAX_ROUTES);
    s->items[s->n++] = strdup(buf);
}

static int set_has(const struct route_set *s, const char *item)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->items[i], item) == 0)
            return 1;
    return 0;
}

static void set_free(struct route_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i]);
    s->n = 0;
}

/* Reads "  /path:" and "    get:" lines of the paths section. */
static void load_spec(struct route_set *out)
{
    char path[512], line[1024], cur[512] = "";
    snprintf(path, sizeof(path), "%s/openapi.yaml", getenv("NMC_SOURCE_DIR") ? getenv("NMC_SOURCE_DIR") : ".");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int in_paths = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strcmp(line, "paths:") == 0) {
            in_paths = 1;
            continue;
        }
        if (in_paths && line[0] != ' ' && line[0] != '\0')
            break;
        if (!in_paths)
            continue;
        size_t len = strlen(line);
        if (strncmp(line, "  /", 3) == 0 && line[len - 1] == ':') {
            snprintf(cur, sizeof(cur), "%.*s", (int)(len - 3), line + 2);
            continue;
        }
        static const char *const methods[] = {"get", "post", "patch", "put", "delete"};
        for (size_t i = 0; i < 5; i++) {
            char want[32];
            snprintf(want, sizeof(want), "    %s:", methods[i]);
            if (strcmp(line, want) == 0 && cur[0] != '\0') {
                char up[16];
                size_t k;
                for (k = 0; methods[i][k]; k++)
                    up[k] = (char)(methods[i][k] - 'a' + 'A');
                up[k] = '\0';
                set_add(out, up, cur);
            }
        }
    }
    fclose(f);
}

static void test_openapi_routes_match_router(void **state)
{
    /* Static like `nmc serve`'s: module state stays reachable from here. */
    static uv_loop_t loop;
    uv_loop_init(&loop);
    static struct nmc_config cfg;
    char err[256];
    setenv("DATABASE_URL", "host=/nonexistent-nmc-test dbname=x", 1);
    assert_int_equal(nmc_config_load(&cfg, NULL, NULL, err, sizeof(err)), 0);
    static struct nmc_app app;
    app.loop = &loop;
    app.cfg = &cfg;
    struct nmc_db_pool_opts dbo = {.conninfo = cfg.database_url, .size = 1};
    struct nmc_http_server_opts ho = {.bind_addr = "127.0.0.1", .port = 0, .max_body_bytes = 1 << 20,
                                      .header_timeout_ms = 1000, .idle_timeout_ms = 1000, .max_connections = 10};
    assert_int_equal(nmc_rt_create(&loop, 0, &app.rt), 0);
    assert_int_equal(nmc_db_pool_create(app.rt, &dbo, &app.db), 0);
    assert_int_equal(nmc_http_server_create(&loop, &ho, &app.http), 0);
    assert_int_equal(nmc_infra_init(&app), 0);
    assert_int_equal(nmc_app_init_modules(&app), 0);

    struct route_set router = {0}, spec = {0};
    const char **methods, **patterns;
    size_t n = nmc_http_server_routes(app.http, &methods, &patterns);
    for (size_t i = 0; i < n; i++)
        set_add(&router, methods[i], patterns[i]);
    load_spec(&spec);
    assert_true(router.n > 0);
    int missing = 0;
    for (size_t i = 0; i < router.n; i++)
        if (!set_has(&spec, router.items[i])) {
            fprintf(stderr, "route missing from openapi.yaml: %s\n", router.items[i]);
            missing++;
        }
    for (size_t i = 0; i < spec.n; i++)
        if (!set_has(&router, spec.items[i])) {
            fprintf(stderr, "openapi.yaml names a route the router lacks: %s\n", spec.items[i]);
            missing++;
        }
    assert_int_equal(missing, 0);
    set_free(&router);
    set_free(&spec);

    nmc_app_stop_modules(&app);
    nmc_infra_stop(&app);
    nmc_rt_stop(app.rt);
    nmc_db_pool_destroy(app.db);
    nmc_rt_destroy(app.rt);
    nmc_http_server_shutdown(app.http, 0, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    nmc_http_server_free(app.http);
    uv_loop_close(&loop);
    nmc_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openapi_routes_match_router),
    };
    return cmocka_run_group_tests_name("openapi_routes", tests, NULL, NULL);
}
