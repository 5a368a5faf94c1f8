/* Conversation's pure parts: templates, business hours, keywords. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "actors/conversation/conversation.h"

static void test_conversation_template_validate_accepts_known_variables(void **state)
{
    (void)state;
    char err[200];
    assert_int_equal(nmc_conversation_template_validate("Hi from {business_name} ({business_phone}) {{x}}", err,
                                                        sizeof err), 0);
    assert_int_equal(nmc_conversation_template_validate(nmc_conversation_default_in_hours, err, sizeof err), 0);
    assert_int_equal(nmc_conversation_template_validate(nmc_conversation_default_after_hours, err, sizeof err), 0);
    assert_int_equal(nmc_conversation_template_validate("Caf\xc3\xa9 {business_name}\nbye", err, sizeof err), 0);
}

static void test_conversation_template_validate_rejects_with_clear_error(void **state)
{
    (void)state;
    char err[200];
    assert_int_equal(nmc_conversation_template_validate("Hi {first_name}", err, sizeof err), NMC_EINVAL);
    assert_non_null(strstr(err, "unknown variable {first_name}"));
    assert_non_null(strstr(err, "{business_name}"));
    assert_int_equal(nmc_conversation_template_validate("Hi {business_name", err, sizeof err), NMC_EINVAL);
    assert_non_null(strstr(err, "unclosed"));
    assert_int_equal(nmc_conversation_template_validate("Hi }", err, sizeof err), NMC_EINVAL);
    assert_int_equal(nmc_conversation_template_validate("Hi {}", err, sizeof err), NMC_EINVAL);
    assert_int_equal(nmc_conversation_template_validate("   ", err, sizeof err), NMC_EINVAL);
    assert_non_null(strstr(err, "empty"));
    assert_int_equal(nmc_conversation_template_validate(NULL, err, sizeof err), NMC_EINVAL);
    assert_int_equal(nmc_conversation_template_validate("bad \xff utf8", err, sizeof err), NMC_EINVAL);
    assert_int_equal(nmc_conversation_template_validate("tab\there", err, sizeof err), NMC_EINVAL);
    char big[1100];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(nmc_conversation_template_validate(big, err, sizeof err), NMC_EINVAL);
}

static void test_conversation_template_render_substitutes(void **state)
{
    (void)state;
    char out[200];
    assert_int_equal(nmc_conversation_template_render("{business_name} at {business_phone} {{ok}}", "Bob's Plumbing",
                                                      "+15550001000", out, sizeof out), 0);
    assert_string_equal(out, "Bob's Plumbing at +15550001000 {ok}");
    assert_int_equal(nmc_conversation_template_render("{nope}", "a", "b", out, sizeof out), NMC_EINVAL);
}

static void test_conversation_in_hours_cases(void **state)
{
    (void)state;
    const char *h = "{\"mon\": [[\"08:00\", \"12:00\"], [\"13:00\", \"17:00\"]], \"fri\": [[\"22:00\", \"02:00\"]],"
                    " \"sun\": []}";
    assert_int_equal(nmc_conversation_in_hours(h, "1 08:00"), 1);
    assert_int_equal(nmc_conversation_in_hours(h, "1 11:59"), 1);
    assert_int_equal(nmc_conversation_in_hours(h, "1 12:30"), 0);
    assert_int_equal(nmc_conversation_in_hours(h, "1 17:00"), 0);
    assert_int_equal(nmc_conversation_in_hours(h, "1 07:59"), 0);
    assert_int_equal(nmc_conversation_in_hours(h, "2 09:00"), 0); /* tuesday not listed: closed */
    assert_int_equal(nmc_conversation_in_hours(h, "5 23:00"), 1); /* overnight friday */
    assert_int_equal(nmc_conversation_in_hours(h, "6 01:30"), 1); /* ... spills into saturday */
    assert_int_equal(nmc_conversation_in_hours(h, "6 02:00"), 0);
    assert_int_equal(nmc_conversation_in_hours(h, "7 10:00"), 0);
    assert_int_equal(nmc_conversation_in_hours(NULL, "1 03:00"), 1);  /* unknown hours: in hours */
    assert_int_equal(nmc_conversation_in_hours("{}", "1 03:00"), 1);
    assert_int_equal(nmc_conversation_in_hours("not json", "1 03:00"), 1);
    assert_int_equal(nmc_conversation_in_hours(h, "garbage"), 1);
}

/* The parsed form answers as the text form does, on every minute of the week. */
static void test_conversation_in_hours_doc_matches_text(void **state)
{
    (void)state;
    const char *cases[] = {
        "{\"mon\": [[\"08:00\", \"12:00\"], [\"13:00\", \"17:00\"]], \"fri\": [[\"22:00\", \"02:00\"]], \"sun\": []}",
        "{\"sat\": [[\"23:30\", \"00:30\"]], \"tue\": [[\"bad\", \"10:00\"], [\"09:00\"]]}",
        "{}", "[]", "\"closed\"",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *doc = json_loads(cases[i], JSON_DECODE_ANY, NULL);
        assert_non_null(doc);
        for (int d = 1; d <= 7; d++)
            for (int m = 0; m < 24 * 60; m++) {
                char local[8];
                snprintf(local, sizeof local, "%d %02d:%02d", d, m / 60, m % 60);
                assert_int_equal(nmc_conversation_in_hours_doc(doc, local), nmc_conversation_in_hours(cases[i], local));
            }
        json_decref(doc);
    }
    assert_int_equal(nmc_conversation_in_hours_doc(NULL, "1 03:00"), 1); /* no business_hours: in hours */
}

static void test_conversation_keyword_cases(void **state)
{
    (void)state;
    const char *stops[] = { "STOP", "stop", "  Stop \n", "STOPALL", "unsubscribe", "CANCEL", "end", "Quit", "REVOKE",
                            "optout" };
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++)
        assert_int_equal(nmc_conversation_keyword(stops[i]), NMC_KEYWORD_STOP);
    assert_int_equal(nmc_conversation_keyword("start"), NMC_KEYWORD_START);
    assert_int_equal(nmc_conversation_keyword(" UNSTOP"), NMC_KEYWORD_START);
    assert_int_equal(nmc_conversation_keyword("yes"), NMC_KEYWORD_START);
    assert_int_equal(nmc_conversation_keyword("HELP"), NMC_KEYWORD_HELP);
    assert_int_equal(nmc_conversation_keyword("info "), NMC_KEYWORD_HELP);
    assert_int_equal(nmc_conversation_keyword("please stop"), NMC_KEYWORD_NONE);
    assert_int_equal(nmc_conversation_keyword("STOP IT"), NMC_KEYWORD_NONE);
    assert_int_equal(nmc_conversation_keyword(""), NMC_KEYWORD_NONE);
    assert_int_equal(nmc_conversation_keyword(NULL), NMC_KEYWORD_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversation_template_validate_accepts_known_variables),
        cmocka_unit_test(test_conversation_template_validate_rejects_with_clear_error),
        cmocka_unit_test(test_conversation_template_render_substitutes),
        cmocka_unit_test(test_conversation_in_hours_cases),
        cmocka_unit_test(test_conversation_in_hours_doc_matches_text),
        cmocka_unit_test(test_conversation_keyword_cases),
    };
    return cmocka_run_group_tests_name("conversation", tests, NULL, NULL);
}
