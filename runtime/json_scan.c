/* A JSON object's string members without a tree. See json_scan.h.
 *
 * One pass over the text with an explicit stack of the open containers
 * (no recursion, so the depth limit is a counter, as in jansson). What it
 * accepts follows jansson 2.14's json_loadb(text, len, 0, ...): RFC 8259
 * grammar; strings of well-formed UTF-8 without control characters; the
 * escapes \" \\ \/ \b \f \n \r \t and \uXXXX, a high surrogate only with a
 * low one after it, never \u0000; a value nested deeper than
 * NMC_JSON_MAX_DEPTH (scalars count, as jansson counts every value) is an
 * error. tests/fuzz/fuzz_json_scan.c holds it to that. */
#include "runtime/json_scan.h"

#include <string.h>
#include "runtime/common.h"
#include "runtime/utf8.h"

#define KEY_MAX 128 /* a member name this long or longer matches no key asked for */

struct scan {
    const unsigned char *p, *end;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int is_digit(const struct scan *s)
{
    return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static int hex4(struct scan *s, unsigned *out)
{
    if (s->end - s->p < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s->p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    s->p += 4;
    *out = v;
    return 0;
}

/* The code point of the \u escape whose "\u" was just read (a surrogate
 * pair counts as one), or -1. */
static long unicode_escape(struct scan *s)
{
    unsigned cp, lo;
    if (hex4(s, &cp) != 0 || cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
        return -1;
    if (cp < 0xD800 || cp > 0xDBFF)
        return (long)cp;
    if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
        return -1;
    s->p += 2;
    if (hex4(s, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
        return -1;
    return 0x10000L + ((long)(cp - 0xD800) << 10) + (long)(lo - 0xDC00);
}

static size_t utf8_encode(unsigned long cp, unsigned char *u)
{
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (unsigned char)(0xF0 | cp >> 18);
    u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    u[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string whose opening quote was just read. Its unescaped bytes go to
 * out while they fit in cap - 1 (out may be NULL); *n gets their number
 * (out holds "" when it is cap or more). 0, or -1 when it is not valid. */
static int string(struct scan *s, char *out, size_t cap, size_t *n)
{
    size_t len = 0;
    for (;;) {
        /* a run of plain ASCII first: most of every payload */
        const unsigned char *run = s->p;
        while (s->p < s->end && *s->p >= 0x20 && *s->p < 0x80 && *s->p != '"' && *s->p != '\\')
            s->p++;
        size_t rl = (size_t)(s->p - run);
        if (out != NULL && rl > 0 && len + rl < cap)
            memcpy(out + len, run, rl);
        len += rl;
        if (s->p >= s->end)
            return -1;
        unsigned c = *s->p;
        unsigned char u[4];
        size_t ul;
        if (c == '"') {
            s->p++;
            break;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (++s->p >= s->end)
                return -1;
            c = *s->p++;
            switch (c) {
            case '"': case '\\': case '/': u[0] = (unsigned char)c; ul = 1; break;
            case 'b': u[0] = '\b'; ul = 1; break;
            case 'f': u[0] = '\f'; ul = 1; break;
            case 'n': u[0] = '\n'; ul = 1; break;
            case 'r': u[0] = '\r'; ul = 1; break;
            case 't': u[0] = '\t'; ul = 1; break;
            case 'u': {
                long cp = unicode_escape(s);
                if (cp < 0)
                    return -1;
                ul = utf8_encode((unsigned long)cp, u);
                break;
            }
            default: return -1;
            }
        } else {
            ul = nmc_utf8_seqlen(s->p, (size_t)(s->end - s->p));
            if (ul == 0)
                return -1;
            memcpy(u, s->p, ul);
            s->p += ul;
        }
        if (out != NULL && len + ul < cap)
            memcpy(out + len, u, ul);
        len += ul;
    }
    if (out != NULL && cap > 0)
        out[len < cap ? len : 0] = '\0';
    *n = len;
    return 0;
}

static int number(struct scan *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0') {
        s->p++;
        if (is_digit(s))
            return -1; /* no leading zeros */
    } else if (is_digit(s)) {
        while (is_digit(s))
            s->p++;
    } else {
        return -1;
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!is_digit(s))
            return -1;
        while (is_digit(s))
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!is_digit(s))
            return -1;
        while (is_digit(s))
            s->p++;
    }
    return 0;
}

static int literal(struct scan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

/* true, false, null or a number */
static int scalar(struct scan *s)
{
    switch (*s->p) {
    case 't': return literal(s, "true");
    case 'f': return literal(s, "false");
    case 'n': return literal(s, "null");
    default: return number(s);
    }
}

int nmc_json_object_strings(const char *text, size_t len, const char *const *keys, size_t nkeys, char *vals,
                            size_t cap, enum nmc_json_got *got)
{
    if (text == NULL || (nkeys > 0 && (keys == NULL || vals == NULL || cap == 0 || got == NULL)))
        return NMC_EINVAL;
    for (size_t i = 0; i < nkeys; i++) {
        got[i] = NMC_JSON_ABSENT;
        vals[i * cap] = '\0';
    }
    struct scan s = { (const unsigned char *)text, (const unsigned char *)text + len };
    unsigned char open[NMC_JSON_MAX_DEPTH]; /* '{' or '[' for each open container */
    size_t depth = 0;
    long want = -1; /* the key whose member's value comes next (depth 1 only) */
    char key[KEY_MAX];
    size_t n;

    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return NMC_EINVAL;
    goto value;

value: /* one value, at depth + 1 */
    skip_ws(&s);
    if (s.p >= s.end || depth + 1 > NMC_JSON_MAX_DEPTH)
        return NMC_EINVAL;
    switch (*s.p) {
    case '{':
    case '[':
        open[depth++] = *s.p++;
        skip_ws(&s);
        if (s.p < s.end && *s.p == (open[depth - 1] == '{' ? '}' : ']')) {
            s.p++;
            depth--;
            goto after_value;
        }
        if (open[depth - 1] == '{')
            goto member;
        goto value;
    case '"':
        s.p++;
        if (depth == 1 && want >= 0) {
            char *slot = vals + (size_t)want * cap;
            if (string(&s, slot, cap, &n) != 0)
                return NMC_EINVAL;
            got[want] = n < cap ? NMC_JSON_STRING : NMC_JSON_TOO_LONG;
        } else if (string(&s, NULL, 0, &n) != 0) {
            return NMC_EINVAL;
        }
        goto after_value;
    default:
        if (scalar(&s) != 0)
            return NMC_EINVAL;
        goto after_value;
    }

after_value: /* a value ended inside the container open[depth - 1], or the whole text */
    skip_ws(&s);
    if (depth == 0)
        return s.p == s.end ? 0 : NMC_EINVAL;
    if (s.p >= s.end)
        return NMC_EINVAL;
    if (*s.p == ',') {
        s.p++;
        if (open[depth - 1] == '{')
            goto member;
        goto value;
    }
    if (*s.p != (open[depth - 1] == '{' ? '}' : ']'))
        return NMC_EINVAL;
    s.p++;
    depth--;
    goto after_value;

member: /* "name": value, in the object open[depth - 1] */
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '"')
        return NMC_EINVAL;
    s.p++;
    if (string(&s, key, sizeof key, &n) != 0)
        return NMC_EINVAL;
    want = -1;
    for (size_t i = 0; depth == 1 && n < sizeof key && i < nkeys; i++)
        if (strcmp(key, keys[i]) == 0)
            want = (long)i;
    if (want >= 0) { /* the last member of a name decides, whatever its value */
        got[want] = NMC_JSON_ABSENT;
        vals[(size_t)want * cap] = '\0';
    }
    skip_ws(&s);
    if (s.p >= s.end || *s.p != ':')
        return NMC_EINVAL;
    s.p++;
    goto value;
}
