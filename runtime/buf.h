/* A growable byte buffer with an optional cap (conventions 10). */
#ifndef NMC_RUNTIME_BUF_H
#define NMC_RUNTIME_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include "runtime/common.h"

struct nmc_buf {
    char *data;    /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t max;    /* 0: unlimited (internal use); else appends past it fail with NMC_ETOOBIG */
};

/* Appends; 0 or NMC_ETOOBIG when max would be exceeded (buffer unchanged). */
int nmc_buf_append(struct nmc_buf *b, const void *data, size_t n);
int nmc_buf_puts(struct nmc_buf *b, const char *s);
int nmc_buf_printf(struct nmc_buf *b, const char *fmt, ...) NMC_PRINTF(2, 3);
int nmc_buf_vprintf(struct nmc_buf *b, const char *fmt, va_list ap) NMC_PRINTF(2, 0);
/* Appends s as a JSON string literal with quotes and escapes. */
int nmc_buf_json_str(struct nmc_buf *b, const char *s);
int nmc_buf_json_strn(struct nmc_buf *b, const char *s, size_t n);
void nmc_buf_reset(struct nmc_buf *b);
/* Frees the storage; accepts a zeroed buffer. max is kept, so the buffer
 * can be reused with the same cap. */
void nmc_buf_free(struct nmc_buf *b);
/* Hands the storage to the caller (NUL-terminated, never NULL) and zeroes b
 * (all but max). len may be NULL. */
char *nmc_buf_steal(struct nmc_buf *b, size_t *len);

#endif
