/* Module registry: the order in which `nmc serve` initialises modules.
 * Modules are linked in as they land; an init symbol that is not linked
 * is skipped (weak reference), so the list names the whole architecture. */
#include "actors/app.h"

#include <stddef.h>

typedef int (*module_init_cb)(struct nmc_app *app);
typedef void (*module_stop_cb)(struct nmc_app *app);

#define NMC_MODULE(name)                                                                                    \
    int nmc_##name##_init(struct nmc_app *app) __attribute__((weak));                                    \
    void nmc_##name##_stop(struct nmc_app *app) __attribute__((weak));
NMC_MODULE(identity)
NMC_MODULE(outbox)
NMC_MODULE(reporting)
NMC_MODULE(compliance)
NMC_MODULE(conversation)
NMC_MODULE(telephony)
NMC_MODULE(catalog)
NMC_MODULE(scheduling)
NMC_MODULE(maintenance)
#undef NMC_MODULE

struct module {
    const char *name;
    module_init_cb init;
    module_stop_cb stop;
};

#define M(name) { #name, nmc_##name##_init, nmc_##name##_stop }
static const struct module modules[] = {
    M(identity), M(outbox), M(reporting), M(compliance), M(conversation),
    M(telephony), M(catalog), M(scheduling), M(maintenance),
};
#undef M

int nmc_app_init_modules(struct nmc_app *app)
{
    for (size_t i = 0; i < NMC_ARRAY_SIZE(modules); i++) {
        if (modules[i].init == NULL)
            continue;
        int rc = modules[i].init(app);
        if (rc)
            return rc;
    }
    return 0;
}

void nmc_app_stop_modules(struct nmc_app *app)
{
    for (size_t i = NMC_ARRAY_SIZE(modules); i-- > 0;)
        if (modules[i].stop != NULL)
            modules[i].stop(app);
}
