/* Fuzz target: the Stripe-Signature header of a billing webhook. Input: the
 * header, a newline, then the raw body.
 * Promises checked: verification answers 0, NMC_EPARSE, NMC_EAUTH or
 * NMC_EGONE and nothing else; a header nmc signs itself for the same body
 * verifies; the fuzzed header verifies only if it carries that same v1. */
#include "tests/fuzz/fuzz.h"

#include "providers/stripe_sig.h"
#include "runtime/clock.h"

#define SECRET "whsec_fuzz"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *header, *body;
    size_t blen = fuzz_split(data, size, &header, &body);
    nmc_clock_freeze(1767225600000LL); /* 2026-01-01 */
    int rc = nmc_prov_stripe_sig_verify(SECRET, header, body, blen, NMC_PROV_STRIPE_SIG_TOLERANCE_S);
    FUZZ_CHECK(rc == 0 || rc == NMC_EPARSE || rc == NMC_EAUTH || rc == NMC_EGONE);
    char good[NMC_PROV_STRIPE_SIG_HEADER_LEN];
    FUZZ_CHECK(nmc_prov_stripe_sig_sign(SECRET, 1767225600, body, blen, good) == 0);
    FUZZ_CHECK(nmc_prov_stripe_sig_verify(SECRET, good, body, blen, NMC_PROV_STRIPE_SIG_TOLERANCE_S) == 0);
    if (rc == 0 || rc == NMC_EGONE)
        FUZZ_CHECK(strstr(header, strstr(good, "v1=")) != NULL);
    nmc_clock_unfreeze();
    free(header);
    free(body);
    return 0;
}
