/* Growable byte buffer with an optional cap (runtime/buf.h). */
#include "runtime/buf.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/utf8.h"

/* Makes room for n more bytes plus the NUL. Checks the cap first so a
 * failed append leaves the buffer exactly as it was. */
static int reserve(struct nmc_buf *b, size_t n)
{
    size_t need, cap;

    if (n > SIZE_MAX - b->len - 1)
        return NMC_ETOOBIG;
    need = b->len + n;
    if (b->max && need > b->max)
        return NMC_ETOOBIG;
    if (need + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need + 1)
        cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
    b->data = nmc_xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int nmc_buf_append(struct nmc_buf *b, const void *data, size_t n)
{
    int rc = reserve(b, n);

    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int nmc_buf_puts(struct nmc_buf *b, const char *s)
{
    return nmc_buf_append(b, s, strlen(s));
}

int nmc_buf_printf(struct nmc_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = nmc_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/* Formats once to learn the length, then into the reserved space; the
 * buffer is left unchanged when the cap would be exceeded. */
int nmc_buf_vprintf(struct nmc_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n, rc;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NMC_EINVAL;
    rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int nmc_buf_json_str(struct nmc_buf *b, const char *s)
{
    return nmc_buf_json_strn(b, s, strlen(s));
}

/* The escape for one byte below 0x80, or NULL when it is copied as is. */
static const char *json_escape(unsigned char c, char tmp[8])
{
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    default:
        break;
    }
    if (c < 0x20 || c == 0x7F) {
        snprintf(tmp, 8, "\\u%04x", c);
        return tmp;
    }
    return NULL;
}

/* Valid UTF-8 passes through; each byte of an invalid sequence becomes
 * U+FFFD, so the output is always valid JSON. All or nothing against the
 * cap: on NMC_ETOOBIG the buffer is restored. */
int nmc_buf_json_strn(struct nmc_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = b->len, i = 0, run;
    char tmp[8];
    const char *esc;
    int rc = nmc_buf_append(b, "\"", 1);

    while (rc == 0 && i < n) {
        for (run = i; run < n && p[run] >= 0x20 && p[run] < 0x7F && p[run] != '"' && p[run] != '\\';)
            run++;
        if (run > i) {
            rc = nmc_buf_append(b, p + i, run - i);
            i = run;
            continue;
        }
        if (p[i] < 0x80) {
            esc = json_escape(p[i], tmp);
            assert(esc);
            rc = nmc_buf_puts(b, esc);
            i++;
        } else if ((run = nmc_utf8_seqlen(p + i, n - i)) > 0) {
            rc = nmc_buf_append(b, p + i, run);
            i += run;
        } else {
            rc = nmc_buf_puts(b, "\\ufffd");
            i++;
        }
    }
    if (rc == 0)
        rc = nmc_buf_append(b, "\"", 1);
    if (rc) {
        b->len = start;
        if (b->data)
            b->data[start] = '\0';
    }
    return rc;
}

void nmc_buf_reset(struct nmc_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void nmc_buf_free(struct nmc_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

char *nmc_buf_steal(struct nmc_buf *b, size_t *len)
{
    char *p = b->data;

    if (!p) {
        p = nmc_xmalloc(1);
        p[0] = '\0';
    }
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
