/* providers/jwt.c: RS256 token verification against tokens signed by
 * independent code (PyJWT, python's cryptography and hmac), keys generated
 * into a temporary directory at test start. The wall clock is frozen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "providers/jwt.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "tests/support/jwt_keys/jwt_test_util.h"

#define NOW 1900000000LL /* seconds; frozen */
#define ISS "https://clerk.example.test"
#define AUD "nmc-api"

static struct jt_py py; /* key directory and token signer */
static struct nmc_prov_jwks *keys; /* k1 and k2; k3 is the unknown key */
static const struct nmc_prov_jwt_policy policy = {.issuer = ISS, .audience = AUD, .leeway_s = -1};

/* ---- fixtures ---- */

static struct nmc_prov_jwks *load_set(const char *a, const char *b)
{
    char *ja = jt_read_jwk(&py, a), *jb = jt_read_jwk(&py, b);
    struct nmc_buf doc = {0};
    struct nmc_prov_jwks *ks = NULL;

    if (ja != NULL && jb != NULL && nmc_buf_printf(&doc, "{\"keys\":[%s,%s]}", ja, jb) == 0 &&
        nmc_prov_jwks_parse(doc.data, doc.len, &ks) != 0)
        ks = NULL;
    free(ja);
    free(jb);
    nmc_buf_free(&doc);
    return ks;
}

static int group_setup(void **state)
{
    if (jt_start(&py) != 0)
        return -1;
    keys = load_set("k1", "k2");
    nmc_clock_freeze(NOW * 1000);
    return keys != NULL && nmc_prov_jwks_count(keys) == 2 ? 0 : -1;
}

static int group_teardown(void **state)
{
    nmc_prov_jwks_free(keys);
    nmc_clock_unfreeze();
    jt_stop(&py);
    return 0;
}

/* Claims of a valid token with member extra ("" or ",\"k\":v") appended
 * after sub/iss/aud/exp (the caller may override them: PyJWT keeps the
 * last duplicate from json.loads). */
static char *claims(const char *fmt, ...) NMC_PRINTF(1, 2);
static char *claims(const char *fmt, ...)
{
    struct nmc_buf b = {0};
    va_list ap;

    assert_int_equal(nmc_buf_printf(&b, "{\"sub\":\"user_1\",\"iss\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,"
                                        "\"iat\":%lld", ISS, AUD, NOW + 600, NOW), 0);
    va_start(ap, fmt);
    assert_int_equal(nmc_buf_vprintf(&b, fmt, ap), 0);
    va_end(ap);
    assert_int_equal(nmc_buf_puts(&b, "}"), 0);
    return nmc_buf_steal(&b, NULL);
}

static char *sign(const char *key, const char *alg, const char *headers, const char *body)
{
    char *t = jt_sign(&py, key, alg, headers, NULL, body);

    assert_non_null(t);
    return t;
}

/* Verifies token and returns the result code. */
static int verify(const char *token, struct nmc_prov_jwt_claims *c)
{
    return nmc_prov_jwt_verify(&policy, keys, token, strlen(token), c);
}

/* Signs claims built from fmt with k1 (RS256, PyJWT) and verifies them. */
static int verify_claims(const char *fmt, ...) NMC_PRINTF(1, 2);
static int verify_claims(const char *fmt, ...)
{
    char extra[2048], *body, *token;
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(extra, sizeof(extra), fmt, ap);
    va_end(ap);
    body = claims("%s", extra);
    token = sign("k1", "RS256", NULL, body);
    rc = verify(token, NULL);
    free(body);
    free(token);
    return rc;
}

/* Hand-built RS256 token with exactly this header and payload text. */
static int verify_raw(const char *header, const char *payload)
{
    char *t = jt_sign(&py, "k1", "raw", NULL, header, payload);
    int rc;

    assert_non_null(t);
    rc = verify(t, NULL);
    free(t);
    return rc;
}

/* ---- the table ---- */

static void test_jwt_verify_valid_token_accepted(void **state)
{
    char *body = claims(",\"nbf\":%lld,\"email\":\"owner@example.test\",\"sid\":\"sess_9\"", NOW - 5);
    char *token = sign("k1", "RS256", NULL, body);
    struct nmc_prov_jwt_claims c;

    assert_int_equal(verify(token, &c), 0);
    assert_string_equal(c.sub, "user_1");
    assert_string_equal(c.email, "owner@example.test");
    assert_string_equal(c.sid, "sess_9");
    assert_string_equal(c.kid, "k1");
    assert_int_equal(c.exp, NOW + 600);
    assert_int_equal(c.iat, NOW);
    assert_int_equal(c.nbf, NOW - 5);
    free(body);
    free(token);
}

