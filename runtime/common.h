/* Shared definitions: error codes, allocation that aborts on OOM, helpers.
 * Errors are int: 0 or a negative NMC_E* below libuv's range, so UV_E*
 * codes pass through unchanged (conventions 3). */
#ifndef NMC_RUNTIME_COMMON_H
#define NMC_RUNTIME_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define NMC_MUST_CHECK __attribute__((warn_unused_result))
#define NMC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define nmc_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define NMC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum nmc_err {
    NMC_EBASE = -20000,
    NMC_ENOMEM = -20001,        /* allocation failed where we chose not to abort */
    NMC_EINVAL = -20002,        /* bad argument or input */
    NMC_ETOOBIG = -20003,       /* a network-fed buffer hit its cap */
    NMC_ECANCELED = -20004,     /* operation cancelled before completion */
    NMC_ETIMEDOUT = -20005,     /* operation or query timed out */
    NMC_ENOTFOUND = -20006,     /* no such row / object */
    NMC_EUNIQUE = -20007,       /* unique violation (23505) */
    NMC_EEXCLUSION = -20008,    /* exclusion violation (23P01) */
    NMC_EFOREIGNKEY = -20009,   /* foreign key violation (23503) */
    NMC_ECHECK = -20010,        /* check / not-null violation (23514, 23502) */
    NMC_ESERIALIZATION = -20011,/* serialization failure / deadlock (40001, 40P01) */
    NMC_ECONNLOST = -20012,     /* database connection lost under the query */
    NMC_EDB = -20013,           /* any other database error */
    NMC_EFULL = -20014,         /* mailbox or queue at capacity */
    NMC_EGONE = -20015,         /* expired or deactivated (maps to 410) */
    NMC_EAUTH = -20016,         /* authentication failed */
    NMC_EFORBIDDEN = -20017,    /* authenticated but not allowed */
    NMC_EPROVIDER = -20018,     /* external provider answered an error */
    NMC_ECIRCUIT = -20019,      /* provider circuit breaker is open */
    NMC_EPARSE = -20020,        /* malformed input */
    NMC_ECONFLICT = -20021,     /* domain conflict (maps to 409) */
    NMC_ESHUTDOWN = -20022,     /* the component is shutting down */
    NMC_ELAST = -20023
};

/* Names the error: NMC_E* and UV_E* codes alike. Never NULL. */
const char *nmc_strerror(int err);
/* A stable short code ("unique_violation", "timeout", ...) for logs and JSON errors. */
const char *nmc_errcode(int err);

/* Allocation for small internal objects: aborts the process on OOM. */
void *nmc_xmalloc(size_t n);
void *nmc_xcalloc(size_t count, size_t n);
void *nmc_xrealloc(void *p, size_t n);
char *nmc_xstrdup(const char *s);
char *nmc_xstrndup(const char *s, size_t n);

/* Copies at most dst_size-1 bytes and NUL-terminates; returns strlen(src). */
size_t nmc_strlcpy(char *dst, const char *src, size_t dst_size);

/* Cuts trailing newlines, carriage returns and spaces off s (libpq's
 * messages end with a newline), in place. */
void nmc_rtrim(char *s);

/* Constant-time comparison of two byte strings; 1 when equal. Length
 * differences are not hidden but content is. */
int nmc_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Parses a whole decimal integer in [min,max]; 0 or NMC_EINVAL. */
NMC_MUST_CHECK int nmc_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* 1 when s is a UUID in its 8-4-4-4-12 hex form (any case). */
int nmc_is_uuid(const char *s);
/* 1 when s is an E.164 number: '+', a non-zero digit, 7..15 digits in all. */
int nmc_is_e164(const char *s);

#endif
