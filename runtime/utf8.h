/* Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
 * past U+10FFFF, so a string that passes always parses as JSON text. */
#ifndef NMC_RUNTIME_UTF8_H
#define NMC_RUNTIME_UTF8_H

#include <stddef.h>

/* Length (1-4) of the well-formed UTF-8 sequence at s (n bytes available),
 * or 0 when s does not start one (overlong, surrogate, truncated, > U+10FFFF,
 * or n == 0). */
size_t nmc_utf8_seqlen(const unsigned char *s, size_t n);
/* 1 when s[0..n) is well-formed UTF-8 throughout, else 0. */
int nmc_utf8_valid(const char *s, size_t n);

#endif
