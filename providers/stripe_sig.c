/* Stripe-Signature: HMAC-SHA256 over "<t>.<payload>", hex, with tolerance. */
#include "providers/stripe_sig.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <mbedtls/md.h>
#include "runtime/clock.h"

#define HEX_LEN 64
#define MAX_V1 8

/* hex(HMAC-SHA256(secret, t "." payload)) into hex (65 bytes). */
static int expected_hex(const char *secret, int64_t t, const char *payload, size_t len, char hex[HEX_LEN + 1])
{
    mbedtls_md_context_t md;
    unsigned char mac[32];
    char ts[24];
    int n = snprintf(ts, sizeof(ts), "%" PRId64 ".", t);
    int rc;

    mbedtls_md_init(&md);
    rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
    if (rc == 0)
        rc = mbedtls_md_hmac_starts(&md, (const unsigned char *)secret, strlen(secret));
    if (rc == 0)
        rc = mbedtls_md_hmac_update(&md, (const unsigned char *)ts, (size_t)n);
    if (rc == 0 && len > 0)
        rc = mbedtls_md_hmac_update(&md, (const unsigned char *)payload, len);
    if (rc == 0)
        rc = mbedtls_md_hmac_finish(&md, mac);
    mbedtls_md_free(&md);
    if (rc != 0)
        return NMC_EINVAL;
    nmc_hex(hex, mac, sizeof(mac));
    return 0;
}

struct parsed {
    int64_t t;
    int have_t;
    const char *v1[MAX_V1];
    size_t v1_len[MAX_V1];
    size_t nv1;
};

/* Parses one "key=value" item of length n into p. */
static int parse_item(const char *s, size_t n, struct parsed *p)
{
    char num[24];

    if (n > 2 && strncmp(s, "t=", 2) == 0) {
        if (n - 2 >= sizeof(num))
            return NMC_EPARSE;
        memcpy(num, s + 2, n - 2);
        num[n - 2] = '\0';
        if (nmc_parse_i64(num, 0, INT64_MAX / 2, &p->t) != 0)
            return NMC_EPARSE;
        p->have_t = 1;
    } else if (n > 3 && strncmp(s, "v1=", 3) == 0 && p->nv1 < MAX_V1) {
        p->v1[p->nv1] = s + 3;
        p->v1_len[p->nv1++] = n - 3;
    }
    return 0;
}

static int parse_header(const char *h, struct parsed *p)
{
    memset(p, 0, sizeof(*p));
    while (*h) {
        size_t n = strcspn(h, ",");
        while (n > 0 && *h == ' ') {
            h++;
            n--;
        }
        if (parse_item(h, n, p) != 0)
            return NMC_EPARSE;
        h += n;
        if (*h == ',')
            h++;
    }
    return p->have_t && p->nv1 > 0 ? 0 : NMC_EPARSE;
}

int nmc_prov_stripe_sig_verify(const char *secret, const char *header, const char *payload, size_t len,
                               int64_t tolerance_s)
{
    struct parsed p;
    char want[HEX_LEN + 1];
    int match = 0;
    int64_t now_s;

    if (secret == NULL || *secret == '\0' || header == NULL || (payload == NULL && len > 0))
        return NMC_EINVAL;
    if (parse_header(header, &p) != 0)
        return NMC_EPARSE;
    if (expected_hex(secret, p.t, payload, len, want) != 0)
        return NMC_EINVAL;
    for (size_t i = 0; i < p.nv1; i++)
        match |= nmc_ct_equal(want, HEX_LEN, p.v1[i], p.v1_len[i]);
    if (!match)
        return NMC_EAUTH;
    now_s = nmc_clock_now_ms() / 1000;
    if (tolerance_s > 0 && (p.t < now_s - tolerance_s || p.t > now_s + tolerance_s))
        return NMC_EGONE;
    return 0;
}

int nmc_prov_stripe_sig_sign(const char *secret, int64_t t, const char *payload, size_t len,
                             char out[NMC_PROV_STRIPE_SIG_HEADER_LEN])
{
    char hex[HEX_LEN + 1];

    if (secret == NULL || out == NULL || t < 0 || (payload == NULL && len > 0))
        return NMC_EINVAL;
    if (expected_hex(secret, t, payload, len, hex) != 0)
        return NMC_EINVAL;
    snprintf(out, NMC_PROV_STRIPE_SIG_HEADER_LEN, "t=%" PRId64 ",v1=%s", t, hex);
    return 0;
}
