/* IPv4/IPv6 CIDR lists, for the /metrics allow-list (METRICS_ALLOW_CIDRS). */
#ifndef NMC_RUNTIME_CIDR_H
#define NMC_RUNTIME_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include "runtime/common.h"

struct nmc_cidr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    int prefix;
};

struct nmc_cidr_list {
    struct nmc_cidr *items;
    size_t n;
};

/* Parses "10.0.0.0/8, ::1/128, 127.0.0.1" (a bare address is a /32 or
 * /128). 0 or NMC_EINVAL with the offending entry named in err. */
NMC_MUST_CHECK int nmc_cidr_list_parse(const char *s, struct nmc_cidr_list *out, char *err, size_t errlen);
/* 1 when the textual address ip falls in any entry; IPv4-mapped IPv6
 * addresses (::ffff:a.b.c.d) match IPv4 entries. */
int nmc_cidr_list_match(const struct nmc_cidr_list *l, const char *ip);
void nmc_cidr_list_free(struct nmc_cidr_list *l);

#endif
