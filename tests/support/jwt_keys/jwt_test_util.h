/* Test helpers for tests/providers/test_jwt.c and test_jwks.c. Owner: jwt
 * engineer. One python co-process (tests/support/jwt_keys/jwtgen.py serve)
 * generates key material into a fresh temporary directory, signs tokens on
 * request with PyJWT / cryptography / hmac, and deletes the keys when its
 * input closes (so also when the test dies). Header-only (static inline):
 * every C file of tests/support is linked into every test, and only these
 * two tests need python.
 *
 * The interpreter is $NMC_PYTHON, else /usr/bin/python3 (Debian's, which has
 * python3-jwt; a pyenv "python3" first in PATH usually does not), else
 * python3 from PATH. */
#ifndef NMC_TESTS_JWT_TEST_UTIL_H
#define NMC_TESTS_JWT_TEST_UTIL_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <jansson.h>
#include "runtime/buf.h"
#include "runtime/common.h"

#define JT_SCRIPT NMC_SOURCE_DIR "/tests/support/jwt_keys/jwtgen.py"

struct jt_py {
    pid_t pid;
    FILE *to;      /* requests */
    FILE *from;    /* answers */
    char dir[64];  /* the key directory */
};

static inline const char *jt_python(void)
{
    const char *py = getenv("NMC_PYTHON");

    if (py != NULL && py[0] != '\0')
        return py;
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

/* Reads one answer line into a malloc'd string without its newline. */
static inline char *jt_read_line(struct jt_py *py)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, py->from);

    if (n <= 0) {
        free(line);
        return NULL;
    }
    if (line[n - 1] == '\n')
        line[n - 1] = '\0';
    return line;
}

static inline void jt_exec_child(struct jt_py *py, int in[2], int out[2])
{
    const char *python = jt_python();

    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    execlp(python, python, JT_SCRIPT, "serve", py->dir, (char *)NULL);
    _exit(127);
}

/* Starts the co-process and waits until its keys exist. 0 or -1. */
static inline int jt_start(struct jt_py *py)
{
    int in[2], out[2];
    char *ready;

    memset(py, 0, sizeof(*py));
    signal(SIGPIPE, SIG_IGN); /* a dead co-process must fail a test, not kill it */
    nmc_strlcpy(py->dir, "/tmp/nmc-jwt-test-XXXXXX", sizeof(py->dir));
    if (mkdtemp(py->dir) == NULL || pipe(in) != 0)
        return -1;
    if (pipe(out) != 0)
        return -1;
    py->pid = fork();
    if (py->pid == 0)
        jt_exec_child(py, in, out);
    close(in[0]);
    close(out[1]);
    py->to = fdopen(in[1], "w");
    py->from = fdopen(out[0], "r");
    ready = jt_read_line(py);
    if (ready == NULL || strcmp(ready, "ready") != 0)
        fprintf(stderr, "%s serve did not start (python3-jwt and python3-cryptography needed)\n", JT_SCRIPT);
    free(ready);
    return py->pid > 0 && ready != NULL ? 0 : -1;
}

/* Closes the co-process's input: it removes the keys and exits. */
static inline void jt_stop(struct jt_py *py)
{
    int st;

    if (py->to != NULL)
        fclose(py->to);
    if (py->pid > 0)
        waitpid(py->pid, &st, 0);
    if (py->from != NULL)
        fclose(py->from);
    memset(py, 0, sizeof(*py));
}

/* Signs a token; see jwtgen.py for the fields. headers and header may be
 * NULL. Returns the token (caller frees) or NULL, with the reason on stderr. */
static inline char *jt_sign(struct jt_py *py, const char *key, const char *alg, const char *headers,
                            const char *header, const char *claims)
{
    json_t *req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "key", key, "alg", alg, "claims", claims, "headers",
                            headers != NULL ? headers : "{}", "header", header != NULL ? header : "");
    char *line = json_dumps(req, JSON_COMPACT), *answer = NULL;

    json_decref(req);
    if (line != NULL && fprintf(py->to, "%s\n", line) > 0 && fflush(py->to) == 0)
        answer = jt_read_line(py);
    free(line);
    if (answer != NULL && strncmp(answer, "error:", 6) == 0) {
        fprintf(stderr, "jwtgen.py: %s\n", answer);
        free(answer);
        answer = NULL;
    }
    return answer;
}

/* Reads <dir>/<name>.jwk.json (caller frees) or NULL. */
static inline char *jt_read_jwk(const struct jt_py *py, const char *name)
{
    char path[256];
    struct nmc_buf out = {0};
    char chunk[4096];
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.jwk.json", py->dir, name);
    f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        (void)nmc_buf_append(&out, chunk, n);
    fclose(f);
    return nmc_buf_steal(&out, NULL);
}

#endif
