/* bench_first_sms: open-loop load generator for the missed-call -> first
 * SMS path (owner: perf engineer). Run by hand, never in CI.
 *
 *   bench_first_sms --port 8080 --emulator-port 8089 --rate 500 --duration 10 [--pid N]
 *                   [--public-base http://127.0.0.1:8080] [--token test-auth-token]
 *                   [--to +15550001000] [--tenants 1] [--senders 128] [--drain 10] [--first-caller 0]
 *                   [--spin-us N] [--dump FILE]
 *
 * Start nmc with TWILIO_API_BASE=http://127.0.0.1:<emulator-port> and the
 * tenant owning --to (with --tenants N: the N tenants owning the N numbers
 * from --to on; call i rings number i mod N). Call i is scheduled at start + i/rate (open loop:
 * latencies count from the scheduled time, so a stalled server cannot hide
 * its queueing); each has its own CallSid and From (+1444 and 7 digits from
 * --first-caller + i: reruns against one database need fresh callers, or
 * the repeat-window gate blocks them), and goes out on one of
 * at most --senders keep-alive connections. The embedded emulator
 * answers POST .../Messages.json with 201 {"sid":"SM..","status":"queued"}
 * and matches each SMS to its call by To. After the last answer it waits
 * up to --drain seconds for missing SMS (then 1 s for late duplicates).
 * achieved_rate is calls answered per second from the first scheduled call
 * to the last answer. send_lag is how late the generator itself wrote each
 * call (sent - scheduled, already inside the latencies): to keep it small
 * the sender's timer fires --spin-us early (default 150 us, at most 2% of
 * the time between calls) and it polls until the call is due. A latency ends
 * when the answer or the SMS request reached this process's socket (the
 * kernel's receive timestamp, SO_TIMESTAMPNS), not when a thread here woke up
 * to read it: that wake-up is the generator's and the emulator's, as the send
 * lag is. The *_read_latency figures end at the read, for comparison;
 * reads_without_rx_timestamp counts reads the kernel gave no timestamp (their
 * read time counts). --dump writes
 * a "# first call due at" line (wall clock), then one line per call: index,
 * when it was due (ns after the first), the send lag, webhook and first-SMS
 * latencies in ns (-1: none), the HTTP status, then the webhook and first-SMS
 * read latencies. Prints one JSON object
 * (bench/first_sms.sh runs the whole setup around it). */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "http/body.h"
#include "providers/twilio_sig.h"


/* answered_ns and sms_ns: when the answer and the SMS request reached this
 * process's socket (the kernel's receive timestamp); the _read_ns twins:
 * when its thread read them, after waking up. */
struct call {
    int64_t scheduled_ns, sent_ns, answered_ns, answered_read_ns;
    _Atomic int64_t sms_ns, sms_read_ns;
    _Atomic int sms_count;
    int status;
};

static struct {
    int port, emu_port, rate, duration, senders, drain_s, first_caller, tenants;
    long pid;
    int64_t spin_ns; /* the sender wakes this early and polls until the call is due */
    const char *public_base, *token, *to, *dump;
    struct call *calls;
    int ncalls;
    int64_t start_ns;
    _Atomic int stop;
    _Atomic long unmatched;
    long emu_conns; /* connections nmc opened to the emulator */
    _Atomic long rx_no_stamp; /* reads without a kernel timestamp (then the read time counts) */
} B;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Turns SO_TIMESTAMPNS on for fd: every read then says when its data
 * reached the socket, so a latency ends when the bytes arrived, not when
 * this process's thread woke up to read them. */
static void want_rx_stamps(int fd)
{
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
}

/* read() that also gives when the data read reached the socket (the
 * kernel's receive timestamp of the last segment read, moved from
 * CLOCK_REALTIME to now_ns()'s CLOCK_MONOTONIC), and when it was read. */
static ssize_t read_stamped(int fd, char *buf, size_t len, int64_t *arrived, int64_t *read_at)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { buf, len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
    ssize_t r = recvmsg(fd, &m, 0);
    struct timespec real;
    *read_at = now_ns();
    clock_gettime(CLOCK_REALTIME, &real);
    *arrived = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); r > 0 && c != NULL; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            int64_t age = ((int64_t)real.tv_sec - ts.tv_sec) * 1000000000 + (real.tv_nsec - ts.tv_nsec);
            *arrived = *read_at - (age > 0 ? age : 0);
        }
    }
    if (r > 0 && *arrived == 0) {
        B.rx_no_stamp++;
        *arrived = *read_at;
    }
    return r;
}

