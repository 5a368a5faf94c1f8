/* Circuit breaker: bucketed sliding windows of outcomes and latencies. */
#include "providers/breaker.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/clock.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#define BUCKET_MS 5000
#define MAX_WINDOW_MS (3600 * 1000)
#define NLAT 64 /* latency histogram: bucket i holds (bound(i-1), bound(i)] */

struct bucket {
    int64_t epoch; /* now / BUCKET_MS of the samples it holds; -1: empty */
    uint32_t total, failed, nlat;
    double lat_sum;
    uint32_t lat[NLAT];
};

struct nmc_prov_breaker {
    struct nmc_prov_breaker_opts o;
    char *provider;
    enum nmc_prov_breaker_state state;
    int64_t since_ms;       /* when the current state was entered */
    double credits;         /* half-open admission credit */
    uint32_t probes, probe_failures;
    struct bucket *ring;
    size_t nring;
    int64_t latency_checked_epoch; /* the latency rule runs once per bucket */
    struct nmc_metric *gauge, *transitions;
};

struct window {
    uint32_t total, failed, nlat;
    double lat_sum;
    uint32_t lat[NLAT];
};

/* Upper bound of latency bucket i: 1 ms growing by 1.25x (~ 1.6 h at 63). */
static double lat_bound(int i)
{
    return pow(1.25, i);
}

static int lat_index(double ms)
{
    if (ms <= 1.0)
        return 0;
    int i = (int)ceil(log(ms) / log(1.25));
    return i >= NLAT ? NLAT - 1 : i;
}

static void base_recovery(struct nmc_prov_breaker_opts *o)
{
    o->open_ms = 2 * 60 * 1000;
    o->half_open_ratio = 0.10;
    o->close_after_ms = 5 * 60 * 1000;
    o->close_error_rate = 0.01;
    o->close_min_requests = 5;
    o->min_requests = 20;
}

void nmc_prov_breaker_opts_twilio(struct nmc_prov_breaker_opts *o, double baseline_p95_ms)
{
    memset(o, 0, sizeof(*o));
    base_recovery(o);
    o->provider = "twilio";
    o->error_window_ms = 3 * 60 * 1000;
    o->open_error_rate = 0.02;
    o->baseline_latency_ms = baseline_p95_ms;
    o->latency_factor = 3.0;
    o->latency_stat = NMC_PROV_BREAKER_P95;
    o->latency_window_ms = 5 * 60 * 1000;
}

void nmc_prov_breaker_opts_calendar(struct nmc_prov_breaker_opts *o, const char *provider, double baseline_mean_ms)
{
    memset(o, 0, sizeof(*o));
    base_recovery(o);
    o->provider = provider;
    o->error_window_ms = 5 * 60 * 1000;
    o->open_error_rate = 0.01;
    o->count_429 = 1;
    o->baseline_latency_ms = baseline_mean_ms;
    o->latency_factor = 2.0;
    o->latency_stat = NMC_PROV_BREAKER_MEAN;
    o->latency_window_ms = 10 * 60 * 1000;
}

void nmc_prov_breaker_opts_stripe(struct nmc_prov_breaker_opts *o)
{
    memset(o, 0, sizeof(*o));
    base_recovery(o);
    o->provider = "stripe";
    o->error_window_ms = 3 * 60 * 1000;
    o->open_error_rate = 0.01;
    o->latency_window_ms = 3 * 60 * 1000;
}

static int window_ok(int64_t ms)
{
    return ms >= 1000 && ms <= MAX_WINDOW_MS;
}

static int rate_ok(double r)
{
    return r >= 0.0 && r <= 1.0;
}

static int opts_valid(const struct nmc_prov_breaker_opts *o)
{
    if (o == NULL || o->provider == NULL || *o->provider == '\0')
        return 0;
    if (!window_ok(o->error_window_ms) || !window_ok(o->open_ms) || !window_ok(o->close_after_ms))
        return 0;
    if (o->baseline_latency_ms < 0 || (o->baseline_latency_ms > 0 && !window_ok(o->latency_window_ms)))
        return 0;
    if (o->baseline_latency_ms > 0 && !(o->latency_factor > 0))
        return 0;
    if (!rate_ok(o->open_error_rate) || !rate_ok(o->close_error_rate))
        return 0;
    return o->half_open_ratio > 0.0 && o->half_open_ratio <= 1.0;
}

static void clear_windows(struct nmc_prov_breaker *b)
{
    memset(b->ring, 0, b->nring * sizeof(*b->ring));
    for (size_t i = 0; i < b->nring; i++)
        b->ring[i].epoch = -1;
}

