/* Structured logging: one JSON object per line (spec 000 3.1), with the
 * redaction rules of spec 000 3.2 and spec 003 "PII Rules" decided here by
 * the type of each field, so no caller can forget them.
 *
 * A record keeps two buffers: the head (timestamp .. event) written at
 * begin, and the added fields. The ids are held apart until nmc_log_end so
 * they always follow the head whatever order the caller used. The line is
 * assembled in the head buffer and written with one write call, so lines
 * from several processes sharing a pipe never interleave. */
#include "runtime/log.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "runtime/actor.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/utf8.h"

#define ID_MAX 128          /* ids are UUIDs; longer ones are cut */
#define BODY_PREFIX_CHARS 50 /* spec 000 3.2 */

struct nmc_log_rec {
    enum nmc_log_level level;
    struct nmc_buf head;
    struct nmc_buf fields;
    char tenant_id[ID_MAX];
    char correlation_id[ID_MAX];
    char causation_id[ID_MAX];
    int has_tenant, has_correlation, has_causation;
    int need_comma;  /* a field was written at the current depth */
    int depth;       /* open nested objects */
    int hidden;      /* depth of a secret-keyed object being dropped, or 0 */
    int truncated;   /* a value was cut at NMC_LOG_MAX_VALUE */
};

static struct {
    enum nmc_log_level level;
    int body_prefix;
    FILE *out;  /* NULL: write(2) on stdout */
    char env[64];
} cfg = { NMC_LOG_INFO, 0, NULL, "" };

static const char *const level_names[] = { "trace", "debug", "info", "warn", "error" };

static const char *const secret_words[] = {
    "token", "secret", "password", "passwd", "authorization", "api_key", "api-key", "apikey",
    "cookie", "private_key",
};

void nmc_log_setup(enum nmc_log_level level, int body_prefix, FILE *out)
{
    cfg.level = level;
    cfg.body_prefix = body_prefix != 0;
    cfg.out = out;
}

void nmc_log_set_env(const char *env)
{
    nmc_strlcpy(cfg.env, env ? env : "", sizeof(cfg.env));
}

int nmc_log_level_parse(const char *s, enum nmc_log_level *out)
{
    if (s == NULL)
        return NMC_EINVAL;
    for (size_t i = 0; i < NMC_ARRAY_SIZE(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum nmc_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = NMC_LOG_WARN;
        return 0;
    }
    return NMC_EINVAL;
}

int nmc_log_enabled(enum nmc_log_level level)
{
    return level >= cfg.level && level <= NMC_LOG_ERROR;
}

/* Bytes of the first max_chars characters of s (an invalid byte counts as
 * one character, as it becomes one U+FFFD). *cut is set when s is longer. */
static size_t prefix_chars(const char *s, size_t n, size_t max_chars, int *cut)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t off = 0, chars = 0;
    while (off < n && chars < max_chars) {
        size_t l = nmc_utf8_seqlen(u + off, n - off);
        off += l ? l : 1;
        chars++;
    }
    *cut = off < n;
    return off;
}

/* The largest prefix of s no longer than max bytes that ends on a character
 * boundary. */
static size_t prefix_bytes(const char *s, size_t n, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t off = 0;
    while (off < n) {
        size_t l = nmc_utf8_seqlen(u + off, n - off);
        if (l == 0)
            l = 1;
        if (off + l > max)
            break;
        off += l;
    }
    return off;
}

/* Appends s as a JSON string. Our own escaper rather than buf.c's because
 * logs carry hostile input: invalid UTF-8 must become U+FFFD here, or a
 * strict JSON reader (jansson, Loki) drops the whole line. */
static void json_str(struct nmc_buf *b, const char *s, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0; /* start of the pending run of bytes copied verbatim */
    (void)nmc_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t l = nmc_utf8_seqlen(u + i, n - i);
        int plain = l > 1 || (l == 1 && c >= 0x20 && c != '"' && c != '\\' && c != 0x7F);
        if (plain) {
            i += l;
            continue;
        }
        (void)nmc_buf_append(b, s + run, i - run);
        char esc[8] = { '\\', 0 };
        size_t elen = 2;
        if (l == 0) {
            (void)nmc_buf_append(b, "\\ufffd", 6);
            i++;
            run = i;
            continue;
        }
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hexd[c >> 4];
            esc[5] = hexd[c & 15];
            elen = 6;
        }
        (void)nmc_buf_append(b, esc, elen);
        i++;
        run = i;
    }
    (void)nmc_buf_append(b, s + run, n - run);
    (void)nmc_buf_append(b, "\"", 1);
}

static int key_is_secret(const char *key)
{
    for (const char *p = key; *p; p++) {
        for (size_t i = 0; i < NMC_ARRAY_SIZE(secret_words); i++) {
            size_t wl = strlen(secret_words[i]);
            if (strncasecmp(p, secret_words[i], wl) != 0)
                continue;
            /* "prompt_tokens", "tokens_used": counts, not credentials */
            if (i == 0 && (p[wl] == 's' || p[wl] == 'S'))
                continue;
            return 1;
        }
    }
    return 0;
}

