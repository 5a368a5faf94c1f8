/* Fuzz target: an inbound SMS body (anything a caller types), through the
 * opt-out keyword test and the catalog matcher that quotes from it.
 * Promises checked: the keyword is one of the four answers; normalization
 * fits its buffer, is idempotent and has no outer or double spaces; ranking
 * returns matching entries only, at most the number asked for, best first. */
#include "tests/fuzz/fuzz.h"

#include "actors/catalog/catalog.h"
#include "actors/conversation/conversation.h"

static const char *const drain_aliases[] = {"clog", "clogged drain", "slow drain"};
static const char *const ac_aliases[] = {"ac", "a c", "air conditioning"};
static const char *const heater_aliases[] = {"water heater", "no hot water"};
static const struct nmc_catalog_entry entries[] = {
    {.id = "1", .name = "drain cleaning", .aliases = drain_aliases, .naliases = 3, .priority = 1},
    {.id = "2", .name = "ac repair", .aliases = ac_aliases, .naliases = 3, .priority = 2},
    {.id = "3", .name = "water heater install", .aliases = heater_aliases, .naliases = 2, .priority = 0},
    {.id = "4", .name = "x", .aliases = NULL, .naliases = 0, .priority = 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fuzz_str(data, size);
    enum nmc_conversation_keyword k = nmc_conversation_keyword(body);
    FUZZ_CHECK(k == NMC_KEYWORD_NONE || k == NMC_KEYWORD_STOP || k == NMC_KEYWORD_START || k == NMC_KEYWORD_HELP);

    size_t cap = size + 1;
    char *norm = malloc(cap), *again = malloc(cap);
    FUZZ_CHECK(norm != NULL && again != NULL);
    size_t n = nmc_catalog_normalize(body, norm, cap);
    FUZZ_CHECK(n < cap && strlen(norm) == n);
    FUZZ_CHECK(n == 0 || (norm[0] != ' ' && norm[n - 1] != ' '));
    FUZZ_CHECK(strstr(norm, "  ") == NULL);
    FUZZ_CHECK(nmc_catalog_normalize(norm, again, cap) == n && strcmp(norm, again) == 0);
    char tiny[4];
    FUZZ_CHECK(strlen((nmc_catalog_normalize(body, tiny, sizeof tiny), tiny)) < sizeof tiny);

    struct nmc_catalog_match m[3];
    size_t got = nmc_catalog_rank(entries, 4, body, m, 3);
    FUZZ_CHECK(got <= 3);
    for (size_t i = 0; i < got; i++) {
        FUZZ_CHECK(m[i].index < 4 && m[i].match_len > 0 && m[i].term != NULL);
        FUZZ_CHECK(i == 0 || m[i - 1].match_len >= m[i].match_len);
    }
    free(norm);
    free(again);
    free(body);
    return 0;
}
