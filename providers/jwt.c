/* RS256 JWT verification: shape, header, signature, then claims. The header
 * never chooses the algorithm or the key source; it only names a kid that
 * must already be in the configured key set. */
#include "providers/jwt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "runtime/clock.h"

/* Largest NumericDate we take (9999-12-31T23:59:59Z): keeps the conversion
 * to int64 and to milliseconds far from overflow. */
#define MAX_NUMERIC_DATE 253402300799.0
#define MAX_SIG_BYTES (NMC_PROV_JWKS_MAX_BITS / 8)

/* The three dot-separated segments of a compact JWS. */
struct parts {
    const char *seg[3];
    size_t len[3];
};

/* ---- base64url ---- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int nmc_prov_jwt_b64url_decode(unsigned char *out, size_t cap, size_t *out_len, const char *in, size_t in_len)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t i, o = 0, need;

    *out_len = 0;
    if (in_len % 4 == 1)
        return NMC_EPARSE;
    need = in_len / 4 * 3 + (in_len % 4 ? in_len % 4 - 1 : 0);
    if (need > cap)
        return NMC_ETOOBIG;
    for (i = 0; i < in_len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return NMC_EPARSE;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero, or two encodings would map to one value. */
    if (acc != 0)
        return NMC_EPARSE;
    *out_len = o;
    return 0;
}

/* ---- shape ---- */

/* Splits token into exactly three segments of base64url characters. */
static int split(const char *token, size_t len, struct parts *t)
{
    size_t i, n = 0, start = 0;

    if (len == 0 || len > NMC_PROV_JWT_MAX_TOKEN)
        return NMC_PROV_JWT_EMALFORMED;
    for (i = 0; i <= len; i++) {
        if (i < len && token[i] != '.') {
            if (b64url_value((unsigned char)token[i]) < 0)
                return NMC_PROV_JWT_EMALFORMED;
            continue;
        }
        if (n == 3)
            return NMC_PROV_JWT_EMALFORMED;
        t->seg[n] = token + start;
        t->len[n++] = i - start;
        start = i + 1;
    }
    /* The signature may be empty here so that "alg":"none" tokens are
     * reported as a refused algorithm rather than as garbage. */
    if (n != 3 || t->len[0] == 0 || t->len[1] == 0)
        return NMC_PROV_JWT_EMALFORMED;
    return 0;
}