/* Writes ,"key": and returns 1, or writes "key":"[REDACTED]" and returns 0
 * when the key looks like a secret (the caller then writes no value).
 * Inside a dropped secret-keyed object it writes nothing and returns 0. */
static int field_key(struct nmc_log_rec *r, const char *key)
{
    struct nmc_buf *b = &r->fields;
    if (r->hidden)
        return 0;
    if (r->need_comma || r->depth == 0)
        (void)nmc_buf_append(b, ",", 1);
    r->need_comma = 1;
    json_str(b, key ? key : "", key ? strlen(key) : 0);
    (void)nmc_buf_append(b, ":", 1);
    if (key && key_is_secret(key)) {
        (void)nmc_buf_puts(b, "\"[REDACTED]\"");
        return 0;
    }
    return 1;
}

static void value_strn(struct nmc_log_rec *r, const char *value, size_t n)
{
    if (value == NULL) {
        (void)nmc_buf_puts(&r->fields, "null");
        return;
    }
    if (n > NMC_LOG_MAX_VALUE) {
        n = prefix_bytes(value, n, NMC_LOG_MAX_VALUE);
        r->truncated = 1;
    }
    json_str(&r->fields, value, n);
}

static void copy_id(char *dst, int *has, const char *src)
{
    *has = src != NULL && src[0] != '\0';
    nmc_strlcpy(dst, *has ? src : "", ID_MAX);
}

struct nmc_log_rec *nmc_log_begin(enum nmc_log_level level, const char *module, const char *event)
{
    if (!nmc_log_enabled(level))
        return NULL;
    struct nmc_log_rec *r = nmc_xcalloc(1, sizeof(*r));
    r->level = level;
    char ts[32];
    nmc_clock_format_rfc3339(nmc_clock_now_ms(), ts);
    (void)nmc_buf_printf(&r->head, "{\"timestamp\":\"%s\",\"level\":\"%s\",\"module\":", ts,
                         level_names[level]);
    json_str(&r->head, module ? module : "", module ? strlen(module) : 0);
    (void)nmc_buf_puts(&r->head, ",\"event\":");
    json_str(&r->head, event ? event : "", event ? strlen(event) : 0);
    if (cfg.env[0]) {
        (void)nmc_buf_puts(&r->head, ",\"env\":");
        json_str(&r->head, cfg.env, strlen(cfg.env));
    }
    return r;
}

void nmc_log_ctx(struct nmc_log_rec *r, const struct nmc_msg *m)
{
    if (r == NULL || m == NULL)
        return;
    copy_id(r->tenant_id, &r->has_tenant, m->tenant_id);
    copy_id(r->correlation_id, &r->has_correlation, m->correlation_id);
    copy_id(r->causation_id, &r->has_causation, m->causation_id);
}

void nmc_log_ids(struct nmc_log_rec *r, const char *tenant_id, const char *correlation_id,
                 const char *causation_id)
{
    if (r == NULL)
        return;
    copy_id(r->tenant_id, &r->has_tenant, tenant_id);
    copy_id(r->correlation_id, &r->has_correlation, correlation_id);
    copy_id(r->causation_id, &r->has_causation, causation_id);
}

void nmc_log_str(struct nmc_log_rec *r, const char *key, const char *value)
{
    if (r == NULL || !field_key(r, key))
        return;
    value_strn(r, value, value ? strlen(value) : 0);
}

void nmc_log_strn(struct nmc_log_rec *r, const char *key, const char *value, size_t n)
{
    if (r == NULL || !field_key(r, key))
        return;
    value_strn(r, value, n);
}

void nmc_log_int(struct nmc_log_rec *r, const char *key, int64_t value)
{
    if (r == NULL || !field_key(r, key))
        return;
    (void)nmc_buf_printf(&r->fields, "%lld", (long long)value);
}

/* JSON has no NaN or Infinity: they are written as null. %.15g keeps
 * decimal-looking values short (0.1, not 0.10000000000000001). */
void nmc_log_double(struct nmc_log_rec *r, const char *key, double value)
{
    if (r == NULL || !field_key(r, key))
        return;
    if (!isfinite(value))
        (void)nmc_buf_puts(&r->fields, "null");
    else
        (void)nmc_buf_printf(&r->fields, "%.15g", value);
}

void nmc_log_bool(struct nmc_log_rec *r, const char *key, int value)
{
    if (r == NULL || !field_key(r, key))
        return;
    (void)nmc_buf_puts(&r->fields, value ? "true" : "false");
}

/* Characters are counted as UTF-8 lead bytes, so the tail never starts
 * inside a multibyte sequence. */
void nmc_log_mask_last4(const char *in, char *out, size_t out_size)
{
    if (out_size == 0)
        return;
    const unsigned char *u = (const unsigned char *)(in ? in : "");
    size_t n = strlen((const char *)u), tail = n, chars = 0, total = 0;
    for (size_t i = 0; i < n; i++)
        total += (u[i] & 0xC0) != 0x80;
    if (total <= 4) { /* four characters or fewer: nothing may show */
        nmc_strlcpy(out, "***", out_size);
        return;
    }
    while (tail > 0 && chars < 4)
        chars += (u[--tail] & 0xC0) != 0x80;
    (void)snprintf(out, out_size, "***%s", (const char *)u + tail);
}

