/* JWT (RS256) verification for the owner/technician API, and the JWKS key
 * sets it verifies against (Clerk: CLERK_JWT_ISSUER, CLERK_JWT_AUDIENCE,
 * CLERK_JWKS_URL). Owner: jwt engineer. providers/jwt.c defines
 * nmc_prov_jwt_*, providers/jwks.c nmc_prov_jwks_*, providers/jwks_cache.c
 * nmc_prov_jwks_cache_*.
 *
 * All but the cache is synchronous and does no I/O: a fetched JWKS document
 * body goes in through nmc_prov_jwks_parse(); tokens are checked against the
 * resulting key set with nmc_prov_jwt_verify(). Only RS256 is accepted,
 * whatever the token's header asks for (no "none", no HMAC, no key from the
 * header). Single-threaded: a key set may be shared between actors of one
 * loop (reference counted), never between threads. */
#ifndef NMC_PROVIDERS_JWT_H
#define NMC_PROVIDERS_JWT_H

#include <stddef.h>
#include <stdint.h>
#include "runtime/actor.h"
#include "runtime/common.h"

/* ---- key sets (providers/jwks.c) ---- */

#define NMC_PROV_JWKS_MAX_BYTES (64 * 1024) /* larger documents: NMC_ETOOBIG */
#define NMC_PROV_JWKS_MAX_KEYS 32           /* more entries in "keys": NMC_ETOOBIG */
#define NMC_PROV_JWKS_MIN_BITS 2048         /* smaller RSA keys are ignored */
#define NMC_PROV_JWKS_MAX_BITS 8192         /* larger RSA keys are ignored */
#define NMC_PROV_JWKS_KID_MAX 128           /* longer kids are ignored */

struct nmc_prov_jwks;     /* an immutable set of RSA verification keys */
struct nmc_prov_jwks_key; /* one key, owned by its set */

/* Parses a JWKS document ({"keys":[...]}) of len bytes. Keeps the entries
 * with kty "RSA", use "sig" or absent, alg "RS256" or absent, a kid, and a
 * valid public key of MIN_BITS..MAX_BITS; ignores every other entry (a later
 * duplicate kid included). Returns 0 and a set with one reference in *out;
 * NMC_ETOOBIG (document or key count over the caps), NMC_EPARSE (not JSON, no
 * "keys" array), NMC_ENOTFOUND (no usable key). *out is NULL on error. */
NMC_MUST_CHECK int nmc_prov_jwks_parse(const char *body, size_t len, struct nmc_prov_jwks **out);
/* Adds a reference; returns ks. */
struct nmc_prov_jwks *nmc_prov_jwks_ref(struct nmc_prov_jwks *ks);
/* Drops a reference; the last one frees the set. Accepts NULL. */
void nmc_prov_jwks_free(struct nmc_prov_jwks *ks);
/* Number of usable keys kept (>= 1 for a parsed set). */
size_t nmc_prov_jwks_count(const struct nmc_prov_jwks *ks);
/* The key whose kid is the kid_len bytes at kid, or NULL. Borrowed from ks. */
const struct nmc_prov_jwks_key *nmc_prov_jwks_find(const struct nmc_prov_jwks *ks, const char *kid, size_t kid_len);
/* The key's kid (NUL-terminated) and modulus size in bits. */
const char *nmc_prov_jwks_key_kid(const struct nmc_prov_jwks_key *k);
size_t nmc_prov_jwks_key_bits(const struct nmc_prov_jwks_key *k);
/* Verifies an RSASSA-PKCS1-v1_5 SHA-256 signature sig (siglen bytes, which
 * must equal the modulus size) over msg. 0 when valid, NMC_EAUTH when not. */
NMC_MUST_CHECK int nmc_prov_jwks_verify_rs256(const struct nmc_prov_jwks_key *k, const void *msg, size_t len,
                                              const unsigned char *sig, size_t siglen);

/* ---- tokens (providers/jwt.c) ---- */

#define NMC_PROV_JWT_MAX_TOKEN 8192     /* longer tokens are malformed */
#define NMC_PROV_JWT_DEFAULT_LEEWAY_S 30
#define NMC_PROV_JWT_SUB_MAX 256        /* buffer sizes, NUL included */
#define NMC_PROV_JWT_EMAIL_MAX 256
#define NMC_PROV_JWT_SID_MAX 128

/* Why a token was refused. Negative, in a range of their own below the
 * NMC_E* codes; every one of them means HTTP 401. */
