/* Wall and monotonic clocks, a seedable RNG and random ids (runtime/clock.h).
 * Everything here is used from the loop thread only, except
 * nmc_random_bytes and nmc_clock_mono_ns which are thread-safe. */
#include "runtime/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static int frozen;
static int64_t frozen_ms;

int64_t nmc_clock_now_ms(void)
{
    struct timespec ts;

    if (frozen)
        return frozen_ms;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t nmc_clock_now_ns(void)
{
    struct timespec ts;

    if (frozen)
        return frozen_ms * 1000000;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint64_t nmc_clock_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void nmc_clock_freeze(int64_t ms)
{
    frozen = 1;
    frozen_ms = ms;
}

/* Advancing an unfrozen clock freezes it at now + ms, so a test can start
 * from real time and still step deterministically. */
void nmc_clock_advance(int64_t ms)
{
    int64_t now = nmc_clock_now_ms();

    nmc_clock_freeze(now + ms);
}

void nmc_clock_unfreeze(void)
{
    frozen = 0;
}

/* Floor division so instants before 1970 format as the right day and ms. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Writes v as exactly width decimal digits (v is in range by construction). */
static char *put_digits(char *p, int v, int width)
{
    int i;

    for (i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* Hand-rolled rather than strftime+snprintf: the logger calls this for
 * every line, and fixed-width fields need no format parsing. */
void nmc_clock_format_rfc3339(int64_t ms, char out[32])
{
    int64_t secs = floor_div(ms, 1000);
    int msec = (int)(ms - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    char *p = out;

    if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
        nmc_strlcpy(out, "0000-00-00T00:00:00.000Z", 25);
        return;
    }
    p = put_digits(p, tm.tm_year + 1900, 4);
    *p++ = '-';
    p = put_digits(p, tm.tm_mon + 1, 2);
    *p++ = '-';
    p = put_digits(p, tm.tm_mday, 2);
    *p++ = 'T';
    p = put_digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_sec, 2);
    *p++ = '.';
    p = put_digits(p, msec, 3);
    *p++ = 'Z';
    *p = '\0';
}

/* xoshiro256** (Blackman and Vigna), seeded through splitmix64 as its
 * authors recommend so any 64-bit seed gives a well-mixed, nonzero state. */
static uint64_t rng_state[4];
static int rng_seeded;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void nmc_rng_seed(uint64_t seed)
{
    int i;

    for (i = 0; i < 4; i++)
        rng_state[i] = splitmix64(&seed);
    rng_seeded = 1;
}

uint64_t nmc_rng_next(void)
{
    uint64_t *s = rng_state;
    uint64_t result, t;

    if (!rng_seeded) {
        uint64_t seed;
        nmc_random_bytes(&seed, sizeof(seed));
        nmc_rng_seed(seed);
    }
    result = rotl(s[1] * 5, 7) * 9;
    t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double nmc_rng_unit(void)
{
    /* The top 53 bits fill a double's mantissa exactly: [0,1), never 1. */
    return (double)(nmc_rng_next() >> 11) * 0x1.0p-53;
}

/* getrandom on Linux >= 3.17 never returns short for <= 256 bytes once the
 * pool is initialised; loop anyway for larger requests and EINTR. Without
 * OS randomness ids would repeat, so failing is fatal. */
static void os_random(void *out, size_t n)
{
    unsigned char *p = out;

    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "nmc: getrandom failed: %s\n", strerror(errno));
            abort();
        }
        p += r;
        n -= (size_t)r;
    }
}

/* Per-thread pool of OS randomness: a request needs ~32 random bytes (a
 * correlation id and span ids), and one getrandom per 512 bytes instead of
 * three per request is measurable at 50k requests/s. A fork empties every
 * pool (the child must never replay the parent's bytes). */
#define RANDOM_POOL 512
static _Thread_local unsigned char pool[RANDOM_POOL];
static _Thread_local size_t pool_left;
static _Thread_local unsigned pool_gen;
static unsigned fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    fork_gen++;
    pool_left = 0;
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

void nmc_random_bytes(void *out, size_t n)
{
    unsigned char *p = out;

    pthread_once(&atfork_once, register_atfork);
    if (pool_gen != fork_gen) {
        pool_gen = fork_gen;
        pool_left = 0;
    }
    if (n > RANDOM_POOL / 4) {
        os_random(out, n);
        return;
    }
    while (n > 0) {
        if (pool_left == 0) {
            os_random(pool, sizeof(pool));
            pool_left = sizeof(pool);
        }
        size_t take = n < pool_left ? n : pool_left;
        unsigned char *src = pool + (sizeof(pool) - pool_left);
        memcpy(p, src, take);
        memset(src, 0, take); /* handed-out bytes never stay behind */
        pool_left -= take;
        p += take;
        n -= take;
    }
}

void nmc_id_uuid4(char out[37])
{
    unsigned char b[16];
    char hex[33];

    nmc_random_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    nmc_hex(hex, b, sizeof(b));
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

void nmc_hex(char *out, const void *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = in;
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0x0f];
    }
    out[2 * n] = '\0';
}