/* Decodes one segment as a JSON object; NULL when it is not one. */
static json_t *decode_object(const char *seg, size_t len)
{
    unsigned char *buf = nmc_xmalloc(len / 4 * 3 + 3);
    size_t n = 0;
    json_t *o = NULL;

    if (nmc_prov_jwt_b64url_decode(buf, len / 4 * 3 + 3, &n, seg, len) == 0)
        o = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (o != NULL && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* ---- header, key and signature ---- */

/* Accepts RS256 headers only; points *kid at the header's kid string. */
static int check_header(json_t *h, json_t **kid)
{
    json_t *alg = json_object_get(h, "alg");
    json_t *typ = json_object_get(h, "typ");

    if (!json_is_string(alg) || strcmp(json_string_value(alg), "RS256") != 0)
        return NMC_PROV_JWT_EBAD_ALG;
    /* JWT media types are case-insensitive (RFC 7515 section 4.1.9). */
    if (typ != NULL && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0))
        return NMC_PROV_JWT_EBAD_ALG;
    /* We understand no extension, so "crit" must make us refuse (4.1.11). */
    if (json_object_get(h, "crit") != NULL)
        return NMC_PROV_JWT_EBAD_ALG;
    *kid = json_object_get(h, "kid");
    if (!json_is_string(*kid) || json_string_length(*kid) == 0)
        return NMC_PROV_JWT_EMISSING_CLAIM;
    return 0;
}

/* Verifies the signature segment over "header.payload" with key k. */
static int check_signature(const struct nmc_prov_jwks_key *k, const struct parts *t)
{
    unsigned char sig[MAX_SIG_BYTES];
    size_t sig_len = 0;

    /* The header named a key we hold, so whatever is wrong with the
     * signature segment (empty, cut short, too long) is a bad signature. */
    if (nmc_prov_jwt_b64url_decode(sig, sizeof(sig), &sig_len, t->seg[2], t->len[2]) != 0 || sig_len == 0)
        return NMC_PROV_JWT_EBAD_SIGNATURE;
    if (nmc_prov_jwks_verify_rs256(k, t->seg[0], t->len[0] + 1 + t->len[1], sig, sig_len) != 0)
        return NMC_PROV_JWT_EBAD_SIGNATURE;
    return 0;
}

/* Decodes and checks the header, finds its key and verifies the signature.
 * On success copies the kid into c. */
static int check_signed(const struct nmc_prov_jwks *ks, const struct parts *t, struct nmc_prov_jwt_claims *c)
{
    json_t *h = decode_object(t->seg[0], t->len[0]);
    json_t *kid = NULL;
    const struct nmc_prov_jwks_key *k = NULL;
    int rc;

    if (h == NULL)
        return NMC_PROV_JWT_EMALFORMED;
    rc = check_header(h, &kid);
    if (rc != 0)
        goto out;
    if (ks != NULL)
        k = nmc_prov_jwks_find(ks, json_string_value(kid), json_string_length(kid));
    if (k == NULL) {
        rc = NMC_PROV_JWT_EUNKNOWN_KID;
        goto out;
    }
    rc = check_signature(k, t);
    if (rc == 0)
        nmc_strlcpy(c->kid, nmc_prov_jwks_key_kid(k), sizeof(c->kid));
out:
    json_decref(h);
    return rc;
}

/* ---- claims ---- */

/* Reads NumericDate claim name: 1 and *out when present and valid, 0 when
 * absent, NMC_PROV_JWT_EMISSING_CLAIM when of the wrong type or range. */
static int numeric_date(json_t *payload, const char *name, double *out)
{
    json_t *v = json_object_get(payload, name);

    if (v == NULL)
        return 0;
    if (!json_is_number(v))
        return NMC_PROV_JWT_EMISSING_CLAIM;
    *out = json_number_value(v);
    if (!isfinite(*out) || *out < 0 || *out > MAX_NUMERIC_DATE)
        return NMC_PROV_JWT_EMISSING_CLAIM;
    return 1;
}

/* exp (required), nbf and iat (optional) against now with leeway. */
static int check_times(json_t *payload, int64_t leeway_s, struct nmc_prov_jwt_claims *c)
{
    double now = (double)nmc_clock_now_ms() / 1000.0, exp = 0, nbf = 0, iat = 0;
    int has_exp = numeric_date(payload, "exp", &exp);
    int has_nbf = numeric_date(payload, "nbf", &nbf);
    int has_iat = numeric_date(payload, "iat", &iat);

    if (has_exp <= 0 || has_nbf < 0 || has_iat < 0)
        return NMC_PROV_JWT_EMISSING_CLAIM;
    if (exp <= now - (double)leeway_s)
        return NMC_PROV_JWT_EEXPIRED;
    if (has_nbf && nbf > now + (double)leeway_s)
        return NMC_PROV_JWT_ENOT_YET_VALID;
    c->exp = (int64_t)exp;
    c->nbf = (int64_t)nbf;
    c->iat = (int64_t)iat;
    return 0;
}

/* 1 when aud is the audience or an array holding it as a string. */
static int audience_matches(json_t *aud, const char *want)
{
    size_t i;
    json_t *v;

    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return 1;
    }
    return 0;
}

/* Copies string claim name into out when it is a string that fits. */
static int copy_str(json_t *payload, const char *name, char *out, size_t cap)
{
    json_t *v = json_object_get(payload, name);

    if (!json_is_string(v) || json_string_length(v) >= cap)
        return 0;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 1;
}

