/* Stripe webhook signatures (Stripe-Signature header).
 *
 * Header: "t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=...]" where each v1
 * is hex(HMAC-SHA256(webhook secret, "<t>.<raw body>")). Several v1 entries
 * appear while a secret is being rolled; any one matching is enough. Other
 * schemes (v0) are ignored. Comparison is constant-time. */
#ifndef NMC_PROVIDERS_STRIPE_SIG_H
#define NMC_PROVIDERS_STRIPE_SIG_H

#include <stddef.h>
#include <stdint.h>
#include "runtime/common.h"

/* Default tolerance of Stripe's own libraries. */
#define NMC_PROV_STRIPE_SIG_TOLERANCE_S 300
/* "t=" + 20 digits + ",v1=" + 64 hex + NUL, rounded up. */
#define NMC_PROV_STRIPE_SIG_HEADER_LEN 96

/* Verifies header against the raw payload at the current wall clock
 * (runtime/clock.h, frozen in tests). Returns 0 when a v1 matches and t is
 * within tolerance_s of now (either direction); NMC_EPARSE for a malformed
 * header (no t or no v1); NMC_EAUTH when no v1 matches; NMC_EGONE when the
 * signature matches but the timestamp is outside the tolerance. */
NMC_MUST_CHECK int nmc_prov_stripe_sig_verify(const char *secret, const char *header, const char *payload,
                                              size_t len, int64_t tolerance_s);

/* Writes a valid header "t=<t>,v1=<hex>" for payload into out (tests, bench,
 * emulators). 0, or NMC_EINVAL. */
NMC_MUST_CHECK int nmc_prov_stripe_sig_sign(const char *secret, int64_t t, const char *payload, size_t len,
                                            char out[NMC_PROV_STRIPE_SIG_HEADER_LEN]);

#endif
