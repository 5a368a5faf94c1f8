/* End to end: kill -9 of nmc in the middle of a 200 calls/s run (owner:
 * sms engineer), with the real nmc binary, PostgreSQL and nmc-fakes.
 *
 * An open-loop generator sends signed voice-status webhooks (no-answer,
 * one distinct caller each) every 5 ms on their own connections; once half
 * of them have been answered 200 (counted, not timed, so a slow sanitizer
 * build on a busy machine kills at the same point), nmc gets SIGKILL while
 * webhooks, outbox claims and Twilio sends are in flight, and the generator
 * keeps going against the dead port. nmc
 * is restarted; every webhook that got no 200 is sent again, as Twilio
 * retries. Then every caller must have exactly one first SMS at nmc-fakes
 * (intents recorded before the crash are reconciled through the Messages
 * list, docs/decisions/ambiguous-sms.md), nothing dead-lettered. */
#include "tests/e2e/first_sms_e2e.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>

#define BUSINESS "+15550004000"
#define NCALLS 400
#define PERIOD_MS 5     /* 200 calls/s */
#define KILL_OK 200     /* SIGKILL when this many webhooks have been answered 200 */
#define RUN_MAX_MS 60000
#define REQ_MAX 2048

struct call {
    char caller[20], sid[40];
    char req[REQ_MAX];
    size_t len, sent;
    char resp[256];
    size_t got;
    int fd;
    int status;         /* HTTP status; -1 no answer */
    int done;
};

static struct call calls[NCALLS];

static void call_build(struct call *c, int i)
{
    snprintf(c->caller, sizeof c->caller, "+1555%07d", 5000000 + i * 7 + (int)(getpid() % 7));
    snprintf(c->sid, sizeof c->sid, "CAcrash%05d%d", i, (int)getpid());
    struct e2e_kv kv[] = { { "AccountSid", "ACtest" }, { "CallSid", c->sid }, { "CallStatus", "no-answer" },
                           { "CallDuration", "0" }, { "Direction", "inbound" }, { "From", c->caller },
                           { "To", BUSINESS } };
    char body[1024], hdr[128];
    e2e_sign("/webhooks/twilio/voice-status", kv, NMC_ARRAY_SIZE(kv), body, sizeof body, hdr);
    int n = snprintf(c->req, sizeof c->req,
                     "POST /webhooks/twilio/voice-status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n"
                     "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n%s",
                     hdr, strlen(body), body);
    assert_true(n > 0 && (size_t)n < sizeof c->req);
    c->len = (size_t)n;
    c->fd = -1;
    c->status = -1;
}

static void call_finish(struct call *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->resp[c->got] = '\0';
    if (sscanf(c->resp, "HTTP/1.1 %d", &c->status) != 1)
        c->status = -1;
    c->done = 1;
}

static void call_start(struct call *c)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)E.nmc.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(c->fd >= 0);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS)
        call_finish(c); /* refused: nmc is down */
}

/* One step of a connection: write what is left, read what came. */
static void call_io(struct call *c, short revents)
{
    if (revents & POLLOUT && c->sent < c->len) {
        ssize_t w = send(c->fd, c->req + c->sent, c->len - c->sent, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) {
            call_finish(c);
            return;
        }
        c->sent += w > 0 ? (size_t)w : 0;
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t r = read(c->fd, c->resp + c->got, sizeof c->resp - 1 - c->got);
        if (r > 0)
            c->got += (size_t)r;
        if (r == 0 || (r < 0 && errno != EAGAIN) || c->got == sizeof c->resp - 1)
            call_finish(c);
    }
}

static int poll_calls(int started)
{
    struct pollfd pfd[NCALLS];
    int idx[NCALLS], n = 0;
    for (int i = 0; i < started; i++) {
        if (calls[i].done || calls[i].fd < 0)
            continue;
        pfd[n] = (struct pollfd){ .fd = calls[i].fd, .events = POLLIN | (calls[i].sent < calls[i].len ? POLLOUT : 0) };
        idx[n++] = i;
    }
    if (n == 0)
        return 0;
    if (poll(pfd, (nfds_t)n, 1) > 0)
        for (int k = 0; k < n; k++)
            if (pfd[k].revents)
                call_io(&calls[idx[k]], pfd[k].revents);
    return n;
}

static int count_ok(int started)
{
    int ok = 0;
    for (int i = 0; i < started; i++)
        ok += calls[i].done && calls[i].status == 200;
    return ok;
}

struct kill_point {
    int killed;
    int ok;         /* webhooks answered 200 when SIGKILL was sent */
    int in_flight;  /* connections started and not yet answered then */
    int started;
};

/* The open-loop run: a call every PERIOD_MS whatever the answers do;
 * SIGKILL once KILL_OK webhooks have been answered 200 (if every call
 * has started by then, the generator waits for the answers), then until
 * every connection has its answer or RUN_MAX_MS. */
