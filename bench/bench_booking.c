/* bench_booking: open-loop load for the booking API and the availability
 * search (owner: sched engineer). Run by hand, never in CI; tests assert no
 * timing. bench/booking.sh builds, starts PostgreSQL and nmc, and runs it.
 *
 *   bench_booking --port 8080 --admin-key KEY [--rate 200] [--duration 10]
 *                 [--avail-rate 100] [--resources 20] [--workers 32]
 *
 * Set-up through the API: a tenant (admin key), one 60-minute item and
 * --resources technicians open around the clock. Booking i is scheduled at
 * start + i/rate on resource i % resources at its own hour, days ahead, so
 * bookings never conflict: the numbers are the cost of the path, not of
 * contention. Each booking is POST /v1/scheduling/holds then POST
 * /v1/scheduling/bookings (Idempotency-Key) on a keep-alive connection;
 * the booking POST's latency is measured from its send, the hold's from its
 * scheduled time (so a stalled server cannot hide queueing). In parallel,
 * availability searches over a 7-day window run at --avail-rate. Prints one
 * JSON object with p50/p95/p99/max per kind, counts and errors. */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "runtime/buf.h"
#include "runtime/common.h"

#define DAY_S 86400

#define CONN_BUF (1 << 20) /* a 7-day answer is ~60 KiB per resource */

struct conn {
    int fd;
    size_t len;
    char buf[CONN_BUF];
};

struct sample {
    double ms;
    int status;
};

static struct {
    int port, rate, duration, avail_rate, resources, workers;
    const char *admin_key;
    char key_hdr[192];
    char item[40];
    char **res;
    char from[32], to[32];
    int64_t start_ns, base_epoch;
    int nbook, navail;
    struct sample *hold, *book, *avail;
    _Atomic int next_book, next_avail;
} B;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t t)
{
    int64_t d = t - now_ns();
    if (d > 0) {
        struct timespec ts = {(time_t)(d / 1000000000), (long)(d % 1000000000)};
        nanosleep(&ts, NULL);
    }
}

static int conn_open(struct conn *c)
{
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)B.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

/* Reads one response; returns the status and copies the body into body. */
static int conn_read(struct conn *c, char *body, size_t cap)
{
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end != NULL) {
            size_t head = (size_t)(end - c->buf) + 4, clen = 0;
            char *cl = strcasestr(c->buf, "\r\nContent-Length:");
            if (cl != NULL && cl < end)
                clen = strtoul(cl + 17, NULL, 10);
            if (c->len >= head + clen) {
                int status = c->len > 12 ? (int)strtol(c->buf + 9, NULL, 10) : -1;
                size_t n = clen < cap - 1 ? clen : cap - 1;
                memcpy(body, c->buf + head, n);
                body[n] = '\0';
                memmove(c->buf, c->buf + head + clen, c->len - head - clen);
                c->len -= head + clen;
                return status;
            }
        }
        if (c->len == sizeof(c->buf))
            return -1;
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
    }
}

/* Sends one request with the tenant key and optional extra header; returns
 * the status (-1 on a broken connection, which is reopened). */
static int call(struct conn *c, const char *method, const char *path, const char *extra, const char *json,
                char *body, size_t cap)
{
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: bench\r\n%s\r\n%s%sContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, B.key_hdr, extra ? extra : "", extra ? "\r\n" : "", json ? strlen(json) : 0,
                     json ? json : "");
    if (c->fd < 0 && conn_open(c) != 0)
        return -1;
    if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    int st = conn_read(c, body, cap);
    if (st < 0) {
        close(c->fd);
        c->fd = -1;
    }
    return st;
}

/* ---- set-up -------------------------------------------------------- */

static void die(const char *what, int status, const char *body)
{
    fprintf(stderr, "bench_booking: %s failed (%d): %s\n", what, status, body);
    exit(1);
}

static const char *field(const char *json, const char *key, char *out, size_t cap)
{
    json_t *j = json_loads(json, 0, NULL);
    const char *v = json_string_value(json_object_get(j, key));
    nmc_strlcpy(out, v != NULL ? v : "", cap);
    json_decref(j);
    return out;
}

