/* The JWKS cache: fetches through providers/http.h, parses on the loop just
 * before delivery (the shape callback), installs on the owner's turn. */
#include "providers/jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "providers/http.h"
#include "runtime/clock.h"
#include "runtime/log.h"

struct nmc_prov_jwks_cache {
    struct nmc_prov_http *http;       /* borrowed */
    struct nmc_actor *owner;          /* receives the completions */
    struct nmc_prov_breaker *breaker; /* borrowed, may be NULL */
    char *url;
    int64_t ttl_ms;
    int64_t min_interval_ms;
    int64_t min_interval_empty_ms;    /* while keys is NULL */
    int timeout_ms;
    int max_attempts;
    uint64_t cookie;
    struct nmc_prov_jwks *keys;       /* one reference, NULL until fetched */
    int64_t fetched_at_ms;            /* last success */
    int64_t attempt_at_ms;            /* last start (valid when attempted) */
    int attempted;
    int in_flight;
    uint64_t call_id;                 /* of the fetch in flight */
    uint64_t fetches;
    uint64_t failures;
};

int nmc_prov_jwks_cache_create(struct nmc_prov_http *http, struct nmc_actor *owner,
                               const struct nmc_prov_jwks_cache_opts *opts, struct nmc_prov_jwks_cache **out)
{
    struct nmc_prov_jwks_cache *c;

    *out = NULL;
    if (http == NULL || owner == NULL || opts == NULL || opts->url == NULL || opts->url[0] == '\0')
        return NMC_EINVAL;
    c = nmc_xcalloc(1, sizeof(*c));
    c->http = http;
    c->owner = owner;
    c->breaker = opts->breaker;
    c->url = nmc_xstrdup(opts->url);
    c->ttl_ms = opts->ttl_ms > 0 ? opts->ttl_ms : NMC_PROV_JWKS_DEFAULT_TTL_MS;
    c->min_interval_ms = opts->min_interval_ms > 0 ? opts->min_interval_ms : NMC_PROV_JWKS_DEFAULT_MIN_INTERVAL_MS;
    c->min_interval_empty_ms = opts->min_interval_empty_ms > 0 ? opts->min_interval_empty_ms : c->min_interval_ms;
    c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 5000;
    c->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : 2;
    c->cookie = opts->cookie;
    *out = c;
    return 0;
}

void nmc_prov_jwks_cache_destroy(struct nmc_prov_jwks_cache *c)
{
    if (c == NULL)
        return;
    if (c->in_flight)
        (void)nmc_prov_http_cancel(c->http, c->call_id);
    nmc_prov_jwks_free(c->keys);
    free(c->url);
    free(c);
}

static void fetch_free(void *payload)
{
    struct nmc_prov_jwks_fetch *f = payload;

    nmc_prov_jwks_free(f->keys);
    free(f);
}

/* Shape callback: turns the HTTP result into a parsed key set (takes res). */
static void *on_shape(struct nmc_prov_http_result *res, nmc_payload_free_cb *payload_free)
{
    struct nmc_prov_jwks_fetch *f = nmc_xcalloc(1, sizeof(*f));

    f->err = res->err;
    f->status = res->status;
    nmc_strlcpy(f->error, res->error, sizeof(f->error));
    if (f->err == 0 && res->status != 200) {
        f->err = NMC_EPROVIDER;
        snprintf(f->error, sizeof(f->error), "JWKS endpoint answered HTTP %ld", res->status);
    }
    if (f->err == 0) {
        f->err = nmc_prov_jwks_parse(res->body, res->body_len, &f->keys);
        if (f->err != 0)
            snprintf(f->error, sizeof(f->error), "JWKS document refused: %s", nmc_strerror(f->err));
    }
    nmc_prov_http_result_free(res);
    *payload_free = fetch_free;
    return f;
}

/* nmc_prov_jwks_cache_refresh() without the must-check: the background
 * callers below have nothing to do with its outcome (failures are counted
 * and the old keys keep serving). */
