/* Spawns and stops nmc-fakes for tests; see fakes_proc.h. */
#include "tests/support/fakes_proc.h"

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
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/common.h"

#define READY_LINE "nmc-fakes listening on 127.0.0.1:"
#define MAX_ARGS 48

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void child(const char *bin, const char *const *argv, const char *log_path)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    execv(bin, (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
    _exit(127);
}

/* Reads the port from the ready line in the log; 0 while not there yet. */
static int ready_port(const char *log_path)
{
    char buf[4096];
    FILE *fp = fopen(log_path, "r");
    int port = 0;

    if (fp == NULL)
        return 0;
    while (fgets(buf, sizeof(buf), fp) != NULL) {
        const char *p = strstr(buf, READY_LINE);
        int64_t v;
        if (p == NULL)
            continue;
        buf[strcspn(buf, "\r\n")] = '\0';
        if (nmc_parse_i64(p + strlen(READY_LINE), 1, 65535, &v) == 0)
            port = (int)v;
        break;
    }
    fclose(fp);
    return port;
}

static int wait_ready(struct nmc_fakes_proc *f)
{
    for (int i = 0; i < 200; i++) {
        int st;
        if ((f->port = ready_port(f->log_path)) > 0)
            return 0;
        if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
            f->pid = 0;
            return -1;
        }
        sleep_ms(50);
    }
    return -1;
}

static void log_path_for(struct nmc_fakes_proc *f, const char *dir)
{
    static int seq;
    char logdir[480];

    snprintf(logdir, sizeof(logdir), "%s/e2e-logs", dir);
    mkdir(logdir, 0755);
    snprintf(f->log_path, sizeof(f->log_path), "%s/nmc-fakes-%d-%d.log", logdir, (int)getpid(), ++seq);
}

int nmc_fakes_proc_start(struct nmc_fakes_proc *f, int port, const char *const *args)
{
    const char *dir = getenv("NMC_BUILD_DIR");
    const char *argv[MAX_ARGS];
    char bin[512], portbuf[16];
    int n = 0;

    memset(f, 0, sizeof(*f));
    dir = dir ? dir : ".";
    snprintf(bin, sizeof(bin), "%s/nmc-fakes", dir);
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    log_path_for(f, dir);
    argv[n++] = bin;
    argv[n++] = "--port";
    argv[n++] = portbuf;
    for (int i = 0; args != NULL && args[i] != NULL && n < MAX_ARGS - 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    f->pid = fork();
    if (f->pid < 0) {
        f->pid = 0;
        return -1;
    }
    if (f->pid == 0)
        child(bin, argv, f->log_path);
    if (wait_ready(f) != 0) {
        fprintf(stderr, "nmc-fakes did not start; see %s\n", f->log_path);
        nmc_fakes_proc_stop(f);
        return -1;
    }
    snprintf(f->base_url, sizeof(f->base_url), "http://127.0.0.1:%d", f->port);
    return 0;
}

int nmc_fakes_proc_stop(struct nmc_fakes_proc *f)
{
    int st = -1;

    if (f->pid <= 0)
        return -1;
    kill(f->pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
            f->pid = 0;
            return st;
        }
        sleep_ms(50);
    }
    kill(f->pid, SIGKILL);
    waitpid(f->pid, &st, 0);
    f->pid = 0;
    return st;
}

static int connect_to(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {10, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads the whole answer (the request said Connection: close). */
static size_t read_all(int fd, char *buf, size_t len)
{
    size_t used = 0;
    ssize_t r;

    while (used + 1 < len && (r = read(fd, buf + used, len - used - 1)) > 0)
        used += (size_t)r;
    buf[used] = '\0';
    return used;
}

int nmc_fakes_proc_request(const struct nmc_fakes_proc *f, const char *method, const char *path, const char *body,
                           char *out, size_t outlen)
{
    static char resp[1 << 20];
    char head[1024];
    int fd = connect_to(f->port), status = -1, hn;
    const char *sep;
    int64_t code;
    char num[4];

    if (fd < 0)
        return -1;
    hn = snprintf(head, sizeof(head),
                  "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                  "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n",
                  method, path, body ? strlen(body) : 0);
    if (send_all(fd, head, (size_t)hn) == 0 && (body == NULL || send_all(fd, body, strlen(body)) == 0)) {
        read_all(fd, resp, sizeof(resp));
        sep = strstr(resp, "\r\n\r\n");
        if (strncmp(resp, "HTTP/1.1 ", 9) == 0 && sep != NULL) {
            memcpy(num, resp + 9, 3);
            num[3] = '\0';
            if (nmc_parse_i64(num, 100, 599, &code) == 0)
                status = (int)code;
            if (out != NULL && outlen > 0)
                nmc_strlcpy(out, sep + 4, outlen);
        }
    }
    close(fd);
    return status;
}
