/* UTF-8 checks shared by the JSON writers (runtime/buf.c, runtime/log.c),
 * metric labels and webhook input. See utf8.h. */
#include "runtime/utf8.h"

/* UTF-8 per RFC 3629: rejects overlong forms, surrogates and code points
 * past U+10FFFF, so a validated string always parses as JSON text. */
size_t nmc_utf8_seqlen(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        if (c == 0xF4)
            hi = 0x8F; /* > U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

int nmc_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t off = 0; off < n;) {
        size_t l = nmc_utf8_seqlen(u + off, n - off);
        if (l == 0)
            return 0;
        off += l;
    }
    return 1;
}