static void setup(void)
{
    static struct conn c = {.fd = -1};
    char body[8192], admin[160], key[128], tmp[40];
    snprintf(admin, sizeof(admin), "X-Admin-API-Key: %s", B.admin_key);
    snprintf(B.key_hdr, sizeof(B.key_hdr), "X-Bench: 1");
    int st = call(&c, "POST", "/v1/admin/tenants", admin, "{\"name\":\"Bench Co\",\"timezone\":\"America/Chicago\"}",
                  body, sizeof(body));
    if (st != 201)
        die("tenant", st, body);
    snprintf(B.key_hdr, sizeof(B.key_hdr), "X-API-Key: %s", field(body, "api_key", key, sizeof(key)));
    st = call(&c, "POST", "/v1/catalog/items", NULL,
              "{\"name\":\"Bench service\",\"price_cents\":10000,\"duration_minutes\":60}", body, sizeof(body));
    if (st != 201)
        die("item", st, body);
    field(body, "id", B.item, sizeof(B.item));
    B.res = calloc((size_t)B.resources, sizeof(*B.res));
    for (int i = 0; i < B.resources; i++) {
        char rb[512];
        snprintf(rb, sizeof(rb),
                 "{\"name\":\"Tech %d\",\"business_hours\":{\"mon\":[[\"00:00\",\"24:00\"]],\"tue\":[[\"00:00\","
                 "\"24:00\"]],\"wed\":[[\"00:00\",\"24:00\"]],\"thu\":[[\"00:00\",\"24:00\"]],\"fri\":[[\"00:00\","
                 "\"24:00\"]],\"sat\":[[\"00:00\",\"24:00\"]],\"sun\":[[\"00:00\",\"24:00\"]]}}", i);
        st = call(&c, "POST", "/v1/scheduling/resources", NULL, rb, body, sizeof(body));
        if (st != 201)
            die("resource", st, body);
        B.res[i] = strdup(field(body, "id", tmp, sizeof(tmp)));
    }
    close(c.fd);
    c.fd = -1;
}