enum nmc_prov_jwt_err {
    NMC_PROV_JWT_EMALFORMED = -20700,     /* not three base64url parts of JSON objects, or too long */
    NMC_PROV_JWT_EBAD_ALG = -20701,       /* alg is not exactly RS256, bad typ, or crit present */
    NMC_PROV_JWT_EUNKNOWN_KID = -20702,   /* kid missing from the key set: refetch the JWKS */
    NMC_PROV_JWT_EBAD_SIGNATURE = -20703, /* signature does not verify */
    NMC_PROV_JWT_EEXPIRED = -20704,       /* exp <= now - leeway */
    NMC_PROV_JWT_ENOT_YET_VALID = -20705, /* nbf > now + leeway */
    NMC_PROV_JWT_EBAD_ISSUER = -20706,    /* iss missing or not the configured issuer */
    NMC_PROV_JWT_EBAD_AUDIENCE = -20707,  /* aud missing or without the configured audience */
    NMC_PROV_JWT_EMISSING_CLAIM = -20708, /* kid, sub or exp missing, or a claim of the wrong type */
    NMC_PROV_JWT_ELAST = -20709
};

/* What a token must satisfy. Strings are borrowed for the policy's life. */
struct nmc_prov_jwt_policy {
    const char *issuer;   /* exact match of "iss"; required */
    const char *audience; /* "aud" equals it or is an array containing it; required */
    int64_t leeway_s;     /* clock skew allowed on exp and nbf; < 0: the default (30 s) */
};

/* Claims of an accepted token (copies). Absent optional claims are "" / 0. */
struct nmc_prov_jwt_claims {
    char sub[NMC_PROV_JWT_SUB_MAX];     /* required, non-empty */
    char email[NMC_PROV_JWT_EMAIL_MAX]; /* optional: "" if absent, not a string or too long */
    char sid[NMC_PROV_JWT_SID_MAX];     /* optional (Clerk session id), same rules */
    char kid[NMC_PROV_JWKS_KID_MAX + 1];/* key that signed it */
    int64_t exp;                        /* seconds since the epoch */
    int64_t iat;                        /* 0 when absent */
    int64_t nbf;                        /* 0 when absent */
};

/* Verifies token (len bytes, no NUL needed) against policy p and key set ks
 * at time nmc_clock_now_ms(). Returns 0 and fills *out (may be NULL), or an
 * enum nmc_prov_jwt_err code (*out then zeroed). Checks, in order: size and
 * shape, header (alg RS256, typ JWT if present, no crit, kid), key lookup,
 * signature, then claims (sub, exp, nbf, iat, iss, aud). ks may be NULL (every
 * token is then NMC_PROV_JWT_EUNKNOWN_KID). */
NMC_MUST_CHECK int nmc_prov_jwt_verify(const struct nmc_prov_jwt_policy *p, const struct nmc_prov_jwks *ks,
                                       const char *token, size_t len, struct nmc_prov_jwt_claims *out);

/* Stable short code ("expired", "bad_audience", ...) for logs and the 401
 * JSON "error" field, and a human sentence for its "message"; never NULL.
 * Codes outside the enum fall back to nmc_errcode()/nmc_strerror(). */
const char *nmc_prov_jwt_errcode(int err);
const char *nmc_prov_jwt_strerror(int err);
/* 1 when err is one of enum nmc_prov_jwt_err. */
int nmc_prov_jwt_is_jwt_err(int err);

/* Decodes unpadded base64url (RFC 7515 section 2) of in_len bytes into out
 * (cap bytes). Refuses padding, other characters, a length of 4k+1 and
 * non-zero trailing bits, so each byte string has one encoding. 0 and
 * *out_len, NMC_EPARSE, or NMC_ETOOBIG when out is too small. */
NMC_MUST_CHECK int nmc_prov_jwt_b64url_decode(unsigned char *out, size_t cap, size_t *out_len, const char *in,
                                              size_t in_len);

/* ---- the fetched, cached key set (providers/jwks_cache.c) ----
 *
 * A cache bound to one owner actor fetches CLERK_JWKS_URL through
 * providers/http.h. Completions reach the owner as NMC_MSG_PROV_JWKS messages
 * (payload struct nmc_prov_jwks_fetch) carrying the configured cookie; the
 * owner's handler passes them to nmc_prov_jwks_cache_on_fetched(). Fetch
 * starts are rate limited (min_interval_ms, also after failures); keys older
 * than ttl_ms stay in use while a background refetch runs, and a failed fetch
 * keeps the previous keys. Times come from nmc_clock_now_ms() (freezable).
 * Async contract: a refresh returning 1 delivers exactly one completion on a
 * later turn; after nmc_prov_jwks_cache_destroy() a completion may still
 * arrive (NMC_ECANCELED): the owner must drop it, not pass it on. */

