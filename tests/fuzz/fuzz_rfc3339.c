/* Fuzz target: the RFC 3339 date-times of the scheduling API (slot queries,
 * holds, bookings). Promises checked: the parser answers 0 or NMC_EINVAL; a
 * parsed time is within 1970..9999; formatting it in UTC and parsing that
 * gives the same millisecond. */
#include "tests/fuzz/fuzz.h"

#include "actors/scheduling/scheduling.h"
#include "runtime/clock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_str(data, size);
    int64_t ms = -1;
    int rc = nmc_scheduling_parse_rfc3339(s, &ms);
    FUZZ_CHECK(rc == 0 || rc == NMC_EINVAL);
    if (rc == 0) {
        /* the offsets allowed (up to +-23:59) can move a time a day past the
         * years' bounds */
        FUZZ_CHECK(ms >= -86400000LL && ms < 253402387200000LL);
        if (ms >= 0 && ms < 253402300800000LL) {
            char out[32];
            int64_t back = -1;
            nmc_clock_format_rfc3339(ms, out);
            FUZZ_CHECK(nmc_scheduling_parse_rfc3339(out, &back) == 0);
            if (back != ms)
                fprintf(stderr, "%s -> %lld -> %s -> %lld\n", s, (long long)ms, out, (long long)back);
            FUZZ_CHECK(back == ms);
        }
    }
    free(s);
    return 0;
}
