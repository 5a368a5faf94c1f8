/* SQL statement splitting (db/sql_split.h). */
#include "db/sql_split.h"

#include <string.h>

static int ident_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$' ||
           c >= 0x80;
}

static int ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

/* Past a '--' comment starting at i (its newline included). */
static size_t skip_line_comment(const char *s, size_t n, size_t i)
{
    while (i < n && s[i] != '\n')
        i++;
    return i < n ? i + 1 : n;
}

/* Past a block comment starting at i ("/" "*"), nested ones included. */
static size_t skip_block_comment(const char *s, size_t n, size_t i)
{
    size_t depth = 0;
    while (i < n) {
        if (i + 1 < n && s[i] == '/' && s[i + 1] == '*') {
            depth++;
            i += 2;
        } else if (i + 1 < n && s[i] == '*' && s[i + 1] == '/') {
            i += 2;
            if (--depth == 0)
                return i;
        } else {
            i++;
        }
    }
    return n;
}

/* Past a quoted run starting at i (s[i] is the quote q); a doubled quote
 * stands for itself, and with backslashes a backslash escapes any byte. */
static size_t skip_quoted(const char *s, size_t n, size_t i, char q, int backslashes)
{
    for (i++; i < n; i++) {
        if (backslashes && s[i] == '\\') {
            i++;
        } else if (s[i] == q) {
            if (i + 1 < n && s[i + 1] == q)
                i++;
            else
                return i + 1;
        }
    }
    return n;
}

/* The length of the $tag$ opening at i ('$' at s[i]), or 0 when none. */
static size_t dollar_tag_len(const char *s, size_t n, size_t i)
{
    size_t j = i + 1;
    if (j < n && s[j] == '$')
        return 2; /* $$ */
    if (j >= n || !ident_start((unsigned char)s[j]))
        return 0; /* $1, a lone $ */
    while (j < n && ident_char((unsigned char)s[j]) && s[j] != '$')
        j++;
    return j < n && s[j] == '$' ? j - i + 1 : 0;
}

/* Past a dollar-quoted body whose tag (tlen bytes) opens at i. */
static size_t skip_dollar(const char *s, size_t n, size_t i, size_t tlen)
{
    const char *tag = s + i;
    for (i += tlen; i + tlen <= n; i++)
        if (s[i] == '$' && memcmp(s + i, tag, tlen) == 0)
            return i + tlen;
    return n;
}

size_t nmc_sql_statement_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        unsigned char prev = i > 0 ? (unsigned char)s[i - 1] : ' ';
        if (c == ';') {
            return i + 1;
        } else if (c == '-' && i + 1 < n && s[i + 1] == '-') {
            i = skip_line_comment(s, n, i);
        } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
            i = skip_block_comment(s, n, i);
        } else if (c == '\'') {
            /* E'...' (the E not the end of a longer word) takes backslash escapes */
            int e = i > 0 && (prev == 'E' || prev == 'e') && (i < 2 || !ident_char((unsigned char)s[i - 2]));
            i = skip_quoted(s, n, i, '\'', e);
        } else if (c == '"') {
            i = skip_quoted(s, n, i, '"', 0);
        } else if (c == '$' && !ident_char(prev)) {
            size_t t = dollar_tag_len(s, n, i);
            i = t > 0 ? skip_dollar(s, n, i, t) : i + 1;
        } else {
            i++;
        }
    }
    return n;
}

int nmc_sql_is_blank(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == ';')
            i++;
        else if (c == '-' && i + 1 < n && s[i + 1] == '-')
            i = skip_line_comment(s, n, i);
        else if (c == '/' && i + 1 < n && s[i + 1] == '*')
            i = skip_block_comment(s, n, i);
        else
            return 0;
    }
    return 1;
}
