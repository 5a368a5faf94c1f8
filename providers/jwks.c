/* JWKS parsing and RS256 signature checks (mbedTLS 2.28 API). */
#include "providers/jwt.h"

#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <mbedtls/md.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>

struct nmc_prov_jwks_key {
    char kid[NMC_PROV_JWKS_KID_MAX + 1];
    size_t kid_len;
    /* Not const although verification only reads the key: mbedTLS caches a
     * Montgomery constant inside the context on first use. */
    mbedtls_rsa_context rsa;
};

struct nmc_prov_jwks {
    unsigned refs;
    size_t count;
    struct nmc_prov_jwks_key keys[NMC_PROV_JWKS_MAX_KEYS];
};

/* A string member of o, or NULL when absent or not a string. */
static const char *member_str(json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

/* 1 when the optional member name is absent or equals want. */
static int absent_or(json_t *o, const char *name, const char *want)
{
    json_t *v = json_object_get(o, name);
    if (v == NULL)
        return 1;
    return json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

/* Decodes the base64url member name of o into out (cap bytes); 0 or <0. */
static int member_b64(json_t *o, const char *name, unsigned char *out, size_t cap, size_t *out_len)
{
    json_t *v = json_object_get(o, name);
    if (!json_is_string(v))
        return NMC_EPARSE;
    return nmc_prov_jwt_b64url_decode(out, cap, out_len, json_string_value(v), json_string_length(v));
}

/* Loads n and e into k->rsa and checks the key's size and consistency. */
static int load_rsa(struct nmc_prov_jwks_key *k, json_t *jwk)
{
    unsigned char n[NMC_PROV_JWKS_MAX_BITS / 8 + 1], e[8];
    size_t n_len = 0, e_len = 0, bits;

    if (member_b64(jwk, "n", n, sizeof(n), &n_len) || member_b64(jwk, "e", e, sizeof(e), &e_len))
        return NMC_EINVAL;
    if (mbedtls_rsa_import_raw(&k->rsa, n, n_len, NULL, 0, NULL, 0, NULL, 0, e, e_len) != 0)
        return NMC_EINVAL;
    if (mbedtls_rsa_complete(&k->rsa) != 0 || mbedtls_rsa_check_pubkey(&k->rsa) != 0)
        return NMC_EINVAL;
    /* bitlen, not 8 * byte length: a modulus with leading zero bytes in its
     * encoding must not pass for a larger key. */
    bits = mbedtls_mpi_bitlen(&k->rsa.N);
    if (bits < NMC_PROV_JWKS_MIN_BITS || bits > NMC_PROV_JWKS_MAX_BITS)
        return NMC_EINVAL;
    return 0;
}

/* 1 when jwk is an RS256 signing key with a new kid; then loaded into k. */
static int take_key(const struct nmc_prov_jwks *ks, struct nmc_prov_jwks_key *k, json_t *jwk)
{
    json_t *kid = json_object_get(jwk, "kid");
    const char *kty = member_str(jwk, "kty");
    size_t kid_len = json_string_length(kid);

    if (kty == NULL || strcmp(kty, "RSA") != 0 || !json_is_string(kid))
        return 0;
    if (!absent_or(jwk, "use", "sig") || !absent_or(jwk, "alg", "RS256"))
        return 0;
    if (kid_len == 0 || kid_len > NMC_PROV_JWKS_KID_MAX || memchr(json_string_value(kid), 0, kid_len))
        return 0;
    if (nmc_prov_jwks_find(ks, json_string_value(kid), kid_len) != NULL)
        return 0;
    memcpy(k->kid, json_string_value(kid), kid_len);
    k->kid[kid_len] = '\0';
    k->kid_len = kid_len;
    mbedtls_rsa_init(&k->rsa, MBEDTLS_RSA_PKCS_V15, 0);
    if (load_rsa(k, jwk) != 0) {
        mbedtls_rsa_free(&k->rsa);
        return 0;
    }
    return 1;
}

/* Fills ks from the "keys" array of doc. */
static int load_keys(struct nmc_prov_jwks *ks, json_t *doc)
{
    json_t *keys = json_object_get(doc, "keys");
    size_t i;

    if (!json_is_array(keys))
        return NMC_EPARSE;
    if (json_array_size(keys) > NMC_PROV_JWKS_MAX_KEYS)
        return NMC_ETOOBIG;
    for (i = 0; i < json_array_size(keys); i++) {
        json_t *jwk = json_array_get(keys, i);
        if (json_is_object(jwk) && take_key(ks, &ks->keys[ks->count], jwk))
            ks->count++;
    }
    return ks->count > 0 ? 0 : NMC_ENOTFOUND;
}

int nmc_prov_jwks_parse(const char *body, size_t len, struct nmc_prov_jwks **out)
{
    struct nmc_prov_jwks *ks = NULL;
    json_t *doc = NULL;
    int rc;

    *out = NULL;
    if (len > NMC_PROV_JWKS_MAX_BYTES)
        return NMC_ETOOBIG;
    doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(doc)) {
        rc = NMC_EPARSE;
        goto out;
    }
    ks = nmc_xcalloc(1, sizeof(*ks));
    ks->refs = 1;
    rc = load_keys(ks, doc);
    if (rc == 0) {
        *out = ks;
        ks = NULL;
    }
out:
    nmc_prov_jwks_free(ks);
    json_decref(doc);
    return rc;
}

struct nmc_prov_jwks *nmc_prov_jwks_ref(struct nmc_prov_jwks *ks)
{
    ks->refs++;
    return ks;
}

void nmc_prov_jwks_free(struct nmc_prov_jwks *ks)
{
    size_t i;

    if (ks == NULL || --ks->refs > 0)
        return;
    for (i = 0; i < ks->count; i++)
        mbedtls_rsa_free(&ks->keys[i].rsa);
    free(ks);
}

size_t nmc_prov_jwks_count(const struct nmc_prov_jwks *ks)
{
    return ks->count;
}

const struct nmc_prov_jwks_key *nmc_prov_jwks_find(const struct nmc_prov_jwks *ks, const char *kid, size_t kid_len)
{
    size_t i;

    for (i = 0; i < ks->count; i++) {
        if (ks->keys[i].kid_len == kid_len && memcmp(ks->keys[i].kid, kid, kid_len) == 0)
            return &ks->keys[i];
    }
    return NULL;
}

const char *nmc_prov_jwks_key_kid(const struct nmc_prov_jwks_key *k)
{
    return k->kid;
}

size_t nmc_prov_jwks_key_bits(const struct nmc_prov_jwks_key *k)
{
    return mbedtls_mpi_bitlen(&k->rsa.N);
}

int nmc_prov_jwks_verify_rs256(const struct nmc_prov_jwks_key *k, const void *msg, size_t len,
                               const unsigned char *sig, size_t siglen)
{
    /* Casting const away is sound: the key was allocated writable; see the
     * note on struct nmc_prov_jwks_key. */
    mbedtls_rsa_context *rsa = (mbedtls_rsa_context *)&k->rsa;
    unsigned char hash[32];

    /* mbedtls_rsa_pkcs1_verify reads exactly the modulus length from sig. */
    if (siglen != mbedtls_rsa_get_len(rsa))
        return NMC_EAUTH;
    if (mbedtls_sha256_ret(msg, len, hash, 0) != 0)
        return NMC_EAUTH;
    if (mbedtls_rsa_pkcs1_verify(rsa, NULL, NULL, MBEDTLS_RSA_PUBLIC, MBEDTLS_MD_SHA256, sizeof(hash), hash, sig) != 0)
        return NMC_EAUTH;
    return 0;
}
