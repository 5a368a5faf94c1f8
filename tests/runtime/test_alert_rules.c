/* Tests for deploy/: the Prometheus alert rules pass `promtool check rules`
 * and their unit tests (`promtool test rules alerts_test.yml`: thresholds
 * and `for` durations), and the Grafana dashboard holds the six panels of
 * spec 000 section 5, queries only canonical metric names, and every query
 * parses as PromQL (checked by promtool as recording rules).
 * The source tree comes from NMC_SOURCE_DIR (set by ctest). promtool must
 * be installed: when it is missing these tests fail, they do not skip. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/buf.h"

static const char *source_dir(void)
{
    const char *d = getenv("NMC_SOURCE_DIR");
#ifdef NMC_SOURCE_DIR
    if (d == NULL || *d == '\0')
        d = NMC_SOURCE_DIR;
#endif
    if (d == NULL || *d == '\0' || strchr(d, '\''))
        fail_msg("NMC_SOURCE_DIR is not set (or holds a quote)");
    return d;
}

static const char *promtool(void)
{
    const char *p = getenv("NMC_PROMTOOL");
    p = p && *p ? p : "/usr/bin/promtool";
    if (access(p, X_OK) != 0)
        fail_msg("promtool not found at %s: install prometheus (promtool); this test does not skip", p);
    return p;
}

/* Runs cmd through the shell; returns its exit status, output in *out. */
static int run(const char *cmd, char **out)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    struct nmc_buf b = { 0 };
    char chunk[512];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        assert_int_equal(nmc_buf_append(&b, chunk, n), 0);
    int status = pclose(p);
    *out = nmc_buf_steal(&b, NULL);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void expect_success(const char *cmd)
{
    char *out = NULL;
    int rc = run(cmd, &out);
    if (rc != 0)
        fail_msg("`%s` exited %d:\n%s", cmd, rc, out);
    free(out);
}

static void test_alert_rules_promtool_check_rules(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' check rules '%s/deploy/prometheus/alerts.yml' 2>&1", promtool(), source_dir());
    expect_success(cmd);
}

static void test_alert_rules_promtool_unit_tests(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' test rules '%s/deploy/prometheus/alerts_test.yml' 2>&1", promtool(),
             source_dir());
    expect_success(cmd);
}

/* ---- dashboard ---------------------------------------------------------- */

static json_t *load_dashboard(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/deploy/grafana/nmc-dashboard.json", source_dir());
    json_error_t err;
    json_t *d = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (d == NULL)
        fail_msg("%s:%d: %s", path, err.line, err.text);
    return d;
}

/* Spec 000 section 2 names plus the runtime's own (process, actors, pool
 * size, breaker state, Twilio status callbacks). */
static const char *const canonical[] = {
    "http_request_duration_ms", "webhook_handler_duration_ms", "scheduling_search_duration_ms",
    "scheduling_book_duration_ms", "ai_pipeline_duration_ms", "slo_first_sms_p95_seconds", "booking_post_p95_ms",
    "outbox_dispatch_lag_seconds", "outbox_dispatch_attempts_total", "outbox_dispatch_failures_total",
    "reporting_projector_lag_seconds", "reporting_projection_errors_total", "integration_http_requests_total",
    "integration_http_latency_ms", "webhook_dedupe_hits_total", "webhook_signature_failures_total",
    "scheduling_hold_success_total", "scheduling_hold_conflict_total", "scheduling_book_conflict_total",
    "calendar_sync_errors_total", "kpi_calls_detected_total", "kpi_conversations_started_total",
    "kpi_appointments_booked_total", "kpi_attributed_revenue_cents_total", "db_connections_in_use",
    "worker_queue_depth", "cpu_utilization_percent", "memory_utilization_percent", "db_connections_max",
    "twilio_message_status_total", "nmc_actor_mailbox_depth", "provider_circuit_state",
    "process_cpu_seconds_total", "process_resident_memory_bytes",
};
static const char *const histograms[] = { "http_request_duration_ms", "webhook_handler_duration_ms",
                                          "integration_http_latency_ms", "scheduling_book_duration_ms",
                                          "scheduling_search_duration_ms", "ai_pipeline_duration_ms" };

