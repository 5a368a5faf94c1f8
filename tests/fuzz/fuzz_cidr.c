/* Fuzz target: METRICS_ALLOW_CIDRS and the peer address matched against
 * it. Input: the list, a newline, the address. Promises checked: parsing
 * answers 0 or NMC_EINVAL with a message; matching answers 0 or 1; a list
 * that holds 0.0.0.0/0 and ::/0 matches every address inet_pton reads. */
#include "tests/fuzz/fuzz.h"

#include <arpa/inet.h>
#include "runtime/cidr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *list, *ip;
    fuzz_split(data, size, &list, &ip);
    struct nmc_cidr_list l = {0};
    char err[256] = "";
    int rc = nmc_cidr_list_parse(list, &l, err, sizeof err);
    FUZZ_CHECK(rc == 0 || (rc == NMC_EINVAL && err[0] != '\0'));
    if (rc == 0) {
        int m = nmc_cidr_list_match(&l, ip);
        FUZZ_CHECK(m == 0 || m == 1);
        nmc_cidr_list_free(&l);
    }
    struct nmc_cidr_list all = {0};
    FUZZ_CHECK(nmc_cidr_list_parse("0.0.0.0/0, ::/0", &all, err, sizeof err) == 0);
    unsigned char addr[16];
    if (inet_pton(AF_INET, ip, addr) == 1 || inet_pton(AF_INET6, ip, addr) == 1)
        FUZZ_CHECK(nmc_cidr_list_match(&all, ip) == 1);
    nmc_cidr_list_free(&all);
    free(list);
    free(ip);
    return 0;
}