static struct kill_point run_load(void)
{
    struct kill_point k = { 0 };
    int64_t t0 = e2e_now_ms();
    int started = 0;
    for (;;) {
        int64_t now = e2e_now_ms();
        while (started < NCALLS && now >= t0 + (int64_t)started * PERIOD_MS)
            call_start(&calls[started++]);
        int open = poll_calls(started);
        if (!k.killed && count_ok(started) >= KILL_OK) {
            k = (struct kill_point){ .killed = 1, .ok = count_ok(started), .started = started };
            for (int i = 0; i < started; i++)
                k.in_flight += !calls[i].done;
            nmc_proc_kill9(&E.nmc);
        }
        if ((k.killed && started == NCALLS && open == 0) || now - t0 > RUN_MAX_MS)
            break;
    }
    for (int i = 0; i < NCALLS; i++)
        if (!calls[i].done)
            call_finish(&calls[i]);
    return k;
}

/* Waits until nmc-fakes holds one message for every caller (or 45 s). */
static json_t *wait_all_sent(void)
{
    int64_t end = e2e_now_ms() + 45000;
    json_t *by_to = e2e_sms_by_to();
    while (json_object_size(by_to) < NCALLS && e2e_now_ms() < end) {
        json_decref(by_to);
        e2e_sleep_ms(200);
        by_to = e2e_sms_by_to();
    }
    return by_to;
}

static void test_first_sms_crash_kill9_mid_run_every_call_gets_one_sms(void **state)
{
    (void)state;
    for (int i = 0; i < NCALLS; i++)
        call_build(&calls[i], i);
    struct kill_point k = run_load();
    int ok = count_ok(NCALLS);
    print_message("crash run: SIGKILL after %d answers, with %d of %d started calls in flight; %d of %d webhooks"
                  " answered 200 in all\n", k.ok, k.in_flight, k.started, ok, NCALLS);
    assert_true(k.killed);              /* nmc answered KILL_OK webhooks within RUN_MAX_MS ... */
    assert_true(ok < NCALLS);           /* ... and the kill cut the run short */
    int64_t before = e2e_sql_int("SELECT count(*) FROM messages WHERE kind = 'first_reply'");
    int64_t sent_before = e2e_sql_int("SELECT count(*) FROM messages WHERE kind = 'first_reply' AND status"
                                      " IN ('pending', 'ambiguous', 'retry')");
    json_t *at_kill = e2e_sms_by_to();
    print_message("crash run: %lld intents recorded, %lld not yet marked accepted at restart, %zu at nmc-fakes\n",
                  (long long)before, (long long)sent_before, json_object_size(at_kill));
    json_decref(at_kill);

    assert_int_equal(nmc_proc_start(&E.nmc, NULL), 0);
    int retried = 0;
    for (int i = 0; i < NCALLS; i++)
        if (calls[i].status != 200) {
            assert_int_equal(e2e_missed_call(calls[i].sid, calls[i].caller, BUSINESS), 200);
            retried++;
        }
    print_message("crash run: %d webhooks retried after the restart\n", retried);

    json_t *by_to = wait_all_sent();
    e2e_sleep_ms(1000); /* late duplicates would show now */
    json_decref(by_to);
    by_to = e2e_sms_by_to();
    int missing = 0, doubled = 0;
    for (int i = 0; i < NCALLS; i++) {
        json_int_t n = json_integer_value(json_object_get(by_to, calls[i].caller));
        missing += n == 0;
        doubled += n > 1;
    }
    print_message("crash run: %zu callers texted, %d missing, %d with more than one SMS\n",
                  json_object_size(by_to), missing, doubled);
    assert_int_equal(missing, 0);
    assert_int_equal(doubled, 0);
    assert_int_equal(json_object_size(by_to), NCALLS);
    json_decref(by_to);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM messages WHERE kind = 'first_reply'"), NCALLS);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM outbox_events_errors"), 0);
    assert_int_equal(e2e_sql_int("SELECT count(*) FROM missed_calls"), NCALLS);
}

static int setup(void **state)
{
    (void)state;
    e2e_setup((const char *const[]){ "--status-callbacks", NULL });
    nmc_proc_setenv(&E.nmc, "NMC_OUTBOX_LEASE_MS", "1000");
    assert_int_equal(nmc_proc_start(&E.nmc, NULL), 0);
    char tenant[40];
    e2e_create_tenant("Crash Plumbing", BUSINESS, "approved", tenant);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    e2e_teardown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_sms_crash_kill9_mid_run_every_call_gets_one_sms),
    };
    return cmocka_run_group_tests_name("e2e_first_sms_crash", tests, setup, teardown);
}
