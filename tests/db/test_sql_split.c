/* db/sql_split.c: where a ';' ends a statement and where it is only text
 * (comments, strings, identifiers, dollar quotes), and what is blank. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "db/sql_split.h"

/* Splits sql and joins the statements with '|' (blank ones left out). */
static void split(const char *sql, char *out, size_t outlen)
{
    size_t n = strlen(sql), off = 0, k = 0;
    out[0] = '\0';
    while (off < n) {
        size_t len = nmc_sql_statement_len(sql + off, n - off);
        assert_true(len > 0 && len <= n - off);
        if (!nmc_sql_is_blank(sql + off, len))
            k += (size_t)snprintf(out + k, outlen - k, "%s%.*s", k > 0 ? "|" : "", (int)len, sql + off);
        off += len;
    }
}

static void test_sql_split_cases(void **state)
{
    (void)state;
    static const struct {
        const char *sql, *want;
    } cases[] = {
        { "SELECT 1; SELECT 2;", "SELECT 1;| SELECT 2;" },
        { "SELECT 1", "SELECT 1" },                                     /* no ';' at the end */
        { "SELECT 1;\n-- the end; really\n", "SELECT 1;" },             /* a trailing comment runs nothing */
        { "SELECT ';'; SELECT 'it''s;';", "SELECT ';';| SELECT 'it''s;';" },
        { "SELECT E'a\\';b'; SELECT 2;", "SELECT E'a\\';b';| SELECT 2;" }, /* E'' takes backslash escapes */
        { "SELECT 'a\\'; SELECT 2;", "SELECT 'a\\';| SELECT 2;" },        /* a plain string does not */
        { "SELECT 1 AS \"x;\"\"y\"; SELECT 2;", "SELECT 1 AS \"x;\"\"y\";| SELECT 2;" },
        { "/* a; /* nested; */ still; */ SELECT 1; SELECT 2;", "/* a; /* nested; */ still; */ SELECT 1;| SELECT 2;" },
        { "-- x;\nSELECT 1;", "-- x;\nSELECT 1;" },
        { "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$; SELECT 2;",
          "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;| SELECT 2;" },
        { "DO $body$ BEGIN PERFORM 1; RAISE NOTICE '$$;'; END $body$; SELECT 2;",
          "DO $body$ BEGIN PERFORM 1; RAISE NOTICE '$$;'; END $body$;| SELECT 2;" },
        { "PREPARE p AS SELECT $1; SELECT 2;", "PREPARE p AS SELECT $1;| SELECT 2;" }, /* $1 is no quote */
        { "SELECT 1 AS a$b; SELECT 2;", "SELECT 1 AS a$b;| SELECT 2;" },                /* nor a $ in a name */
        { "SELECT 'open; SELECT 2;", "SELECT 'open; SELECT 2;" }, /* unterminated: the rest, for the server */
        { "SELECT $$open; SELECT 2;", "SELECT $$open; SELECT 2;" },
        { ";;", "" }, /* empty statements are blank */
        { "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\nDROP INDEX CONCURRENTLY IF EXISTS j;\n",
          "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);|\nDROP INDEX CONCURRENTLY IF EXISTS j;" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[512];
        split(cases[i].sql, got, sizeof got);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: %s\n got  %s\n want %s", i, cases[i].sql, got, cases[i].want);
    }
}

static void test_sql_split_blank(void **state)
{
    (void)state;
    assert_true(nmc_sql_is_blank("", 0));
    static const char *const blank[] = { " \n\t-- c\n/* d /* e */ */;", ";", "-- only a comment" };
    static const char *const not_blank[] = { " x", "-- c\nSELECT", "/* a */ 1;" };
    for (size_t i = 0; i < sizeof blank / sizeof blank[0]; i++)
        assert_true(nmc_sql_is_blank(blank[i], strlen(blank[i])));
    for (size_t i = 0; i < sizeof not_blank / sizeof not_blank[0]; i++)
        assert_false(nmc_sql_is_blank(not_blank[i], strlen(not_blank[i])));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sql_split_cases),
        cmocka_unit_test(test_sql_split_blank),
    };
    return cmocka_run_group_tests_name("db_sql_split", tests, NULL, NULL);
}
