/* Route table for the HTTP server: method + path pattern with "{name}"
 * segments. Internal to http/ (the server wraps it); tests use it directly.
 *
 * Matching works on decoded path segments: exact segments win over
 * parameters (with backtracking), "/a" and "/a/" are different paths, and a
 * path that matches only under other methods yields the Allow list. */
#ifndef NMC_HTTP_ROUTER_H
#define NMC_HTTP_ROUTER_H

#include <stddef.h>
#include "http/server.h"

#define NMC_HTTP_MAX_SEGMENTS 32

struct nmc_http_router;

enum nmc_http_route_result {
    NMC_HTTP_ROUTE_FOUND = 0,
    NMC_HTTP_ROUTE_NOT_FOUND,  /* 404 */
    NMC_HTTP_ROUTE_BAD_METHOD, /* 405: allow lists the methods of the path */
};

struct nmc_http_route_match {
    nmc_http_handler_cb handler;
    void *ud;
    const char *pattern;                          /* owned by the router */
    const char *param_names[NMC_HTTP_MAX_PARAMS]; /* owned by the router */
    const char *param_values[NMC_HTTP_MAX_PARAMS]; /* point into the caller's segs */
    size_t nparams;
    char allow[48];                               /* "GET, POST" for 405 */
};

NMC_MUST_CHECK int nmc_http_router_create(struct nmc_http_router **out);
void nmc_http_router_free(struct nmc_http_router *r);
/* Adds a route. method: GET, POST, PATCH, PUT or DELETE. pattern starts with
 * '/', a "{name}" must be a whole segment, at most NMC_HTTP_MAX_PARAMS of
 * them; one parameter name per position. 0 or NMC_EINVAL (also for a
 * duplicate method + pattern). */
NMC_MUST_CHECK int nmc_http_router_add(struct nmc_http_router *r, const char *method, const char *pattern,
                                       nmc_http_handler_cb handler, void *ud);
/* Matches decoded segments (the text between slashes of the path: "/" is
 * one empty segment). method may be any string. */
enum nmc_http_route_result nmc_http_router_match(const struct nmc_http_router *r, const char *method,
                                                 const char *const *segs, size_t nsegs,
                                                 struct nmc_http_route_match *m);
/* Registration order; arrays owned by the router, valid until the next add. */
size_t nmc_http_router_list(struct nmc_http_router *r, const char ***out_methods, const char ***out_patterns);

/* Splits and percent-decodes a raw path ("/a/b%20c") into out (len+1
 * bytes): segments NUL-separated, pointers in segs. Also writes the decoded
 * path (segments joined by '/') into path_out (len+1 bytes). 0, NMC_EPARSE
 * (no leading '/', bad escape, NUL) or NMC_ETOOBIG (too many segments). */
NMC_MUST_CHECK int nmc_http_router_split(const char *raw, size_t len, char *out, char *path_out,
                                         const char **segs, size_t *nsegs);

#endif