static int check_claims(const struct nmc_prov_jwt_policy *p, json_t *payload, struct nmc_prov_jwt_claims *c)
{
    json_t *iss = json_object_get(payload, "iss");
    int64_t leeway = p->leeway_s < 0 ? NMC_PROV_JWT_DEFAULT_LEEWAY_S : p->leeway_s;
    int rc;

    if (!copy_str(payload, "sub", c->sub, sizeof(c->sub)) || c->sub[0] == '\0')
        return NMC_PROV_JWT_EMISSING_CLAIM;
    rc = check_times(payload, leeway, c);
    if (rc != 0)
        return rc;
    if (!json_is_string(iss) || strcmp(json_string_value(iss), p->issuer) != 0)
        return NMC_PROV_JWT_EBAD_ISSUER;
    if (!audience_matches(json_object_get(payload, "aud"), p->audience))
        return NMC_PROV_JWT_EBAD_AUDIENCE;
    copy_str(payload, "email", c->email, sizeof(c->email));
    copy_str(payload, "sid", c->sid, sizeof(c->sid));
    return 0;
}

/* ---- entry point ---- */

int nmc_prov_jwt_verify(const struct nmc_prov_jwt_policy *p, const struct nmc_prov_jwks *ks, const char *token,
                        size_t len, struct nmc_prov_jwt_claims *out)
{
    struct nmc_prov_jwt_claims c;
    struct parts t;
    json_t *payload = NULL;
    int rc;

    memset(&c, 0, sizeof(c));
    if (p->issuer == NULL || p->audience == NULL || p->issuer[0] == '\0' || p->audience[0] == '\0')
        return NMC_EINVAL; /* a policy that checks nothing is a bug, not a token problem */
    rc = split(token, len, &t);
    if (rc == 0)
        rc = check_signed(ks, &t, &c);
    if (rc != 0)
        goto out;
    payload = decode_object(t.seg[1], t.len[1]);
    rc = payload != NULL ? check_claims(p, payload, &c) : NMC_PROV_JWT_EMALFORMED;
out:
    json_decref(payload);
    if (rc != 0)
        memset(&c, 0, sizeof(c));
    if (out != NULL)
        *out = c;
    return rc;
}

/* ---- error names ---- */

static const struct {
    const char *code;
    const char *message;
} errors[] = {
    {"malformed", "The bearer token is malformed."},
    {"bad_alg", "The bearer token uses an algorithm that is not accepted (RS256 only)."},
    {"unknown_kid", "The bearer token was signed by an unknown key."},
    {"bad_signature", "The bearer token's signature is invalid."},
    {"expired", "The bearer token has expired."},
    {"not_yet_valid", "The bearer token is not valid yet."},
    {"bad_issuer", "The bearer token was not issued by the trusted issuer."},
    {"bad_audience", "The bearer token is not meant for this API."},
    {"missing_claim", "The bearer token lacks a required claim or has one of the wrong type."},
};

int nmc_prov_jwt_is_jwt_err(int err)
{
    return err <= NMC_PROV_JWT_EMALFORMED && err > NMC_PROV_JWT_ELAST;
}

const char *nmc_prov_jwt_errcode(int err)
{
    if (!nmc_prov_jwt_is_jwt_err(err))
        return nmc_errcode(err);
    return errors[NMC_PROV_JWT_EMALFORMED - err].code;
}

const char *nmc_prov_jwt_strerror(int err)
{
    if (!nmc_prov_jwt_is_jwt_err(err))
        return nmc_strerror(err);
    return errors[NMC_PROV_JWT_EMALFORMED - err].message;
}

_Static_assert(NMC_ARRAY_SIZE(errors) == NMC_PROV_JWT_EMALFORMED - NMC_PROV_JWT_ELAST, "one entry per error");
