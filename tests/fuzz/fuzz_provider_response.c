/* Fuzz target: what a provider (here Twilio's Messages API) answers: the
 * header block, a blank line, the body; the first byte picks the status.
 * Promises checked: headers are lower-cased and trimmed; the send result is
 * success only for a 2xx whose JSON has a sid and a status, that status is
 * one of Twilio's documented ones (others read "accepted"), and its strings
 * are NUL-terminated within their fields. Any sid is taken as it comes
 * (truncated to fit): refusing an odd one would make an accepted send look
 * ambiguous, and the message is matched by our own id, not by its sid. */
#include "tests/fuzz/fuzz.h"

#include <ctype.h>
#include "providers/http_result.h"
#include "providers/twilio.h"

static const long statuses[] = {201, 200, 400, 401, 404, 429, 500, 503};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    size_t hlen = len;
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(text + i, "\r\n\r\n", 4) == 0) {
            hlen = i + 4;
            break;
        }
    struct nmc_prov_http_result *r = calloc(1, sizeof *r);
    FUZZ_CHECK(r != NULL);
    r->status = statuses[data[0] % 8];
    nmc_prov_http_result_classify(r, CURLE_OK, 0);
    nmc_prov_http_result_parse_headers(r, text, hlen);
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *n = r->headers[i].name, *v = r->headers[i].value;
        FUZZ_CHECK(n != NULL && v != NULL);
        for (const char *p = n; *p; p++)
            FUZZ_CHECK(!isupper((unsigned char)*p));
        size_t vl = strlen(v);
        FUZZ_CHECK(vl == 0 || (v[0] != ' ' && v[0] != '\t' && v[vl - 1] != ' ' && v[vl - 1] != '\t'));
    }
    r->body = fuzz_str((const uint8_t *)text + hlen, len - hlen);
    r->body_len = len - hlen;
    struct nmc_prov_twilio_sms_result out;
    memset(&out, 0xAA, sizeof out);
    nmc_prov_twilio_sms_result_parse(r, &out);
    FUZZ_CHECK(memchr(out.sid, 0, sizeof out.sid) && memchr(out.status, 0, sizeof out.status));
    FUZZ_CHECK(memchr(out.message, 0, sizeof out.message));
    static const char *const known[] = {"accepted", "scheduled", "queued", "sending", "sent", "delivered",
                                        "undelivered", "failed", "canceled", "read"};
    if (out.err == 0) {
        FUZZ_CHECK(r->status >= 200 && r->status < 300 && out.sid[0] != '\0');
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(out.status, known[i]) != 0)
            i++;
        FUZZ_CHECK(i < sizeof known / sizeof known[0]);
    }
    nmc_prov_http_result_free(r);
    return 0;
}
