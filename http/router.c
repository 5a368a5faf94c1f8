/* Route table: a trie of path segments, literal children first, one
 * parameter child per node (http/router.h). Built at start-up, read on
 * every request: matching allocates nothing. */
#include "http/router.h"

#include <stdlib.h>
#include <string.h>
#include "http/body.h"

static const char *const methods[] = {"GET", "POST", "PATCH", "PUT", "DELETE"};
#define NMETHODS NMC_ARRAY_SIZE(methods)

struct route {
    nmc_http_handler_cb handler;
    void *ud;
    char *pattern;
    const char *param_names[NMC_HTTP_MAX_PARAMS];
    size_t nparams;
};

struct node {
    char *literal;          /* NULL for the parameter child */
    char *param_name;       /* set on the parameter child */
    struct node **kids;     /* literal children */
    size_t nkids;
    struct node *param;     /* parameter child */
    struct route *routes[NMETHODS];
};

struct nmc_http_router {
    struct node root;
    const char **list_methods;
    const char **list_patterns;
    size_t nlist;
};

static int method_index(const char *m)
{
    size_t i;

    for (i = 0; i < NMETHODS; i++)
        if (strcmp(m, methods[i]) == 0)
            return (int)i;
    return -1;
}

int nmc_http_router_create(struct nmc_http_router **out)
{
    *out = nmc_xcalloc(1, sizeof(**out));
    return 0;
}

static void node_free(struct node *n)
{
    size_t i;

    if (!n)
        return;
    for (i = 0; i < n->nkids; i++) {
        node_free(n->kids[i]);
        free(n->kids[i]);
    }
    free(n->kids);
    if (n->param) {
        node_free(n->param);
        free(n->param);
    }
    for (i = 0; i < NMETHODS; i++) {
        if (n->routes[i]) {
            free(n->routes[i]->pattern);
            free(n->routes[i]);
        }
    }
    free(n->literal);
    free(n->param_name);
}

void nmc_http_router_free(struct nmc_http_router *r)
{
    if (!r)
        return;
    node_free(&r->root);
    free(r->list_methods);
    free(r->list_patterns);
    free(r);
}

/* Returns the child for one pattern segment, creating it; NULL when the
 * segment is malformed or names a different parameter than an earlier route
 * at the same position (two names for one value would be ambiguous). */
static struct node *node_child(struct node *n, const char *seg, size_t len)
{
    struct node *k;
    size_t i;

    if (len >= 2 && seg[0] == '{' && seg[len - 1] == '}') {
        if (len == 2 || memchr(seg + 1, '{', len - 2) || memchr(seg + 1, '}', len - 2))
            return NULL;
        if (n->param)
            return strlen(n->param->param_name) == len - 2 && memcmp(n->param->param_name, seg + 1, len - 2) == 0
                       ? n->param
                       : NULL;
        n->param = nmc_xcalloc(1, sizeof(*n->param));
        n->param->param_name = nmc_xstrndup(seg + 1, len - 2);
        return n->param;
    }
    if (memchr(seg, '{', len) || memchr(seg, '}', len))
        return NULL;
    for (i = 0; i < n->nkids; i++)
        if (strlen(n->kids[i]->literal) == len && memcmp(n->kids[i]->literal, seg, len) == 0)
            return n->kids[i];
    k = nmc_xcalloc(1, sizeof(*k));
    k->literal = nmc_xstrndup(seg, len);
    n->kids = nmc_xrealloc(n->kids, (n->nkids + 1) * sizeof(*n->kids));
    n->kids[n->nkids++] = k;
    return k;
}

/* Walks (and grows) the trie along pattern; collects parameter names. */
static struct node *node_walk(struct nmc_http_router *r, const char *pattern, struct route *rt)
{
    struct node *n = &r->root;
    const char *p = pattern + 1;
    size_t nsegs = 0;

    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (++nsegs > NMC_HTTP_MAX_SEGMENTS || !(n = node_child(n, p, len)))
            return NULL;
        if (n->param_name) {
            if (rt->nparams == NMC_HTTP_MAX_PARAMS)
                return NULL;
            rt->param_names[rt->nparams++] = n->param_name;
        }
        if (!slash)
            return n;
        p = slash + 1;
    }
}

static void list_add(struct nmc_http_router *r, const char *method, const char *pattern)
{
    r->list_methods = nmc_xrealloc(r->list_methods, (r->nlist + 1) * sizeof(*r->list_methods));
    r->list_patterns = nmc_xrealloc(r->list_patterns, (r->nlist + 1) * sizeof(*r->list_patterns));
    r->list_methods[r->nlist] = method;
    r->list_patterns[r->nlist] = pattern;
    r->nlist++;
}

