/* Telephony's pure parts: the missed-call classification table (E.164 is
 * nmc_is_e164, tested in tests/runtime/test_common.c) and the order of a
 * batch's statements. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "actors/telephony/telephony.h"

struct row {
    const char *status, *duration;
    int treat_short, short_max;
    enum nmc_telephony_class want;
};

static void test_telephony_classify_table(void **state)
{
    (void)state;
    static const struct row rows[] = {
        { "no-answer", "0", 0, 10, NMC_TELEPHONY_MISSED },
        { "busy", NULL, 0, 10, NMC_TELEPHONY_MISSED },
        { "failed", "", 0, 10, NMC_TELEPHONY_MISSED },
        { "completed", "3", 0, 10, NMC_TELEPHONY_NOT_MISSED },
        { "completed", "3", 1, 10, NMC_TELEPHONY_MISSED },
        { "completed", "10", 1, 10, NMC_TELEPHONY_MISSED },
        { "completed", "11", 1, 10, NMC_TELEPHONY_NOT_MISSED },
        { "completed", NULL, 1, 10, NMC_TELEPHONY_MISSED },
        { "completed", "abc", 1, 10, NMC_TELEPHONY_INVALID },
        { "completed", "-1", 1, 10, NMC_TELEPHONY_INVALID },
        { "ringing", NULL, 1, 10, NMC_TELEPHONY_NOT_MISSED },
        { "in-progress", NULL, 0, 10, NMC_TELEPHONY_NOT_MISSED },
        { "canceled", NULL, 0, 10, NMC_TELEPHONY_NOT_MISSED },
        { "NO-ANSWER", NULL, 0, 10, NMC_TELEPHONY_INVALID },
        { NULL, NULL, 0, 10, NMC_TELEPHONY_INVALID },
        { "bogus", NULL, 0, 10, NMC_TELEPHONY_INVALID },
        /* a duration that is not whole seconds is refused whatever the status
         * (found by tests/e2e/test_bad_input.c: it reached the database) */
        { "no-answer", "NaN", 0, 10, NMC_TELEPHONY_INVALID },
        { "busy", "-1", 0, 10, NMC_TELEPHONY_INVALID },
        { "ringing", "1.5", 0, 10, NMC_TELEPHONY_INVALID },
        { "failed", "99999999999999999999", 0, 10, NMC_TELEPHONY_INVALID },
        { "no-answer", " ", 0, 10, NMC_TELEPHONY_INVALID },
        { "no-answer", "604800", 0, 10, NMC_TELEPHONY_MISSED },
        { "no-answer", "604801", 0, 10, NMC_TELEPHONY_INVALID },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        enum nmc_telephony_class got = nmc_telephony_classify(r->status, r->duration, r->treat_short, r->short_max);
        if (got != r->want)
            fail_msg("row %zu (%s, %s, treat_short=%d): got %d want %d", i, r->status ? r->status : "NULL",
                     r->duration ? r->duration : "NULL", r->treat_short, got, r->want);
    }
}

/* Status callbacks by message id whatever their keys, so that two batches
 * update the messages they share in one order; other webhooks (no message
 * id) first, by key; one message's callbacks by key. */
static void test_telephony_stmt_order(void **state)
{
    (void)state;
    const char *m1 = "0190a000-0000-7000-8000-000000000001", *m2 = "0190a000-0000-7000-8000-000000000002";
    assert_true(nmc_telephony_stmt_order(m1, "SMb:delivered", m2, "SMa:sent") < 0);
    assert_true(nmc_telephony_stmt_order(m2, "SMa:sent", m1, "SMb:delivered") > 0);
    assert_true(nmc_telephony_stmt_order(m1, "SMa:sent", m1, "SMa:delivered") > 0);
    assert_int_equal(nmc_telephony_stmt_order(m1, "SMa:sent", m1, "SMa:sent"), 0);
    assert_true(nmc_telephony_stmt_order(NULL, "zz", m1, "aa") < 0);
    assert_true(nmc_telephony_stmt_order(NULL, "CA2:no-answer", NULL, "CA1:no-answer") > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_telephony_classify_table),
        cmocka_unit_test(test_telephony_stmt_order),
    };
    return cmocka_run_group_tests_name("telephony", tests, NULL, NULL);
}
