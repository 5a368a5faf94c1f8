/* Tests for runtime/config.c: defaults, every validation, secrets never echoed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/config.h"

/* An environment given as NULL-terminated name/value pairs. */
static const char *table_get(const char *name, void *ud)
{
    const char *const *env = ud;

    for (; env[0]; env += 2)
        if (strcmp(env[0], name) == 0)
            return env[1];
    return NULL;
}

static void test_config_load_defaults(void **state)
{
    static const char *env[] = {NULL};
    struct nmc_config c;
    char err[256] = "";

    assert_int_equal(nmc_config_load(&c, table_get, (void *)env, err, sizeof(err)), 0);
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.bind_addr, "0.0.0.0");
    assert_string_equal(c.public_base_url, "http://localhost:8080");
    assert_int_equal(c.db_pool_size, 8);
    assert_int_equal(c.db_query_timeout_ms, 5000);
    assert_int_equal(c.http_max_body_bytes, 1048576);
    assert_int_equal(c.http_header_timeout_ms, 10000);
    assert_int_equal(c.http_idle_timeout_ms, 60000);
    assert_int_equal(c.http_max_connections, 10000);
    assert_int_equal(c.log_level, NMC_LOG_INFO);
    assert_int_equal(c.log_message_body_prefix, 0);
    assert_true(c.trace_sample_ratio == 0.1);
    assert_string_equal(c.twilio_api_base, "https://api.twilio.com");
    assert_string_equal(c.stripe_api_base, "https://api.stripe.com");
    assert_int_equal(c.provider_timeout_ms, 10000);
    assert_int_equal(c.hold_ttl_minutes, 15);
    assert_int_equal(c.search_granularity_minutes, 15);
    assert_int_equal(c.poll_interval_google_seconds, 60);
    assert_int_equal(c.poll_interval_jobber_seconds, 120);
    assert_int_equal(c.outbox_batch_size, 100);
    assert_int_equal(c.outbox_concurrency, 2);
    assert_int_equal(c.outbox_max_attempts, 10);
    assert_int_equal(c.outbox_poll_interval_ms, 1000);
    assert_int_equal(c.pause_outbound_sms, 0);
    assert_int_equal(c.treat_short_completed_as_missed, 0);
    assert_int_equal(c.short_completed_max_seconds, 10);
    assert_int_equal(c.first_sms_repeat_window_minutes, 60);
    /* the modules' knobs: the defaults they had when they parsed them */
    assert_int_equal(c.outbox_lease_ms, 30000);
    assert_int_equal(c.sms_ambiguous_wait_ms, 30000);
    assert_int_equal(c.sms_provider_hold_retry_ms, 60000);
    assert_int_equal(c.sms_provider_hold_max_minutes, 1440);
    assert_int_equal(c.sms_compliance_hold_max_minutes, 1440);
    assert_int_equal(c.twilio_breaker_open_ms, 120000);        /* nmc_prov_breaker_opts_twilio() */
    assert_int_equal(c.twilio_breaker_close_after_ms, 300000);
    assert_int_equal(c.twilio_breaker_half_open_percent, 10);
    assert_int_equal(c.reporting_sweep_ms, 30000);
    assert_int_equal(c.reporting_rollup_ms, 5000);
    assert_int_equal(c.role, NMC_ROLE_ALL);
    assert_null(c.database_url);
    assert_null(c.secret_key);
    assert_null(c.metrics_basic_auth);
    assert_null(c.metrics_allow_cidrs);
    assert_null(c.otel_endpoint);
    assert_null(c.twilio_auth_token);
    nmc_config_free(&c);
    assert_null(c.bind_addr);
    nmc_config_free(&c); /* twice: the zeroed config is accepted */
}