int nmc_prov_breaker_create(const struct nmc_prov_breaker_opts *o, struct nmc_prov_breaker **out)
{
    struct nmc_prov_breaker *b;
    int64_t widest;
    const char *labels[1];

    if (out == NULL || !opts_valid(o))
        return NMC_EINVAL;
    b = nmc_xcalloc(1, sizeof(*b));
    b->o = *o;
    b->provider = nmc_xstrdup(o->provider);
    b->o.provider = b->provider;
    widest = o->error_window_ms > o->latency_window_ms ? o->error_window_ms : o->latency_window_ms;
    b->nring = (size_t)(widest / BUCKET_MS) + 2;
    b->ring = nmc_xcalloc(b->nring, sizeof(*b->ring));
    clear_windows(b);
    b->latency_checked_epoch = -1;
    b->state = NMC_PROV_BREAKER_CLOSED;
    b->since_ms = nmc_clock_now_ms();
    b->gauge = nmc_metrics_gauge("provider_circuit_state",
                                 "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open", "provider");
    b->transitions = nmc_metrics_counter("provider_circuit_transitions_total",
                                         "Circuit breaker state changes per provider and new state", "provider,state");
    labels[0] = b->provider;
    nmc_metrics_set(b->gauge, labels, NMC_PROV_BREAKER_CLOSED);
    *out = b;
    return 0;
}

void nmc_prov_breaker_destroy(struct nmc_prov_breaker *b)
{
    if (b == NULL)
        return;
    free(b->ring);
    free(b->provider);
    free(b);
}

const char *nmc_prov_breaker_state_name(enum nmc_prov_breaker_state s)
{
    switch (s) {
    case NMC_PROV_BREAKER_CLOSED:
        return "closed";
    case NMC_PROV_BREAKER_HALF_OPEN:
        return "half_open";
    case NMC_PROV_BREAKER_OPEN:
        return "open";
    }
    return "unknown";
}

const char *nmc_prov_breaker_provider(const struct nmc_prov_breaker *b)
{
    return b->provider;
}

/* The one setter of the state: logs, exports, resets what the new state
 * starts from. why: a short reason for the log line. */
static void set_state(struct nmc_prov_breaker *b, enum nmc_prov_breaker_state to, int64_t now, const char *why)
{
    const char *gl[1] = {b->provider};
    const char *tl[2] = {b->provider, nmc_prov_breaker_state_name(to)};
    struct nmc_log_rec *r;

    r = nmc_log_begin(to == NMC_PROV_BREAKER_OPEN ? NMC_LOG_WARN : NMC_LOG_INFO, "providers", "circuit.transition");
    nmc_log_str(r, "provider", b->provider);
    nmc_log_str(r, "from", nmc_prov_breaker_state_name(b->state));
    nmc_log_str(r, "to", nmc_prov_breaker_state_name(to));
    nmc_log_str(r, "reason", why);
    nmc_log_end(r);
    b->state = to;
    b->since_ms = now;
    b->credits = 1.0;
    b->probes = 0;
    b->probe_failures = 0;
    if (to == NMC_PROV_BREAKER_CLOSED)
        clear_windows(b);
    b->latency_checked_epoch = -1;
    nmc_metrics_set(b->gauge, gl, (double)to);
    nmc_metrics_add(b->transitions, tl, 1);
}

/* Applies the transitions that only need time to pass. */
static void tick(struct nmc_prov_breaker *b, int64_t now)
{
    if (b->state == NMC_PROV_BREAKER_OPEN && now - b->since_ms >= b->o.open_ms)
        set_state(b, NMC_PROV_BREAKER_HALF_OPEN, now, "open_timeout");
    if (b->state == NMC_PROV_BREAKER_HALF_OPEN && now - b->since_ms >= b->o.close_after_ms &&
        b->probes >= b->o.close_min_requests &&
        (double)b->probe_failures < b->o.close_error_rate * (double)b->probes)
        set_state(b, NMC_PROV_BREAKER_CLOSED, now, "recovered");
}

enum nmc_prov_breaker_state nmc_prov_breaker_state(struct nmc_prov_breaker *b)
{
    tick(b, nmc_clock_now_ms());
    return b->state;
}

int nmc_prov_breaker_allow(struct nmc_prov_breaker *b)
{
    tick(b, nmc_clock_now_ms());
    switch (b->state) {
    case NMC_PROV_BREAKER_CLOSED:
        return 1;
    case NMC_PROV_BREAKER_OPEN:
        return 0;
    case NMC_PROV_BREAKER_HALF_OPEN:
        break;
    }
    if (b->credits < 1.0) {
        b->credits += b->o.half_open_ratio;
        /* Snap tiny float residue so 10 x 0.1 admits exactly one call in ten. */
        if (b->credits > 1.0 - 1e-9)
            b->credits = 1.0;
        return 0;
    }
    b->credits -= 1.0;
    b->credits += b->o.half_open_ratio;
    return 1;
}