static void test_jwt_verify_second_key_accepted(void **state)
{
    char *body = claims("%s", "");
    char *token = sign("k2", "RS256", NULL, body);
    struct nmc_prov_jwt_claims c;

    assert_int_equal(verify(token, &c), 0);
    assert_string_equal(c.kid, "k2");
    assert_string_equal(c.email, "");
    free(body);
    free(token);
}

static void test_jwt_verify_expired(void **state)
{
    assert_int_equal(verify_claims(",\"exp\":%lld", NOW - 3600), NMC_PROV_JWT_EEXPIRED);
    /* exp must be strictly after now - leeway. */
    assert_int_equal(verify_claims(",\"exp\":%lld", NOW - 30), NMC_PROV_JWT_EEXPIRED);
}

static void test_jwt_verify_expired_within_leeway_accepted(void **state)
{
    assert_int_equal(verify_claims(",\"exp\":%lld", NOW - 29), 0);
}

static void test_jwt_verify_nbf_in_future(void **state)
{
    assert_int_equal(verify_claims(",\"nbf\":%lld", NOW + 31), NMC_PROV_JWT_ENOT_YET_VALID);
    assert_int_equal(verify_claims(",\"nbf\":%lld", NOW + 30), 0);
}

static void test_jwt_verify_leeway_from_policy(void **state)
{
    struct nmc_prov_jwt_policy strict = {.issuer = ISS, .audience = AUD, .leeway_s = 0};
    char *body = claims(",\"exp\":%lld", NOW + 1);
    char *token = sign("k1", "RS256", NULL, body);

    assert_int_equal(nmc_prov_jwt_verify(&strict, keys, token, strlen(token), NULL), 0);
    nmc_clock_advance(1000);
    assert_int_equal(nmc_prov_jwt_verify(&strict, keys, token, strlen(token), NULL), NMC_PROV_JWT_EEXPIRED);
    nmc_clock_freeze(NOW * 1000);
    free(body);
    free(token);
}

static void test_jwt_verify_wrong_iss(void **state)
{
    assert_int_equal(verify_claims(",\"iss\":\"https://evil.example.test\""), NMC_PROV_JWT_EBAD_ISSUER);
    assert_int_equal(verify_claims(",\"iss\":\"" ISS "/\""), NMC_PROV_JWT_EBAD_ISSUER);
    assert_int_equal(verify_raw("{\"alg\":\"RS256\",\"kid\":\"k1\"}", "{\"sub\":\"u\",\"aud\":\"" AUD "\",\"exp\":1999999999}"),
                     NMC_PROV_JWT_EBAD_ISSUER);
}

static void test_jwt_verify_wrong_aud(void **state)
{
    assert_int_equal(verify_claims(",\"aud\":\"other-api\""), NMC_PROV_JWT_EBAD_AUDIENCE);
    assert_int_equal(verify_claims(",\"aud\":[\"other-api\",\"nmc\"]"), NMC_PROV_JWT_EBAD_AUDIENCE);
    assert_int_equal(verify_claims(",\"aud\":[]"), NMC_PROV_JWT_EBAD_AUDIENCE);
    assert_int_equal(verify_raw("{\"alg\":\"RS256\",\"kid\":\"k1\"}", "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"exp\":1999999999}"),
                     NMC_PROV_JWT_EBAD_AUDIENCE);
}

static void test_jwt_verify_aud_array_accepted(void **state)
{
    assert_int_equal(verify_claims(",\"aud\":[\"other-api\",\"" AUD "\"]"), 0);
}

static void test_jwt_verify_unknown_kid(void **state)
{
    char *body = claims("%s", "");
    char *token = sign("k3", "RS256", NULL, body);

    assert_int_equal(verify(token, NULL), NMC_PROV_JWT_EUNKNOWN_KID);
    /* No key set yet (JWKS never fetched): same answer, so callers refetch. */
    assert_int_equal(nmc_prov_jwt_verify(&policy, NULL, token, strlen(token), NULL), NMC_PROV_JWT_EUNKNOWN_KID);
    free(body);
    free(token);
}

