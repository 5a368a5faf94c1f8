/* Fuzz target: the environment `nmc serve` and `nmc migrate` read
 * (nmc_config_load). Input: lines "NAME=value"; a line whose name is one
 * byte picks the variable of that index, so the fuzzer reaches every one.
 * Promises checked: loading answers 0, or NMC_EINVAL with "NAME: reason"
 * for a variable it was given (the CLI prints it and exits 2); the value of
 * a secret variable never appears in that message quoted, the way messages
 * quote a value ('value'). Checked for values with a '~', which no
 * message's own text has, and not when a value given to a public variable
 * holds it (the message may quote that one, or an element of it): so that
 * a secret that happens to read like part of a message is no false alarm. */
#include "tests/fuzz/fuzz.h"

#include <ctype.h>

#include "runtime/config.h"

#define MAX_VARS 16

struct env {
    const char *names[MAX_VARS];
    char *values[MAX_VARS];
    size_t n;
};

static const char *env_get(const char *name, void *ud)
{
    const struct env *e = ud;
    for (size_t i = e->n; i-- > 0;) /* the last setting of a name wins */
        if (strcmp(e->names[i], name) == 0)
            return e->values[i];
    return NULL;
}

static int is_secret(const struct nmc_config_var *vars, size_t nvars, const char *name)
{
    for (size_t j = 0; j < nvars; j++)
        if (strcmp(vars[j].name, name) == 0)
            return vars[j].secret;
    return 0;
}

/* 1 when s is part of a value given to a variable that is not secret, as
 * the message may quote it ('value'), or quote one trimmed element of it
 * (a list's 'item'): s without its quotes and spaces at either end is then
 * inside that value, as given or as messages show it (control bytes and
 * quotes masked as '?'). */
static int inside_public_value(const struct env *e, const struct nmc_config_var *vars, size_t nvars, const char *s)
{
    size_t b = 0, n = strlen(s);
    while (b < n && (s[b] == '\'' || isspace((unsigned char)s[b])))
        b++;
    while (n > b && (s[n - 1] == '\'' || isspace((unsigned char)s[n - 1])))
        n--;
    char *core = strndup(s + b, n - b);
    FUZZ_CHECK(core != NULL);
    int inside = 0;
    for (size_t i = 0; i < e->n && !inside; i++) {
        if (is_secret(vars, nvars, e->names[i]))
            continue;
        size_t len = strlen(e->values[i]) + 3;
        char *quoted = malloc(len), *shown = strdup(e->values[i]);
        FUZZ_CHECK(quoted != NULL && shown != NULL);
        snprintf(quoted, len, "'%s'", e->values[i]);
        for (char *p = shown; *p; p++) /* as the message shows it (runtime/config.c, set_err) */
            if ((unsigned char)*p < ' ' || *p == 0x7f || *p == '\'')
                *p = '?';
        inside = strstr(quoted, s) != NULL ||
                 (core[0] != '\0' && (strstr(e->values[i], core) != NULL || strstr(shown, core) != NULL));
        free(quoted);
        free(shown);
    }
    free(core);
    return inside;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t nvars;
    const struct nmc_config_var *vars = nmc_config_vars(&nvars);
    struct env e = {.n = 0};
    char *text = fuzz_str(data, size);
    for (char *line = text, *next; line != NULL && e.n < MAX_VARS; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (eq == NULL || eq == line)
            continue;
        *eq = '\0';
        const char *name = NULL;
        if (eq - line == 1) {
            name = vars[(unsigned char)line[0] % nvars].name;
        } else {
            for (size_t i = 0; i < nvars && name == NULL; i++)
                if (strcmp(vars[i].name, line) == 0)
                    name = vars[i].name;
        }
        if (name == NULL)
            continue;
        e.names[e.n] = name;
        e.values[e.n++] = eq + 1;
    }
    struct nmc_config c;
    char err[512] = "";
    int rc = nmc_config_load(&c, env_get, &e, err, sizeof err);
    if (rc == 0) {
        nmc_config_free(&c);
    } else {
        FUZZ_CHECK(rc == NMC_EINVAL);
        const char *colon = strstr(err, ": ");
        FUZZ_CHECK(colon != NULL && colon > err);
        int named = 0;
        for (size_t i = 0; i < nvars && !named; i++)
            named = strlen(vars[i].name) == (size_t)(colon - err) && strncmp(err, vars[i].name, (size_t)(colon - err)) == 0;
        if (!named)
            fprintf(stderr, "message names no variable: %s\n", err);
        FUZZ_CHECK(named);
        for (size_t i = 0; i < e.n; i++) {
            if (!is_secret(vars, nvars, e.names[i]) || strchr(e.values[i], '~') == NULL)
                continue;
            size_t len = strlen(e.values[i]) + 3;
            char *quoted = malloc(len);
            FUZZ_CHECK(quoted != NULL);
            snprintf(quoted, len, "'%s'", e.values[i]);
            if (strstr(err, quoted) != NULL && !inside_public_value(&e, vars, nvars, e.values[i])) {
                fprintf(stderr, "secret %s echoed: %s\n", e.names[i], err);
                FUZZ_CHECK(0);
            }
            free(quoted);
        }
    }
    free(text);
    return 0;
}
