/* Free-text matching of catalog items (actors/catalog/catalog.h). The rule
 * of spec 000 section 4.4: a longer match beats priority, priority beats an
 * exact name. Pure functions, so the unit tests pin the ranking. */
#include "actors/catalog/catalog.h"

#include <stdlib.h>
#include <string.h>

#define TERM_MAX 256

static int is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

size_t nmc_catalog_normalize(const char *s, char *out, size_t outlen)
{
    size_t n = 0;
    int pending_space = 0;
    if (outlen == 0)
        return 0;
    for (; s != NULL && *s != '\0' && n + 1 < outlen; s++) {
        unsigned char c = (unsigned char)*s;
        if (!is_word_byte(c)) {
            pending_space = n > 0;
            continue;
        }
        if (pending_space) {
            if (n + 2 >= outlen)
                break;
            out[n++] = ' ';
            pending_space = 0;
        }
        out[n++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    out[n] = '\0';
    return n;
}

/* 1 when the normalized term occurs in ntext at a word start (and, for a
 * short term, at a word end too). */
static int term_found(const char *ntext, size_t tlen, const char *nterm, size_t len)
{
    for (const char *p = strstr(ntext, nterm); p != NULL; p = strstr(p + 1, nterm)) {
        size_t pos = (size_t)(p - ntext);
        int starts = pos == 0 || ntext[pos - 1] == ' ';
        int ends = pos + len == tlen || ntext[pos + len] == ' ';
        if (starts && (ends || len >= NMC_CATALOG_SHORT_TERM))
            return 1;
    }
    return 0;
}

/* Considers one term; keeps it in *m when it matches and beats what *m has
 * (longer, or as long and the name rather than an alias). */
static void consider(const char *ntext, size_t tlen, const char *term, int is_name, struct nmc_catalog_match *m)
{
    char nterm[TERM_MAX];
    size_t len = nmc_catalog_normalize(term, nterm, sizeof(nterm));
    if (len == 0 || len > tlen || !term_found(ntext, tlen, nterm, len))
        return;
    if (len > m->match_len || (len == m->match_len && is_name && !m->exact_name)) {
        m->match_len = len;
        m->exact_name = is_name;
        m->term = term;
    }
}

size_t nmc_catalog_match_entry(const struct nmc_catalog_entry *e, const char *ntext, struct nmc_catalog_match *m)
{
    struct nmc_catalog_match best = {.priority = e->priority};
    size_t tlen = strlen(ntext);
    consider(ntext, tlen, e->name, 1, &best);
    for (size_t i = 0; i < e->naliases; i++)
        consider(ntext, tlen, e->aliases[i], 0, &best);
    if (best.match_len > 0 && m != NULL)
        *m = best;
    return best.match_len;
}

struct ranked {
    struct nmc_catalog_match m;
    const struct nmc_catalog_entry *e;
};

static int cmp_ranked(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->m.match_len != y->m.match_len)
        return x->m.match_len > y->m.match_len ? -1 : 1;
    if (x->m.priority != y->m.priority)
        return x->m.priority > y->m.priority ? -1 : 1;
    if (x->m.exact_name != y->m.exact_name)
        return x->m.exact_name ? -1 : 1;
    int c = strcmp(x->e->name, y->e->name);
    return c != 0 ? c : strcmp(x->e->id, y->e->id);
}

size_t nmc_catalog_rank(const struct nmc_catalog_entry *entries, size_t n, const char *text,
                        struct nmc_catalog_match *out, size_t max)
{
    size_t cap = strlen(text != NULL ? text : "") + 1, found = 0;
    char *ntext = nmc_xmalloc(cap);
    struct ranked *r = nmc_xcalloc(n > 0 ? n : 1, sizeof(*r));
    nmc_catalog_normalize(text, ntext, cap);
    for (size_t i = 0; i < n; i++) {
        if (nmc_catalog_match_entry(&entries[i], ntext, &r[found].m) == 0)
            continue;
        r[found].m.index = i;
        r[found].e = &entries[i];
        found++;
    }
    qsort(r, found, sizeof(*r), cmp_ranked);
    size_t k = found < max ? found : max;
    for (size_t i = 0; i < k; i++)
        out[i] = r[i].m;
    free(r);
    free(ntext);
    return k;
}
