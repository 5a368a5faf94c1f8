/* The retention jobs in the real nmc binary (the rounds themselves are
 * driven in tests/integration/test_maintenance_retention.c: the first
 * round comes a minute after start, too late for this suite).
 *
 *  - worker_exports_retention_metrics: an instance with background workers
 *    (role all) serves every maintenance_retention_* series at /metrics
 *    from start-up, at 0, per job/table and outcome.
 *  - web_instance_runs_no_retention: a web-only instance does not run the
 *    jobs, so it has none of those series. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/http_client.h"
#include "tests/support/nmc_proc.h"
#include "tests/support/pgtest.h"

static char *g_url;

static const char *const series[] = {
    "maintenance_retention_deleted_total{table=\"outbox_events\"} 0\n",
    "maintenance_retention_deleted_total{table=\"webhook_events\"} 0\n",
    "maintenance_retention_runs_total{job=\"outbox_events\",outcome=\"ok\"} 0\n",
    "maintenance_retention_runs_total{job=\"outbox_events\",outcome=\"locked\"} 0\n",
    "maintenance_retention_runs_total{job=\"outbox_events\",outcome=\"error\"} 0\n",
    "maintenance_retention_runs_total{job=\"webhook_events\",outcome=\"ok\"} 0\n",
    "maintenance_retention_runs_total{job=\"webhook_events\",outcome=\"locked\"} 0\n",
    "maintenance_retention_runs_total{job=\"webhook_events\",outcome=\"error\"} 0\n",
};

/* Starts nmc with <role>, returns its /metrics body (caller frees) and stops it. */
static char *metrics_of(const char *role)
{
    struct nmc_proc p;
    struct nmc_test_http_resp r;
    int code = -1;
    long ms = 0;
    nmc_proc_init(&p, g_url);
    assert_int_equal(nmc_proc_start(&p, role), 0);
    assert_int_equal(nmc_test_http_request(p.port,
                                           "GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: Basic bTpt\r\n"
                                           "Connection: close\r\n\r\n",
                                           5000, &r),
                     0);
    assert_int_equal(r.status, 200);
    char *body = strdup(r.body);
    assert_non_null(body);
    nmc_test_http_resp_free(&r);
    assert_int_equal(nmc_proc_stop(&p, &code, &ms), 0);
    assert_int_equal(code, 0);
    nmc_proc_free(&p);
    return body;
}

static void test_maintenance_retention_worker_exports_retention_metrics(void **state)
{
    (void)state;
    char *body = metrics_of(NULL);
    for (size_t i = 0; i < sizeof(series) / sizeof(series[0]); i++)
        if (strstr(body, series[i]) == NULL)
            fail_msg("missing series %s", series[i]);
    assert_non_null(strstr(body, "# TYPE maintenance_retention_runs_total counter"));
    free(body);
}

static void test_maintenance_retention_web_instance_runs_no_retention(void **state)
{
    (void)state;
    char *body = metrics_of("web");
    assert_null(strstr(body, "maintenance_retention_"));
    free(body);
}

static int setup(void **state)
{
    (void)state;
    struct nmc_proc p;
    g_url = pgtest_db_create();
    nmc_proc_init(&p, g_url);
    assert_int_equal(nmc_proc_migrate(&p, "up"), 0);
    nmc_proc_free(&p);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pgtest_db_drop(g_url);
    g_url = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maintenance_retention_worker_exports_retention_metrics),
        cmocka_unit_test(test_maintenance_retention_web_instance_runs_no_retention),
    };
    return cmocka_run_group_tests_name("e2e_maintenance_retention", tests, setup, teardown);
}