static void test_config_load_values(void **state)
{
    static const char *env[] = {
        "DATABASE_URL", "host=/tmp dbname=x", "PORT", "9000", "LOG_LEVEL", "DEBUG",
        "PAUSE_OUTBOUND_SMS", "Yes", "TREAT_SHORT_COMPLETED_AS_MISSED", "1", "LOG_MESSAGE_BODY_PREFIX", "TRUE",
        "TRACE_SAMPLE_RATIO", "1", "SEARCH_GRANULARITY_MINUTES", "30", "HTTP_MAX_BODY_BYTES", "67108864",
        "PUBLIC_BASE_URL", "https://nmc.example.com/", "TWILIO_API_BASE", "http://127.0.0.1:8090",
        "METRICS_BASIC_AUTH", "prom:s3cret", "METRICS_ALLOW_CIDRS", "10.0.0.0/8, ::1/128",
        "OUTBOX_BATCH_SIZE", "", /* empty means unset: default */
        "TWILIO_AUTH_TOKEN", "tok", "SHORT_COMPLETED_MAX_SECONDS", "0", NULL};
    struct nmc_config c;
    char err[256] = "";

    assert_int_equal(nmc_config_load(&c, table_get, (void *)env, err, sizeof(err)), 0);
    assert_string_equal(c.database_url, "host=/tmp dbname=x");
    assert_int_equal(c.port, 9000);
    assert_int_equal(c.log_level, NMC_LOG_DEBUG);
    assert_int_equal(c.pause_outbound_sms, 1);
    assert_int_equal(c.treat_short_completed_as_missed, 1);
    assert_int_equal(c.log_message_body_prefix, 1);
    assert_true(c.trace_sample_ratio == 1.0);
    assert_int_equal(c.search_granularity_minutes, 30);
    assert_int_equal(c.http_max_body_bytes, 67108864);
    assert_string_equal(c.public_base_url, "https://nmc.example.com");
    assert_string_equal(c.twilio_api_base, "http://127.0.0.1:8090");
    assert_string_equal(c.metrics_basic_auth, "prom:s3cret");
    assert_string_equal(c.metrics_allow_cidrs, "10.0.0.0/8, ::1/128");
    assert_int_equal(c.outbox_batch_size, 100);
    assert_string_equal(c.twilio_auth_token, "tok");
    assert_int_equal(c.short_completed_max_seconds, 0);
    nmc_config_free(&c);
}

static void test_config_load_public_base_url_follows_port(void **state)
{
    static const char *env[] = {"PORT", "18080", NULL};
    struct nmc_config c;
    char err[256] = "";

    assert_int_equal(nmc_config_load(&c, table_get, (void *)env, err, sizeof(err)), 0);
    assert_string_equal(c.public_base_url, "http://localhost:18080");
    nmc_config_free(&c);
}

struct bad_case {
    const char *name;
    const char *value;
    const char *reason; /* a fragment of the expected message */
};

/* Each row: one bad variable; the error must start with "NAME: ", carry the
 * reason, quote the value, and leave the config zeroed. */