static int in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return 1;
    return 0;
}

static int known_metric(const char *name)
{
    if (in_list(name, canonical, NMC_ARRAY_SIZE(canonical)))
        return 1;
    static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(suffixes); i++) {
        size_t n = strlen(name), m = strlen(suffixes[i]);
        if (n > m && strcmp(name + n - m, suffixes[i]) == 0) {
            char base[128];
            snprintf(base, sizeof(base), "%.*s", (int)(n - m), name);
            if (in_list(base, histograms, NMC_ARRAY_SIZE(histograms)))
                return 1;
        }
    }
    return 0;
}

static const char *skip_group(const char *p, char open, char close)
{
    int depth = 0;
    for (; *p; p++) {
        if (*p == '"') { /* label values may hold brackets */
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (*p == '\0')
                break;
        } else if (*p == open) {
            depth++;
        } else if (*p == close && --depth == 0) {
            return p + 1;
        }
    }
    return p;
}

/* Calls cb with each metric name a PromQL expression selects: identifiers
 * that are not functions, aggregation modifiers, label matchers ({...}),
 * grouping lists (by (...)), ranges ([...]) or numbers. */
static void each_metric(const char *expr, void (*cb)(const char *name, void *ud), void *ud)
{
    static const char *const modifiers[] = { "by", "without", "on", "ignoring", "group_left", "group_right" };
    static const char *const keywords[] = { "bool", "and", "or", "unless", "offset", /* and aggregations, */
                                            "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                                            "count_values", "bottomk", "topk", "quantile" }; /* "sum by (x) (...)" */
    for (const char *p = expr; *p;) {
        if (*p == '{') {
            p = skip_group(p, '{', '}');
        } else if (*p == '[') {
            p = skip_group(p, '[', ']');
        } else if (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))) {
            while (isalnum((unsigned char)*p) || *p == '.' || ((*p == '-' || *p == '+') && (p[-1] == 'e')))
                p++;
        } else if (isalpha((unsigned char)*p) || *p == '_' || *p == ':') {
            const char *start = p;
            while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
                p++;
            char id[128];
            snprintf(id, sizeof(id), "%.*s", (int)(p - start), start);
            const char *q = p;
            while (*q == ' ')
                q++;
            if (in_list(id, modifiers, NMC_ARRAY_SIZE(modifiers)))
                p = *q == '(' ? skip_group(q, '(', ')') : q;
            else if (*q != '(' && !in_list(id, keywords, NMC_ARRAY_SIZE(keywords)))
                cb(id, ud);
        } else {
            p++;
        }
    }
}

struct names {
    char seen[64][128];
    size_t n;
};

static int names_has(const struct names *ns, const char *name)
{
    for (size_t i = 0; i < ns->n; i++)
        if (strcmp(ns->seen[i], name) == 0)
            return 1;
    return 0;
}

static void on_metric(const char *name, void *ud)
{
    struct names *ns = ud;
    if (!known_metric(name))
        fail_msg("dashboard queries unknown metric %s", name);
    if (ns->n < NMC_ARRAY_SIZE(ns->seen) && !names_has(ns, name))
        nmc_strlcpy(ns->seen[ns->n++], name, sizeof(ns->seen[0]));
}