static void test_jwt_verify_kid_of_other_key(void **state)
{
    /* Signed by k3 but claiming to be k1: the kid selects k1, which fails. */
    char *body = claims("%s", "");
    char *token = sign("k3", "RS256", "{\"kid\":\"k1\"}", body);

    assert_int_equal(verify(token, NULL), NMC_PROV_JWT_EBAD_SIGNATURE);
    free(body);
    free(token);
}

static void test_jwt_verify_missing_kid(void **state)
{
    assert_int_equal(verify_raw("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", "{\"sub\":\"u\"}"), NMC_PROV_JWT_EMISSING_CLAIM);
    assert_int_equal(verify_raw("{\"alg\":\"RS256\",\"kid\":7}", "{\"sub\":\"u\"}"), NMC_PROV_JWT_EMISSING_CLAIM);
}

static void test_jwt_verify_alg_none(void **state)
{
    char *body = claims("%s", "");
    char *token = sign("k1", "none", NULL, body);

    assert_non_null(strstr(token, "."));
    assert_int_equal(token[strlen(token) - 1], '.'); /* really unsigned */
    assert_int_equal(verify(token, NULL), NMC_PROV_JWT_EBAD_ALG);
    free(body);
    free(token);
}

static void test_jwt_verify_hs256_public_key_confusion(void **state)
{
    char *body = claims("%s", "");
    char *token = sign("k1", "HS256-pubkey", NULL, body);

    assert_int_equal(verify(token, NULL), NMC_PROV_JWT_EBAD_ALG);
    free(body);
    free(token);
}

static void test_jwt_verify_rs384(void **state)
{
    char *body = claims("%s", "");
    char *token = sign("k1", "RS384", NULL, body);

    assert_int_equal(verify(token, NULL), NMC_PROV_JWT_EBAD_ALG);
    free(body);
    free(token);
}

static void test_jwt_verify_bad_header_alg(void **state)
{
    const char *payload = "{\"sub\":\"u\"}";

    assert_int_equal(verify_raw("{\"kid\":\"k1\"}", payload), NMC_PROV_JWT_EBAD_ALG);
    assert_int_equal(verify_raw("{\"alg\":\"rs256\",\"kid\":\"k1\"}", payload), NMC_PROV_JWT_EBAD_ALG);
    assert_int_equal(verify_raw("{\"alg\":null,\"kid\":\"k1\"}", payload), NMC_PROV_JWT_EBAD_ALG);
    assert_int_equal(verify_raw("{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}", payload), NMC_PROV_JWT_EBAD_ALG);
    assert_int_equal(verify_raw("{\"alg\":\"RS256\",\"crit\":[\"exp\"],\"kid\":\"k1\"}", payload), NMC_PROV_JWT_EBAD_ALG);
}

static void test_jwt_verify_duplicate_header_member(void **state)
{
    /* A parser keeping the last "alg" would see "none"; we refuse the JSON. */
    assert_int_equal(verify_raw("{\"alg\":\"RS256\",\"kid\":\"k1\",\"alg\":\"none\"}", "{\"sub\":\"u\"}"),
                     NMC_PROV_JWT_EMALFORMED);
}

static void test_jwt_verify_tampered_payload(void **state)
{
    char *good = claims("%s", ""), *evil = claims(",\"sub\":\"user_admin\"");
    char *a = sign("k1", "RS256", NULL, good), *b = sign("k1", "RS256", NULL, evil);
    struct nmc_buf t = {0};
    const char *a_dot1 = strchr(a, '.'), *a_dot2 = strrchr(a, '.');
    const char *b_dot1 = strchr(b, '.'), *b_dot2 = strrchr(b, '.');

    /* a's header, b's payload, a's signature. */
    assert_int_equal(nmc_buf_append(&t, a, (size_t)(a_dot1 - a)), 0);
    assert_int_equal(nmc_buf_append(&t, b_dot1, (size_t)(b_dot2 - b_dot1)), 0);
    assert_int_equal(nmc_buf_puts(&t, a_dot2), 0);
    assert_int_equal(verify(t.data, NULL), NMC_PROV_JWT_EBAD_SIGNATURE);
    assert_int_equal(verify(a, NULL), 0);
    nmc_buf_free(&t);
    free(good);
    free(evil);
    free(a);
    free(b);
}

