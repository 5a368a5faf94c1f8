/* Metrics registry and its Prometheus text rendering (format 0.0.4).
 *
 * Metrics live in one process-wide list in registration order, so /metrics
 * is stable from scrape to scrape. Each metric keeps its series in a small
 * chained hash keyed by the label values, plus an insertion-ordered list for
 * rendering. Every series caches its rendered, escaped label set, so a
 * scrape is a walk and a few appends.
 *
 * Registration mistakes (bad names, a name reused with another type or
 * other labels) are programmer errors: they abort at start-up with a
 * message, so they never reach production as a broken /metrics page.
 *
 * The registry is used from the loop thread only (design: one loop). */
#include "runtime/metrics.h"

#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "runtime/clock.h"
#include "runtime/log.h"
#include "runtime/utf8.h"

/* Past this many series a metric drops new label sets (a label fed by
 * outside input must not grow memory without bound) and counts the drop
 * in nmc_metrics_series_dropped_total{metric}. */
#define MAX_SERIES 10000

struct series {
    struct series *hnext;  /* hash chain */
    struct series *next;   /* insertion order */
    uint64_t hash;
    char **values;         /* one owned copy per label name */
    char *labels;          /* rendered `a="x",b="y"`, "" without labels */
    double value;          /* counter or gauge value; histogram sum */
    uint64_t count;        /* histogram observations */
    uint64_t *buckets;     /* histogram: per-bound counts, not cumulative; [nbounds] is +Inf */
};

struct nmc_metric {
    struct nmc_metric *next;
    char *name;
    char *help;
    enum nmc_metric_type type;
    char **labels;
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    struct series **table;
    size_t tsize;
    size_t nseries;
    struct series *first;
    struct series **tailp;
};

struct collector {
    struct collector *next;
    nmc_metrics_collect_cb cb;
    void *ud;
};

static const double default_ms_bounds[] = {
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
};

static struct {
    struct nmc_metric *first;
    struct nmc_metric **tailp;
    struct collector *collectors;
    struct collector **ctailp;
    struct nmc_metric *dropped;  /* nmc_metrics_series_dropped_total, lazily */
} reg = { NULL, &reg.first, NULL, &reg.collectors, NULL };

static void die(const char *name, const char *why) __attribute__((noreturn));
static void die(const char *name, const char *why)
{
    fprintf(stderr, "metrics: %s: %s\n", name ? name : "(null)", why);
    abort();
}

/* ---- names and labels ---------------------------------------------------- */

