/* db/errors.c: SQLSTATE to typed error mapping and result accessors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "db/pool.h"
#include "runtime/buf.h"

static void test_db_error_from_sqlstate_constraints(void **state)
{
    (void)state;
    assert_int_equal(nmc_db_error_from_sqlstate("23505"), NMC_EUNIQUE);
    assert_int_equal(nmc_db_error_from_sqlstate("23P01"), NMC_EEXCLUSION);
    assert_int_equal(nmc_db_error_from_sqlstate("23503"), NMC_EFOREIGNKEY);
    assert_int_equal(nmc_db_error_from_sqlstate("23514"), NMC_ECHECK);
    assert_int_equal(nmc_db_error_from_sqlstate("23502"), NMC_ECHECK);
}

static void test_db_error_from_sqlstate_other_integrity_is_db(void **state)
{
    (void)state;
    assert_int_equal(nmc_db_error_from_sqlstate("23000"), NMC_EDB); /* integrity_constraint_violation */
    assert_int_equal(nmc_db_error_from_sqlstate("23001"), NMC_EDB); /* restrict_violation */
}

static void test_db_error_from_sqlstate_serialization(void **state)
{
    (void)state;
    assert_int_equal(nmc_db_error_from_sqlstate("40001"), NMC_ESERIALIZATION);
    assert_int_equal(nmc_db_error_from_sqlstate("40P01"), NMC_ESERIALIZATION);
    assert_int_equal(nmc_db_error_from_sqlstate("40002"), NMC_EDB);
}

static void test_db_error_from_sqlstate_timeout(void **state)
{
    (void)state;
    assert_int_equal(nmc_db_error_from_sqlstate("57014"), NMC_ETIMEDOUT);
}

static void test_db_error_from_sqlstate_connection_class(void **state)
{
    (void)state;
    assert_int_equal(nmc_db_error_from_sqlstate("08000"), NMC_ECONNLOST);
    assert_int_equal(nmc_db_error_from_sqlstate("08006"), NMC_ECONNLOST);
    assert_int_equal(nmc_db_error_from_sqlstate("08P01"), NMC_ECONNLOST);
    assert_int_equal(nmc_db_error_from_sqlstate("57P01"), NMC_ECONNLOST); /* pg_terminate_backend */
    assert_int_equal(nmc_db_error_from_sqlstate("57P02"), NMC_ECONNLOST);
    assert_int_equal(nmc_db_error_from_sqlstate("57P03"), NMC_ECONNLOST);
}

static void test_db_error_from_sqlstate_unknown_is_db(void **state)
{
    (void)state;
    assert_int_equal(nmc_db_error_from_sqlstate("42601"), NMC_EDB); /* syntax error */
    assert_int_equal(nmc_db_error_from_sqlstate("22P02"), NMC_EDB); /* invalid text representation */
    assert_int_equal(nmc_db_error_from_sqlstate("XX000"), NMC_EDB);
}

static void test_db_error_from_sqlstate_malformed_is_db(void **state)
{
    (void)state;
    assert_int_equal(nmc_db_error_from_sqlstate(NULL), NMC_EDB);
    assert_int_equal(nmc_db_error_from_sqlstate(""), NMC_EDB);
    assert_int_equal(nmc_db_error_from_sqlstate("2350"), NMC_EDB);
    assert_int_equal(nmc_db_error_from_sqlstate("235050"), NMC_EDB);
    assert_int_equal(nmc_db_error_from_sqlstate("08"), NMC_EDB);
}

static void test_db_error_from_sqlstate_never_success(void **state)
{
    (void)state;
    /* Whatever the input, a failed statement never maps to success. */
    const char *inputs[] = {"00000", "01000", "02000", "zzzzz", "     "};
    for (size_t i = 0; i < NMC_ARRAY_SIZE(inputs); i++)
        assert_true(nmc_db_error_from_sqlstate(inputs[i]) < 0);
}

