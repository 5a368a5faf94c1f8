/* Fuzz target: a Twilio webhook's form body, as nmc_form_parse gets it from
 * the network, and the signature check that reads the parsed form.
 * Promises checked: parsing never fails but with NMC_EPARSE or NMC_ETOOBIG
 * and leaves no pairs then; every name and value decodes to a string
 * without NULs; nmc_url_encode of a decoded string decodes back to it; the
 * signature computed over the parsed pairs verifies through
 * nmc_prov_twilio_sig_valid_form and a changed signature does not. */
#include "tests/fuzz/fuzz.h"

#include "http/body.h"
#include "providers/twilio_sig.h"

#define MAX_PAIRS 64
#define URL "https://nmc.example.com/webhooks/twilio/sms?mid=1"
#define TOKEN "fuzz-auth-token"

static void check_roundtrip(const char *s)
{
    char *enc = nmc_url_encode(s);
    size_t elen = strlen(enc), dlen = 0;
    char *dec = malloc(elen + 1);
    FUZZ_CHECK(dec != NULL);
    FUZZ_CHECK(nmc_url_decode(enc, elen, 0, dec, &dlen) == 0);
    FUZZ_CHECK(dlen == strlen(s) && strcmp(dec, s) == 0);
    free(dec);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nmc_form f;
    int rc = nmc_form_parse((const char *)data, size, MAX_PAIRS, &f);
    if (rc != 0) {
        FUZZ_CHECK(rc == NMC_EPARSE || rc == NMC_ETOOBIG);
        FUZZ_CHECK(f.n == 0 && f.pairs == NULL);
        return 0;
    }
    FUZZ_CHECK(f.n <= MAX_PAIRS);
    struct nmc_prov_kv kv[MAX_PAIRS];
    for (size_t i = 0; i < f.n; i++) {
        FUZZ_CHECK(f.pairs[i].name != NULL && f.pairs[i].value != NULL);
        FUZZ_CHECK(strlen(f.pairs[i].name) <= size && strlen(f.pairs[i].value) <= size);
        /* nmc_form_get finds the first pair of a name */
        const char *v = nmc_form_get(&f, f.pairs[i].name);
        FUZZ_CHECK(v != NULL);
        check_roundtrip(f.pairs[i].name);
        check_roundtrip(f.pairs[i].value);
        kv[i].name = f.pairs[i].name;
        kv[i].value = f.pairs[i].value;
    }
    char sig[NMC_PROV_TWILIO_SIG_LEN];
    FUZZ_CHECK(nmc_prov_twilio_sig_compute(TOKEN, URL, kv, f.n, sig) == 0);
    FUZZ_CHECK(nmc_prov_twilio_sig_valid_form(TOKEN, URL, &f, sig) == 1);
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    FUZZ_CHECK(nmc_prov_twilio_sig_valid_form(TOKEN, URL, &f, sig) == 0);
    /* the input itself as the header: never a crash, and valid only by luck
     * a fuzzer cannot have (it would have to find an HMAC) */
    char *hdr = fuzz_str(data, size < 64 ? size : 64);
    (void)nmc_prov_twilio_sig_valid_form(TOKEN, URL, &f, hdr);
    free(hdr);
    nmc_form_free(&f);
    return 0;
}