static void test_jwt_verify_flipped_signature_bit(void **state)
{
    char *body = claims("%s", "");
    char *token = sign("k1", "RS256", NULL, body);
    char *sig = strrchr(token, '.') + 1;

    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(token, NULL), NMC_PROV_JWT_EBAD_SIGNATURE);
    free(body);
    free(token);
}

static void test_jwt_verify_truncated_signature(void **state)
{
    char *body = claims("%s", "");
    char *token = sign("k1", "RS256", NULL, body);
    size_t len = strlen(token);

    /* Cut anywhere: 1 byte short, 4 bytes short, not even base64url any
     * more (4k+1 characters), or removed with its dot kept. */
    assert_int_equal(nmc_prov_jwt_verify(&policy, keys, token, len - 2, NULL), NMC_PROV_JWT_EBAD_SIGNATURE);
    assert_int_equal(nmc_prov_jwt_verify(&policy, keys, token, len - 6, NULL), NMC_PROV_JWT_EBAD_SIGNATURE);
    assert_int_equal(nmc_prov_jwt_verify(&policy, keys, token, len - 1, NULL), NMC_PROV_JWT_EBAD_SIGNATURE);
    assert_int_equal(nmc_prov_jwt_verify(&policy, keys, token, (size_t)(strrchr(token, '.') - token) + 1, NULL),
                     NMC_PROV_JWT_EBAD_SIGNATURE);
    free(body);
    free(token);
}

static void test_jwt_verify_garbage_base64(void **state)
{
    struct nmc_prov_jwt_claims c;

    memset(&c, 'x', sizeof(c));
    assert_int_equal(verify("!!!!.####.$$$$", &c), NMC_PROV_JWT_EMALFORMED);
    assert_int_equal(c.sub[0], '\0'); /* claims zeroed on failure */
    assert_int_equal(verify("eyJhbGciOiJSUzI1NiJ9.e30.a b", NULL), NMC_PROV_JWT_EMALFORMED);
    assert_int_equal(verify("eyJhbGciOiJSUzI1NiJ9=.e30.abcd", NULL), NMC_PROV_JWT_EMALFORMED);
    /* Valid base64url, but the header is not JSON / not an object. */
    assert_int_equal(verify("abcd.abcd.abcd", NULL), NMC_PROV_JWT_EMALFORMED);
    assert_int_equal(verify("WzFd.e30.abcd", NULL), NMC_PROV_JWT_EMALFORMED); /* "[1]" */
    /* Signed header, payload not JSON. */
    assert_int_equal(verify_raw("{\"alg\":\"RS256\",\"kid\":\"k1\"}", "not json"), NMC_PROV_JWT_EMALFORMED);
}

static void test_jwt_verify_two_parts(void **state)
{
    assert_int_equal(verify("eyJhbGciOiJSUzI1NiJ9.e30", NULL), NMC_PROV_JWT_EMALFORMED);
    assert_int_equal(verify("", NULL), NMC_PROV_JWT_EMALFORMED);
    assert_int_equal(verify("..", NULL), NMC_PROV_JWT_EMALFORMED);
}

static void test_jwt_verify_four_parts(void **state)
{
    char *body = claims("%s", "");
    char *token = sign("k1", "RS256", NULL, body);
    struct nmc_buf t = {0};

    assert_int_equal(nmc_buf_printf(&t, "%s.", token), 0);
    assert_int_equal(verify(t.data, NULL), NMC_PROV_JWT_EMALFORMED);
    nmc_buf_reset(&t);
    assert_int_equal(nmc_buf_printf(&t, "%s.%s", token, strrchr(token, '.') + 1), 0);
    assert_int_equal(verify(t.data, NULL), NMC_PROV_JWT_EMALFORMED);
    nmc_buf_free(&t);
    free(body);
    free(token);
}