static void test_alert_rules_dashboard_six_panels_canonical_names(void **state)
{
    (void)state;
    json_t *d = load_dashboard();
    static const char *const titles[] = { "SLO Overview", "Outbox Health", "Webhook Health", "Scheduling",
                                          "Twilio Delivery", "DB & Workers" };
    json_t *panels = json_object_get(d, "panels");
    assert_int_equal(json_array_size(panels), NMC_ARRAY_SIZE(titles));
    struct names ns = { .n = 0 };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(titles); i++) {
        json_t *p = json_array_get(panels, i);
        assert_string_equal(json_string_value(json_object_get(p, "title")), titles[i]);
        json_t *targets = json_object_get(p, "targets");
        assert_true(json_array_size(targets) > 0);
        for (size_t t = 0; t < json_array_size(targets); t++) {
            const char *expr = json_string_value(json_object_get(json_array_get(targets, t), "expr"));
            assert_non_null(expr);
            assert_true(*expr != '\0');
            each_metric(expr, on_metric, &ns);
        }
    }
    /* what each panel of spec 000 section 5 must show */
    static const char *const required[] = {
        "slo_first_sms_p95_seconds", "kpi_calls_detected_total", "http_request_duration_ms_count",
        "outbox_dispatch_lag_seconds", "outbox_dispatch_attempts_total", "outbox_dispatch_failures_total",
        "webhook_dedupe_hits_total", "webhook_signature_failures_total", "webhook_handler_duration_ms_bucket",
        "scheduling_hold_success_total", "scheduling_hold_conflict_total", "booking_post_p95_ms",
        "calendar_sync_errors_total", "twilio_message_status_total", "db_connections_in_use",
        "cpu_utilization_percent", "memory_utilization_percent", "worker_queue_depth",
    };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(required); i++)
        if (!names_has(&ns, required[i]))
            fail_msg("dashboard never queries %s", required[i]);
    json_decref(d);
}

/* Grafana's $__rate_interval and $__range are not PromQL: substitute them,
 * then let promtool parse every query as a recording rule. */
static void test_alert_rules_dashboard_queries_parse(void **state)
{
    (void)state;
    json_t *d = load_dashboard();
    struct nmc_buf y = { 0 };
    assert_int_equal(nmc_buf_puts(&y, "groups:\n  - name: dashboard\n    rules:\n"), 0);
    json_t *panels = json_object_get(d, "panels");
    int n = 0;
    for (size_t i = 0; i < json_array_size(panels); i++) {
        json_t *targets = json_object_get(json_array_get(panels, i), "targets");
        for (size_t t = 0; t < json_array_size(targets); t++) {
            const char *expr = json_string_value(json_object_get(json_array_get(targets, t), "expr"));
            struct nmc_buf e = { 0 };
            for (const char *p = expr; *p;) {
                if (strncmp(p, "$__rate_interval", 16) == 0) {
                    (void)nmc_buf_puts(&e, "5m");
                    p += 16;
                } else if (strncmp(p, "$__range", 8) == 0) {
                    (void)nmc_buf_puts(&e, "1h");
                    p += 8;
                } else {
                    (void)nmc_buf_append(&e, p++, 1);
                }
            }
            json_t *s = json_string(e.data);
            char *quoted = json_dumps(s, JSON_ENCODE_ANY); /* a JSON string is a YAML double-quoted scalar */
            assert_int_equal(nmc_buf_printf(&y, "      - record: nmc:dashboard_query_%d\n        expr: %s\n", n++,
                                            quoted), 0);
            free(quoted);
            json_decref(s);
            nmc_buf_free(&e);
        }
    }
    char path[] = "/tmp/nmc-dash-rules-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, y.data, y.len), (ssize_t)y.len);
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "'%s' check rules '%s' 2>&1", promtool(), path);
    char *out = NULL;
    int rc = run(cmd, &out);
    unlink(path);
    if (rc != 0)
        fail_msg("dashboard queries do not parse (%d):\n%s\n%s", rc, out, y.data);
    free(out);
    nmc_buf_free(&y);
    json_decref(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alert_rules_promtool_check_rules),
        cmocka_unit_test(test_alert_rules_promtool_unit_tests),
        cmocka_unit_test(test_alert_rules_dashboard_six_panels_canonical_names),
        cmocka_unit_test(test_alert_rules_dashboard_queries_parse),
    };
    return cmocka_run_group_tests_name("runtime_alert_rules", tests, NULL, NULL);
}
