/* Fuzz target: the bearer token of every authenticated API request
 * (nmc_prov_jwt_verify). The first byte picks the mode:
 * - even: the rest is the token as sent;
 * - odd: the rest is a header JSON, a newline and a claims JSON, which the
 *   target encodes and signs with its own key (generated at start, never
 *   stored) so that the claim checks behind the signature get fuzzed too.
 * Promises checked: the answer is 0 or one of enum nmc_prov_jwt_err; an
 * accepted token has a subject, a kid of the key set, an exp not past and
 * an nbf not ahead; a token whose signature was changed is never accepted. */
#include "tests/fuzz/fuzz.h"

#include <mbedtls/base64.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include "providers/jwt.h"
#include "runtime/buf.h"
#include "runtime/clock.h"

#define NOW_MS 1767225600000LL /* 2026-01-01 */
static const struct nmc_prov_jwt_policy policy = {
    .issuer = "https://issuer.example", .audience = "nmc", .leeway_s = 30};
static mbedtls_rsa_context rsa;
static struct nmc_prov_jwks *keys;

static int rng(void *ctx, unsigned char *out, size_t n)
{
    (void)ctx;
    nmc_random_bytes(out, n);
    return 0;
}

/* base64url without padding into b. */
static void b64url(struct nmc_buf *b, const unsigned char *in, size_t n)
{
    size_t cap = 4 * ((n + 2) / 3) + 1, olen = 0;
    unsigned char *tmp = malloc(cap);
    FUZZ_CHECK(tmp != NULL && mbedtls_base64_encode(tmp, cap, &olen, in, n) == 0);
    while (olen > 0 && tmp[olen - 1] == '=')
        olen--;
    for (size_t i = 0; i < olen; i++)
        tmp[i] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : tmp[i];
    FUZZ_CHECK(nmc_buf_append(b, tmp, olen) == 0);
    free(tmp);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    unsigned char n[256], e[3];
    mbedtls_rsa_init(&rsa, MBEDTLS_RSA_PKCS_V15, 0);
    FUZZ_CHECK(mbedtls_rsa_gen_key(&rsa, rng, NULL, 2048, 65537) == 0);
    FUZZ_CHECK(mbedtls_rsa_export_raw(&rsa, n, sizeof n, NULL, 0, NULL, 0, NULL, 0, e, sizeof e) == 0);
    struct nmc_buf doc = {0};
    FUZZ_CHECK(nmc_buf_puts(&doc, "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"fuzz\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":\"") == 0);
    b64url(&doc, n, sizeof n);
    FUZZ_CHECK(nmc_buf_puts(&doc, "\",\"e\":\"") == 0);
    b64url(&doc, e, sizeof e);
    FUZZ_CHECK(nmc_buf_puts(&doc, "\"}]}") == 0);
    FUZZ_CHECK(nmc_prov_jwks_parse(doc.data, doc.len, &keys) == 0);
    nmc_buf_free(&doc);
    return 0;
}

static void check(const char *token, size_t len)
{
    struct nmc_prov_jwt_claims c;
    int rc = nmc_prov_jwt_verify(&policy, keys, token, len, &c);
    FUZZ_CHECK(rc == 0 || nmc_prov_jwt_is_jwt_err(rc));
    if (rc == 0) {
        FUZZ_CHECK(c.sub[0] != '\0' && strcmp(c.kid, "fuzz") == 0);
        FUZZ_CHECK(c.exp > NOW_MS / 1000 - 30 && c.nbf <= NOW_MS / 1000 + 30);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    nmc_clock_freeze(NOW_MS);
    if ((data[0] & 1) == 0) {
        check((const char *)data + 1, size - 1);
        nmc_clock_unfreeze();
        return 0;
    }
    const uint8_t *h = data + 1, *nl = memchr(h, '\n', size - 1);
    size_t hlen = nl != NULL ? (size_t)(nl - h) : size - 1;
    const uint8_t *p = nl != NULL ? nl + 1 : h + hlen;
    size_t plen = size - 1 - hlen - (nl != NULL);
    struct nmc_buf t = {0};
    b64url(&t, h, hlen);
    FUZZ_CHECK(nmc_buf_puts(&t, ".") == 0);
    b64url(&t, p, plen);
    unsigned char hash[32], sig[256];
    FUZZ_CHECK(mbedtls_sha256_ret((const unsigned char *)t.data, t.len, hash, 0) == 0);
    FUZZ_CHECK(mbedtls_rsa_pkcs1_sign(&rsa, rng, NULL, MBEDTLS_RSA_PRIVATE, MBEDTLS_MD_SHA256, 32, hash, sig) == 0);
    FUZZ_CHECK(nmc_buf_puts(&t, ".") == 0);
    size_t signed_len = t.len;
    b64url(&t, sig, sizeof sig);
    check(t.data, t.len);
    /* the same token with its signature's first byte changed */
    t.data[signed_len] = t.data[signed_len] == 'A' ? 'B' : 'A';
    FUZZ_CHECK(nmc_prov_jwt_verify(&policy, keys, t.data, t.len, NULL) != 0);
    nmc_buf_free(&t);
    nmc_clock_unfreeze();
    return 0;
}
