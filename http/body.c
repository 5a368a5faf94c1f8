/* Request bodies: form-urlencoded pairs, percent coding, JSON objects
 * (http/body.h). Everything here is fed by the network, so every error is a
 * return value naming the problem, never a crash. */
#include "http/body.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes in[0..len) into out (len+1 bytes). A '%' must be followed by two
 * hex digits; a NUL, raw or escaped, is refused because every consumer
 * treats the result as a C string. */
int nmc_url_decode(const char *in, size_t len, int plus_is_space, char *out, size_t *out_len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi, lo;
            if (len - i < 3)
                return NMC_EPARSE;
            hi = hexval((unsigned char)in[i + 1]);
            lo = hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return NMC_EPARSE;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == '\0')
            return NMC_EPARSE;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    if (out_len)
        *out_len = n;
    return 0;
}

static char *decode_dup(const char *s, size_t len, int *rc)
{
    char *out = nmc_xmalloc(len + 1);

    *rc = nmc_url_decode(s, len, 1, out, NULL);
    if (*rc) {
        free(out);
        return NULL;
    }
    return out;
}

/* Adds one "name=value" piece (value may be absent) to f. */
static int form_add(struct nmc_form *f, size_t *cap, const char *p, size_t len)
{
    const char *eq = memchr(p, '=', len);
    size_t nlen = eq ? (size_t)(eq - p) : len;
    struct nmc_form_pair pair;
    int rc;

    pair.name = decode_dup(p, nlen, &rc);
    if (!pair.name)
        return rc;
    pair.value = eq ? decode_dup(eq + 1, len - nlen - 1, &rc) : nmc_xstrdup("");
    if (!pair.value) {
        free(pair.name);
        return rc;
    }
    if (f->n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        f->pairs = nmc_xrealloc(f->pairs, *cap * sizeof(*f->pairs));
    }
    f->pairs[f->n++] = pair;
    return 0;
}

int nmc_form_parse(const char *body, size_t len, size_t max_pairs, struct nmc_form *out)
{
    struct nmc_form f = {0};
    size_t cap = 0, pos = 0;
    int rc = 0;

    while (pos < len) {
        const char *amp = memchr(body + pos, '&', len - pos);
        size_t plen = amp ? (size_t)(amp - (body + pos)) : len - pos;
        if (plen > 0) {
            if (f.n == max_pairs) {
                rc = NMC_ETOOBIG;
                goto out;
            }
            if ((rc = form_add(&f, &cap, body + pos, plen)) != 0)
                goto out;
        }
        pos += plen + 1;
    }
out:
    if (rc) {
        nmc_form_free(&f);
        memset(out, 0, sizeof(*out));
        return rc;
    }
    *out = f;
    return 0;
}

const char *nmc_form_get(const struct nmc_form *f, const char *name)
{
    size_t i;

    for (i = 0; f && i < f->n; i++)
        if (strcmp(f->pairs[i].name, name) == 0)
            return f->pairs[i].value;
    return NULL;
}

void nmc_form_free(struct nmc_form *f)
{
    size_t i;

    if (!f)
        return;
    for (i = 0; i < f->n; i++) {
        free(f->pairs[i].name);
        free(f->pairs[i].value);
    }
    free(f->pairs);
    f->pairs = NULL;
    f->n = 0;
}

char *nmc_url_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(s), i, n = 0;
    char *out = nmc_xmalloc(len * 3 + 1);

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_' || c == '~') {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return out;
}

/* Duplicate keys are refused: with two values for one key, which one a
 * handler sees would depend on the parser, a classic smuggling lever. */
json_t *nmc_json_parse_object(const char *body, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root;

    if (!body || len == 0) {
        snprintf(err, errlen, "empty body: expected a JSON object");
        return NULL;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(err, errlen, "expected a JSON object at line 1, column 1");
        return NULL;
    }
    return root;
}

static int key_allowed(const char *key, const char *const *allowed)
{
    size_t i;

    for (i = 0; allowed && allowed[i]; i++)
        if (strcmp(key, allowed[i]) == 0)
            return 1;
    return 0;
}

int nmc_json_check_keys(json_t *obj, const char *const *allowed, char *err, size_t errlen)
{
    const char *key;
    json_t *val;

    if (!json_is_object(obj)) {
        snprintf(err, errlen, "expected a JSON object");
        return NMC_EINVAL;
    }
    json_object_foreach(obj, key, val) {
        (void)val;
        if (!key_allowed(key, allowed)) {
            snprintf(err, errlen, "unknown field \"%.64s\"", key);
            return NMC_EINVAL;
        }
    }
    return 0;
}
