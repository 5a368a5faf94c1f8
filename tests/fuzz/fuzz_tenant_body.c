/* Fuzz target: the JSON body of POST and PATCH /v1/admin/tenants, through
 * the same two steps the handler takes (nmc_json_parse_object, then
 * nmc_identity_validate_tenant). Promises checked: a body is refused with a
 * message or accepted, never anything else; a refused body names the
 * problem. */
#include "tests/fuzz/fuzz.h"

#include <jansson.h>
#include "actors/identity/identity.h"
#include "http/body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    json_t *body = nmc_json_parse_object((const char *)data, size, err, sizeof err);
    if (body == NULL) {
        FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    for (int creating = 0; creating <= 1; creating++) {
        err[0] = '\0';
        int rc = nmc_identity_validate_tenant(body, creating, err, sizeof err);
        FUZZ_CHECK(rc == 0 || (rc == NMC_EINVAL && err[0] != '\0'));
    }
    json_decref(body);
    return 0;
}