static void caller_of(int i, char out[20])
{
    snprintf(out, 20, "+1444%07d", B.first_caller + i);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    want_rx_stamps(fd);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- the open-loop sender: one thread, epoll, a pool of keep-alive
 * connections (like Twilio, which posts webhooks concurrently). A call
 * whose time has come takes an idle connection or opens one, up to
 * --senders connections; past that it waits, and the wait counts in its
 * latency (measured from the scheduled time). ---- */

struct sconn {
    int fd;
    int call;          /* -1 when idle */
    char buf[4096];
    size_t len;
};

static struct {
    int epfd, tfd;
    struct sconn *conns;
    int nconns, *idle, nidle, busy, next;
} S;

/* 1 when buf holds a whole Content-Length framed response; its status. */
static int response_complete(const struct sconn *c, int *status)
{
    const char *end = strstr(c->buf, "\r\n\r\n");
    if (end == NULL)
        return 0;
    const char *cl = strcasestr(c->buf, "content-length:");
    long len = cl != NULL && cl < end ? strtol(cl + 15, NULL, 10) : 0;
    if ((size_t)(end + 4 - c->buf) + (size_t)len > c->len)
        return 0;
    *status = -1;
    sscanf(c->buf, "HTTP/1.1 %d", status);
    return 1;
}

/* The business number call i rings: --to, or with --tenants N one of N
 * consecutive numbers from --to on, round robin. */
static void business_of(int i, char out[24])
{
    long long base = strtoll(B.to + 1, NULL, 10);
    if (B.tenants <= 1 || base <= 0)
        snprintf(out, 24, "%s", B.to);
    else
        snprintf(out, 24, "+%lld", base + i % B.tenants);
}

static int format_call(int i, char *req, size_t reqlen)
{
    char caller[20], to[24], sid[40], sig[NMC_PROV_TWILIO_SIG_LEN], url[512], body[1024];
    caller_of(i, caller);
    business_of(i, to);
    snprintf(sid, sizeof sid, "CAbench%d%010d", (int)getpid(), i);
    struct nmc_prov_kv p[] = { { "AccountSid", "ACbench" }, { "CallSid", sid }, { "CallStatus", "no-answer" },
                               { "CallDuration", "0" }, { "From", caller }, { "To", to } };
    snprintf(url, sizeof url, "%s/webhooks/twilio/voice-status", B.public_base);
    if (nmc_prov_twilio_sig_compute(B.token, url, p, 6, sig) != 0)
        return -1;
    char *ef = nmc_url_encode(caller), *et = nmc_url_encode(to);
    int blen = snprintf(body, sizeof body, "AccountSid=ACbench&CallSid=%s&CallStatus=no-answer&CallDuration=0&From=%s&To=%s",
                        sid, ef, et);
    free(ef);
    free(et);
    return snprintf(req, reqlen,
                    "POST /webhooks/twilio/voice-status HTTP/1.1\r\nHost: bench\r\nX-Twilio-Signature: %s\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s",
                    sig, blen, body);
}

static void conn_drop(struct sconn *c)
{
    if (c->call >= 0) {
        B.calls[c->call].status = -1;
        B.calls[c->call].answered_ns = B.calls[c->call].answered_read_ns = now_ns();
        S.busy--;
    }
    epoll_ctl(S.epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->call = -1;
}

/* An idle connection (opened on demand), or NULL at the limit. */
static struct sconn *conn_take(void)
{
    while (S.nidle > 0) {
        struct sconn *c = &S.conns[S.idle[--S.nidle]];
        if (c->fd >= 0)
            return c;
    }
    for (int k = 0; k < S.nconns; k++) {
        struct sconn *c = &S.conns[k];
        if (c->fd >= 0 || c->call >= 0)
            continue;
        c->fd = connect_to(B.port);
        if (c->fd < 0)
            return NULL;
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)k };
        epoll_ctl(S.epfd, EPOLL_CTL_ADD, c->fd, &ev);
        return c;
    }
    return NULL;
}