int nmc_http_router_add(struct nmc_http_router *r, const char *method, const char *pattern,
                        nmc_http_handler_cb handler, void *ud)
{
    struct route rt = {.handler = handler, .ud = ud};
    struct node *n;
    int mi;

    if (!r || !method || !pattern || !handler || pattern[0] != '/' || (mi = method_index(method)) < 0)
        return NMC_EINVAL;
    n = node_walk(r, pattern, &rt);
    if (!n || n->routes[mi])
        return NMC_EINVAL;
    rt.pattern = nmc_xstrdup(pattern);
    n->routes[mi] = nmc_xmalloc(sizeof(rt));
    *n->routes[mi] = rt;
    list_add(r, methods[mi], rt.pattern);
    return 0;
}

/* Appends the methods of n to the Allow list, once each. */
static void allow_add(char *allow, size_t size, const struct node *n)
{
    size_t i, len;

    for (i = 0; i < NMETHODS; i++) {
        if (!n->routes[i] || strstr(allow, methods[i]))
            continue;
        len = strlen(allow);
        snprintf(allow + len, size - len, "%s%s", len ? ", " : "", methods[i]);
    }
}

static int node_has_routes(const struct node *n)
{
    size_t i;

    for (i = 0; i < NMETHODS; i++)
        if (n->routes[i])
            return 1;
    return 0;
}

/* Depth-first: literal child before the parameter child, so "/a/me" beats
 * "/a/{id}" and "/a/{id}/x" still matches "/a/me/x" when "/a/me/x" does not
 * exist. Paths that exist under other methods accumulate in m->allow. */
static int match(const struct node *n, int mi, const char *const *segs, size_t nsegs, size_t i,
                 struct nmc_http_route_match *m)
{
    size_t k;

    if (i == nsegs) {
        if (mi >= 0 && n->routes[mi])
            return 1;
        if (node_has_routes(n))
            allow_add(m->allow, sizeof(m->allow), n);
        return 0;
    }
    for (k = 0; k < n->nkids; k++)
        if (strcmp(n->kids[k]->literal, segs[i]) == 0 && match(n->kids[k], mi, segs, nsegs, i + 1, m))
            return 1;
    if (n->param && match(n->param, mi, segs, nsegs, i + 1, m))
        return 1;
    return 0;
}

enum nmc_http_route_result nmc_http_router_match(const struct nmc_http_router *r, const char *method,
                                                 const char *const *segs, size_t nsegs,
                                                 struct nmc_http_route_match *m)
{
    const struct node *n = &r->root;
    const struct route *rt;
    int mi = method_index(method);
    size_t i, p = 0;

    memset(m, 0, sizeof(*m));
    if (!match(n, mi, segs, nsegs, 0, m))
        return m->allow[0] ? NMC_HTTP_ROUTE_BAD_METHOD : NMC_HTTP_ROUTE_NOT_FOUND;
    /* Walk again along the winning branch to collect the parameter values:
     * the DFS above cannot record them without a copy per level. */
    for (i = 0; i < nsegs; i++) {
        const struct node *next = NULL;
        size_t k;
        for (k = 0; k < n->nkids && !next; k++)
            if (strcmp(n->kids[k]->literal, segs[i]) == 0 && match(n->kids[k], mi, segs, nsegs, i + 1, m))
                next = n->kids[k];
        if (!next) {
            next = n->param;
            m->param_values[p++] = segs[i];
        }
        n = next;
    }
    rt = n->routes[mi];
    m->handler = rt->handler;
    m->ud = rt->ud;
    m->pattern = rt->pattern;
    m->nparams = rt->nparams;
    for (i = 0; i < rt->nparams; i++)
        m->param_names[i] = rt->param_names[i];
    return NMC_HTTP_ROUTE_FOUND;
}

size_t nmc_http_router_list(struct nmc_http_router *r, const char ***out_methods, const char ***out_patterns)
{
    *out_methods = r->list_methods;
    *out_patterns = r->list_patterns;
    return r->nlist;
}

int nmc_http_router_split(const char *raw, size_t len, char *out, char *path_out, const char **segs,
                          size_t *nsegs)
{
    size_t pos = 1, o = 0, n = 0, plen = 0, dlen;
    int rc;

    if (len == 0 || raw[0] != '/')
        return NMC_EPARSE;
    for (;;) {
        const char *slash = memchr(raw + pos, '/', len - pos);
        size_t seglen = slash ? (size_t)(slash - (raw + pos)) : len - pos;
        if (n == NMC_HTTP_MAX_SEGMENTS)
            return NMC_ETOOBIG;
        if ((rc = nmc_url_decode(raw + pos, seglen, 0, out + o, &dlen)) != 0)
            return rc;
        segs[n++] = out + o;
        path_out[plen++] = '/';
        memcpy(path_out + plen, out + o, dlen);
        plen += dlen;
        o += dlen + 1;
        if (!slash)
            break;
        pos += seglen + 1;
    }
    path_out[plen] = '\0';
    *nsegs = n;
    return 0;
}
