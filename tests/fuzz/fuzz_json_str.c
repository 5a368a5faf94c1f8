/* Fuzz target: nmc_buf_json_strn, which writes every string nmc puts into
 * JSON by hand (webhook payloads stored as jsonb, log lines, API answers)
 * from bytes that came off the network.
 * Promises checked: the output is one JSON string that jansson parses; when
 * the input is valid UTF-8 without NULs, it parses back to the same bytes;
 * otherwise it is still valid UTF-8 (invalid bytes replaced). And
 * nmc_utf8_valid (the check webhooks' fields pass) agrees with
 * jansson's UTF-8 validation on every input. */
#include "tests/fuzz/fuzz.h"

#include <jansson.h>
#include "runtime/buf.h"
#include "runtime/log.h"
#include "runtime/utf8.h"

static int valid_utf8(const uint8_t *s, size_t n)
{
    json_t *j = json_stringn((const char *)s, n);
    int ok = j != NULL;
    json_decref(j);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nmc_buf b = {0};
    FUZZ_CHECK(nmc_buf_json_strn(&b, (const char *)data, size) == 0);
    json_error_t err;
    json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (j == NULL)
        fprintf(stderr, "not JSON: %s: %.*s\n", err.text, (int)b.len, b.data);
    FUZZ_CHECK(j != NULL && json_is_string(j));
    int valid = valid_utf8(data, size);
    FUZZ_CHECK(nmc_utf8_valid((const char *)data, size) == valid);
    if (valid && memchr(data, 0, size) == NULL) {
        FUZZ_CHECK(json_string_length(j) == size);
        FUZZ_CHECK(size == 0 || memcmp(json_string_value(j), data, size) == 0);
    }
    json_decref(j);
    nmc_buf_free(&b);
    return 0;
}
