/* Fuzz target: nmc_json_object_strings (runtime/json_scan.h), which reads
 * the members reporting needs from every activity event's payload in place
 * of jansson's json_loads.
 * Promises checked, with jansson 2.14 as the reference on the same bytes
 * (json_loadb, flags 0):
 *   - jansson parses an object  <=>  the scanner accepts, except that the
 *     scanner does not check numbers' range (jansson's "too big integer"
 *     and "real number overflow": then either verdict is allowed), and
 *     that jansson skips a NUL byte right after a number (its reader takes
 *     a pushed-back NUL for an empty buffer) where the scanner rejects every
 *     NUL byte: payloads are PostgreSQL text, which holds none;
 *   - for every member name of that object (each one asked for, plus a few
 *     fixed names), the scanner reports what json_object_get sees: a string
 *     (the same bytes) when it fits the slot, too long when it does not,
 *     absent otherwise. */
#include "tests/fuzz/fuzz.h"

#include <jansson.h>
#include "runtime/common.h"
#include "runtime/json_scan.h"

#define MAX_KEYS 16
#define CAP 24 /* small, so that "too long" is reached often */

static int range_error(const json_error_t *err)
{
    return strstr(err->text, "too big") != NULL || strstr(err->text, "overflow") != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t err;
    json_t *doc = json_loadb((const char *)data, size, 0, &err);
    const char *keys[MAX_KEYS];
    size_t nkeys = 0;
    static const char *const fixed[] = { "tenant_id", "a", "", "detected_at" };
    for (size_t i = 0; i < NMC_ARRAY_SIZE(fixed); i++)
        keys[nkeys++] = fixed[i];
    const char *k;
    json_t *v;
    if (json_is_object(doc)) {
        json_object_foreach(doc, k, v) {
            int dup = 0;
            for (size_t i = 0; i < nkeys; i++)
                dup |= strcmp(keys[i], k) == 0;
            if (!dup && nkeys < MAX_KEYS && strlen(k) < 127)
                keys[nkeys++] = k;
        }
    }
    char vals[MAX_KEYS][CAP];
    enum nmc_json_got got[MAX_KEYS];
    int rc = nmc_json_object_strings((const char *)data, size, keys, nkeys, &vals[0][0], CAP, got);
    if (doc == NULL) {
        FUZZ_CHECK(rc == NMC_EINVAL || range_error(&err));
    } else if (!json_is_object(doc)) {
        FUZZ_CHECK(rc == NMC_EINVAL);
    } else if (rc != 0) {
        FUZZ_CHECK(rc == NMC_EINVAL && memchr(data, '\0', size) != NULL);
    } else {
        for (size_t i = 0; i < nkeys; i++) {
            json_t *j = json_object_get(doc, keys[i]);
            if (!json_is_string(j)) {
                FUZZ_CHECK(got[i] == NMC_JSON_ABSENT);
            } else if (json_string_length(j) >= CAP) {
                FUZZ_CHECK(got[i] == NMC_JSON_TOO_LONG);
            } else {
                FUZZ_CHECK(got[i] == NMC_JSON_STRING);
                FUZZ_CHECK(strlen(vals[i]) == json_string_length(j));
                FUZZ_CHECK(memcmp(vals[i], json_string_value(j), json_string_length(j)) == 0);
            }
        }
    }
    json_decref(doc);
    return 0;
}