static const struct bad_case bad_cases[] = {
    {"PORT", "0", "from 1 to 65535"},
    {"PORT", "65536", "from 1 to 65535"},
    {"PORT", "80x", "integer"},
    {"PORT", " 80", "integer"},
    {"DB_POOL_SIZE", "0", "from 1 to 64"},
    {"DB_POOL_SIZE", "65", "from 1 to 64"},
    {"DB_QUERY_TIMEOUT_MS", "-5", "integer"},
    {"HTTP_MAX_BODY_BYTES", "1023", "from 1024 to 67108864"},
    {"HTTP_MAX_BODY_BYTES", "67108865", "from 1024 to 67108864"},
    {"HTTP_HEADER_TIMEOUT_MS", "ten", "integer"},
    {"HTTP_IDLE_TIMEOUT_MS", "0", "integer"},
    {"HTTP_MAX_CONNECTIONS", "99999999999999999999", "integer"},
    {"LOG_LEVEL", "verbose", "trace, debug, info, warn, error"},
    {"LOG_MESSAGE_BODY_PREFIX", "maybe", "true or false"},
    {"PAUSE_OUTBOUND_SMS", "on", "true or false"},
    {"TREAT_SHORT_COMPLETED_AS_MISSED", "2", "true or false"},
    {"TRACE_SAMPLE_RATIO", "1.5", "from 0 to 1"},
    {"TRACE_SAMPLE_RATIO", "-0.1", "from 0 to 1"},
    {"TRACE_SAMPLE_RATIO", "nan", "from 0 to 1"},
    {"TRACE_SAMPLE_RATIO", "0.1x", "from 0 to 1"},
    {"TRACE_SAMPLE_RATIO", "0x0.1p0", "from 0 to 1"},
    {"PUBLIC_BASE_URL", "ftp://x", "http:// or https://"},
    {"PUBLIC_BASE_URL", "nmc.example.com", "http:// or https://"},
    {"PUBLIC_BASE_URL", "https://", "http:// or https://"},
    {"PUBLIC_BASE_URL", "https://a b", "http:// or https://"},
    {"TWILIO_API_BASE", "api.twilio.com", "http:// or https://"},
    {"STRIPE_API_BASE", "stripe", "http:// or https://"},
    {"CLERK_JWKS_URL", "file:///etc/passwd", "http:// or https://"},
    {"OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", "http:// or https://"},
    {"METRICS_ALLOW_CIDRS", "10.0.0.0/33", "10.0.0.0/33"},
    {"METRICS_ALLOW_CIDRS", "localhost", "localhost"},
    {"METRICS_ALLOW_CIDRS", " , ", "no CIDR"},
    {"PROVIDER_TIMEOUT_MS", "0", "integer"},
    {"HOLD_TTL_MINUTES", "0", "from 1 to 1440"},
    {"HOLD_TTL_MINUTES", "1441", "from 1 to 1440"},
    {"SEARCH_GRANULARITY_MINUTES", "4", "from 5 to 240"},
    {"SEARCH_GRANULARITY_MINUTES", "241", "from 5 to 240"},
    {"SEARCH_GRANULARITY_MINUTES", "7", "divide 1440"},
    {"POLL_INTERVAL_GOOGLE_SECONDS", "0", "integer"},
    {"POLL_INTERVAL_JOBBER_SECONDS", "1.5", "integer"},
    {"OUTBOX_BATCH_SIZE", "1001", "from 1 to 1000"},
    {"OUTBOX_CONCURRENCY", "33", "from 1 to 32"},
    {"OUTBOX_CONCURRENCY", "0", "from 1 to 32"},
    {"OUTBOX_MAX_ATTEMPTS", "0", "integer"},
    {"OUTBOX_POLL_INTERVAL_MS", "0", "integer"},
    {"SHORT_COMPLETED_MAX_SECONDS", "601", "from 0 to 600"},
    {"FIRST_SMS_REPEAT_WINDOW_MINUTES", "10081", "from 0 to 10080"},
    {"FIRST_SMS_REPEAT_WINDOW_MINUTES", "-1", "from 0 to 10080"},
    {"NMC_OUTBOX_LEASE_MS", "999", "from 1000 to 600000"},
    {"NMC_OUTBOX_LEASE_MS", "600001", "from 1000 to 600000"},
    {"NMC_SMS_AMBIGUOUS_WAIT_MS", "soon", "integer"},
    {"NMC_SMS_AMBIGUOUS_WAIT_MS", "-1", "from 0 to 3600000"},
    {"NMC_SMS_AMBIGUOUS_WAIT_MS", "3600001", "from 0 to 3600000"},
    {"NMC_SMS_PROVIDER_HOLD_RETRY_MS", "999", "from 1000 to 3600000"},
    {"NMC_SMS_PROVIDER_HOLD_RETRY_MS", "3600001", "from 1000 to 3600000"},
    {"NMC_SMS_PROVIDER_HOLD_MAX_MINUTES", "0", "from 1 to 10080"},
    {"NMC_SMS_PROVIDER_HOLD_MAX_MINUTES", "10081", "from 1 to 10080"},
    {"NMC_SMS_COMPLIANCE_HOLD_MAX_MINUTES", "0", "from 1 to 10080"},
    {"NMC_SMS_COMPLIANCE_HOLD_MAX_MINUTES", "10081", "from 1 to 10080"},
    {"NMC_TWILIO_BREAKER_OPEN_MS", "999", "from 1000 to 3600000"},
    {"NMC_TWILIO_BREAKER_OPEN_MS", "3600001", "from 1000 to 3600000"},
    {"NMC_TWILIO_BREAKER_CLOSE_AFTER_MS", "999", "from 1000 to 3600000"},
    {"NMC_TWILIO_BREAKER_CLOSE_AFTER_MS", "3600001", "from 1000 to 3600000"},
    {"NMC_TWILIO_BREAKER_HALF_OPEN_PERCENT", "0", "from 1 to 100"},
    {"NMC_TWILIO_BREAKER_HALF_OPEN_PERCENT", "101", "from 1 to 100"},
    {"NMC_REPORTING_SWEEP_MS", "10", "from 1000 to 3600000"},
    {"NMC_REPORTING_ROLLUP_MS", "999", "from 1000 to 3600000"},
    {"NMC_REPORTING_ROLLUP_MS", "5s", "integer"},
};

