/* Fuzz target: the traceparent header of every request (W3C Trace Context),
 * which becomes the parent of the request's span. Promises checked: parsing
 * answers 0 or an error; a parsed context is valid (ids not all zero) and,
 * formatted back, parses to the same context. */
#include "tests/fuzz/fuzz.h"

#include "runtime/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nmc_trace_ctx ctx, back;
    memset(&ctx, 0xAA, sizeof ctx);
    if (nmc_trace_parse_traceparent((const char *)data, size, &ctx) != 0)
        return 0;
    FUZZ_CHECK(nmc_trace_ctx_valid(&ctx));
    char text[56];
    nmc_trace_format_traceparent(&ctx, text);
    FUZZ_CHECK(memchr(text, '\0', sizeof text) != NULL);
    FUZZ_CHECK(nmc_trace_parse_traceparent(text, strlen(text), &back) == 0);
    FUZZ_CHECK(memcmp(&ctx, &back, sizeof ctx) == 0);
    return 0;
}
