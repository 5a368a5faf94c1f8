/* Tests for runtime/clock.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/clock.h"

static void test_clock_now_ms_tracks_real_time(void **state)
{
    int64_t a = nmc_clock_now_ms();
    int64_t ns = nmc_clock_now_ns();

    assert_true(a > 1700000000000LL); /* after 2023-11 */
    assert_true(ns / 1000000 >= a);
    assert_true(ns / 1000000 - a < 5000);
}

static void test_clock_freeze_advance_unfreeze(void **state)
{
    nmc_clock_freeze(1000);
    assert_int_equal(nmc_clock_now_ms(), 1000);
    assert_int_equal(nmc_clock_now_ns(), 1000000000LL);
    nmc_clock_advance(250);
    assert_int_equal(nmc_clock_now_ms(), 1250);
    nmc_clock_advance(-50);
    assert_int_equal(nmc_clock_now_ms(), 1200);
    nmc_clock_unfreeze();
    assert_true(nmc_clock_now_ms() > 1700000000000LL);
}

static void test_clock_mono_ns_never_goes_back_nor_freezes(void **state)
{
    uint64_t a, b;
    struct timespec ts = {0, 2000000};

    nmc_clock_freeze(0);
    a = nmc_clock_mono_ns();
    nanosleep(&ts, NULL);
    b = nmc_clock_mono_ns();
    nmc_clock_unfreeze();
    assert_true(b - a >= 2000000u);
}

static void test_clock_format_rfc3339_utc_ms(void **state)
{
    char out[32];

    nmc_clock_format_rfc3339(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    nmc_clock_format_rfc3339(1795428000123LL, out);
    assert_string_equal(out, "2026-11-23T10:00:00.123Z");
    nmc_clock_format_rfc3339(951782400999LL, out); /* leap day 2000 */
    assert_string_equal(out, "2000-02-29T00:00:00.999Z");
    nmc_clock_format_rfc3339(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    assert_int_equal(strlen(out), 24);
    nmc_clock_format_rfc3339(INT64_MAX, out);
    assert_int_equal(strlen(out), 24);
}

static void test_clock_rng_seed_known_answer(void **state)
{
    /* Computed with a reference xoshiro256** + splitmix64 seeding. */
    nmc_rng_seed(42);
    assert_true(nmc_rng_next() == 0x15780b2e0c2ec716ULL);
    assert_true(nmc_rng_next() == 0x6104d9866d113a7eULL);
    assert_true(nmc_rng_next() == 0xae17533239e499a1ULL);
    nmc_rng_seed(42);
    assert_true(nmc_rng_next() == 0x15780b2e0c2ec716ULL);
}

static void test_clock_rng_unit_in_range(void **state)
{
    double sum = 0;
    int i;

    nmc_rng_seed(7);
    for (i = 0; i < 10000; i++) {
        double d = nmc_rng_unit();
        assert_true(d >= 0.0 && d < 1.0);
        sum += d;
    }
    assert_true(sum / 10000 > 0.45 && sum / 10000 < 0.55);
}

static void test_clock_random_bytes_differ(void **state)
{
    unsigned char a[32] = {0}, b[32] = {0}, big[1000];

    nmc_random_bytes(a, sizeof(a));
    nmc_random_bytes(b, sizeof(b));
    assert_memory_not_equal(a, b, sizeof(a));
    nmc_random_bytes(big, sizeof(big));
    nmc_random_bytes(big, 0);
}

static void test_clock_uuid4_format(void **state)
{
    char a[37], b[37];
    int i;

    nmc_id_uuid4(a);
    nmc_id_uuid4(b);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", a[i]));
    }
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
}

static void test_clock_hex_lowercase(void **state)
{
    char out[9];
    const unsigned char in[4] = {0x00, 0xab, 0x1f, 0xff};

    nmc_hex(out, in, 4);
    assert_string_equal(out, "00ab1fff");
    nmc_hex(out, in, 0);
    assert_string_equal(out, "");
}

/* The random pool is per process: a forked child must not hand out the
 * bytes its parent will hand out next. */
static void test_clock_random_bytes_fork_child_differs(void **state)
{
    unsigned char warm[8], parent[32], child[32];
    int fds[2];

    nmc_random_bytes(warm, sizeof(warm)); /* the pool now holds unused bytes */
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        nmc_random_bytes(child, sizeof(child));
        ssize_t w = write(fds[1], child, sizeof(child));
        _exit(w == (ssize_t)sizeof(child) ? 0 : 1);
    }
    close(fds[1]);
    nmc_random_bytes(parent, sizeof(parent));
    assert_int_equal(read(fds[0], child, sizeof(child)), (ssize_t)sizeof(child));
    close(fds[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_memory_not_equal(parent, child, sizeof(parent));
}

/* Many small draws cross pool refills and stay distinct. */
static void test_clock_random_bytes_across_refills(void **state)
{
    unsigned char a[16], b[16];
    nmc_random_bytes(a, sizeof(a));
    for (int i = 0; i < 200; i++) {
        nmc_random_bytes(b, sizeof(b));
        assert_memory_not_equal(a, b, sizeof(a));
        memcpy(a, b, sizeof(a));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock_now_ms_tracks_real_time),
        cmocka_unit_test(test_clock_freeze_advance_unfreeze),
        cmocka_unit_test(test_clock_mono_ns_never_goes_back_nor_freezes),
        cmocka_unit_test(test_clock_format_rfc3339_utc_ms),
        cmocka_unit_test(test_clock_rng_seed_known_answer),
        cmocka_unit_test(test_clock_rng_unit_in_range),
        cmocka_unit_test(test_clock_random_bytes_differ),
        cmocka_unit_test(test_clock_random_bytes_fork_child_differs),
        cmocka_unit_test(test_clock_random_bytes_across_refills),
        cmocka_unit_test(test_clock_uuid4_format),
        cmocka_unit_test(test_clock_hex_lowercase),
    };
    return cmocka_run_group_tests_name("runtime_clock", tests, NULL, NULL);
}
