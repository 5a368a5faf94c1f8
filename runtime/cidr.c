#include "runtime/cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int parse_one(const char *s, size_t len, struct nmc_cidr *out)
{
    char tmp[64];
    if (len == 0 || len >= sizeof(tmp))
        return NMC_EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *slash = strchr(tmp, '/');
    if (slash != NULL)
        *slash = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, tmp, out->addr) == 1) {
        out->family = AF_INET;
        out->prefix = 32;
    } else if (inet_pton(AF_INET6, tmp, out->addr) == 1) {
        out->family = AF_INET6;
        out->prefix = 128;
    } else {
        return NMC_EINVAL;
    }
    if (slash != NULL) {
        int64_t p;
        if (nmc_parse_i64(slash + 1, 0, out->prefix, &p))
            return NMC_EINVAL;
        out->prefix = (int)p;
    }
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

int nmc_cidr_list_parse(const char *s, struct nmc_cidr_list *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *p = s;
    while (*p != '\0') {
        while (is_space(*p) || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *end = p;
        while (*end != '\0' && *end != ',' && !is_space(*end))
            end++;
        struct nmc_cidr c;
        if (parse_one(p, (size_t)(end - p), &c)) {
            snprintf(err, errlen, "not an IP address or CIDR: '%.*s'", (int)(end - p), p);
            nmc_cidr_list_free(out);
            return NMC_EINVAL;
        }
        out->items = nmc_xrealloc(out->items, (out->n + 1) * sizeof(*out->items));
        out->items[out->n++] = c;
        p = end;
    }
    return 0;
}

static int prefix_match(const uint8_t *a, const uint8_t *b, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

int nmc_cidr_list_match(const struct nmc_cidr_list *l, const char *ip)
{
    uint8_t a4[4], a6[16];
    int have4 = inet_pton(AF_INET, ip, a4) == 1;
    int have6 = !have4 && inet_pton(AF_INET6, ip, a6) == 1;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (have6 && memcmp(a6, mapped, 12) == 0) {
        memcpy(a4, a6 + 12, 4);
        have4 = 1;
    }
    for (size_t i = 0; i < l->n; i++) {
        const struct nmc_cidr *c = &l->items[i];
        if (c->family == AF_INET && have4 && prefix_match(a4, c->addr, c->prefix))
            return 1;
        if (c->family == AF_INET6 && have6 && prefix_match(a6, c->addr, c->prefix))
            return 1;
    }
    return 0;
}

void nmc_cidr_list_free(struct nmc_cidr_list *l)
{
    if (l == NULL)
        return;
    free(l->items);
    l->items = NULL;
    l->n = 0;
}
