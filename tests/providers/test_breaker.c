/* Tests for providers/breaker.c, driven by a frozen clock. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "providers/breaker.h"
#include "runtime/clock.h"
#include "runtime/metrics.h"

#define MIN_MS (60 * 1000)

static struct nmc_prov_breaker *twilio(double baseline)
{
    struct nmc_prov_breaker_opts o;
    struct nmc_prov_breaker *b = NULL;

    nmc_prov_breaker_opts_twilio(&o, baseline);
    assert_int_equal(nmc_prov_breaker_create(&o, &b), 0);
    return b;
}

static double gauge(void)
{
    const char *v[1] = {"twilio"};
    return nmc_metrics_value(nmc_metrics_gauge("provider_circuit_state", "", "provider"), v);
}

/* n calls one second apart, the ones with i % every == 0 failing (every 0: none). */
static void feed(struct nmc_prov_breaker *b, int n, int every, double latency_ms)
{
    for (int i = 0; i < n; i++) {
        assert_true(nmc_prov_breaker_allow(b));
        nmc_prov_breaker_record(b, every > 0 && i % every == 0, latency_ms);
        nmc_clock_advance(1000);
    }
}

/* Drives a breaker to OPEN (1 failure in 21 calls) at the current time. */
static void trip(struct nmc_prov_breaker *b)
{
    feed(b, 20, 0, 50);
    assert_true(nmc_prov_breaker_allow(b));
    nmc_prov_breaker_record(b, 1, 50);
    assert_int_equal(nmc_prov_breaker_state(b), NMC_PROV_BREAKER_OPEN);
}

