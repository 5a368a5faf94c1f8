#include "tests/support/nmc_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/common.h"

extern char **environ;

int nmc_proc_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

const char *nmc_proc_bin(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("NMC_BUILD_DIR");
    snprintf(buf, len, "%s/%s", dir ? dir : ".", name);
    return buf;
}

void nmc_proc_setenv(struct nmc_proc *p, const char *name, const char *value)
{
    size_t nl = strlen(name);
    char *kv = nmc_xmalloc(nl + strlen(value) + 2);
    snprintf(kv, nl + strlen(value) + 2, "%s=%s", name, value);
    for (int i = 0; i < p->nenv; i++)
        if (strncmp(p->env[i], name, nl) == 0 && p->env[i][nl] == '=') {
            free(p->env[i]);
            p->env[i] = kv;
            return;
        }
    if (p->nenv < NMC_PROC_MAX_ENV - 1)
        p->env[p->nenv++] = kv;
    else
        free(kv);
}

void nmc_proc_init(struct nmc_proc *p, const char *conninfo)
{
    char buf[64];
    memset(p, 0, sizeof(*p));
    p->port = nmc_proc_free_port();
    nmc_proc_setenv(p, "DATABASE_URL", conninfo);
    snprintf(buf, sizeof(buf), "%d", p->port);
    nmc_proc_setenv(p, "PORT", buf);
    nmc_proc_setenv(p, "BIND_ADDR", "127.0.0.1");
    snprintf(buf, sizeof(buf), "http://127.0.0.1:%d", p->port);
    nmc_proc_setenv(p, "PUBLIC_BASE_URL", buf);
    nmc_proc_setenv(p, "ADMIN_API_KEY", "test-admin-key");
    nmc_proc_setenv(p, "METRICS_BASIC_AUTH", "m:m");
    const char *lvl = getenv("NMC_TEST_LOG_LEVEL"); /* debug: the children log spans and SQL timings too */
    nmc_proc_setenv(p, "LOG_LEVEL", lvl != NULL && lvl[0] ? lvl : "info");
    nmc_proc_setenv(p, "TWILIO_ACCOUNT_SID", "ACtest00000000000000000000000000000");
    nmc_proc_setenv(p, "TWILIO_AUTH_TOKEN", "test-auth-token");
    nmc_proc_setenv(p, "OUTBOX_POLL_INTERVAL_MS", "200");
    nmc_proc_setenv(p, "DB_POOL_SIZE", "4");
    const char *keep[] = {"PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "NMC_MIGRATIONS_DIR", "TZ"};
    for (size_t i = 0; i < NMC_ARRAY_SIZE(keep); i++)
        if (getenv(keep[i]) != NULL)
            nmc_proc_setenv(p, keep[i], getenv(keep[i]));
}

static void child_exec(struct nmc_proc *p, const char *const *args, int outfd)
{
    char bin[512];
    const char *argv[32];
    int n = 0;
    argv[n++] = nmc_proc_bin("nmc", bin, sizeof(bin));
    for (int i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    dup2(outfd, 1);
    dup2(outfd, 2);
    p->env[p->nenv] = NULL;
    execve(bin, (char *const *)argv, p->env);
    _exit(127);
}

int nmc_proc_run(struct nmc_proc *p, const char *const *args, char *out, size_t outlen)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child_exec(p, args, fds[1]);
    }
    close(fds[1]);
    size_t used = 0;
    char tmp[4096];
    ssize_t r;
    while ((r = read(fds[0], tmp, sizeof(tmp))) > 0) {
        if (out != NULL && used + 1 < outlen) {
            size_t take = (size_t)r < outlen - used - 1 ? (size_t)r : outlen - used - 1;
            memcpy(out + used, tmp, take);
            used += take;
        }
    }
    if (out != NULL && outlen > 0)
        out[used] = '\0';
    close(fds[0]);
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int nmc_proc_migrate(struct nmc_proc *p, const char *what)
{
    char out[8192];
    int rc;
    if (strcmp(what, "down all") == 0)
        rc = nmc_proc_run(p, (const char *const[]){"migrate", "down", "all", NULL}, out, sizeof(out));
    else
        rc = nmc_proc_run(p, (const char *const[]){"migrate", what, NULL}, out, sizeof(out));
    if (rc != 0)
        fprintf(stderr, "nmc migrate %s exited %d:\n%s\n", what, rc, out);
    return rc;
}

/* 1 when GET path answers 200. */
static int get_ok(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = 0;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
        char req[128], buf[256];
        int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
        if (n > 0 && send(fd, req, (size_t)n, MSG_NOSIGNAL) == (ssize_t)n) {
            ssize_t r = read(fd, buf, sizeof(buf) - 1);
            ok = r > 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0;
        }
    }
    if (fd >= 0)
        close(fd);
    return ok;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int nmc_proc_start(struct nmc_proc *p, const char *role)
{
    const char *dir = getenv("NMC_BUILD_DIR");
    char logdir[400];
    snprintf(logdir, sizeof(logdir), "%s/e2e-logs", dir ? dir : ".");
    mkdir(logdir, 0755);
    snprintf(p->log_path, sizeof(p->log_path), "%s/nmc-%d.log", logdir, p->port);
    int fd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
        return -1;
    p->pid = fork();
    if (p->pid == 0) {
        const char *args[] = {"serve", "--role", role ? role : "all", NULL};
        child_exec(p, args, fd);
    }
    close(fd);
    long deadline = now_ms() + 10000;
    while (now_ms() < deadline) {
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            fprintf(stderr, "nmc exited early (see %s)\n", p->log_path);
            p->pid = 0;
            return -1;
        }
        if (get_ok(p->port, "/readyz"))
            return 0;
        usleep(20000);
    }
    return -1;
}

int nmc_proc_stop(struct nmc_proc *p, int *exit_code, long *elapsed_ms)
{
    if (p->pid <= 0)
        return -1;
    long t0 = now_ms();
    kill(p->pid, SIGTERM);
    int st = 0;
    while (waitpid(p->pid, &st, WNOHANG) == 0) {
        if (now_ms() - t0 > 10000) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            p->pid = 0;
            return -1;
        }
        usleep(5000);
    }
    if (elapsed_ms)
        *elapsed_ms = now_ms() - t0;
    if (exit_code)
        *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    p->pid = 0;
    return 0;
}

void nmc_proc_kill9(struct nmc_proc *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

long nmc_proc_rss_kib(const struct nmc_proc *p)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
    FILE *f = fopen(path, "r");
    long kib = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

void nmc_proc_free(struct nmc_proc *p)
{
    if (p->pid > 0)
        nmc_proc_kill9(p);
    for (int i = 0; i < p->nenv; i++)
        free(p->env[i]);
    p->nenv = 0;
}