/* A result built without a server: two columns, one row, second NULL. */
static PGresult *make_result(void)
{
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc attrs[2] = {{.name = (char *)"a", .format = 0, .typid = 25, .typlen = -1, .atttypmod = -1},
                             {.name = (char *)"b", .format = 0, .typid = 25, .typlen = -1, .atttypmod = -1}};
    assert_int_equal(PQsetResultAttrs(r, 2, attrs), 1);
    assert_int_equal(PQsetvalue(r, 0, 0, (char *)"hello", 5), 1);
    assert_int_equal(PQsetvalue(r, 0, 1, NULL, -1), 1);
    return r;
}

static void test_db_get_values_and_null(void **state)
{
    (void)state;
    PGresult *r = make_result();
    assert_string_equal(nmc_db_get(r, 0, 0), "hello");
    assert_null(nmc_db_get(r, 0, 1));
    PQclear(r);
}

static void test_db_get_out_of_range_is_null(void **state)
{
    (void)state;
    PGresult *r = make_result();
    assert_null(nmc_db_get(r, 1, 0));
    assert_null(nmc_db_get(r, 0, 2));
    assert_null(nmc_db_get(r, -1, 0));
    assert_null(nmc_db_get(r, 0, -1));
    assert_null(nmc_db_get(NULL, 0, 0));
    PQclear(r);
}

/* Row 1 of a two-row result, alone: same columns, values and NULLs. */
static void test_db_result_row_copies_one_row(void **state)
{
    (void)state;
    PGresult *r = make_result();
    assert_int_equal(PQsetvalue(r, 1, 0, NULL, -1), 1);
    assert_int_equal(PQsetvalue(r, 1, 1, (char *)"world", 5), 1);
    PGresult *one = nmc_db_result_row(r, 1);
    assert_non_null(one);
    assert_int_equal(PQntuples(one), 1);
    assert_int_equal(PQnfields(one), 2);
    assert_null(nmc_db_get(one, 0, 0));
    assert_string_equal(nmc_db_get(one, 0, 1), "world");
    PQclear(one);
    assert_null(nmc_db_result_row(r, 2));
    assert_null(nmc_db_result_row(r, -1));
    assert_null(nmc_db_result_row(NULL, 0));
    PQclear(r);
}

/* Array literal elements: quoted, '"' and '\' escaped, NULL bare, commas
 * between elements only. */
static void test_db_array_append_quotes_and_escapes(void **state)
{
    (void)state;
    struct nmc_buf b = { 0 };
    nmc_buf_puts(&b, "{");
    assert_int_equal(nmc_db_array_append(&b, "plain"), 0);
    assert_int_equal(nmc_db_array_append(&b, NULL), 0);
    assert_int_equal(nmc_db_array_append(&b, "say \"hi\", a\\b {x}"), 0);
    assert_int_equal(nmc_db_array_append(&b, ""), 0);
    nmc_buf_puts(&b, "}");
    assert_string_equal(b.data, "{\"plain\",NULL,\"say \\\"hi\\\", a\\\\b {x}\",\"\"}");
    nmc_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_db_error_from_sqlstate_constraints),
        cmocka_unit_test(test_db_error_from_sqlstate_other_integrity_is_db),
        cmocka_unit_test(test_db_error_from_sqlstate_serialization),
        cmocka_unit_test(test_db_error_from_sqlstate_timeout),
        cmocka_unit_test(test_db_error_from_sqlstate_connection_class),
        cmocka_unit_test(test_db_error_from_sqlstate_unknown_is_db),
        cmocka_unit_test(test_db_error_from_sqlstate_malformed_is_db),
        cmocka_unit_test(test_db_error_from_sqlstate_never_success),
        cmocka_unit_test(test_db_get_values_and_null),
        cmocka_unit_test(test_db_get_out_of_range_is_null),
        cmocka_unit_test(test_db_result_row_copies_one_row),
        cmocka_unit_test(test_db_array_append_quotes_and_escapes),
    };
    return cmocka_run_group_tests_name("db_errors", tests, NULL, NULL);
}