static int setup(void **state)
{
    (void)state;
    nmc_metrics_reset();
    nmc_clock_freeze(1700000000000LL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nmc_clock_unfreeze();
    nmc_metrics_reset();
    return 0;
}

static void test_breaker_record_few_calls_stay_closed(void **state)
{
    struct nmc_prov_breaker *b = twilio(0);
    (void)state;
    feed(b, 3, 3, 50); /* 1 failure in 3 calls: 33%, but under min_requests */
    assert_int_equal(nmc_prov_breaker_state(b), NMC_PROV_BREAKER_CLOSED);
    assert_true(gauge() == 0.0);
    nmc_prov_breaker_destroy(b);
}

static void test_breaker_record_error_rate_opens(void **state)
{
    struct nmc_prov_breaker *b = twilio(0);
    (void)state;
    feed(b, 100, 0, 50);
    feed(b, 2, 1, 50); /* 2 of 102: under 2% */
    assert_int_equal(nmc_prov_breaker_state(b), NMC_PROV_BREAKER_CLOSED);
    feed(b, 1, 1, 50); /* 3 of 103: over 2% */
    assert_int_equal(nmc_prov_breaker_state(b), NMC_PROV_BREAKER_OPEN);
    assert_true(gauge() == 2.0);
    assert_false(nmc_prov_breaker_allow(b));
    nmc_prov_breaker_destroy(b);
}

static void test_breaker_record_old_failures_slide_out(void **state)
{
    struct nmc_prov_breaker *b = twilio(0);
    (void)state;
    feed(b, 20, 10, 50); /* 2 failures in 20 calls; the rule only runs on a failure */
    assert_int_equal(nmc_prov_breaker_state(b), NMC_PROV_BREAKER_CLOSED);
    nmc_clock_advance(3 * MIN_MS); /* past the window, not yet past the bucket ring */
    feed(b, 60, 0, 50);
    feed(b, 1, 1, 50); /* 1 of 61 in the window (1.6%); 3 of 81 (3.7%) had nothing slid out */
    assert_int_equal(nmc_prov_breaker_state(b), NMC_PROV_BREAKER_CLOSED);
    nmc_prov_breaker_destroy(b);
}

static void test_breaker_allow_half_open_after_two_minutes(void **state)
{
    struct nmc_prov_breaker *b = twilio(0);
    int admitted = 0;
    (void)state;
    trip(b);
    nmc_clock_advance(2 * MIN_MS - 1);
    assert_false(nmc_prov_breaker_allow(b));
    nmc_clock_advance(1);
    assert_int_equal(nmc_prov_breaker_state(b), NMC_PROV_BREAKER_HALF_OPEN);
    assert_true(gauge() == 1.0);
    for (int i = 0; i < 100; i++)
        admitted += nmc_prov_breaker_allow(b);
    assert_int_equal(admitted, 10);
    nmc_prov_breaker_destroy(b);
}

static void test_breaker_record_probe_failure_reopens(void **state)
{
    struct nmc_prov_breaker *b = twilio(0);
    (void)state;
    trip(b);
    nmc_clock_advance(2 * MIN_MS);
    assert_true(nmc_prov_breaker_allow(b));
    nmc_prov_breaker_record(b, 1, 50);
    assert_int_equal(nmc_prov_breaker_state(b), NMC_PROV_BREAKER_OPEN);
    assert_false(nmc_prov_breaker_allow(b));
    nmc_prov_breaker_destroy(b);
}

/* Offers calls for duration_ms, one per 100 ms, recording the admitted ones. */
static void offer(struct nmc_prov_breaker *b, int64_t duration_ms, int fail)
{
    for (int64_t t = 0; t < duration_ms; t += 100) {
        if (nmc_prov_breaker_allow(b))
            nmc_prov_breaker_record(b, fail, 40);
        nmc_clock_advance(100);
    }
}

static void test_breaker_record_closes_after_five_clean_minutes(void **state)
{
    struct nmc_prov_breaker *b = twilio(0);
    (void)state;
    trip(b);
    nmc_clock_advance(2 * MIN_MS);
    offer(b, 5 * MIN_MS - 1000, 0);
    assert_int_equal(nmc_prov_breaker_state(b), NMC_PROV_BREAKER_HALF_OPEN);
    offer(b, 1000, 0);
    assert_int_equal(nmc_prov_breaker_state(b), NMC_PROV_BREAKER_CLOSED);
    assert_true(gauge() == 0.0);
    assert_true(nmc_prov_breaker_allow(b));
    nmc_prov_breaker_destroy(b);
}

static void test_breaker_record_latency_rule_needs_full_window(void **state)
{
    struct nmc_prov_breaker *b = twilio(100); /* trips when P95 > 300 ms for 5 min */
    (void)state;
    feed(b, 240, 0, 1000); /* 4 minutes of slow calls: not yet a full window */
    assert_int_equal(nmc_prov_breaker_state(b), NMC_PROV_BREAKER_CLOSED);
    feed(b, 61, 0, 1000);
    assert_int_equal(nmc_prov_breaker_state(b), NMC_PROV_BREAKER_OPEN);
    nmc_prov_breaker_destroy(b);
}

static void test_breaker_record_latency_under_threshold_stays_closed(void **state)
{
    struct nmc_prov_breaker *b = twilio(100);
    (void)state;
    feed(b, 400, 0, 250);    /* P95 250 ms < 300 ms */
    feed(b, 10, 0, 5000);    /* a burst of 10 slow calls among 300: under 5% */
    assert_int_equal(nmc_prov_breaker_state(b), NMC_PROV_BREAKER_CLOSED);
    nmc_prov_breaker_destroy(b);
}

static void test_breaker_is_failure_classifies(void **state)
{
    struct nmc_prov_breaker_opts o;
    struct nmc_prov_breaker *b = twilio(0), *g = NULL;
    (void)state;
    assert_true(nmc_prov_breaker_is_failure(b, 500, 0));
    assert_true(nmc_prov_breaker_is_failure(b, 503, 0));
    assert_true(nmc_prov_breaker_is_failure(b, 0, NMC_ETIMEDOUT));
    assert_false(nmc_prov_breaker_is_failure(b, 400, 0));
    assert_false(nmc_prov_breaker_is_failure(b, 429, 0));
    assert_false(nmc_prov_breaker_is_failure(b, 201, 0));
    nmc_prov_breaker_opts_calendar(&o, "google", 0);
    assert_int_equal(nmc_prov_breaker_create(&o, &g), 0);
    assert_true(nmc_prov_breaker_is_failure(g, 429, 0));
    nmc_prov_breaker_destroy(g);
    nmc_prov_breaker_destroy(b);
}

static void test_breaker_create_bad_opts(void **state)
{
    struct nmc_prov_breaker_opts o;
    struct nmc_prov_breaker *b = NULL;
    (void)state;
    nmc_prov_breaker_opts_stripe(&o);
    o.open_error_rate = 1.5;
    assert_int_equal(nmc_prov_breaker_create(&o, &b), NMC_EINVAL);
    nmc_prov_breaker_opts_stripe(&o);
    o.half_open_ratio = 0;
    assert_int_equal(nmc_prov_breaker_create(&o, &b), NMC_EINVAL);
    nmc_prov_breaker_opts_stripe(&o);
    o.error_window_ms = 0;
    assert_int_equal(nmc_prov_breaker_create(&o, &b), NMC_EINVAL);
    nmc_prov_breaker_opts_stripe(&o);
    o.provider = NULL;
    assert_int_equal(nmc_prov_breaker_create(&o, &b), NMC_EINVAL);
    assert_null(b);
    assert_int_equal(nmc_prov_breaker_create(NULL, &b), NMC_EINVAL);
    nmc_prov_breaker_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_breaker_record_few_calls_stay_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_record_error_rate_opens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_record_old_failures_slide_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_allow_half_open_after_two_minutes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_record_probe_failure_reopens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_record_closes_after_five_clean_minutes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_record_latency_rule_needs_full_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_record_latency_under_threshold_stays_closed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_breaker_is_failure_classifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_create_bad_opts, setup, teardown),
    };
    return cmocka_run_group_tests_name("providers_breaker", tests, NULL, NULL);
}