static void start_due_calls(void)
{
    char req[2048];
    while (S.next < B.ncalls && B.calls[S.next].scheduled_ns <= now_ns()) {
        struct sconn *c = conn_take();
        if (c == NULL)
            return; /* every connection is busy: the call waits, its latency grows */
        int i = S.next++, n = format_call(i, req, sizeof req);
        c->call = i;
        c->len = 0;
        S.busy++;
        B.calls[i].sent_ns = now_ns();
        if (n <= 0 || send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n)
            conn_drop(c);
    }
}

static void on_readable(struct sconn *c)
{
    int64_t arrived, read_at;
    ssize_t r = read_stamped(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, &arrived, &read_at);
    if (r <= 0) {
        conn_drop(c);
        return;
    }
    c->len += (size_t)r;
    c->buf[c->len] = '\0';
    int status;
    if (c->call < 0 || !response_complete(c, &status))
        return;
    B.calls[c->call].status = status;
    B.calls[c->call].answered_ns = arrived;
    B.calls[c->call].answered_read_ns = read_at;
    c->call = -1;
    c->len = 0;
    S.busy--;
    S.idle[S.nidle++] = (int)(c - S.conns);
}

/* Wakes the loop when the next call is due. A call already due that found
 * every connection busy waits for an answer instead (epoll reports it): a
 * timer armed in the past would fire at once, and the sender spun on it and
 * took over half a core from the server it measures whenever the server
 * fell behind (the collapse past saturation was partly the generator's). */