static int start_fetch(struct nmc_prov_jwks_cache *c)
{
    static const char *const headers[] = {"Accept: application/json", NULL};
    struct nmc_prov_http_req req = {
        .provider = "clerk", .endpoint = "jwks", .method = "GET", .url = c->url, .headers = headers,
        .timeout_ms = c->timeout_ms, .max_attempts = c->max_attempts, .breaker = c->breaker,
        .shape = on_shape, .msg_type = NMC_MSG_PROV_JWKS,
    };
    int64_t now = nmc_clock_now_ms();
    int64_t gap = c->keys == NULL ? c->min_interval_empty_ms : c->min_interval_ms;
    int rc;

    if (c->in_flight || (c->attempted && now - c->attempt_at_ms < gap))
        return 0;
    c->attempted = 1;
    c->attempt_at_ms = now;
    rc = nmc_prov_http_send(c->http, &req, c->owner, c->cookie, &c->call_id);
    if (rc != 0) {
        c->failures++;
        return rc;
    }
    c->fetches++;
    c->in_flight = 1;
    return 1;
}

int nmc_prov_jwks_cache_refresh(struct nmc_prov_jwks_cache *c)
{
    return start_fetch(c);
}

struct nmc_prov_jwks *nmc_prov_jwks_cache_keys(struct nmc_prov_jwks_cache *c)
{
    if (c->keys == NULL || nmc_clock_now_ms() - c->fetched_at_ms >= c->ttl_ms)
        (void)start_fetch(c);
    return c->keys;
}

int nmc_prov_jwks_cache_verify(struct nmc_prov_jwks_cache *c, const struct nmc_prov_jwt_policy *p,
                               const char *token, size_t len, struct nmc_prov_jwt_claims *out, int *pending)
{
    int rc = nmc_prov_jwt_verify(p, nmc_prov_jwks_cache_keys(c), token, len, out);

    if (rc == NMC_PROV_JWT_EUNKNOWN_KID)
        (void)start_fetch(c); /* keys rotated? (rate limited) */
    if (pending != NULL)
        *pending = rc == NMC_PROV_JWT_EUNKNOWN_KID && c->in_flight;
    return rc;
}

static void log_fetch(const struct nmc_prov_jwks_cache *c, const struct nmc_prov_jwks_fetch *f)
{
    struct nmc_log_rec *r = nmc_log_begin(f->err ? NMC_LOG_WARN : NMC_LOG_INFO, "providers",
                                          f->err ? "jwks.fetch_failed" : "jwks.fetched");

    nmc_log_str(r, "provider", "clerk");
    nmc_log_int(r, "status", f->status);
    if (f->err)
        nmc_log_error(r, f->err, f->error[0] ? f->error : NULL);
    else
        nmc_log_int(r, "keys", (int64_t)nmc_prov_jwks_count(f->keys));
    nmc_log_bool(r, "has_previous_keys", c->keys != NULL);
    nmc_log_end(r);
}

int nmc_prov_jwks_cache_on_fetched(struct nmc_prov_jwks_cache *c, const struct nmc_msg *msg)
{
    const struct nmc_prov_jwks_fetch *f = msg->payload;

    if (msg->type != NMC_MSG_PROV_JWKS || f == NULL)
        return NMC_EINVAL;
    c->in_flight = 0;
    log_fetch(c, f);
    if (f->err != 0) {
        c->failures++;
        return f->err;
    }
    nmc_prov_jwks_free(c->keys);
    c->keys = nmc_prov_jwks_ref(f->keys);
    c->fetched_at_ms = nmc_clock_now_ms();
    return 0;
}

void nmc_prov_jwks_cache_stats(const struct nmc_prov_jwks_cache *c, struct nmc_prov_jwks_cache_stats *out)
{
    out->fetches = c->fetches;
    out->failures = c->failures;
    out->fetched_at_ms = c->fetched_at_ms;
    out->in_flight = c->in_flight;
}