static void test_config_load_bad_values_name_the_variable(void **state)
{
    size_t i;

    for (i = 0; i < NMC_ARRAY_SIZE(bad_cases); i++) {
        const struct bad_case *bc = &bad_cases[i];
        const char *env[] = {bc->name, bc->value, NULL};
        char err[256] = "", prefix[64], quoted[128];
        struct nmc_config c;

        snprintf(prefix, sizeof(prefix), "%s: ", bc->name);
        snprintf(quoted, sizeof(quoted), "(got '%s')", bc->value);
        if (nmc_config_load(&c, table_get, (void *)env, err, sizeof(err)) != NMC_EINVAL)
            fail_msg("%s=%s was accepted", bc->name, bc->value);
        if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, bc->reason) || !strstr(err, quoted))
            fail_msg("%s=%s: unexpected message \"%s\"", bc->name, bc->value, err);
        assert_null(c.bind_addr); /* partial results were freed */
        nmc_config_free(&c);
    }
}

/* Secrets with bad values: the message names the variable, never the value. */
static void test_config_load_never_echoes_secrets(void **state)
{
    static const char *env[] = {"METRICS_BASIC_AUTH", "hunter2-no-colon", NULL};
    static const char *env2[] = {"METRICS_BASIC_AUTH", ":hunter2", NULL};
    struct nmc_config c;
    char err[256] = "";

    assert_int_equal(nmc_config_load(&c, table_get, (void *)env, err, sizeof(err)), NMC_EINVAL);
    assert_string_equal(err, "METRICS_BASIC_AUTH: must be user:password");
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(nmc_config_load(&c, table_get, (void *)env2, err, sizeof(err)), NMC_EINVAL);
    assert_null(strstr(err, "hunter2"));
}

static void test_config_vars_secret_flags(void **state)
{
    static const char *const secrets[] = {"TWILIO_AUTH_TOKEN", "ADMIN_API_KEY", "SECRET_KEY",
                                          "METRICS_BASIC_AUTH", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET",
                                          "GOOGLE_CLIENT_SECRET", "JOBBER_API_TOKEN", "DATABASE_URL"};
    size_t n, i, j, nsecret = 0;
    const struct nmc_config_var *v = nmc_config_vars(&n);

    assert_true(n >= 44);
    for (i = 0; i < n; i++) {
        int want = 0;
        assert_non_null(v[i].name);
        assert_non_null(v[i].help);
        for (j = 0; j < NMC_ARRAY_SIZE(secrets); j++)
            want |= strcmp(v[i].name, secrets[j]) == 0;
        if (want != v[i].secret)
            fail_msg("%s: secret flag %d", v[i].name, v[i].secret);
        nsecret += (size_t)want;
        /* no secret has a default that could leak into --help */
        if (v[i].secret)
            assert_null(v[i].def);
    }
    assert_int_equal(nsecret, NMC_ARRAY_SIZE(secrets));
}

