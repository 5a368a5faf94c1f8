/* Outbound HTTP to providers: libcurl multi driven by the libuv loop.
 *
 * One client per process holds one long-lived multi handle (connections
 * are kept alive and reused across calls). Sockets are watched with
 * uv_poll and libcurl's single timeout with one non-repeating uv_timer, as
 * in curl's multi-uv.c; libcurl is never called from inside its own
 * callbacks. Every call has a connect timeout, a total timeout per attempt,
 * a response body cap (NMC_ETOOBIG past it) and captured headers.
 *
 * Retries: 5xx, 429, timeouts and connection errors are retried up to
 * max_attempts with exponential backoff and equal jitter drawn from
 * nmc_rng_unit() (nmc_rng_seed() makes it deterministic), honouring a
 * Retry-After in seconds up to the backoff cap; other 4xx never are. NOTE:
 * a POST that timed out may have been processed; retrying it can repeat the
 * side effect unless the provider deduplicates (set max_attempts 1 then).
 *
 * Circuit breaker (optional, per provider): asked before every attempt and
 * told every outcome; a refused call completes with NMC_ECIRCUIT.
 *
 * Observability: integration_http_requests_total{provider,endpoint,status}
 * (status is the HTTP code or timeout|connect_error|error|too_big|
 * circuit_open) and integration_http_latency_ms{provider,endpoint} per
 * attempt; one span "provider.<provider>.<endpoint>" per call whose W3C
 * traceparent is sent on the request.
 *
 * Async contract (conventions 6): nmc_prov_http_send() returning nonzero
 * means no completion is ever delivered; returning 0 means exactly one
 * completion message reaches reply_to on a later loop turn (never from
 * inside the call), including for refusals by the breaker, cancellation
 * (NMC_ECANCELED) and client destruction (NMC_ECANCELED). */
#ifndef NMC_PROVIDERS_HTTP_H
#define NMC_PROVIDERS_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "runtime/actor.h"
#include "runtime/common.h"

struct nmc_prov_http;
struct nmc_prov_breaker;
struct nmc_prov_breaker_opts;

/* Completion message types of providers/ (NMC_MSG_PROVIDER range). */
enum nmc_prov_msg_type {
    NMC_MSG_PROV_HTTP = NMC_MSG_PROVIDER + 0,       /* payload: struct nmc_prov_http_result */
    NMC_MSG_PROV_TWILIO_SMS = NMC_MSG_PROVIDER + 1  /* payload: struct nmc_prov_twilio_sms_result */
};

/* What went wrong, coarsely, for callers that switch on it. */
enum nmc_prov_http_kind {
    NMC_PROV_HTTP_OK = 0,     /* 1xx-3xx answer */
    NMC_PROV_HTTP_4XX,        /* err NMC_EPROVIDER; 429 included */
    NMC_PROV_HTTP_5XX,        /* err NMC_EPROVIDER */
    NMC_PROV_HTTP_TIMEOUT,    /* err NMC_ETIMEDOUT */
    NMC_PROV_HTTP_CONNECT,    /* err UV_ECONNREFUSED, UV_EAI_NONAME, UV_ECONNRESET, UV_EPROTO */
    NMC_PROV_HTTP_TOOBIG,     /* err NMC_ETOOBIG: response body over the cap */
    NMC_PROV_HTTP_CIRCUIT,    /* err NMC_ECIRCUIT: the breaker refused */
    NMC_PROV_HTTP_CANCELED,   /* err NMC_ECANCELED */
    NMC_PROV_HTTP_OTHER       /* err NMC_EPROVIDER or NMC_EINVAL (bad URL, ...) */
};

struct nmc_prov_http_header {
    char *name;   /* lower-cased */
    char *value;  /* trimmed */
};

/* The outcome of a call (of its last attempt). Owned by the message. */
struct nmc_prov_http_result {
    int err;                       /* 0, or see enum nmc_prov_http_kind */
    enum nmc_prov_http_kind kind;
    long status;                   /* HTTP status of the last answer, 0 if none */
    char *body;                    /* NUL-terminated, never NULL ("" when none) */
    size_t body_len;
    struct nmc_prov_http_header *headers;
    size_t nheaders;
    double latency_ms;             /* last attempt */
    double total_ms;               /* send to completion, backoff included */
    int attempts;                  /* attempts made (0 when refused at once) */
    char error[256];               /* libcurl's message or a reason, "" when none */
};

