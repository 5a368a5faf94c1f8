/* Twilio request signatures (X-Twilio-Signature).
 *
 * signature = base64(HMAC-SHA1(auth_token, url + name1 + value1 + ...))
 * where the POST parameters are sorted by name, then by value (bytewise),
 * as Twilio's official validators do. Validation compares in constant time
 * and accepts the URL with and without its port (Twilio signs the URL as
 * configured; proxies add or drop ":443"/":80"). Used by the telephony
 * webhooks, by tests and bench to sign requests, and by the emulator to sign
 * its status callbacks. Pure functions: no allocation survives a call. */
#ifndef NMC_PROVIDERS_TWILIO_SIG_H
#define NMC_PROVIDERS_TWILIO_SIG_H

#include <stddef.h>
#include "runtime/common.h"
#include "http/body.h"

/* base64 of a 20-byte SHA-1 MAC: 28 characters and the NUL. */
#define NMC_PROV_TWILIO_SIG_LEN 29

/* One request parameter; both strings borrowed for the call. */
struct nmc_prov_kv {
    const char *name;
    const char *value;
};

/* Computes the signature of url and params (any order; not modified) into
 * out. 0, or NMC_EINVAL when a pointer is NULL. */
NMC_MUST_CHECK int nmc_prov_twilio_sig_compute(const char *auth_token, const char *url,
                                               const struct nmc_prov_kv *params, size_t nparams,
                                               char out[NMC_PROV_TWILIO_SIG_LEN]);

/* 1 when signature (the X-Twilio-Signature header value) matches url and
 * params, also with the URL's port removed (when it has one) or the
 * scheme's default port added (when it has none); 0 otherwise, including a
 * NULL or empty signature or token. */
int nmc_prov_twilio_sig_valid(const char *auth_token, const char *url, const struct nmc_prov_kv *params,
                              size_t nparams, const char *signature);

/* The same for a parsed form body (http/body.h). */
int nmc_prov_twilio_sig_valid_form(const char *auth_token, const char *url, const struct nmc_form *form,
                                   const char *signature);

#endif