static void utc_text(int64_t epoch, char out[32])
{
    struct tm tm;
    time_t t = (time_t)epoch;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- load ----------------------------------------------------------- */

static void one_booking(struct conn *c, int i)
{
    char json[256], extra[80], start[32], body[4096], hold[40];
    int64_t sched = B.start_ns + (int64_t)i * 1000000000 / B.rate;
    /* resource i % R, hour i / R, starting 2 days ahead on the hour */
    utc_text(B.base_epoch + 2 * DAY_S + (int64_t)(i / B.resources) * 3600, start);
    snprintf(json, sizeof(json), "{\"resource_id\":\"%s\",\"item_id\":\"%s\",\"start\":\"%s\"}",
             B.res[i % B.resources], B.item, start);
    sleep_until(sched);
    int st = call(c, "POST", "/v1/scheduling/holds", NULL, json, body, sizeof(body));
    B.hold[i] = (struct sample){(double)(now_ns() - sched) / 1e6, st};
    if (st != 201) {
        B.book[i] = (struct sample){0, -2};
        return;
    }
    field(body, "id", hold, sizeof(hold));
    snprintf(json, sizeof(json), "{\"hold_id\":\"%s\"}", hold);
    snprintf(extra, sizeof(extra), "Idempotency-Key: bench-%d", i);
    int64_t t0 = now_ns();
    st = call(c, "POST", "/v1/scheduling/bookings", extra, json, body, sizeof(body));
    B.book[i] = (struct sample){(double)(now_ns() - t0) / 1e6, st};
}

static void one_search(struct conn *c, int i)
{
    static _Thread_local char body[CONN_BUF];
    char path[512];
    int64_t sched = B.start_ns + (int64_t)i * 1000000000 / B.avail_rate;
    snprintf(path, sizeof(path), "/v1/scheduling/availability?item_id=%s&from=%s&to=%s&resource_id=%s", B.item,
             B.from, B.to, B.res[i % B.resources]);
    sleep_until(sched);
    int st = call(c, "GET", path, NULL, NULL, body, sizeof(body));
    B.avail[i] = (struct sample){(double)(now_ns() - sched) / 1e6, st};
}

static void *worker(void *arg)
{
    struct conn *c = calloc(1, sizeof(*c));
    int kind = *(int *)arg; /* 0: bookings, 1: searches */
    c->fd = -1;
    for (;;) {
        int i = atomic_fetch_add(kind ? &B.next_avail : &B.next_book, 1);
        if (i >= (kind ? B.navail : B.nbook))
            break;
        if (kind)
            one_search(c, i);
        else
            one_booking(c, i);
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    return NULL;
}

/* ---- report --------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(struct nmc_buf *out, const char *name, const struct sample *s, int n, int ok_status)
{
    double *v = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    int ok = 0, errors = 0;
    for (int i = 0; i < n; i++) {
        if (s[i].status == ok_status)
            v[ok++] = s[i].ms;
        else
            errors++;
    }
    qsort(v, (size_t)ok, sizeof(double), cmp_double);
#define PCT(p) (ok > 0 ? v[(int)((ok - 1) * (p))] : 0.0)
    (void)nmc_buf_printf(out, "\"%s\":{\"count\":%d,\"ok\":%d,\"errors\":%d,\"p50_ms\":%.2f,\"p95_ms\":%.2f,"
                         "\"p99_ms\":%.2f,\"max_ms\":%.2f}", name, n, ok, errors, PCT(0.50), PCT(0.95), PCT(0.99),
                         ok > 0 ? v[ok - 1] : 0.0);
#undef PCT
    free(v);
}

static int arg_int(const char *v, int min, int max)
{
    int64_t n;
    if (nmc_parse_i64(v, min, max, &n) != 0) {
        fprintf(stderr, "bench_booking: bad number '%s'\n", v);
        exit(2);
    }
    return (int)n;
}

static void parse_args(int argc, char **argv)
{
    B.rate = 200, B.duration = 10, B.avail_rate = 100, B.resources = 20, B.workers = 32;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--port") == 0) B.port = arg_int(v, 1, 65535);
        else if (strcmp(k, "--admin-key") == 0) B.admin_key = v;
        else if (strcmp(k, "--rate") == 0) B.rate = arg_int(v, 1, 100000);
        else if (strcmp(k, "--duration") == 0) B.duration = arg_int(v, 1, 3600);
        else if (strcmp(k, "--avail-rate") == 0) B.avail_rate = arg_int(v, 0, 100000);
        else if (strcmp(k, "--resources") == 0) B.resources = arg_int(v, 1, 1000);
        else if (strcmp(k, "--workers") == 0) B.workers = arg_int(v, 1, 1000);
        else {
            fprintf(stderr, "bench_booking: unknown option %s\n", k);
            exit(2);
        }
    }
    if (B.port == 0 || B.admin_key == NULL) {
        fprintf(stderr, "usage: bench_booking --port N --admin-key KEY [--rate 200] [--duration 10] "
                        "[--avail-rate 100] [--resources 20] [--workers 32]\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    setup();
    B.nbook = B.rate * B.duration;
    B.navail = B.avail_rate * B.duration;
    B.hold = calloc((size_t)B.nbook + 1, sizeof(*B.hold));
    B.book = calloc((size_t)B.nbook + 1, sizeof(*B.book));
    B.avail = calloc((size_t)B.navail + 1, sizeof(*B.avail));
    B.base_epoch = time(NULL) / 3600 * 3600;
    utc_text(B.base_epoch + 2 * DAY_S, B.from);
    utc_text(B.base_epoch + 9 * DAY_S, B.to); /* a 7-day window */
    int nthreads = B.workers + (B.avail_rate > 0 ? B.workers / 4 + 1 : 0);
    pthread_t *th = calloc((size_t)nthreads, sizeof(*th));
    int kinds[2] = {0, 1};
    B.start_ns = now_ns() + 100000000;
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, worker, &kinds[i < B.workers ? 0 : 1]);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    double wall = (double)(now_ns() - B.start_ns) / 1e9;
    struct nmc_buf out = {0};
    (void)nmc_buf_printf(&out, "{\"rate\":%d,\"avail_rate\":%d,\"duration_s\":%d,\"wall_s\":%.2f,"
                         "\"achieved_bookings_per_s\":%.1f,", B.rate, B.avail_rate, B.duration, wall,
                         (double)B.nbook / wall);
    report(&out, "hold_post", B.hold, B.nbook, 201);
    (void)nmc_buf_puts(&out, ",");
    report(&out, "booking_post", B.book, B.nbook, 201);
    (void)nmc_buf_puts(&out, ",");
    report(&out, "availability_7d", B.avail, B.navail, 200);
    (void)nmc_buf_puts(&out, "}\n");
    fputs(out.data, stdout);
    nmc_buf_free(&out);
    return 0;
}
