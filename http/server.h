/* HTTP/1.1 server on llhttp (strict mode) and uv_tcp.
 *
 * Keep-alive; pipelined requests answered in order; limits: header block
 * over 16 KiB -> 431, body over max_body_bytes -> 413 (without reading the
 * rest), headers not complete within header_timeout_ms -> closed, idle
 * keep-alive connections closed after idle_timeout_ms, malformed input ->
 * 400 and close (including obsolete line folding, which llhttp 8.1 accepts),
 * unknown path -> 404, wrong method -> 405 with Allow.
 *
 * A route handler runs on the loop with a borrowed request. It answers
 * either at once with nmc_http_respond*(), or later: it takes the request's
 * reply handle (nmc_http_req_handle) and hands it to an actor in a message;
 * the actor answers with nmc_http_reply*(). Handles are generation-checked:
 * answering a handle whose connection is gone is a safe no-op returning
 * NMC_EGONE. Exactly one answer per request. */
#ifndef NMC_HTTP_SERVER_H
#define NMC_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "runtime/common.h"
#include "runtime/trace.h"

struct nmc_http_server;
struct nmc_http_req;

#define NMC_HTTP_MAX_HEADER_BYTES (16 * 1024)
#define NMC_HTTP_MAX_PARAMS 8

struct nmc_http_header {
    const char *name;  /* lower-cased */
    const char *value;
};

/* A request as the handler sees it; everything is valid until answered. */
struct nmc_http_req {
    const char *method;           /* "GET", "POST", ... */
    const char *path;             /* decoded path without query */
    const char *query;            /* raw query string without '?', "" if none */
    const char *target;           /* raw request target (path + "?" + query) */
    const struct nmc_http_header *headers;
    size_t nheaders;
    const char *body;             /* NUL-terminated, may contain NULs */
    size_t body_len;
    const char *route;            /* the matched route pattern, e.g. "/v1/admin/tenants/{id}" */
    const char *param_names[NMC_HTTP_MAX_PARAMS];
    const char *param_values[NMC_HTTP_MAX_PARAMS];
    size_t nparams;
    char remote_addr[64];         /* peer IP as text */
    struct nmc_trace_ctx trace;   /* the request span's context (from traceparent if given) */
    char correlation_id[37];      /* X-Correlation-Id if valid, else generated */
    uint64_t received_ns;         /* monotonic time the first byte arrived */
};

typedef void (*nmc_http_handler_cb)(struct nmc_http_req *req, void *ud);

struct nmc_http_server_opts {
    const char *bind_addr;        /* "0.0.0.0" */
    int port;                     /* 0: ephemeral (read back with nmc_http_server_port) */
    int64_t max_body_bytes;       /* 413 past this */
    int header_timeout_ms;        /* slowloris guard */
    int idle_timeout_ms;          /* keep-alive idle close */
    int max_connections;          /* further accepts are closed at once */
};

/* Registers http_request_duration_ms{route,method,status} and
 * http_requests_in_flight: call nmc_metrics_reset() only while no server
 * exists. A client that closes (or half-closes) its side while answers are
 * still owed is treated as gone: its handles return NMC_EGONE. */
NMC_MUST_CHECK int nmc_http_server_create(uv_loop_t *loop, const struct nmc_http_server_opts *opts,
                                          struct nmc_http_server **out);
/* Adds a route. pattern segments "{name}" capture a parameter. method is
 * "GET", "POST", "PATCH", "PUT" or "DELETE". 0 or NMC_EINVAL. */
NMC_MUST_CHECK int nmc_http_server_route(struct nmc_http_server *s, const char *method, const char *pattern,
                                         nmc_http_handler_cb handler, void *ud);
/* Lists routes as "METHOD pattern" lines (for the OpenAPI coverage test). */
size_t nmc_http_server_routes(struct nmc_http_server *s, const char ***out_methods, const char ***out_patterns);
NMC_MUST_CHECK int nmc_http_server_listen(struct nmc_http_server *s);
int nmc_http_server_port(const struct nmc_http_server *s);
/* Graceful stop: closes the listener, lets in-flight requests finish and be
 * answered, closes idle connections; done_cb runs once every connection is
 * closed (or after grace_ms, when the rest are closed forcibly). */
void nmc_http_server_shutdown(struct nmc_http_server *s, int grace_ms, void (*done_cb)(void *ud), void *ud);
/* Frees a server whose shutdown completed (or that never listened). */
void nmc_http_server_free(struct nmc_http_server *s);
size_t nmc_http_server_connections(const struct nmc_http_server *s);
/* Access-log switch: requests answered on route pattern are logged at
 * DEBUG instead of INFO when quiet is 1 (the default for "/healthz" and
 * "/metrics", which are scraped constantly); 0 makes the route loud again. */
void nmc_http_server_quiet_route(struct nmc_http_server *s, const char *pattern, int quiet);

/* Request accessors. Header lookup is case-insensitive; NULL when absent. */
const char *nmc_http_req_header(const struct nmc_http_req *req, const char *name);
const char *nmc_http_req_param(const struct nmc_http_req *req, const char *name);
/* Decoded query parameter (first occurrence) into a new string, or NULL. */
char *nmc_http_req_query(const struct nmc_http_req *req, const char *name);

/* Immediate answers from the handler. headers: NULL or a NULL-terminated
 * list of "Name: value" strings. body is copied. */
void nmc_http_respond(struct nmc_http_req *req, int status, const char *content_type, const char *body,
                      size_t len, const char *const *headers);
void nmc_http_respond_json(struct nmc_http_req *req, int status, const char *json);
/* {"error":{"code":code,"message":message}} */
void nmc_http_respond_error(struct nmc_http_req *req, int status, const char *code, const char *message);

/* Deferred answers. */
struct nmc_http_handle {
    struct nmc_http_server *server;
    uint32_t slot;
    uint32_t gen;
    uint64_t seq;
};
/* Takes the reply handle: the handler returns without answering. */
struct nmc_http_handle nmc_http_req_handle(struct nmc_http_req *req);
/* Borrow the request behind a live handle (NULL when gone). */
struct nmc_http_req *nmc_http_handle_req(struct nmc_http_handle h);
/* 0, or NMC_EGONE when the connection is gone (nothing is sent). */
int nmc_http_reply(struct nmc_http_handle h, int status, const char *content_type, const char *body, size_t len,
                   const char *const *headers);
int nmc_http_reply_json(struct nmc_http_handle h, int status, const char *json);
int nmc_http_reply_error(struct nmc_http_handle h, int status, const char *code, const char *message);

const char *nmc_http_status_text(int status);

#endif