static void arm_timer(void)
{
    struct itimerspec its = { 0 };
    if (S.next < B.ncalls && S.busy >= S.nconns && B.calls[S.next].scheduled_ns <= now_ns()) {
        /* disarmed: it_value zero */
    } else if (S.next < B.ncalls) {
        int64_t t = B.calls[S.next].scheduled_ns - B.spin_ns;
        its.it_value = (struct timespec){ t / 1000000000, t % 1000000000 };
    } else {
        its.it_value = (struct timespec){ 0, 1 }; /* all sent: just wake the loop */
    }
    timerfd_settime(S.tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void handle_events(const struct epoll_event *evs, int n)
{
    for (int e = 0; e < n; e++) {
        if (evs[e].data.u32 == UINT32_MAX) {
            uint64_t ticks;
            if (read(S.tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
                perror("bench_first_sms: timerfd");
            continue;
        }
        on_readable(&S.conns[evs[e].data.u32]);
    }
}

/* The timer fires spin_ns before the next call is due (a sleeping thread
 * wakes 0.1-0.2 ms late on this machine, and that lateness would count as
 * the server's latency): poll the connections without blocking until the
 * call is due, then send it. */
static void send_when_due(void)
{
    if (S.next >= B.ncalls || S.busy >= S.nconns)
        return;
    int64_t due = B.calls[S.next].scheduled_ns, now = now_ns();
    if (due <= now || due - now > B.spin_ns)
        return;
    while (now_ns() < due) {
        struct epoll_event evs[64];
        handle_events(evs, epoll_wait(S.epfd, evs, 64, 0));
    }
    start_due_calls();
}

static void *sender(void *arg)
{
    (void)arg;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* timers fire on time, not up to 50 us late */
    S.nconns = B.senders;
    S.conns = calloc((size_t)S.nconns, sizeof *S.conns);
    S.idle = calloc((size_t)S.nconns, sizeof *S.idle);
    for (int k = 0; k < S.nconns; k++)
        S.conns[k] = (struct sconn){ .fd = -1, .call = -1 };
    S.epfd = epoll_create1(0);
    S.tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct epoll_event tev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };
    epoll_ctl(S.epfd, EPOLL_CTL_ADD, S.tfd, &tev);
    int64_t give_up = B.calls[B.ncalls - 1].scheduled_ns + (int64_t)B.drain_s * 1000000000;
    while ((S.next < B.ncalls || S.busy > 0) && now_ns() < give_up) {
        start_due_calls();
        send_when_due();
        arm_timer();
        struct epoll_event evs[64];
        handle_events(evs, epoll_wait(S.epfd, evs, 64, S.next < B.ncalls ? -1 : 100));
    }
    for (int k = 0; k < S.nconns; k++)
        if (S.conns[k].fd >= 0)
            close(S.conns[k].fd);
    close(S.epfd);
    close(S.tfd);
    free(S.conns);
    free(S.idle);
    return NULL;
}

/* ---- the embedded Twilio emulator ---- */

static void record_sms(const char *body, int64_t arrived, int64_t read_at)
{
    const char *to = strstr(body, "To=");
    while (to != NULL && to != body && to[-1] != '&')
        to = strstr(to + 1, "To=");
    if (to == NULL)
        return;
    char enc[64] = "";
    size_t n = strcspn(to + 3, "&");
    snprintf(enc, sizeof enc, "%.*s", (int)(n < 60 ? n : 60), to + 3);
    /* %2B1444NNNNNNN */
    const char *digits = strstr(enc, "1444");
    int i = digits != NULL ? (int)strtol(digits + 4, NULL, 10) - B.first_caller : -1;
    if (i < 0 || i >= B.ncalls) {
        B.unmatched++;
        return;
    }
    int64_t expect = 0;
    if (atomic_compare_exchange_strong(&B.calls[i].sms_ns, &expect, arrived))
        B.calls[i].sms_read_ns = read_at;
    B.calls[i].sms_count++;
}

struct econn {
    int fd;
    char buf[16384];
    size_t len;
    int64_t arrived, read_at; /* of the last read */
};

static void serve_requests(struct econn *c)
{
    static _Atomic long seq;
    for (;;) {
        char *end = strstr(c->buf, "\r\n\r\n");
        if (end == NULL)
            return;
        const char *cl = strcasestr(c->buf, "content-length:");
        size_t blen = cl != NULL && cl < end ? (size_t)strtol(cl + 15, NULL, 10) : 0;
        size_t total = (size_t)(end + 4 - c->buf) + blen;
        if (c->len < total)
            return;
        char saved = c->buf[total];
        c->buf[total] = '\0';
        record_sms(end + 4, c->arrived, c->read_at);
        c->buf[total] = saved;
        char resp[256], json[128];
        int jl = snprintf(json, sizeof json, "{\"sid\":\"SM%08x%024lx\",\"status\":\"queued\"}",
                          (unsigned)getpid(), ++seq); /* unique across runs on one database */
        int n = snprintf(resp, sizeof resp, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                         "Content-Length: %d\r\n\r\n%s", jl, json);
        if (send(c->fd, resp, (size_t)n, MSG_NOSIGNAL) != n)
            return;
        memmove(c->buf, c->buf + total, c->len - total);
        c->len -= total;
        c->buf[c->len] = '\0';
    }
}

/* One thread, epoll, any number of connections (nmc opens as many as its
 * HTTP client wants); every pending connection is accepted at once. */
static void emu_accept(int epfd, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0)
            return;
        struct econn *c = calloc(1, sizeof *c);
        c->fd = fd;
        want_rx_stamps(fd);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
        B.emu_conns++;
    }
}

static void emu_read(struct econn *c)
{
    for (;;) {
        ssize_t r = read_stamped(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, &c->arrived, &c->read_at);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            close(c->fd); /* also leaves the epoll set */
            free(c);
            return;
        }
        c->len += (size_t)r;
        c->buf[c->len] = '\0';
        serve_requests(c);
    }
}

static void *emulator(void *arg)
{
    int lfd = (int)(intptr_t)arg, epfd = epoll_create1(0);
    struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
    int fl = fcntl(lfd, F_GETFL);
    fcntl(lfd, F_SETFL, fl | O_NONBLOCK);
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
    while (!B.stop) {
        struct epoll_event evs[128];
        int n = epoll_wait(epfd, evs, 128, 100);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL)
                emu_accept(epfd, lfd);
            else
                emu_read(evs[i].data.ptr);
        }
    }
    close(epfd); /* connections still open are closed at exit */
    return NULL;
}