static int valid_name(const char *s, int colon_ok)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (const char *p = s; *p; p++) {
        int alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_';
        int digit = *p >= '0' && *p <= '9';
        if (!alpha && !(colon_ok && *p == ':') && !(digit && p != s))
            return 0;
    }
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Splits "a,b,c" into validated, owned label names. */
static char **parse_labels(const char *name, const char *labels, enum nmc_metric_type type, size_t *n)
{
    *n = 0;
    if (labels == NULL || *labels == '\0')
        return NULL;
    char **out = NULL;
    for (const char *p = labels;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *l = nmc_xstrndup(p, len);
        if (!valid_name(l, 0) || strncmp(l, "__", 2) == 0)
            die(name, "invalid label name");
        if (type == NMC_METRIC_HISTOGRAM && strcmp(l, "le") == 0)
            die(name, "label \"le\" is reserved for histogram buckets");
        for (size_t i = 0; i < *n; i++)
            if (strcmp(out[i], l) == 0)
                die(name, "duplicate label name");
        out = nmc_xrealloc(out, (*n + 1) * sizeof(*out));
        out[(*n)++] = l;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return out;
}

static int same_labels(const struct nmc_metric *m, char **labels, size_t n)
{
    if (m->nlabels != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(m->labels[i], labels[i]) != 0)
            return 0;
    return 1;
}

static void free_labels(char **labels, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(labels[i]);
    free(labels);
}

/* A histogram "h" exposes h_bucket, h_sum and h_count: no other metric may
 * take those names, or a scrape would carry two families with one name. */
static int shadows(const char *hist, const char *other)
{
    size_t n = strlen(hist);
    if (strncmp(hist, other, n) != 0)
        return 0;
    return strcmp(other + n, "_bucket") == 0 || strcmp(other + n, "_sum") == 0 ||
           strcmp(other + n, "_count") == 0;
}

static void check_name(const char *name, enum nmc_metric_type type)
{
    if (!valid_name(name, 1))
        die(name, "invalid metric name (want [a-zA-Z_:][a-zA-Z0-9_:]*)");
    if (type == NMC_METRIC_COUNTER && !ends_with(name, "_total"))
        die(name, "counter names end in _total");
    if (type != NMC_METRIC_COUNTER && ends_with(name, "_total"))
        die(name, "only counters end in _total");
    for (struct nmc_metric *m = reg.first; m; m = m->next) {
        if ((m->type == NMC_METRIC_HISTOGRAM && shadows(m->name, name)) ||
            (type == NMC_METRIC_HISTOGRAM && shadows(name, m->name)))
            die(name, "collides with a histogram's _bucket/_sum/_count series");
    }
}

static struct nmc_metric *find(const char *name)
{
    for (struct nmc_metric *m = reg.first; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

/* ---- registration -------------------------------------------------------- */

static struct series *get_series(struct nmc_metric *m, const char *const *values);

static void set_bounds(struct nmc_metric *m, const double *b, size_t n)
{
    if (b == NULL) {
        b = default_ms_bounds;
        n = NMC_ARRAY_SIZE(default_ms_bounds);
    }
    if (n > 0 && isinf(b[n - 1]) && b[n - 1] > 0)
        n--; /* +Inf is always implied */
    if (n == 0)
        die(m->name, "histogram needs at least one finite bucket");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(b[i]) || (i > 0 && b[i] <= b[i - 1]))
            die(m->name, "histogram buckets must be finite and strictly ascending");
    m->bounds = nmc_xmalloc(n * sizeof(*m->bounds));
    memcpy(m->bounds, b, n * sizeof(*m->bounds));
    m->nbounds = n;
}

static struct nmc_metric *do_register(const char *name, const char *help, const char *labels,
                                      enum nmc_metric_type type, const double *b, size_t nb)
{
    size_t nlabels;
    char **names = parse_labels(name, labels, type, &nlabels);
    struct nmc_metric *m = valid_name(name, 1) ? find(name) : NULL;
    if (m != NULL) {
        if (m->type != type || !same_labels(m, names, nlabels))
            die(name, "registered twice with a different type or labels");
        free_labels(names, nlabels);
        return m;
    }
    check_name(name, type);
    m = nmc_xcalloc(1, sizeof(*m));
    m->name = nmc_xstrdup(name);
    m->help = nmc_xstrdup(help && *help ? help : name);
    m->type = type;
    m->labels = names;
    m->nlabels = nlabels;
    m->tailp = &m->first;
    if (type == NMC_METRIC_HISTOGRAM)
        set_bounds(m, b, nb);
    *reg.tailp = m;
    reg.tailp = &m->next;
    if (nlabels == 0)
        (void)get_series(m, NULL); /* a label-less metric shows 0 from the start */
    return m;
}

struct nmc_metric *nmc_metrics_counter(const char *name, const char *help, const char *labels)
{
    return do_register(name, help, labels, NMC_METRIC_COUNTER, NULL, 0);
}

struct nmc_metric *nmc_metrics_gauge(const char *name, const char *help, const char *labels)
{
    return do_register(name, help, labels, NMC_METRIC_GAUGE, NULL, 0);
}

struct nmc_metric *nmc_metrics_histogram(const char *name, const char *help, const char *labels,
                                         const double *buckets, size_t nbuckets)
{
    return do_register(name, help, labels, NMC_METRIC_HISTOGRAM, buckets, nbuckets);
}

/* ---- series -------------------------------------------------------------- */

static uint64_t hash_values(const struct nmc_metric *m, const char *const *values)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < m->nlabels; i++) {
        for (const unsigned char *p = (const unsigned char *)(values[i] ? values[i] : ""); *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ 0xFF) * 1099511628211ULL; /* separator: ("ab","") != ("a","b") */
    }
    return h;
}

static int series_matches(const struct nmc_metric *m, const struct series *s, const char *const *values)
{
    for (size_t i = 0; i < m->nlabels; i++)
        if (strcmp(s->values[i], values[i] ? values[i] : "") != 0)
            return 0;
    return 1;
}

/* Label values per the text format: \\ \" and \n escaped. Values are
 * already valid UTF-8 (see resolve). */