struct nmc_prov_http;
struct nmc_prov_breaker;
struct nmc_prov_jwks_cache;

/* Completion type of cache fetches. Providers' other types count up from
 * NMC_MSG_PROVIDER in providers/http.h; this one sits well clear of them. */
#define NMC_MSG_PROV_JWKS (NMC_MSG_PROVIDER + 40)

#define NMC_PROV_JWKS_DEFAULT_TTL_MS (10 * 60 * 1000)
#define NMC_PROV_JWKS_DEFAULT_MIN_INTERVAL_MS (30 * 1000)

struct nmc_prov_jwks_cache_opts {
    const char *url;                  /* the JWKS document (copied); required */
    int64_t ttl_ms;                   /* 0: 10 minutes */
    int64_t min_interval_ms;          /* 0: 30 s between two fetch starts */
    int timeout_ms;                   /* per attempt; 0: 5000 */
    int max_attempts;                 /* 0: 2 */
    uint64_t cookie;                  /* echoed in every completion's msg->cookie */
    struct nmc_prov_breaker *breaker; /* optional; borrowed, must outlive the cache */
    int64_t min_interval_empty_ms;    /* between two starts while no key set was ever
                                         installed (a failed first fetch); 0: min_interval_ms */
};

/* Payload of NMC_MSG_PROV_JWKS. */
struct nmc_prov_jwks_fetch {
    int err;                     /* 0; the HTTP layer's error; NMC_EPROVIDER (status not 200);
                                    or nmc_prov_jwks_parse()'s error */
    long status;                 /* HTTP status, 0 when none */
    struct nmc_prov_jwks *keys;  /* one reference owned by the payload; NULL on error */
    char error[256];             /* a reason for logs, "" when none */
};

struct nmc_prov_jwks_cache_stats {
    uint64_t fetches;        /* started */
    uint64_t failures;       /* completed with an error */
    int64_t fetched_at_ms;   /* last success, 0 if never */
    int in_flight;
};

/* Creates a cache that fetches with http (borrowed, must outlive it) and
 * reports to owner. Fetches nothing yet: call nmc_prov_jwks_cache_refresh().
 * 0 or NMC_EINVAL (no url, http or owner). */
NMC_MUST_CHECK int nmc_prov_jwks_cache_create(struct nmc_prov_http *http, struct nmc_actor *owner,
                                              const struct nmc_prov_jwks_cache_opts *opts,
                                              struct nmc_prov_jwks_cache **out);
/* Cancels an in-flight fetch (see the contract above) and frees the cache,
 * dropping its reference to the keys. Accepts NULL. */
void nmc_prov_jwks_cache_destroy(struct nmc_prov_jwks_cache *c);
/* Starts a fetch unless one is in flight or the last one started less than
 * min_interval_ms ago (min_interval_empty_ms while there are no keys yet,
 * so a failed first fetch can be retried sooner). 1 started, 0 not started, or nmc_prov_http_send()'s
 * error (counts as an attempt for the rate limit). */
NMC_MUST_CHECK int nmc_prov_jwks_cache_refresh(struct nmc_prov_jwks_cache *c);
/* The current keys (borrowed: nmc_prov_jwks_ref() to keep them past the
 * next completion), or NULL before the first good fetch. Starts a refresh
 * when they are older than ttl_ms (or absent). */
struct nmc_prov_jwks *nmc_prov_jwks_cache_keys(struct nmc_prov_jwks_cache *c);
/* nmc_prov_jwt_verify() with the current keys. On NMC_PROV_JWT_EUNKNOWN_KID
 * it asks for a refresh; *pending (may be NULL) is then 1 when a fetch is in
 * flight, so the caller may hold the request and verify again after the
 * next completion instead of answering 401 at once. */
NMC_MUST_CHECK int nmc_prov_jwks_cache_verify(struct nmc_prov_jwks_cache *c, const struct nmc_prov_jwt_policy *p,
                                              const char *token, size_t len, struct nmc_prov_jwt_claims *out,
                                              int *pending);
/* Takes in an NMC_MSG_PROV_JWKS completion (borrowed). Installs its keys and
 * returns 0, or returns the fetch's error and keeps the previous keys. */
int nmc_prov_jwks_cache_on_fetched(struct nmc_prov_jwks_cache *c, const struct nmc_msg *msg);
void nmc_prov_jwks_cache_stats(const struct nmc_prov_jwks_cache *c, struct nmc_prov_jwks_cache_stats *out);

#endif
