/* Tracing core: W3C trace context (traceparent, version 00), spans and the
 * exporter hook. The default exporter writes each ended span as a DEBUG log
 * record (event "span"), so traces are visible before the OTLP exporter is
 * plugged in; at INFO it costs one branch per span. */
#include "runtime/trace.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/clock.h"
#include "runtime/log.h"

#define TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */

static void export_to_log(const struct nmc_span *s, void *ud);

static struct nmc_trace_exporter exporter = { export_to_log, NULL };

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase is invalid in traceparent */
}

/* Decodes 2n lowercase hex characters into n bytes; 0 or -1. */
static int unhex(uint8_t *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Strict: version 00 only, exact length, lowercase hex, '-' separators,
 * nonzero ids. A header we cannot trust starts a new trace instead. */
int nmc_trace_parse_traceparent(const char *s, size_t len, struct nmc_trace_ctx *out)
{
    struct nmc_trace_ctx c;
    uint8_t version;
    if (s == NULL || len != TRACEPARENT_LEN || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return NMC_EPARSE;
    if (unhex(&version, s, 1) || version != 0)
        return NMC_EPARSE;
    if (unhex(c.trace_id, s + 3, 16) || unhex(c.span_id, s + 36, 8) || unhex(&c.flags, s + 53, 1))
        return NMC_EPARSE;
    if (all_zero(c.trace_id, 16) || all_zero(c.span_id, 8))
        return NMC_EPARSE;
    *out = c;
    return 0;
}

void nmc_trace_format_traceparent(const struct nmc_trace_ctx *ctx, char out[56])
{
    char tid[33], sid[17];
    nmc_hex(tid, ctx->trace_id, 16);
    nmc_hex(sid, ctx->span_id, 8);
    (void)snprintf(out, 56, "00-%s-%s-%02x", tid, sid, (unsigned)ctx->flags);
}

int nmc_trace_ctx_valid(const struct nmc_trace_ctx *ctx)
{
    return ctx != NULL && !all_zero(ctx->trace_id, 16) && !all_zero(ctx->span_id, 8);
}

/* Random, never all zero (an all-zero id means "absent" on the wire). */
static void random_id(uint8_t *id, size_t n)
{
    do
        nmc_random_bytes(id, n);
    while (all_zero(id, n));
}

/* Roots are marked sampled for now: head sampling (TRACE_SAMPLE_RATIO)
 * belongs to the exporter that ships spans off the box. */
struct nmc_span *nmc_trace_span_start(const char *name, const struct nmc_trace_ctx *parent)
{
    struct nmc_span *s = nmc_xcalloc(1, sizeof(*s));
    s->name = name ? name : "unnamed";
    if (nmc_trace_ctx_valid(parent)) {
        memcpy(s->ctx.trace_id, parent->trace_id, sizeof(s->ctx.trace_id));
        memcpy(s->parent_span_id, parent->span_id, sizeof(s->parent_span_id));
        s->ctx.flags = parent->flags;
    } else {
        random_id(s->ctx.trace_id, sizeof(s->ctx.trace_id));
        s->ctx.flags = 0x01;
    }
    random_id(s->ctx.span_id, sizeof(s->ctx.span_id));
    s->start_ns = nmc_clock_now_ns();
    return s;
}

void nmc_trace_span_attr(struct nmc_span *s, const char *key, const char *value)
{
    if (s == NULL || key == NULL || s->nattrs >= NMC_TRACE_MAX_ATTRS)
        return;
    s->attrs[s->nattrs].key = key;
    s->attrs[s->nattrs].value = nmc_xstrdup(value ? value : "");
    s->nattrs++;
}

void nmc_trace_span_attr_int(struct nmc_span *s, const char *key, int64_t value)
{
    char num[24];
    (void)snprintf(num, sizeof(num), "%" PRId64, value);
    nmc_trace_span_attr(s, key, num);
}

void nmc_trace_span_error(struct nmc_span *s, const char *message)
{
    if (s == NULL)
        return;
    s->error = 1;
    free(s->status_message);
    s->status_message = message ? nmc_xstrdup(message) : NULL;
}

void nmc_trace_span_end(struct nmc_span *s)
{
    if (s == NULL)
        return;
    s->end_ns = nmc_clock_now_ns();
    exporter.export_span(s, exporter.ud);
    for (size_t i = 0; i < s->nattrs; i++)
        free(s->attrs[i].value);
    free(s->status_message);
    free(s);
}

void nmc_trace_set_exporter(const struct nmc_trace_exporter *e)
{
    if (e == NULL || e->export_span == NULL) {
        exporter.export_span = export_to_log;
        exporter.ud = NULL;
        return;
    }
    exporter = *e;
}

/* correlation_id and tenant_id attributes also fill the record's own id
 * fields, so a span line joins the request's other lines in a log search. */
static void log_ids_from_attrs(struct nmc_log_rec *r, const struct nmc_span *s)
{
    const char *tenant = NULL, *corr = NULL;
    for (size_t i = 0; i < s->nattrs; i++) {
        if (strcmp(s->attrs[i].key, "tenant_id") == 0)
            tenant = s->attrs[i].value;
        else if (strcmp(s->attrs[i].key, "correlation_id") == 0)
            corr = s->attrs[i].value;
    }
    nmc_log_ids(r, tenant, corr, NULL);
}

static void export_to_log(const struct nmc_span *s, void *ud)
{
    (void)ud;
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_DEBUG, "infra", "span");
    if (r == NULL)
        return;
    char tid[33], sid[17], pid[17];
    nmc_hex(tid, s->ctx.trace_id, 16);
    nmc_hex(sid, s->ctx.span_id, 8);
    nmc_hex(pid, s->parent_span_id, 8);
    log_ids_from_attrs(r, s);
    nmc_log_str(r, "trace_id", tid);
    nmc_log_str(r, "span_id", sid);
    nmc_log_str(r, "parent_span_id", all_zero(s->parent_span_id, 8) ? NULL : pid);
    nmc_log_str(r, "name", s->name);
    nmc_log_double(r, "duration_ms", (double)(s->end_ns - s->start_ns) / 1e6);
    nmc_log_str(r, "status", s->error ? "error" : "ok");
    if (s->status_message)
        nmc_log_str(r, "status_message", s->status_message);
    nmc_log_obj_begin(r, "attributes");
    for (size_t i = 0; i < s->nattrs; i++)
        nmc_log_str(r, s->attrs[i].key, s->attrs[i].value);
    nmc_log_obj_end(r);
    nmc_log_end(r);
}
