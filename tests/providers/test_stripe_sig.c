/* Tests for providers/stripe_sig.c: known answer, rolled secrets, tolerance
 * on a frozen clock, malformed headers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "providers/stripe_sig.h"
#include "runtime/clock.h"

#define SECRET "whsec_test"
#define T 1700000000
#define PAYLOAD "{\"id\":\"evt_1\"}"
/* hex(HMAC-SHA256("whsec_test", "1700000000.{\"id\":\"evt_1\"}")), from Python's hmac. */
#define V1 "c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"

static int freeze(void **state)
{
    (void)state;
    nmc_clock_freeze((int64_t)T * 1000 + 30000);
    return 0;
}

static int unfreeze(void **state)
{
    (void)state;
    nmc_clock_unfreeze();
    return 0;
}

static int verify(const char *header, const char *payload)
{
    return nmc_prov_stripe_sig_verify(SECRET, header, payload, strlen(payload), 300);
}

static void test_stripe_sig_sign_known_answer(void **state)
{
    char h[NMC_PROV_STRIPE_SIG_HEADER_LEN];
    (void)state;
    assert_int_equal(nmc_prov_stripe_sig_sign(SECRET, T, PAYLOAD, strlen(PAYLOAD), h), 0);
    assert_string_equal(h, "t=1700000000,v1=" V1);
    assert_int_equal(verify(h, PAYLOAD), 0);
}

static void test_stripe_sig_verify_rolled_secret_and_v0(void **state)
{
    (void)state;
    assert_int_equal(verify("t=1700000000, v0=abc, v1=00ff, v1=" V1, PAYLOAD), 0);
}

static void test_stripe_sig_verify_tampered_payload(void **state)
{
    (void)state;
    assert_int_equal(verify("t=1700000000,v1=" V1, "{\"id\":\"evt_2\"}"), NMC_EAUTH);
    assert_int_equal(nmc_prov_stripe_sig_verify("whsec_other", "t=1700000000,v1=" V1, PAYLOAD,
                                                strlen(PAYLOAD), 300),
                     NMC_EAUTH);
    /* Timestamp is signed too. */
    assert_int_equal(verify("t=1700000001,v1=" V1, PAYLOAD), NMC_EAUTH);
}

static void test_stripe_sig_verify_outside_tolerance(void **state)
{
    char h[NMC_PROV_STRIPE_SIG_HEADER_LEN];
    (void)state;
    nmc_clock_advance(300 * 1000);
    assert_int_equal(verify("t=1700000000,v1=" V1, PAYLOAD), NMC_EGONE);
    assert_int_equal(nmc_prov_stripe_sig_sign(SECRET, T + 10000, PAYLOAD, strlen(PAYLOAD), h), 0);
    assert_int_equal(verify(h, PAYLOAD), NMC_EGONE);
    /* Tolerance 0 disables the check. */
    assert_int_equal(nmc_prov_stripe_sig_verify(SECRET, h, PAYLOAD, strlen(PAYLOAD), 0), 0);
}

static void test_stripe_sig_verify_malformed_header(void **state)
{
    (void)state;
    assert_int_equal(verify("", PAYLOAD), NMC_EPARSE);
    assert_int_equal(verify("v1=" V1, PAYLOAD), NMC_EPARSE);
    assert_int_equal(verify("t=1700000000", PAYLOAD), NMC_EPARSE);
    assert_int_equal(verify("t=abc,v1=" V1, PAYLOAD), NMC_EPARSE);
    assert_int_equal(verify("t=-5,v1=" V1, PAYLOAD), NMC_EPARSE);
    assert_int_equal(verify("t=99999999999999999999999,v1=" V1, PAYLOAD), NMC_EPARSE);
    assert_int_equal(nmc_prov_stripe_sig_verify(SECRET, NULL, PAYLOAD, 1, 300), NMC_EINVAL);
    assert_int_equal(nmc_prov_stripe_sig_verify("", "t=1,v1=00", PAYLOAD, 1, 300), NMC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stripe_sig_sign_known_answer, freeze, unfreeze),
        cmocka_unit_test_setup_teardown(test_stripe_sig_verify_rolled_secret_and_v0, freeze, unfreeze),
        cmocka_unit_test_setup_teardown(test_stripe_sig_verify_tampered_payload, freeze, unfreeze),
        cmocka_unit_test_setup_teardown(test_stripe_sig_verify_outside_tolerance, freeze, unfreeze),
        cmocka_unit_test_setup_teardown(test_stripe_sig_verify_malformed_header, freeze, unfreeze),
    };
    return cmocka_run_group_tests_name("providers_stripe_sig", tests, NULL, NULL);
}