static void append_label_value(struct nmc_buf *b, const char *v)
{
    size_t run = 0, i = 0;
    for (; v[i]; i++) {
        if (v[i] != '\\' && v[i] != '"' && v[i] != '\n')
            continue;
        (void)nmc_buf_append(b, v + run, i - run);
        (void)nmc_buf_puts(b, v[i] == '\\' ? "\\\\" : v[i] == '"' ? "\\\"" : "\\n");
        run = i + 1;
    }
    (void)nmc_buf_append(b, v + run, i - run);
}

static int utf8_valid(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = nmc_utf8_seqlen(u + i, n - i);
        if (l == 0)
            return 0;
        i += l;
    }
    return 1;
}

/* Copy of s with each invalid byte replaced by U+FFFD: Prometheus
 * requires label values to be valid UTF-8. */
static char *utf8_sanitize(const char *s)
{
    struct nmc_buf b = { 0 };
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    (void)nmc_buf_puts(&b, "");
    for (size_t i = 0; i < n;) {
        size_t l = nmc_utf8_seqlen(u + i, n - i);
        (void)nmc_buf_append(&b, l ? s + i : "\xEF\xBF\xBD", l ? l : 3);
        i += l ? l : 1;
    }
    return nmc_buf_steal(&b, NULL);
}

static char *render_labels(const struct nmc_metric *m, char **values)
{
    struct nmc_buf b = { 0 };
    (void)nmc_buf_puts(&b, "");
    for (size_t i = 0; i < m->nlabels; i++) {
        (void)nmc_buf_printf(&b, "%s%s=\"", i ? "," : "", m->labels[i]);
        append_label_value(&b, values[i]);
        (void)nmc_buf_append(&b, "\"", 1);
    }
    return nmc_buf_steal(&b, NULL);
}

static void rehash(struct nmc_metric *m)
{
    size_t nsize = m->tsize ? m->tsize * 2 : 8;
    struct series **t = nmc_xcalloc(nsize, sizeof(*t));
    for (struct series *s = m->first; s; s = s->next) {
        size_t i = s->hash & (nsize - 1);
        s->hnext = t[i];
        t[i] = s;
    }
    free(m->table);
    m->table = t;
    m->tsize = nsize;
}

static void count_dropped(const struct nmc_metric *m)
{
    if (reg.dropped == NULL)
        reg.dropped = nmc_metrics_counter("nmc_metrics_series_dropped_total",
                                          "Observations dropped because a metric hit its series cap.",
                                          "metric");
    if (m != reg.dropped) {
        const char *v[] = { m->name };
        nmc_metrics_add(reg.dropped, v, 1);
    }
}

static struct series *new_series(struct nmc_metric *m, const char *const *values, uint64_t h)
{
    struct series *s = nmc_xcalloc(1, sizeof(*s));
    s->hash = h;
    if (m->nlabels)
        s->values = nmc_xcalloc(m->nlabels, sizeof(*s->values));
    for (size_t i = 0; i < m->nlabels; i++)
        s->values[i] = nmc_xstrdup(values[i] ? values[i] : "");
    s->labels = render_labels(m, s->values);
    if (m->type == NMC_METRIC_HISTOGRAM)
        s->buckets = nmc_xcalloc(m->nbounds + 1, sizeof(*s->buckets));
    *m->tailp = s;
    m->tailp = &s->next;
    if (++m->nseries * 4 > m->tsize * 3)
        rehash(m);
    else {
        size_t i = h & (m->tsize - 1);
        s->hnext = m->table[i];
        m->table[i] = s;
    }
    return s;
}

static struct series *find_series(const struct nmc_metric *m, const char *const *values, uint64_t h)
{
    if (m->tsize == 0)
        return NULL;
    for (struct series *s = m->table[h & (m->tsize - 1)]; s; s = s->hnext)
        if (s->hash == h && series_matches(m, s, values))
            return s;
    return NULL;
}

/* Finds the series for values, creating it when create is set (NULL when
 * the metric is at its series cap). Series are keyed by the valid-UTF-8
 * form of the values, so two raw values that render alike share a series
 * and a scrape never shows a duplicate. */
