/* Fuzz target: the from/to query parameters of the report endpoints. Input:
 * from, a newline, to. Promises checked: 0, or NMC_EINVAL with a message. */
#include "tests/fuzz/fuzz.h"

#include "actors/reporting/reporting.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *from, *to;
    fuzz_split(data, size, &from, &to);
    char err[256] = "";
    int rc = nmc_reporting_parse_range(from, to, err, sizeof err);
    FUZZ_CHECK(rc == 0 || (rc == NMC_EINVAL && err[0] != '\0'));
    if (rc == 0)
        FUZZ_CHECK(strlen(from) == 10 && strlen(to) == 10 && strcmp(from, to) <= 0);
    free(from);
    free(to);
    return 0;
}