static void test_config_load_error_masks_control_bytes_and_truncates(void **state)
{
    static const char long_value[] = "1234567890123456789012345678901234567890123456789012345678901234567890";
    static const char *env[] = {"LOG_LEVEL", "bad\n\x1b[31mred'", NULL};
    static const char *env2[] = {"PORT", long_value, NULL};
    struct nmc_config c;
    char err[256] = "";

    assert_int_equal(nmc_config_load(&c, table_get, (void *)env, err, sizeof(err)), NMC_EINVAL);
    assert_null(strchr(err, '\n'));
    assert_null(strchr(err, '\x1b'));
    assert_non_null(strstr(err, "(got 'bad??[31mred?')"));
    assert_int_equal(nmc_config_load(&c, table_get, (void *)env2, err, sizeof(err)), NMC_EINVAL);
    assert_non_null(strstr(err, "...')"));
    assert_null(strstr(err, long_value));
    /* a short err buffer is still terminated */
    assert_int_equal(nmc_config_load(&c, table_get, (void *)env2, err, 8), NMC_EINVAL);
    assert_int_equal(strlen(err), 7);
}

static void test_config_parse_bool_accepts_any_case(void **state)
{
    static const char *const truthy[] = {"true", "TRUE", "True", "1", "yes", "YES", "yEs"};
    static const char *const falsy[] = {"false", "FALSE", "0", "no", "No"};
    static const char *const bad[] = {"", "y", "n", "on", "off", "2", "true ", " false", "truee"};
    size_t i;
    int v;

    for (i = 0; i < NMC_ARRAY_SIZE(truthy); i++) {
        v = -1;
        assert_int_equal(nmc_config_parse_bool(truthy[i], &v), 0);
        assert_int_equal(v, 1);
    }
    for (i = 0; i < NMC_ARRAY_SIZE(falsy); i++) {
        v = -1;
        assert_int_equal(nmc_config_parse_bool(falsy[i], &v), 0);
        assert_int_equal(v, 0);
    }
    for (i = 0; i < NMC_ARRAY_SIZE(bad); i++) {
        v = -1;
        assert_int_equal(nmc_config_parse_bool(bad[i], &v), NMC_EINVAL);
        assert_int_equal(v, -1);
    }
}

static void test_config_load_reads_process_environment(void **state)
{
    struct nmc_config c;
    char err[256] = "";

    setenv("OUTBOX_CONCURRENCY", "7", 1);
    assert_int_equal(nmc_config_load(&c, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(c.outbox_concurrency, 7);
    nmc_config_free(&c);
    unsetenv("OUTBOX_CONCURRENCY");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_load_defaults),
        cmocka_unit_test(test_config_load_values),
        cmocka_unit_test(test_config_load_public_base_url_follows_port),
        cmocka_unit_test(test_config_load_bad_values_name_the_variable),
        cmocka_unit_test(test_config_load_never_echoes_secrets),
        cmocka_unit_test(test_config_vars_secret_flags),
        cmocka_unit_test(test_config_load_error_masks_control_bytes_and_truncates),
        cmocka_unit_test(test_config_parse_bool_accepts_any_case),
        cmocka_unit_test(test_config_load_reads_process_environment),
    };
    return cmocka_run_group_tests_name("runtime_config", tests, NULL, NULL);
}