/* Turns a finished result into a provider-specific payload; takes res.
 * Runs on the loop outside libcurl callbacks, just before delivery. */
typedef void *(*nmc_prov_http_shape_cb)(struct nmc_prov_http_result *res, nmc_payload_free_cb *payload_free);

struct nmc_prov_http_opts {
    int timeout_ms;             /* per attempt (0: 10000) */
    int connect_timeout_ms;     /* 0: 3000 */
    int max_attempts;           /* 0: 3 */
    int backoff_base_ms;        /* first retry delay before jitter (0: 200) */
    int backoff_max_ms;         /* cap of any delay (0: 5000) */
    size_t max_response_bytes;  /* 0: 1 MiB */
    long max_host_connections;  /* 0: unlimited */
    const char *user_agent;     /* NULL: "nevermisscall/<version>"; copied */
};

/* One call. Everything is copied by nmc_prov_http_send(); only breaker is
 * borrowed and must outlive the call (use nmc_prov_http_breaker()). */
struct nmc_prov_http_req {
    const char *provider;        /* metric label and span part, e.g. "twilio" */
    const char *endpoint;        /* e.g. "messages_create" */
    const char *method;          /* NULL: POST when body is set, else GET */
    const char *url;
    const char *const *headers;  /* NULL-terminated "Name: value" list, or NULL */
    const char *body;            /* NULL: no body */
    size_t body_len;
    const char *userpwd;         /* "user:password" for Basic auth, or NULL */
    int timeout_ms;              /* 0: the client's */
    int max_attempts;            /* 0: the client's; 1: never retry */
    struct nmc_prov_breaker *breaker;
    const struct nmc_msg *parent;/* tenant, correlation ids and trace copied to the completion; may be NULL */
    nmc_prov_http_shape_cb shape;/* NULL: deliver NMC_MSG_PROV_HTTP with the result */
    int msg_type;                /* message type used with shape */
};

/* Creates the client on loop. opts may be NULL (defaults). */
NMC_MUST_CHECK int nmc_prov_http_create(uv_loop_t *loop, const struct nmc_prov_http_opts *opts,
                                        struct nmc_prov_http **out);
/* Completes every pending call with NMC_ECANCELED, releases libcurl and
 * closes the handles; the client is freed once the loop has run their close
 * callbacks. Accepts NULL. */
void nmc_prov_http_destroy(struct nmc_prov_http *c);

/* Starts a call; the completion goes to reply_to with cookie echoed in
 * msg->cookie. *id (may be NULL) receives an id for cancel. 0, NMC_EINVAL
 * (no url or reply_to) or NMC_ESHUTDOWN. */
NMC_MUST_CHECK int nmc_prov_http_send(struct nmc_prov_http *c, const struct nmc_prov_http_req *req,
                                      struct nmc_actor *reply_to, uint64_t cookie, uint64_t *id);
/* Cancels a pending call: its completion (NMC_ECANCELED) is delivered.
 * 0, or NMC_ENOTFOUND when id is unknown or already completed. */
int nmc_prov_http_cancel(struct nmc_prov_http *c, uint64_t id);
/* The circuit breaker of provider o->provider: created from o on first
 * use, owned by the client (freed by nmc_prov_http_destroy, after every
 * call is done, so calls never outlive it); later calls for the same
 * provider return it and ignore o. NULL when o is invalid. */
struct nmc_prov_breaker *nmc_prov_http_breaker(struct nmc_prov_http *c, const struct nmc_prov_breaker_opts *o);
/* Calls not yet completed. */
size_t nmc_prov_http_pending(const struct nmc_prov_http *c);

/* Backoff before retry number attempt (1 = after the first failure):
 * d = min(max_ms, base_ms * 2^(attempt-1)), returned in [d/2, d). */
uint64_t nmc_prov_http_backoff_ms(int attempt, int base_ms, int max_ms);

/* Header of a result by case-insensitive name; NULL when absent. */
const char *nmc_prov_http_result_header(const struct nmc_prov_http_result *r, const char *name);
/* Frees a result and everything it owns; accepts NULL. */
void nmc_prov_http_result_free(struct nmc_prov_http_result *r);
/* The payload_free of NMC_MSG_PROV_HTTP messages. */
void nmc_prov_http_result_free_payload(void *payload);
const char *nmc_prov_http_kind_name(enum nmc_prov_http_kind k);

#endif
