/* Tests for providers/twilio_sig.c: Twilio's published known answers, the
 * port variants its validators accept, and tampering. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "providers/twilio_sig.h"

#define TOKEN "12345"
#define URL "https://mycompany.com/myapp.php?foo=1&bar=2"
#define URL_443 "https://mycompany.com:443/myapp.php?foo=1&bar=2"
#define SIG "RSOYDt4T1cUTdK1PDd93/VVr8B8="
#define SIG_443 "kvajT1Ptam85bY51eRf/AJRuM3w="

/* Deliberately not in sorted order: the signer must sort. */
static const struct nmc_prov_kv kat_params[] = {
    {"To", "+18005551212"},  {"CallSid", "CA1234567890ABCDE"}, {"Digits", "1234"},
    {"From", "+14158675309"}, {"Caller", "+14158675309"},
};
#define NKAT NMC_ARRAY_SIZE(kat_params)

static void test_twilio_sig_compute_known_answer(void **state)
{
    char out[NMC_PROV_TWILIO_SIG_LEN];
    (void)state;
    assert_int_equal(nmc_prov_twilio_sig_compute(TOKEN, URL, kat_params, NKAT, out), 0);
    assert_string_equal(out, SIG);
}

static void test_twilio_sig_compute_known_answer_with_port(void **state)
{
    char out[NMC_PROV_TWILIO_SIG_LEN];
    (void)state;
    assert_int_equal(nmc_prov_twilio_sig_compute(TOKEN, URL_443, kat_params, NKAT, out), 0);
    assert_string_equal(out, SIG_443);
}

static void test_twilio_sig_valid_either_port_form(void **state)
{
    (void)state;
    assert_true(nmc_prov_twilio_sig_valid(TOKEN, URL, kat_params, NKAT, SIG));
    assert_true(nmc_prov_twilio_sig_valid(TOKEN, URL, kat_params, NKAT, SIG_443));
    assert_true(nmc_prov_twilio_sig_valid(TOKEN, URL_443, kat_params, NKAT, SIG));
    assert_true(nmc_prov_twilio_sig_valid(TOKEN, URL_443, kat_params, NKAT, SIG_443));
}

static void test_twilio_sig_valid_tampered_param(void **state)
{
    struct nmc_prov_kv p[NKAT];
    (void)state;
    memcpy(p, kat_params, sizeof(p));
    p[2].value = "1235";
    assert_false(nmc_prov_twilio_sig_valid(TOKEN, URL, p, NKAT, SIG));
    /* Dropping a parameter is tampering too. */
    assert_false(nmc_prov_twilio_sig_valid(TOKEN, URL, kat_params, NKAT - 1, SIG));
}

static void test_twilio_sig_valid_wrong_url(void **state)
{
    (void)state;
    assert_false(nmc_prov_twilio_sig_valid(TOKEN, "https://mycompany.com/myapp.php?foo=1&bar=3", kat_params,
                                           NKAT, SIG));
    assert_false(nmc_prov_twilio_sig_valid(TOKEN, "http://mycompany.com/myapp.php?foo=1&bar=2", kat_params,
                                           NKAT, SIG));
    /* A non-default port is stripped (as Twilio's validators do), never swapped. */
    assert_false(nmc_prov_twilio_sig_valid(TOKEN, "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
                                           kat_params, NKAT, SIG_443));
}

static void test_twilio_sig_valid_wrong_token(void **state)
{
    (void)state;
    assert_false(nmc_prov_twilio_sig_valid("12346", URL, kat_params, NKAT, SIG));
    assert_false(nmc_prov_twilio_sig_valid("", URL, kat_params, NKAT, SIG));
}

static void test_twilio_sig_valid_missing_header(void **state)
{
    (void)state;
    assert_false(nmc_prov_twilio_sig_valid(TOKEN, URL, kat_params, NKAT, NULL));
    assert_false(nmc_prov_twilio_sig_valid(TOKEN, URL, kat_params, NKAT, ""));
    /* A prefix of the right signature is not the signature. */
    assert_false(nmc_prov_twilio_sig_valid(TOKEN, URL, kat_params, NKAT, "RSOYDt4T1cUTdK1PDd93/VVr8B8"));
}

static void test_twilio_sig_compute_repeated_keys_sorted_by_value(void **state)
{
    /* Signed string: url + "a1" + "a2" + "b0" (checked with Python's hmac). */
    const struct nmc_prov_kv p[] = {{"b", "0"}, {"a", "2"}, {"a", "1"}};
    const struct nmc_prov_kv swapped[] = {{"a", "1"}, {"b", "0"}, {"a", "2"}};
    char out[NMC_PROV_TWILIO_SIG_LEN];
    (void)state;
    assert_int_equal(nmc_prov_twilio_sig_compute("tok", "https://example.com/hook", p, 3, out), 0);
    assert_string_equal(out, "aU/I3wAlct3fYEXHzrOqBbSNHgk=");
    assert_true(nmc_prov_twilio_sig_valid("tok", "https://example.com/hook", swapped, 3, out));
}

static void test_twilio_sig_valid_form_pairs(void **state)
{
    struct nmc_form_pair pairs[NKAT];
    struct nmc_form f = {pairs, NKAT};
    (void)state;
    for (size_t i = 0; i < NKAT; i++)
        pairs[i] = (struct nmc_form_pair){(char *)kat_params[i].name, (char *)kat_params[i].value};
    assert_true(nmc_prov_twilio_sig_valid_form(TOKEN, URL, &f, SIG));
    pairs[0].value = (char *)"+18005551213";
    assert_false(nmc_prov_twilio_sig_valid_form(TOKEN, URL, &f, SIG));
    assert_false(nmc_prov_twilio_sig_valid_form(TOKEN, URL, NULL, SIG));
}

static void test_twilio_sig_compute_bad_args(void **state)
{
    const struct nmc_prov_kv bad[] = {{"a", NULL}};
    char out[NMC_PROV_TWILIO_SIG_LEN];
    (void)state;
    assert_int_equal(nmc_prov_twilio_sig_compute(NULL, URL, NULL, 0, out), NMC_EINVAL);
    assert_int_equal(nmc_prov_twilio_sig_compute(TOKEN, NULL, NULL, 0, out), NMC_EINVAL);
    assert_int_equal(nmc_prov_twilio_sig_compute(TOKEN, URL, NULL, 1, out), NMC_EINVAL);
    assert_int_equal(nmc_prov_twilio_sig_compute(TOKEN, URL, bad, 1, out), NMC_EINVAL);
    assert_false(nmc_prov_twilio_sig_valid(TOKEN, URL, bad, 1, SIG));
    /* Not a URL: validation still runs on the string as given, never crashes. */
    assert_false(nmc_prov_twilio_sig_valid(TOKEN, "no-scheme", kat_params, NKAT, SIG));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twilio_sig_compute_known_answer),
        cmocka_unit_test(test_twilio_sig_compute_known_answer_with_port),
        cmocka_unit_test(test_twilio_sig_valid_either_port_form),
        cmocka_unit_test(test_twilio_sig_valid_tampered_param),
        cmocka_unit_test(test_twilio_sig_valid_wrong_url),
        cmocka_unit_test(test_twilio_sig_valid_wrong_token),
        cmocka_unit_test(test_twilio_sig_valid_missing_header),
        cmocka_unit_test(test_twilio_sig_compute_repeated_keys_sorted_by_value),
        cmocka_unit_test(test_twilio_sig_valid_form_pairs),
        cmocka_unit_test(test_twilio_sig_compute_bad_args),
    };
    return cmocka_run_group_tests_name("providers_twilio_sig", tests, NULL, NULL);
}