static struct series *resolve(struct nmc_metric *m, const char *const *values, int create)
{
    static const char *const none[1] = { "" };
    if (m->nlabels > 0 && values == NULL) {
        if (create)
            die(m->name, "label values missing");
        return NULL;
    }
    if (m->nlabels == 0)
        values = none;
    char **fixed = NULL;
    for (size_t i = 0; i < m->nlabels && fixed == NULL; i++) {
        if (values[i] && !utf8_valid(values[i])) {
            fixed = nmc_xcalloc(m->nlabels, sizeof(*fixed));
            for (size_t j = 0; j < m->nlabels; j++)
                fixed[j] = utf8_sanitize(values[j] ? values[j] : "");
            values = (const char *const *)fixed;
        }
    }
    uint64_t h = hash_values(m, values);
    struct series *s = find_series(m, values, h);
    if (s == NULL && create) {
        if (m->nseries < MAX_SERIES)
            s = new_series(m, values, h);
        else
            count_dropped(m);
    }
    free_labels(fixed, fixed ? m->nlabels : 0);
    return s;
}

static struct series *get_series(struct nmc_metric *m, const char *const *values)
{
    return resolve(m, values, 1);
}

static struct series *lookup(struct nmc_metric *m, const char *const *values)
{
    return m ? resolve(m, values, 0) : NULL;
}

/* ---- updates ------------------------------------------------------------- */

/* Counters only go up: a negative or NaN increment is dropped rather than
 * corrupting rate() for every dashboard. */
void nmc_metrics_add(struct nmc_metric *m, const char *const *values, double v)
{
    if (m == NULL)
        return;
    if (m->type == NMC_METRIC_HISTOGRAM)
        die(m->name, "nmc_metrics_add on a histogram");
    if (isnan(v) || (m->type == NMC_METRIC_COUNTER && v < 0))
        return;
    struct series *s = get_series(m, values);
    if (s)
        s->value += v;
}

void nmc_metrics_set(struct nmc_metric *m, const char *const *values, double v)
{
    if (m == NULL)
        return;
    if (m->type != NMC_METRIC_GAUGE)
        die(m->name, "nmc_metrics_set on a non-gauge");
    struct series *s = get_series(m, values);
    if (s)
        s->value = v;
}

void nmc_metrics_observe(struct nmc_metric *m, const char *const *values, double v)
{
    if (m == NULL)
        return;
    if (m->type != NMC_METRIC_HISTOGRAM)
        die(m->name, "nmc_metrics_observe on a non-histogram");
    if (isnan(v))
        return;
    struct series *s = get_series(m, values);
    if (s == NULL)
        return;
    size_t i = 0;
    while (i < m->nbounds && v > m->bounds[i])
        i++;
    s->buckets[i]++;
    s->count++;
    s->value += v;
}

double nmc_metrics_value(struct nmc_metric *m, const char *const *values)
{
    struct series *s = lookup(m, values);
    if (s == NULL)
        return 0;
    return m->type == NMC_METRIC_HISTOGRAM ? (double)s->count : s->value;
}

/* As Prometheus' histogram_quantile: find the bucket holding rank q*count
 * and interpolate linearly inside it; the first bucket starts at 0 (when
 * its bound is positive) and a rank in +Inf answers the last finite bound. */
double nmc_metrics_quantile(struct nmc_metric *m, const char *const *values, double q)
{
    if (m == NULL || m->type != NMC_METRIC_HISTOGRAM || !(q >= 0 && q <= 1))
        return NAN;
    struct series *s = lookup(m, values);
    if (s == NULL || s->count == 0)
        return NAN;
    double rank = q * (double)s->count;
    uint64_t below = 0;
    for (size_t i = 0; i < m->nbounds; i++) {
        uint64_t cum = below + s->buckets[i];
        if ((double)cum >= rank && s->buckets[i] > 0) {
            double lo = i > 0 ? m->bounds[i - 1] : (m->bounds[0] > 0 ? 0 : m->bounds[0]);
            double frac = (rank - (double)below) / (double)s->buckets[i];
            return lo + (m->bounds[i] - lo) * frac;
        }
        below = cum;
    }
    return m->bounds[m->nbounds - 1];
}

void nmc_metrics_on_collect(nmc_metrics_collect_cb cb, void *ud)
{
    if (cb == NULL)
        return;
    struct collector *c = nmc_xcalloc(1, sizeof(*c));
    c->cb = cb;
    c->ud = ud;
    *reg.ctailp = c;
    reg.ctailp = &c->next;
}

/* ---- rendering ----------------------------------------------------------- */

/* Shortest of %.15g/%.17g that reads back exactly, so bucket bounds print
 * as 0.1 and not 0.10000000000000001. */