/* Phones and emails: masked on INFO+ records, full on DEBUG/TRACE records
 * (spec 000 3.2: full values only in DEBUG with ephemeral retention). */
static void add_pii(struct nmc_log_rec *r, const char *key, const char *value)
{
    if (r == NULL || !field_key(r, key))
        return;
    if (value == NULL || r->level <= NMC_LOG_DEBUG) {
        value_strn(r, value, value ? strlen(value) : 0);
        return;
    }
    char out[3 + 4 * 4 + 1]; /* "***" and at most four 4-byte characters */
    nmc_log_mask_last4(value, out, sizeof(out));
    value_strn(r, out, strlen(out));
}

void nmc_log_phone(struct nmc_log_rec *r, const char *key, const char *phone)
{
    add_pii(r, key, phone);
}

void nmc_log_email(struct nmc_log_rec *r, const char *key, const char *email)
{
    add_pii(r, key, email);
}

void nmc_log_body(struct nmc_log_rec *r, const char *key, const char *body)
{
    if (r == NULL || !cfg.body_prefix || !field_key(r, key))
        return;
    if (body == NULL) {
        (void)nmc_buf_puts(&r->fields, "null");
        return;
    }
    int cut;
    size_t n = prefix_chars(body, strlen(body), BODY_PREFIX_CHARS, &cut);
    json_str(&r->fields, body, n);
    if (cut)
        nmc_log_bool(r, "body_truncated", 1);
}

void nmc_log_error(struct nmc_log_rec *r, int err, const char *message)
{
    if (r == NULL)
        return;
    nmc_log_str(r, "error_code", nmc_errcode(err));
    nmc_log_str(r, "error_message", message ? message : nmc_strerror(err));
}

void nmc_log_detail(struct nmc_log_rec *r, const char *detail)
{
    if (r == NULL || cfg.level > NMC_LOG_DEBUG)
        return;
    nmc_log_str(r, "stack", detail);
}

void nmc_log_msgf(struct nmc_log_rec *r, const char *fmt, ...)
{
    if (r == NULL)
        return;
    struct nmc_buf m = { 0 };
    va_list ap;
    va_start(ap, fmt);
    (void)nmc_buf_vprintf(&m, fmt, ap);
    va_end(ap);
    nmc_log_strn(r, "message", m.data ? m.data : "", m.len);
    nmc_buf_free(&m);
}

/* A secret-looking object key is written as "[REDACTED]" and its members
 * are dropped until the matching end. */
void nmc_log_obj_begin(struct nmc_log_rec *r, const char *key)
{
    if (r == NULL)
        return;
    int open = field_key(r, key);
    r->depth++;
    if (!open) {
        if (!r->hidden)
            r->hidden = r->depth;
        return;
    }
    (void)nmc_buf_append(&r->fields, "{", 1);
    r->need_comma = 0;
}

void nmc_log_obj_end(struct nmc_log_rec *r)
{
    if (r == NULL || r->depth == 0)
        return;
    if (!r->hidden)
        (void)nmc_buf_append(&r->fields, "}", 1);
    if (r->hidden == r->depth)
        r->hidden = 0;
    r->depth--;
    r->need_comma = 1;
}

static void add_id(struct nmc_buf *b, const char *key, int has, const char *id, int always)
{
    if (!has && !always)
        return;
    (void)nmc_buf_printf(b, ",\"%s\":", key);
    if (has)
        json_str(b, id, strlen(id));
    else
        (void)nmc_buf_puts(b, "null");
}

/* Writes all of p, retrying short writes and EINTR; logging never fails
 * its caller, so errors are dropped. */
static void write_line(const char *p, size_t n)
{
    if (cfg.out != NULL) {
        (void)fwrite(p, 1, n, cfg.out);
        (void)fflush(cfg.out);
        return;
    }
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void nmc_log_end(struct nmc_log_rec *r)
{
    if (r == NULL)
        return;
    while (r->depth > 0)
        nmc_log_obj_end(r);
    if (r->truncated)
        nmc_log_bool(r, "truncated", 1);
    struct nmc_buf *b = &r->head;
    add_id(b, "tenant_id", r->has_tenant, r->tenant_id, 1);
    add_id(b, "correlation_id", r->has_correlation, r->correlation_id, 1);
    add_id(b, "causation_id", r->has_causation, r->causation_id, 0);
    if (r->fields.len)
        (void)nmc_buf_append(b, r->fields.data, r->fields.len);
    (void)nmc_buf_append(b, "}\n", 2);
    write_line(b->data, b->len);
    nmc_buf_free(&r->head);
    nmc_buf_free(&r->fields);
    free(r);
}

void nmc_log_flush(void)
{
    (void)fflush(cfg.out ? cfg.out : stdout);
}
