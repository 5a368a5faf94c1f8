/* Fuzz target: a tenant's first-reply template, as the admin API receives
 * it. Promises checked: validation answers 0 or NMC_EINVAL with a message;
 * a valid template renders (into any buffer size, NUL-terminated within it)
 * and an invalid one does not; a business name full of braces is copied, not
 * expanded. */
#include "tests/fuzz/fuzz.h"

#include "actors/conversation/conversation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *tpl = fuzz_str(data, size);
    char err[256] = "";
    int rc = nmc_conversation_template_validate(tpl, err, sizeof err);
    FUZZ_CHECK(rc == 0 || (rc == NMC_EINVAL && err[0] != '\0'));
    static const size_t sizes[] = {1, 7, 160, 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *out = malloc(sizes[i]);
        FUZZ_CHECK(out != NULL);
        memset(out, 'x', sizes[i]);
        int r = nmc_conversation_template_render(tpl, "{business_name}{{x}}", "+15550001000", out, sizes[i]);
        FUZZ_CHECK(r == rc);
        if (r == 0)
            FUZZ_CHECK(memchr(out, '\0', sizes[i]) != NULL);
        free(out);
    }
    free(tpl);
    return 0;
}