static void fmt_double(double v, char out[32])
{
    if (isnan(v)) {
        nmc_strlcpy(out, "NaN", 32);
        return;
    }
    if (isinf(v)) {
        nmc_strlcpy(out, v > 0 ? "+Inf" : "-Inf", 32);
        return;
    }
    (void)snprintf(out, 32, "%.15g", v);
    if (strtod(out, NULL) != v)
        (void)snprintf(out, 32, "%.17g", v);
}

static void append_help(struct nmc_buf *b, const struct nmc_metric *m)
{
    static const char *const types[] = { "counter", "gauge", "histogram" };
    (void)nmc_buf_printf(b, "# HELP %s ", m->name);
    for (const char *p = m->help; *p; p++) {
        if (*p == '\\')
            (void)nmc_buf_puts(b, "\\\\");
        else if (*p == '\n')
            (void)nmc_buf_puts(b, "\\n");
        else
            (void)nmc_buf_append(b, p, 1);
    }
    (void)nmc_buf_printf(b, "\n# TYPE %s %s\n", m->name, types[m->type]);
}

static int render_histogram(struct nmc_buf *b, const struct nmc_metric *m, const struct series *s)
{
    const char *sep = s->labels[0] ? "," : "";
    char num[32];
    uint64_t cum = 0;
    int rc = 0;
    for (size_t i = 0; i <= m->nbounds && rc == 0; i++) {
        cum += s->buckets[i];
        if (i < m->nbounds)
            fmt_double(m->bounds[i], num);
        else
            nmc_strlcpy(num, "+Inf", sizeof(num));
        rc = nmc_buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", m->name, s->labels, sep, num, cum);
    }
    fmt_double(s->value, num);
    const char *open = s->labels[0] ? "{" : "", *close = s->labels[0] ? "}" : "";
    if (rc == 0)
        rc = nmc_buf_printf(b, "%s_sum%s%s%s %s\n", m->name, open, s->labels, close, num);
    if (rc == 0)
        rc = nmc_buf_printf(b, "%s_count%s%s%s %" PRIu64 "\n", m->name, open, s->labels, close, s->count);
    return rc;
}

static int render_metric(struct nmc_buf *b, const struct nmc_metric *m)
{
    append_help(b, m);
    int rc = 0;
    for (const struct series *s = m->first; s && rc == 0; s = s->next) {
        if (m->type == NMC_METRIC_HISTOGRAM) {
            rc = render_histogram(b, m, s);
            continue;
        }
        char num[32];
        fmt_double(s->value, num);
        if (s->labels[0])
            rc = nmc_buf_printf(b, "%s{%s} %s\n", m->name, s->labels, num);
        else
            rc = nmc_buf_printf(b, "%s %s\n", m->name, num);
    }
    return rc;
}

