/* Metrics registry rendered in the Prometheus text exposition format.
 *
 * Metrics are process-wide and registered once (idempotent by name: the
 * same name and type returns the same metric). Label values are passed in
 * the order of the label names given at registration; series are created
 * on first use. Histogram buckets are in the metric's own unit; the default
 * set spans 0.1 ms .. 10 s for *_ms metrics. */
#ifndef NMC_RUNTIME_METRICS_H
#define NMC_RUNTIME_METRICS_H

#include <stddef.h>
#include "runtime/common.h"
#include "runtime/buf.h"

struct nmc_metric;

enum nmc_metric_type { NMC_METRIC_COUNTER, NMC_METRIC_GAUGE, NMC_METRIC_HISTOGRAM };

/* labels: comma-separated label names ("provider,endpoint,status") or NULL. */
struct nmc_metric *nmc_metrics_counter(const char *name, const char *help, const char *labels);
struct nmc_metric *nmc_metrics_gauge(const char *name, const char *help, const char *labels);
/* buckets: ascending upper bounds (NULL: defaults for milliseconds). */
struct nmc_metric *nmc_metrics_histogram(const char *name, const char *help, const char *labels,
                                         const double *buckets, size_t nbuckets);

/* values: one per label name, NULL when the metric has no labels. */
void nmc_metrics_add(struct nmc_metric *m, const char *const *values, double v);   /* counter or gauge */
void nmc_metrics_set(struct nmc_metric *m, const char *const *values, double v);   /* gauge */
void nmc_metrics_observe(struct nmc_metric *m, const char *const *values, double v); /* histogram */
/* Convenience for label-less metrics. */
#define nmc_metrics_inc(m) nmc_metrics_add((m), NULL, 1)

/* Reads a series back (tests): counter/gauge value, histogram count; 0 if absent. */
double nmc_metrics_value(struct nmc_metric *m, const char *const *values);
/* Estimates a quantile (0..1) of a histogram series from its buckets, over
 * all observations; NAN when empty. */
double nmc_metrics_quantile(struct nmc_metric *m, const char *const *values, double q);

/* Collectors run before each render to refresh gauges (RSS, mailbox depth). */
typedef void (*nmc_metrics_collect_cb)(void *ud);
void nmc_metrics_on_collect(nmc_metrics_collect_cb cb, void *ud);

/* Appends the whole registry in Prometheus text format 0.0.4. */
int nmc_metrics_render(struct nmc_buf *out);
/* Drops every metric and collector (tests, shutdown). */
void nmc_metrics_reset(void);

/* Registers the process collectors: process_cpu_seconds_total,
 * process_resident_memory_bytes, cpu_utilization_percent,
 * memory_utilization_percent (RSS over MemTotal). */
void nmc_metrics_register_process(void);

#endif