static void test_jwt_verify_oversize_token(void **state)
{
    char pad[6200], *body, *token;

    memset(pad, 'a', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    body = claims(",\"pad\":\"%s\"", pad);
    token = sign("k1", "RS256", NULL, body);
    assert_true(strlen(token) > NMC_PROV_JWT_MAX_TOKEN);
    assert_int_equal(verify(token, NULL), NMC_PROV_JWT_EMALFORMED);
    free(body);
    free(token);
    /* Just under the cap, the same padding is fine. */
    pad[5000] = '\0';
    body = claims(",\"pad\":\"%s\"", pad);
    token = sign("k1", "RS256", NULL, body);
    assert_true(strlen(token) <= NMC_PROV_JWT_MAX_TOKEN);
    assert_int_equal(verify(token, NULL), 0);
    free(body);
    free(token);
}

static void test_jwt_verify_every_prefix_refused(void **state)
{
    char *body = claims("%s", "");
    char *token = sign("k1", "RS256", NULL, body);
    size_t len = strlen(token), i;
    char *copy = nmc_xmalloc(len);

    /* Each prefix in a buffer of its own size, so ASan sees any overread. */
    for (i = 0; i < len; i++) {
        memcpy(copy, token, i);
        assert_int_not_equal(nmc_prov_jwt_verify(&policy, keys, copy, i, NULL), 0);
    }
    memcpy(copy, token, len);
    assert_int_equal(nmc_prov_jwt_verify(&policy, keys, copy, len, NULL), 0);
    free(copy);
    free(body);
    free(token);
}

static void test_jwt_verify_missing_sub(void **state)
{
    const char *hdr = "{\"alg\":\"RS256\",\"kid\":\"k1\"}";

    assert_int_equal(verify_raw(hdr, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1999999999}"),
                     NMC_PROV_JWT_EMISSING_CLAIM);
    assert_int_equal(verify_claims(",\"sub\":\"\""), NMC_PROV_JWT_EMISSING_CLAIM);
    assert_int_equal(verify_claims(",\"sub\":42"), NMC_PROV_JWT_EMISSING_CLAIM);
}

static void test_jwt_verify_missing_or_bad_exp(void **state)
{
    const char *hdr = "{\"alg\":\"RS256\",\"kid\":\"k1\"}";

    assert_int_equal(verify_raw(hdr, "{\"sub\":\"u\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}"),
                     NMC_PROV_JWT_EMISSING_CLAIM);
    assert_int_equal(verify_claims(",\"exp\":\"1999999999\""), NMC_PROV_JWT_EMISSING_CLAIM);
    assert_int_equal(verify_claims(",\"exp\":1e300"), NMC_PROV_JWT_EMISSING_CLAIM);
    assert_int_equal(verify_claims(",\"nbf\":true"), NMC_PROV_JWT_EMISSING_CLAIM);
    assert_int_equal(verify_claims(",\"iat\":\"now\""), NMC_PROV_JWT_EMISSING_CLAIM);
    /* NumericDate may be fractional. */
    assert_int_equal(verify_claims(",\"exp\":%lld.5", NOW), 0);
}

static void test_jwt_verify_bad_optional_claims_ignored(void **state)
{
    char long_email[300];
    struct nmc_prov_jwt_claims c;
    char *body, *token;

    memset(long_email, 'e', sizeof(long_email) - 1);
    long_email[sizeof(long_email) - 1] = '\0';
    body = claims(",\"email\":\"%s\",\"sid\":5", long_email);
    token = sign("k1", "RS256", NULL, body);
    assert_int_equal(verify(token, &c), 0);
    assert_string_equal(c.email, "");
    assert_string_equal(c.sid, "");
    free(body);
    free(token);
}

static void test_jwt_verify_policy_without_audience(void **state)
{
    struct nmc_prov_jwt_policy p = {.issuer = ISS, .audience = "", .leeway_s = 30};

    assert_int_equal(nmc_prov_jwt_verify(&p, keys, "a.b.c", 5, NULL), NMC_EINVAL);
}

/* ---- helpers ---- */

static void test_jwt_b64url_decode_round_trip(void **state)
{
    unsigned char out[8];
    size_t n = 99;

    assert_int_equal(nmc_prov_jwt_b64url_decode(out, sizeof(out), &n, "", 0), 0);
    assert_int_equal(n, 0);
    assert_int_equal(nmc_prov_jwt_b64url_decode(out, sizeof(out), &n, "_-8", 3), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "\xff\xef", 2);
    assert_int_equal(nmc_prov_jwt_b64url_decode(out, sizeof(out), &n, "AQIDBA", 6), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(out, "\x01\x02\x03\x04", 4);
}

static void test_jwt_b64url_decode_refuses_noncanonical(void **state)
{
    unsigned char out[8];
    size_t n;

    assert_int_equal(nmc_prov_jwt_b64url_decode(out, sizeof(out), &n, "AQ==", 4), NMC_EPARSE); /* padding */
    assert_int_equal(nmc_prov_jwt_b64url_decode(out, sizeof(out), &n, "AR", 2), NMC_EPARSE);   /* bits left */
    assert_int_equal(nmc_prov_jwt_b64url_decode(out, sizeof(out), &n, "AQIDB", 5), NMC_EPARSE);/* 4k+1 */
    assert_int_equal(nmc_prov_jwt_b64url_decode(out, sizeof(out), &n, "+/", 2), NMC_EPARSE);  /* base64 */
    assert_int_equal(nmc_prov_jwt_b64url_decode(out, 2, &n, "AQIDBA", 6), NMC_ETOOBIG);
}

static void test_jwt_errcode_names_every_error(void **state)
{
    int e;

    assert_string_equal(nmc_prov_jwt_errcode(NMC_PROV_JWT_EEXPIRED), "expired");
    assert_string_equal(nmc_prov_jwt_errcode(NMC_PROV_JWT_EUNKNOWN_KID), "unknown_kid");
    assert_string_equal(nmc_prov_jwt_errcode(NMC_PROV_JWT_EMISSING_CLAIM), "missing_claim");
    for (e = NMC_PROV_JWT_EMALFORMED; e > NMC_PROV_JWT_ELAST; e--) {
        assert_true(nmc_prov_jwt_is_jwt_err(e));
        assert_true(strlen(nmc_prov_jwt_strerror(e)) > 10);
    }
    assert_false(nmc_prov_jwt_is_jwt_err(NMC_PROV_JWT_ELAST));
    assert_false(nmc_prov_jwt_is_jwt_err(0));
    assert_string_equal(nmc_prov_jwt_errcode(NMC_EINVAL), nmc_errcode(NMC_EINVAL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwt_verify_valid_token_accepted),
        cmocka_unit_test(test_jwt_verify_second_key_accepted),
        cmocka_unit_test(test_jwt_verify_expired),
        cmocka_unit_test(test_jwt_verify_expired_within_leeway_accepted),
        cmocka_unit_test(test_jwt_verify_nbf_in_future),
        cmocka_unit_test(test_jwt_verify_leeway_from_policy),
        cmocka_unit_test(test_jwt_verify_wrong_iss),
        cmocka_unit_test(test_jwt_verify_wrong_aud),
        cmocka_unit_test(test_jwt_verify_aud_array_accepted),
        cmocka_unit_test(test_jwt_verify_unknown_kid),
        cmocka_unit_test(test_jwt_verify_kid_of_other_key),
        cmocka_unit_test(test_jwt_verify_missing_kid),
        cmocka_unit_test(test_jwt_verify_alg_none),
        cmocka_unit_test(test_jwt_verify_hs256_public_key_confusion),
        cmocka_unit_test(test_jwt_verify_rs384),
        cmocka_unit_test(test_jwt_verify_bad_header_alg),
        cmocka_unit_test(test_jwt_verify_duplicate_header_member),
        cmocka_unit_test(test_jwt_verify_tampered_payload),
        cmocka_unit_test(test_jwt_verify_flipped_signature_bit),
        cmocka_unit_test(test_jwt_verify_truncated_signature),
        cmocka_unit_test(test_jwt_verify_garbage_base64),
        cmocka_unit_test(test_jwt_verify_two_parts),
        cmocka_unit_test(test_jwt_verify_four_parts),
        cmocka_unit_test(test_jwt_verify_oversize_token),
        cmocka_unit_test(test_jwt_verify_every_prefix_refused),
        cmocka_unit_test(test_jwt_verify_missing_sub),
        cmocka_unit_test(test_jwt_verify_missing_or_bad_exp),
        cmocka_unit_test(test_jwt_verify_bad_optional_claims_ignored),
        cmocka_unit_test(test_jwt_verify_policy_without_audience),
        cmocka_unit_test(test_jwt_b64url_decode_round_trip),
        cmocka_unit_test(test_jwt_b64url_decode_refuses_noncanonical),
        cmocka_unit_test(test_jwt_errcode_names_every_error),
    };
    return cmocka_run_group_tests_name("providers_jwt", tests, group_setup, group_teardown);
}