/* ---- report ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_dist(const char *name, int64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
#define Q(p) (n ? (double)v[(int)((n - 1) * (p))] / 1e6 : 0.0)
    printf("  \"%s_ms\": {\"p50\": %.3f, \"p95\": %.3f, \"p99\": %.3f, \"max\": %.3f},\n", name, Q(0.50), Q(0.95), Q(0.99),
           n ? (double)v[n - 1] / 1e6 : 0.0);
#undef Q
}

/* A /proc/PID/status field in KiB ("VmRSS:" now, "VmHWM:" peak), 0 if unknown. */
static long status_kib(long pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = pid > 0 ? fopen(path, "r") : NULL;
    long kib = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, strlen(field)) == 0)
            kib = strtol(line + strlen(field), NULL, 10);
    if (f != NULL)
        fclose(f);
    return kib;
}

static void report(double elapsed_s)
{
    size_t sz = (size_t)B.ncalls + 1;
    int64_t *hook = calloc(sz, sizeof *hook), *sms = calloc(sz, sizeof *sms), *lag = calloc(sz, sizeof *lag);
    int64_t *hook_read = calloc(sz, sizeof *hook_read), *sms_read = calloc(sz, sizeof *sms_read);
    int nh = 0, ns = 0, nl = 0, lost = 0, dup = 0, errors = 0;
    for (int i = 0; i < B.ncalls; i++) {
        struct call *c = &B.calls[i];
        if (c->sent_ns > 0)
            lag[nl++] = c->sent_ns - c->scheduled_ns;
        if (c->status == 200) {
            hook_read[nh] = c->answered_read_ns - c->scheduled_ns;
            hook[nh++] = c->answered_ns - c->scheduled_ns;
        } else {
            errors++;
        }
        if (c->sms_count == 0 && c->status == 200)
            lost++; /* stored (answered 200) but never texted: an unanswered call is Twilio's to retry */
        else if (c->sms_count > 0) {
            sms_read[ns] = c->sms_read_ns - c->scheduled_ns;
            sms[ns++] = c->sms_ns - c->scheduled_ns;
        }
        if (c->sms_count > 1)
            dup += c->sms_count - 1;
    }
    printf("{\n  \"rate\": %d, \"duration_s\": %d, \"sent\": %d, \"received\": %d, \"lost\": %d, \"duplicated\": %d,\n",
           B.rate, B.duration, B.ncalls, ns, lost, dup);
    printf("  \"webhook_errors\": %d, \"unmatched_sms\": %ld, \"achieved_rate\": %.1f, \"twilio_connections\": %ld,\n",
           errors, (long)B.unmatched, elapsed_s > 0 ? B.ncalls / elapsed_s : 0.0, B.emu_conns);
    print_dist("webhook_latency", hook, nh);
    print_dist("first_sms_latency", sms, ns);
    print_dist("webhook_read_latency", hook_read, nh);
    print_dist("first_sms_read_latency", sms_read, ns);
    print_dist("send_lag", lag, nl);
    printf("  \"reads_without_rx_timestamp\": %ld,\n", (long)B.rx_no_stamp);
    printf("  \"server_rss_kib\": %ld, \"server_rss_peak_kib\": %ld\n}\n", status_kib(B.pid, "VmRSS:"),
           status_kib(B.pid, "VmHWM:"));
    free(hook);
    free(sms);
    free(lag);
    free(hook_read);
    free(sms_read);
    FILE *f = B.dump != NULL ? fopen(B.dump, "w") : NULL;
    if (B.dump != NULL && f == NULL)
        perror("bench_first_sms: --dump");
    if (f != NULL) { /* the first call's due time on the wall clock, to line the calls up with logs */
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        int64_t wall = (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec - (now_ns() - B.start_ns);
        fprintf(f, "# first call due at %lld ns since the epoch\n", (long long)wall);
    }
    for (int i = 0; f != NULL && i < B.ncalls; i++) { /* one line per call, ns since the first was due */
        const struct call *c = &B.calls[i];
        fprintf(f, "%d %lld %lld %lld %lld %d %lld %lld\n", i, (long long)(c->scheduled_ns - B.start_ns),
                (long long)(c->sent_ns ? c->sent_ns - c->scheduled_ns : -1),
                (long long)(c->answered_ns ? c->answered_ns - c->scheduled_ns : -1),
                (long long)(c->sms_count ? c->sms_ns - c->scheduled_ns : -1), c->status,
                (long long)(c->answered_read_ns ? c->answered_read_ns - c->scheduled_ns : -1),
                (long long)(c->sms_count ? c->sms_read_ns - c->scheduled_ns : -1));
    }
    if (f != NULL)
        fclose(f);
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 512) != 0) {
        perror("bench_first_sms: emulator listen");
        exit(2);
    }
    return fd;
}