int nmc_prov_breaker_is_failure(const struct nmc_prov_breaker *b, long http_status, int err)
{
    if (http_status >= 500)
        return 1;
    if (http_status == 429)
        return b->o.count_429;
    if (http_status > 0)
        return 0;
    return err != 0;
}

static struct bucket *current_bucket(struct nmc_prov_breaker *b, int64_t now)
{
    int64_t epoch = now / BUCKET_MS;
    struct bucket *k = &b->ring[(size_t)(epoch % (int64_t)b->nring)];

    if (k->epoch != epoch) {
        memset(k, 0, sizeof(*k));
        k->epoch = epoch;
    }
    return k;
}

/* Sums the buckets of the last window_ms (the current one included);
 * the latency histograms only when with_lat. */
static void window_sum(const struct nmc_prov_breaker *b, int64_t now, int64_t window_ms, int with_lat,
                       struct window *w)
{
    int64_t cur = now / BUCKET_MS, first = cur - window_ms / BUCKET_MS + 1;

    memset(w, 0, sizeof(*w));
    for (size_t i = 0; i < b->nring; i++) {
        const struct bucket *k = &b->ring[i];
        if (k->epoch < first || k->epoch > cur)
            continue;
        w->total += k->total;
        w->failed += k->failed;
        w->nlat += k->nlat;
        w->lat_sum += k->lat_sum;
        for (int j = 0; with_lat && j < NLAT; j++)
            w->lat[j] += k->lat[j];
    }
}

/* P95 from the histogram, interpolated linearly inside its bucket. */
static double window_p95(const struct window *w)
{
    double rank = 0.95 * w->nlat, seen = 0;

    for (int i = 0; i < NLAT; i++) {
        if (w->lat[i] == 0 || seen + w->lat[i] < rank) {
            seen += w->lat[i];
            continue;
        }
        double lo = i == 0 ? 0.0 : lat_bound(i - 1), hi = lat_bound(i);
        return lo + (hi - lo) * ((rank - seen) / w->lat[i]);
    }
    return lat_bound(NLAT - 1);
}

static int error_rule(const struct nmc_prov_breaker *b, int64_t now)
{
    struct window w;

    window_sum(b, now, b->o.error_window_ms, 0, &w);
    return w.total >= b->o.min_requests && w.total > 0 &&
           (double)w.failed > b->o.open_error_rate * (double)w.total;
}

/* Summing the histograms costs a few thousand adds, so the rule runs once
 * per bucket (5 s), which is far finer than its minutes-long window. */
static int latency_rule(struct nmc_prov_breaker *b, int64_t now)
{
    struct window w;
    double stat;

    if (b->o.baseline_latency_ms <= 0 || now - b->since_ms < b->o.latency_window_ms)
        return 0;
    if (b->latency_checked_epoch == now / BUCKET_MS)
        return 0;
    b->latency_checked_epoch = now / BUCKET_MS;
    window_sum(b, now, b->o.latency_window_ms, 1, &w);
    if (w.nlat < b->o.min_requests || w.nlat == 0)
        return 0;
    stat = b->o.latency_stat == NMC_PROV_BREAKER_MEAN ? w.lat_sum / w.nlat : window_p95(&w);
    return stat > b->o.latency_factor * b->o.baseline_latency_ms;
}

static void record_closed(struct nmc_prov_breaker *b, int failed, double latency_ms, int64_t now)
{
    struct bucket *k = current_bucket(b, now);

    k->total++;
    k->failed += failed ? 1 : 0;
    if (latency_ms >= 0) {
        k->nlat++;
        k->lat_sum += latency_ms;
        k->lat[lat_index(latency_ms)]++;
    }
    if (failed && error_rule(b, now))
        set_state(b, NMC_PROV_BREAKER_OPEN, now, "error_rate");
    else if (latency_rule(b, now))
        set_state(b, NMC_PROV_BREAKER_OPEN, now, "latency");
}

void nmc_prov_breaker_record(struct nmc_prov_breaker *b, int failed, double latency_ms)
{
    int64_t now = nmc_clock_now_ms();

    tick(b, now);
    switch (b->state) {
    case NMC_PROV_BREAKER_CLOSED:
        record_closed(b, failed, latency_ms, now);
        break;
    case NMC_PROV_BREAKER_HALF_OPEN:
        b->probes++;
        b->probe_failures += failed ? 1 : 0;
        if (failed && (double)b->probe_failures >= b->o.close_error_rate * (double)b->probes)
            set_state(b, NMC_PROV_BREAKER_OPEN, now, "probe_failed");
        else
            tick(b, now);
        break;
    case NMC_PROV_BREAKER_OPEN:
        break; /* a call admitted before opening finished late: no news */
    }
}
