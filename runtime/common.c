/* Error names, aborting allocators and small string helpers (runtime/common.h). */
#include "runtime/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct err_name {
    const char *name;  /* for nmc_strerror */
    const char *code;  /* for nmc_errcode: stable, snake_case, never renamed */
};

/* Indexed by NMC_EBASE - err; keep in the order of enum nmc_err. */
static const struct err_name err_names[] = {
    [0] = {"NMC_EBASE: unknown error", "internal"},
    [1] = {"NMC_ENOMEM: out of memory", "out_of_memory"},
    [2] = {"NMC_EINVAL: invalid argument or input", "invalid"},
    [3] = {"NMC_ETOOBIG: size limit exceeded", "too_big"},
    [4] = {"NMC_ECANCELED: operation canceled", "canceled"},
    [5] = {"NMC_ETIMEDOUT: operation timed out", "timeout"},
    [6] = {"NMC_ENOTFOUND: not found", "not_found"},
    [7] = {"NMC_EUNIQUE: unique violation", "unique_violation"},
    [8] = {"NMC_EEXCLUSION: exclusion violation", "exclusion_violation"},
    [9] = {"NMC_EFOREIGNKEY: foreign key violation", "foreign_key_violation"},
    [10] = {"NMC_ECHECK: check constraint violation", "check_violation"},
    [11] = {"NMC_ESERIALIZATION: serialization failure", "serialization_failure"},
    [12] = {"NMC_ECONNLOST: connection lost", "connection_lost"},
    [13] = {"NMC_EDB: database error", "database_error"},
    [14] = {"NMC_EFULL: queue full", "queue_full"},
    [15] = {"NMC_EGONE: expired or deactivated", "gone"},
    [16] = {"NMC_EAUTH: authentication failed", "unauthorized"},
    [17] = {"NMC_EFORBIDDEN: forbidden", "forbidden"},
    [18] = {"NMC_EPROVIDER: provider error", "provider_error"},
    [19] = {"NMC_ECIRCUIT: circuit breaker open", "circuit_open"},
    [20] = {"NMC_EPARSE: malformed input", "parse_error"},
    [21] = {"NMC_ECONFLICT: conflict", "conflict"},
    [22] = {"NMC_ESHUTDOWN: shutting down", "shutting_down"},
};

_Static_assert(NMC_ARRAY_SIZE(err_names) == (size_t)(NMC_EBASE - NMC_ELAST),
               "err_names must name every NMC_E* code");

static const struct err_name *nmc_err_lookup(int err)
{
    if (err > NMC_EBASE || err <= NMC_ELAST)
        return NULL;
    return &err_names[NMC_EBASE - err];
}

/* libuv's own names cover UV_E* (and unknown codes, for which it returns a
 * static "Unknown system error" string), so everything is named. */
const char *nmc_strerror(int err)
{
    const struct err_name *e;

    if (err == 0)
        return "success";
    e = nmc_err_lookup(err);
    if (e)
        return e->name;
    if (err > NMC_EBASE && err < 0)
        return uv_strerror(err);
    return "unknown error";
}

/* UV codes that callers meet in practice get a code of their own; others
 * collapse to "io_error" so the set of codes stays small and stable. */
static const char *uv_errcode(int err)
{
    switch (err) {
    case UV_ETIMEDOUT:
        return "timeout";
    case UV_ECANCELED:
        return "canceled";
    case UV_ENOMEM:
        return "out_of_memory";
    case UV_EINVAL:
        return "invalid";
    case UV_ENOENT:
        return "not_found";
    case UV_ECONNRESET:
    case UV_EPIPE:
    case UV_ECONNABORTED:
    case UV_EOF:
        return "connection_lost";
    case UV_ECONNREFUSED:
        return "connection_refused";
    case UV_EADDRINUSE:
        return "address_in_use";
    default:
        return "io_error";
    }
}

const char *nmc_errcode(int err)
{
    const struct err_name *e;

    if (err == 0)
        return "ok";
    e = nmc_err_lookup(err);
    if (e)
        return e->code;
    if (err > NMC_EBASE && err < 0)
        return uv_errcode(err);
    return "internal";
}

static void oom(const char *what, size_t n)
{
    fprintf(stderr, "nmc: out of memory in %s (%zu bytes)\n", what, n);
    abort();
}

void *nmc_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p)
        oom("nmc_xmalloc", n);
    return p;
}

void *nmc_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);

    if (!p)
        oom("nmc_xcalloc", count * n);
    return p;
}

void *nmc_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (!q)
        oom("nmc_xrealloc", n);
    return q;
}

char *nmc_xstrdup(const char *s)
{
    return nmc_xstrndup(s, strlen(s));
}

char *nmc_xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = nmc_xmalloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

size_t nmc_strlcpy(char *dst, const char *src, size_t dst_size)
{
    size_t len = strlen(src);

    if (dst_size > 0) {
        size_t n = len < dst_size - 1 ? len : dst_size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

void nmc_rtrim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

/* The loop always runs over all of alen bytes, touching b with a clamped
 * index, so timing depends on the lengths only, never on where bytes differ. */
int nmc_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    const volatile unsigned char *pa = a;
    const volatile unsigned char *pb = b;
    unsigned char diff = 0;
    size_t i;

    if (blen == 0)
        return alen == 0;
    for (i = 0; i < alen; i++)
        diff |= pa[i] ^ pb[i < blen ? i : blen - 1];
    return (diff == 0) & (alen == blen);
}

/* strtoll alone accepts leading spaces and '+', and reports overflow only
 * through errno: we want exactly [-]digits and a range check. */
int nmc_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    const char *p = s;
    char *end = NULL;
    long long v;

    if (!s || !out)
        return NMC_EINVAL;
    if (*p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return NMC_EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return NMC_EINVAL;
    if (v < min || v > max)
        return NMC_EINVAL;
    *out = v;
    return 0;
}

int nmc_is_uuid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash ? c != '-' : !hex)
            return 0;
    }
    return 1;
}

int nmc_is_e164(const char *s)
{
    if (s == NULL || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return 0;
    size_t n = 0;
    for (const char *p = s + 1; *p; p++, n++)
        if (*p < '0' || *p > '9')
            return 0;
    return n >= 7 && n <= 15;
}
