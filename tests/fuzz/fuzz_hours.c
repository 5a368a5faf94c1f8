/* Fuzz target: a tenant's business hours (settings.business_hours), as the
 * admin API receives them, and the in-hours test the first reply runs on
 * them. Input: two bytes that pick the local day and minute, then the JSON.
 * Promises checked: validation answers 0 or NMC_EINVAL with a message; the
 * in-hours test answers 0 or 1 for any document, valid or not, parsed or as
 * text; for a valid document both forms agree. */
#include "tests/fuzz/fuzz.h"

#include <jansson.h>
#include "actors/conversation/conversation.h"
#include "actors/identity/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    char local[16];
    snprintf(local, sizeof local, "%d %02d:%02d", data[0] % 7 + 1, data[1] % 24, (data[0] * 7 + data[1]) % 60);
    char *text = fuzz_str(data + 2, size - 2);
    int in_text = nmc_conversation_in_hours(text, local);
    FUZZ_CHECK(in_text == 0 || in_text == 1);
    json_t *doc = json_loadb(text, size - 2, JSON_DECODE_ANY, NULL);
    if (doc != NULL) {
        char err[256] = "";
        int rc = nmc_identity_validate_hours(doc, err, sizeof err);
        FUZZ_CHECK(rc == 0 || (rc == NMC_EINVAL && err[0] != '\0'));
        int in_doc = nmc_conversation_in_hours_doc(doc, local);
        FUZZ_CHECK(in_doc == 0 || in_doc == 1);
        if (rc == 0)
            FUZZ_CHECK(in_doc == in_text);
        json_decref(doc);
    }
    free(text);
    return 0;
}