int nmc_metrics_render(struct nmc_buf *out)
{
    for (struct collector *c = reg.collectors; c; c = c->next)
        c->cb(c->ud);
    size_t start = out->len;
    int rc = 0;
    for (const struct nmc_metric *m = reg.first; m && rc == 0; m = m->next)
        rc = render_metric(out, m);
    if (rc && out->data) { /* all or nothing: no half page for a capped buffer */
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}

/* ---- lifecycle ----------------------------------------------------------- */

static void free_metric(struct nmc_metric *m)
{
    struct series *s = m->first;
    while (s) {
        struct series *next = s->next;
        free_labels(s->values, m->nlabels);
        free(s->labels);
        free(s->buckets);
        free(s);
        s = next;
    }
    free_labels(m->labels, m->nlabels);
    free(m->table);
    free(m->bounds);
    free(m->name);
    free(m->help);
    free(m);
}

static void process_forget(void);

void nmc_metrics_reset(void)
{
    struct nmc_metric *m = reg.first;
    while (m) {
        struct nmc_metric *next = m->next;
        free_metric(m);
        m = next;
    }
    struct collector *c = reg.collectors;
    while (c) {
        struct collector *next = c->next;
        free(c);
        c = next;
    }
    reg.first = NULL;
    reg.tailp = &reg.first;
    reg.collectors = NULL;
    reg.ctailp = &reg.collectors;
    reg.dropped = NULL;
    process_forget();
}

/* ---- process collector --------------------------------------------------- */

static struct {
    int registered;
    struct nmc_metric *cpu_seconds, *rss, *start_time, *cpu_pct, *mem_pct;
    double prev_cpu;      /* seconds of CPU at the previous render */
    uint64_t prev_mono;   /* monotonic ns at the previous render */
} proc;

static void process_forget(void)
{
    memset(&proc, 0, sizeof(proc));
}

/* Reads a small /proc or /sys file; returns its length (0 on failure). */
static size_t read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return (size_t)n;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static double rss_bytes(void)
{
    char buf[256];
    if (read_small("/proc/self/statm", buf, sizeof(buf)) == 0)
        return 0;
    unsigned long long size, resident;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return 0;
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* Memory available to us: MemTotal, or a smaller cgroup limit (v2
 * memory.max, v1 limit_in_bytes) when running in a container. */
static double memory_limit_bytes(void)
{
    char buf[4096];
    double total = 0;
    if (read_small("/proc/meminfo", buf, sizeof(buf))) {
        const char *p = strstr(buf, "MemTotal:");
        unsigned long long kb;
        if (p && sscanf(p, "MemTotal: %llu kB", &kb) == 1)
            total = (double)kb * 1024;
    }
    static const char *const limits[] = { "/sys/fs/cgroup/memory.max",
                                          "/sys/fs/cgroup/memory/memory.limit_in_bytes" };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(limits); i++) {
        unsigned long long lim;
        if (read_small(limits[i], buf, 64) && sscanf(buf, "%llu", &lim) == 1 && lim > 0 &&
            (total == 0 || (double)lim < total))
            total = (double)lim;
    }
    return total;
}

/* Process start from /proc/self/stat (field 22, clock ticks after boot)
 * plus btime from /proc/stat; the registration time if either is missing. */
static double start_time_seconds(void)
{
    char buf[4096];
    double now = (double)nmc_clock_now_ms() / 1000.0;
    if (read_small("/proc/self/stat", buf, sizeof(buf)) == 0)
        return now;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    for (int field = 2; p != NULL && field < 22; field++) /* on to the space before field 22 */
        p = strchr(p + 1, ' ');
    unsigned long long ticks;
    if (p == NULL || sscanf(p, " %llu", &ticks) != 1)
        return now;
    if (read_small("/proc/stat", buf, sizeof(buf)) == 0)
        return now;
    const char *bt = strstr(buf, "\nbtime ");
    unsigned long long btime;
    if (bt == NULL || sscanf(bt, "\nbtime %llu", &btime) != 1)
        return now;
    return (double)btime + (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

/* cpu_utilization_percent is CPU time over wall time since the previous
 * render, in percent of one core: the loop is one thread, so 100 means the
 * loop is saturated whatever the number of cores. */
static void on_collect_process(void *ud)
{
    (void)ud;
    double cpu = cpu_seconds();
    uint64_t mono = nmc_clock_mono_ns();
    proc.cpu_seconds->first->value = cpu; /* a counter set from the kernel's total */
    double rss = rss_bytes();
    nmc_metrics_set(proc.rss, NULL, rss);
    double wall = (double)(mono - proc.prev_mono) / 1e9;
    if (wall >= 0.001) { /* back-to-back scrapes keep the previous reading */
        nmc_metrics_set(proc.cpu_pct, NULL, 100.0 * (cpu - proc.prev_cpu) / wall);
        proc.prev_cpu = cpu;
        proc.prev_mono = mono;
    }
    double limit = memory_limit_bytes();
    if (limit > 0)
        nmc_metrics_set(proc.mem_pct, NULL, 100.0 * rss / limit);
}

void nmc_metrics_register_process(void)
{
    if (proc.registered)
        return;
    proc.cpu_seconds = nmc_metrics_counter("process_cpu_seconds_total",
                                           "Total user and system CPU time spent in seconds.", NULL);
    proc.rss = nmc_metrics_gauge("process_resident_memory_bytes", "Resident memory size in bytes.", NULL);
    proc.start_time = nmc_metrics_gauge("process_start_time_seconds",
                                        "Start time of the process since unix epoch in seconds.", NULL);
    proc.cpu_pct = nmc_metrics_gauge("cpu_utilization_percent",
                                     "Process CPU time over wall time since the previous scrape, "
                                     "in percent of one core.", NULL);
    proc.mem_pct = nmc_metrics_gauge("memory_utilization_percent",
                                     "Resident memory over MemTotal (or the cgroup limit), in percent.", NULL);
    nmc_metrics_set(proc.start_time, NULL, start_time_seconds());
    proc.prev_cpu = cpu_seconds();
    proc.prev_mono = nmc_clock_mono_ns();
    proc.registered = 1;
    nmc_metrics_on_collect(on_collect_process, NULL);
}