static void parse_args(int argc, char **argv)
{
    B.rate = 50, B.duration = 10, B.senders = 128, B.drain_s = 10, B.token = "test-auth-token", B.to = "+15550001000";
    B.tenants = 1;
    B.spin_ns = -1;
    static char base[64];
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--port")) B.port = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "--emulator-port")) B.emu_port = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "--rate")) B.rate = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "--duration")) B.duration = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "--senders")) B.senders = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "--first-caller")) B.first_caller = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "--drain")) B.drain_s = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "--pid")) B.pid = strtol(v, NULL, 10);
        else if (!strcmp(k, "--public-base")) B.public_base = v;
        else if (!strcmp(k, "--token")) B.token = v;
        else if (!strcmp(k, "--to")) B.to = v;
        else if (!strcmp(k, "--tenants")) B.tenants = (int)strtol(v, NULL, 10);
        else if (!strcmp(k, "--spin-us")) B.spin_ns = strtol(v, NULL, 10) * 1000;
        else if (!strcmp(k, "--dump")) B.dump = v;
        else { fprintf(stderr, "bench_first_sms: unknown option %s\n", k); exit(2); }
    }
    if (B.port <= 0 || B.emu_port <= 0 || B.rate <= 0 || B.rate > 100000 || B.duration <= 0 || B.duration > 600 ||
        B.senders <= 0 || B.senders > 4096 || B.drain_s < 1 || B.drain_s > 600 || B.tenants < 1 || B.tenants > 100000 ||
        B.first_caller < 0 || B.first_caller > 9999999 - B.rate * B.duration) {
        fprintf(stderr, "usage: bench_first_sms --port N --emulator-port N [--rate R<=100000] [--duration S<=600]"
                        " [--senders K<=4096] [--drain S] [--first-caller N] [--tenants N] [--pid P] [--public-base URL] [--token T] [--to E164] [--spin-us N<=1000] [--dump FILE]\n");
        exit(2);
    }
    if (B.spin_ns < 0) /* 150 us, at most 2% of the time between calls */
        B.spin_ns = B.rate > 0 && 20000000 / B.rate < 150000 ? 20000000 / B.rate : 150000;
    if (B.spin_ns > 1000000) {
        fprintf(stderr, "bench_first_sms: --spin-us at most 1000\n");
        exit(2);
    }
    if (B.public_base == NULL) {
        snprintf(base, sizeof base, "http://127.0.0.1:%d", B.port);
        B.public_base = base;
    }
}

/* Waits until every answered call has its SMS (or drain_s passes), then a
 * little longer so a late duplicate is still counted. */
static void wait_for_sms(void)
{
    int64_t give_up = now_ns() + (int64_t)B.drain_s * 1000000000;
    for (int i = 0; i < B.ncalls && now_ns() < give_up;) {
        if (B.calls[i].status != 200 || B.calls[i].sms_count > 0) {
            i++;
            continue;
        }
        struct timespec ts = { 0, 10000000 };
        nanosleep(&ts, NULL);
    }
    sleep(1);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    B.ncalls = B.rate * B.duration;
    B.calls = calloc((size_t)B.ncalls, sizeof *B.calls);
    pthread_t emu, snd;
    pthread_create(&emu, NULL, emulator, (void *)(intptr_t)listen_on(B.emu_port));
    B.start_ns = now_ns() + 100000000;
    for (int i = 0; i < B.ncalls; i++)
        B.calls[i].scheduled_ns = B.start_ns + (int64_t)i * 1000000000 / B.rate;
    pthread_create(&snd, NULL, sender, NULL);
    pthread_join(snd, NULL);
    int64_t last = 0;
    for (int i = 0; i < B.ncalls; i++)
        if (B.calls[i].answered_ns > last)
            last = B.calls[i].answered_ns;
    double elapsed = (double)(last - B.start_ns) / 1e9;
    wait_for_sms();
    B.stop = 1;
    pthread_join(emu, NULL);
    report(elapsed);
    free(B.calls);
    return 0;
}
