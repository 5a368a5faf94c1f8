/* Unit tests of actors/catalog/match.c: normalization, word-start matching,
 * and the ranking rule of spec 000 section 4.4 (a longer match beats
 * priority, priority beats an exact name). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "actors/catalog/catalog.h"

static void test_catalog_normalize_collapses_case_and_punctuation(void **state)
{
    char out[64];
    assert_int_equal(nmc_catalog_normalize("  No-HOT   water!! ", out, sizeof(out)), 12);
    assert_string_equal(out, "no hot water");
    assert_int_equal(nmc_catalog_normalize("A/C", out, sizeof(out)), 3);
    assert_string_equal(out, "a c");
    assert_int_equal(nmc_catalog_normalize("...", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(nmc_catalog_normalize(NULL, out, sizeof(out)), 0);
    /* non-ASCII bytes are word characters, kept as they are */
    nmc_catalog_normalize("Café Crème", out, sizeof(out));
    assert_string_equal(out, "caf\xc3\xa9 cr\xc3\xa8me");
}

static void test_catalog_normalize_truncates_to_buffer(void **state)
{
    char out[6];
    size_t n = nmc_catalog_normalize("abc def ghi", out, sizeof(out));
    assert_true(n < sizeof(out));
    assert_int_equal(strlen(out), n);
    assert_string_equal(out, "abc d");
}

static size_t match(const char *text, const char *name, const char *const *aliases, size_t n)
{
    char norm[256];
    struct nmc_catalog_entry e = {.id = "1", .name = name, .aliases = aliases, .naliases = n};
    nmc_catalog_normalize(text, norm, sizeof(norm));
    return nmc_catalog_match_entry(&e, norm, NULL);
}

static void test_catalog_match_entry_word_start_rules(void **state)
{
    const char *const clog[] = {"clog"};
    const char *const ac[] = {"AC"};
    const char *const tap[] = {"tap"};
    assert_int_equal(match("my sink is clogged", "Drain cleaning", clog, 1), 4);  /* prefix of a word, >= 4 */
    assert_int_equal(match("I actually need help", "Cooling", ac, 1), 0);        /* short: whole word only */
    assert_int_equal(match("the A/C broke", "Cooling", ac, 1), 0);               /* "a c" is not "ac" */
    assert_int_equal(match("my ac broke", "Cooling", ac, 1), 2);
    assert_int_equal(match("laptop broke", "Faucet", tap, 1), 0);                /* not at a word start */
    assert_int_equal(match("DRAIN CLEANING please", "Drain cleaning", NULL, 0), 14);
    assert_int_equal(match("", "Drain cleaning", clog, 1), 0);
}

static void test_catalog_match_entry_prefers_longest_term_then_name(void **state)
{
    const char *const aliases[] = {"drain", "drain cleaning"};
    char norm[64];
    struct nmc_catalog_entry e = {.id = "1", .name = "Drain Cleaning", .aliases = aliases, .naliases = 2};
    struct nmc_catalog_match m;
    nmc_catalog_normalize("need a drain cleaning", norm, sizeof(norm));
    assert_int_equal(nmc_catalog_match_entry(&e, norm, &m), 14);
    assert_int_equal(m.exact_name, 1); /* the alias of equal length loses to the name */
    assert_string_equal(m.term, "Drain Cleaning");
}

/* Three items: A matches a long alias with low priority, B a short alias
 * with high priority, C and D the same length and priority, C by alias, D
 * by its own name. */
static void test_catalog_rank_length_then_priority_then_exact_name(void **state)
{
    const char *const a_al[] = {"water heater leak"};
    const char *const b_al[] = {"leak"};
    const char *const c_al[] = {"heater"};
    struct nmc_catalog_entry items[] = {
        {.id = "b", .name = "Leak fix", .aliases = b_al, .naliases = 1, .priority = 100},
        {.id = "c", .name = "Boiler", .aliases = c_al, .naliases = 1, .priority = 7},
        {.id = "a", .name = "Water heater service", .aliases = a_al, .naliases = 1, .priority = -5},
        {.id = "d", .name = "Heater", .aliases = NULL, .naliases = 0, .priority = 7},
        {.id = "e", .name = "Roof", .aliases = NULL, .naliases = 0, .priority = 1000},
    };
    struct nmc_catalog_match out[5];
    size_t n = nmc_catalog_rank(items, 5, "My water heater leak is bad", out, 5);
    assert_int_equal(n, 4);                 /* Roof does not match at all */
    assert_string_equal(items[out[0].index].id, "a"); /* 17 chars beats priority 100 */
    assert_int_equal(out[0].match_len, 17);
    assert_string_equal(items[out[1].index].id, "d"); /* 6 chars, priority 7, exact name */
    assert_int_equal(out[1].exact_name, 1);
    assert_string_equal(items[out[2].index].id, "c"); /* 6 chars, priority 7, alias */
    assert_string_equal(items[out[3].index].id, "b"); /* 4 chars: priority 100 does not help */
}

static void test_catalog_rank_priority_beats_exact_name(void **state)
{
    const char *const x_al[] = {"gutter"};
    struct nmc_catalog_entry items[] = {
        {.id = "1", .name = "Gutter", .priority = 0},
        {.id = "2", .name = "Gutter cleaning pro", .aliases = x_al, .naliases = 1, .priority = 1},
    };
    struct nmc_catalog_match out[2];
    assert_int_equal(nmc_catalog_rank(items, 2, "gutter", out, 2), 2);
    assert_string_equal(items[out[0].index].id, "2");
    assert_int_equal(out[0].exact_name, 0);
    assert_string_equal(items[out[1].index].id, "1");
}

static void test_catalog_rank_limits_and_ties_are_stable(void **state)
{
    struct nmc_catalog_entry items[] = {
        {.id = "3", .name = "Paint"}, {.id = "1", .name = "Paint"}, {.id = "2", .name = "Paint"},
    };
    struct nmc_catalog_match out[2];
    assert_int_equal(nmc_catalog_rank(items, 3, "paint", out, 2), 2);
    assert_string_equal(items[out[0].index].id, "1"); /* same everything: by name, then id */
    assert_string_equal(items[out[1].index].id, "2");
    assert_int_equal(nmc_catalog_rank(items, 3, "nothing here", out, 2), 0);
    assert_int_equal(nmc_catalog_rank(items, 0, "paint", out, 2), 0);
    assert_int_equal(nmc_catalog_rank(items, 3, NULL, out, 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog_normalize_collapses_case_and_punctuation),
        cmocka_unit_test(test_catalog_normalize_truncates_to_buffer),
        cmocka_unit_test(test_catalog_match_entry_word_start_rules),
        cmocka_unit_test(test_catalog_match_entry_prefers_longest_term_then_name),
        cmocka_unit_test(test_catalog_rank_length_then_priority_then_exact_name),
        cmocka_unit_test(test_catalog_rank_priority_beats_exact_name),
        cmocka_unit_test(test_catalog_rank_limits_and_ties_are_stable),
    };
    return cmocka_run_group_tests_name("catalog_match", tests, NULL, NULL);
}
