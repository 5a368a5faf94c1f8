/* actors/identity/admin.c: validation of admin tenant bodies, as a table of
 * inputs and the error each gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "actors/identity/identity.h"

struct row {
    const char *body;
    int creating;
    const char *err_contains; /* NULL: valid */
};

static void check_rows(const struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_error_t je;
        json_t *j = json_loads(rows[i].body, 0, &je);
        assert_non_null(j);
        char err[256] = "";
        int rc = nmc_identity_validate_tenant(j, rows[i].creating, err, sizeof(err));
        if (rows[i].err_contains == NULL) {
            if (rc != 0)
                fail_msg("row %zu: expected valid, got '%s'", i, err);
        } else {
            assert_int_equal(rc, NMC_EINVAL);
            if (strstr(err, rows[i].err_contains) == NULL)
                fail_msg("row %zu: error '%s' lacks '%s'", i, err, rows[i].err_contains);
        }
        json_decref(j);
    }
}

static void test_identity_validate_tenant_create_table(void **state)
{
    static const struct row rows[] = {
        {"{\"name\":\"Acme\",\"timezone\":\"America/New_York\"}", 1, NULL},
        {"{\"name\":\"Acme\",\"timezone\":\"UTC\",\"phone_numbers\":[\"+15550001000\"],"
         "\"compliance_status\":\"approved\"}", 1, NULL},
        {"{\"timezone\":\"UTC\"}", 1, "name is required"},
        {"{\"name\":\"Acme\"}", 1, "timezone is required"},
        {"{\"name\":\"\",\"timezone\":\"UTC\"}", 1, "name must be a non-empty string"},
        {"{\"name\":7,\"timezone\":\"UTC\"}", 1, "name must be"},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"colour\":\"red\"}", 1, "colour"},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"phone_numbers\":[\"5550001000\"]}", 1, "phone_numbers[0] is not an E.164"},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"phone_numbers\":\"+15550001000\"}", 1, "must be an array"},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"phone_numbers\":[\"+15550001000\",\"+15550001000\"]}", 1, "repeats"},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"compliance_status\":\"maybe\"}", 1, "compliance_status must be one of"},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"settings\":[]}", 1, "settings must be an object"},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"settings\":{\"bogus\":1}}", 1, "bogus"},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"settings\":{\"first_reply_template_in_hours\":\"\"}}", 1,
         "first_reply_template_in_hours must be a non-empty string"},
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_identity_validate_tenant_patch_table(void **state)
{
    static const struct row rows[] = {
        {"{\"compliance_status\":\"approved\"}", 0, NULL},
        {"{\"name\":\"New name\"}", 0, NULL},
        {"{}", 0, "nothing to change"},
        {"{\"id\":\"x\"}", 0, "id"},
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_identity_validate_hours_table(void **state)
{
    static const struct row rows[] = {
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"settings\":{\"business_hours\":{\"mon\":[[\"08:00\",\"12:00\"],"
         "[\"13:00\",\"17:00\"]],\"sat\":[]}}}", 1, NULL},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"settings\":{\"business_hours\":{\"mon\":[[\"00:00\",\"24:00\"]]}}}", 1, NULL},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"settings\":{\"business_hours\":{\"monday\":[]}}}", 1, "monday"},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"settings\":{\"business_hours\":{\"mon\":[[\"8:00\",\"17:00\"]]}}}", 1,
         "business_hours.mon[0] must be"},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"settings\":{\"business_hours\":{\"mon\":[[\"17:00\",\"08:00\"]]}}}", 1,
         "increasing"},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"settings\":{\"business_hours\":{\"mon\":[[\"08:00\",\"12:00\"],"
         "[\"11:00\",\"13:00\"]]}}}", 1, "not overlap"},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"settings\":{\"business_hours\":{\"mon\":[[\"08:00\",\"24:30\"]]}}}", 1,
         "must be"},
        {"{\"name\":\"A\",\"timezone\":\"UTC\",\"settings\":{\"business_hours\":{\"tue\":\"9-5\"}}}", 1,
         "business_hours.tue must be an array"},
    };
    check_rows(rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_identity_new_api_key_is_random_and_hashed(void **state)
{
    char k1[64], h1[65], k2[64], h2[65], again[65];
    nmc_identity_new_api_key(k1, h1);
    nmc_identity_new_api_key(k2, h2);
    assert_int_equal(strncmp(k1, "nmc_", 4), 0);
    assert_int_equal(strlen(k1), 52);
    assert_int_equal(strlen(h1), 64);
    assert_string_not_equal(k1, k2);
    assert_string_not_equal(h1, h2);
    nmc_identity_hash_key(k1, again);
    assert_string_equal(h1, again);
    /* Known answer: SHA-256("abc"). */
    nmc_identity_hash_key("abc", again);
    assert_string_equal(again, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_validate_tenant_create_table),
        cmocka_unit_test(test_identity_validate_tenant_patch_table),
        cmocka_unit_test(test_identity_validate_hours_table),
        cmocka_unit_test(test_identity_new_api_key_is_random_and_hashed),
    };
    return cmocka_run_group_tests_name("actors_identity_admin", tests, NULL, NULL);
}
