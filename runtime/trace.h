/* Tracing core: W3C trace context, spans, and one exporter interface.
 * Spans are recorded for HTTP requests and DB queries from the start; the
 * default exporter logs finished spans at DEBUG. The OTLP exporter and the
 * sampling rules plug in behind struct nmc_trace_exporter later. */
#ifndef NMC_RUNTIME_TRACE_H
#define NMC_RUNTIME_TRACE_H

#include <stdint.h>
#include <stddef.h>
#include "runtime/common.h"

struct nmc_trace_ctx {
    uint8_t trace_id[16]; /* all zero: no trace */
    uint8_t span_id[8];
    uint8_t flags;        /* bit 0: sampled */
};

/* Parses a W3C traceparent header ("00-<32hex>-<16hex>-<2hex>").
 * 0 or NMC_EPARSE (out untouched). All-zero ids are invalid. */
NMC_MUST_CHECK int nmc_trace_parse_traceparent(const char *s, size_t len, struct nmc_trace_ctx *out);
/* Writes "00-...-...-.." (55 chars + NUL). */
void nmc_trace_format_traceparent(const struct nmc_trace_ctx *ctx, char out[56]);
int nmc_trace_ctx_valid(const struct nmc_trace_ctx *ctx);

#define NMC_TRACE_MAX_ATTRS 12

struct nmc_span_attr {
    const char *key;  /* borrowed literal */
    char *value;      /* owned copy */
};

struct nmc_span {
    struct nmc_trace_ctx ctx;        /* this span's ids */
    uint8_t parent_span_id[8];       /* zero when root */
    const char *name;                /* borrowed literal, e.g. "webhook.twilio.voice_status" */
    int64_t start_ns, end_ns;        /* wall clock */
    int error;                       /* status: 0 ok, else error */
    char *status_message;            /* owned, may be NULL */
    struct nmc_span_attr attrs[NMC_TRACE_MAX_ATTRS];
    size_t nattrs;
};

/* Starts a span as a child of parent (a new trace when parent is NULL or
 * invalid). Never returns NULL. */
struct nmc_span *nmc_trace_span_start(const char *name, const struct nmc_trace_ctx *parent);
/* Copies value; attributes past NMC_TRACE_MAX_ATTRS are dropped. */
void nmc_trace_span_attr(struct nmc_span *s, const char *key, const char *value);
void nmc_trace_span_attr_int(struct nmc_span *s, const char *key, int64_t value);
/* Marks the span failed with a message (copied). */
void nmc_trace_span_error(struct nmc_span *s, const char *message);
/* Ends the span, hands it to the exporter and frees it. Accepts NULL. */
void nmc_trace_span_end(struct nmc_span *s);

struct nmc_trace_exporter {
    /* Called once per ended span; the span is borrowed for the call. */
    void (*export_span)(const struct nmc_span *s, void *ud);
    void *ud;
};
/* Replaces the exporter (NULL: back to the default DEBUG-log exporter). */
void nmc_trace_set_exporter(const struct nmc_trace_exporter *e);

#endif
