/* Blocking raw-socket HTTP/1.1 test client (tests/support/http_client.h). */
#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RESPONSE (64 * 1024 * 1024)

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    int64_t left;
    int rc;

    for (;;) {
        left = deadline - now_ms();
        if (left < 0)
            left = 0;
        rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

int nmc_test_http_connect(struct nmc_test_http_conn *c, int port, int timeout_ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1, err = 0, rc;
    socklen_t elen = sizeof(err);

    signal(SIGPIPE, SIG_IGN);
    memset(c, 0, sizeof(*c));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        rc = -errno;
        goto fail;
    }
    if ((rc = wait_fd(c->fd, POLLOUT, now_ms() + timeout_ms)) != 0)
        goto fail;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err) {
        rc = -err;
        goto fail;
    }
    return 0;
fail:
    close(c->fd);
    c->fd = -1;
    return rc;
}

int nmc_test_http_send(struct nmc_test_http_conn *c, const void *data, size_t len)
{
    const char *p = data;
    int64_t deadline = now_ms() + 10000;
    ssize_t n;
    int rc;

    while (len > 0) {
        n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return -errno;
        if ((rc = wait_fd(c->fd, POLLOUT, deadline)) != 0)
            return rc;
    }
    return 0;
}

int nmc_test_http_send_str(struct nmc_test_http_conn *c, const char *s)
{
    return nmc_test_http_send(c, s, strlen(s));
}

/* Reads more bytes into the buffer: >0 bytes read, 0 on EOF, or -errno. */
static int fill(struct nmc_test_http_conn *c, int64_t deadline)
{
    ssize_t n;
    int rc;

    if (c->cap - c->len < 16384) {
        c->cap = c->cap ? c->cap * 2 : 65536;
        c->buf = realloc(c->buf, c->cap);
        if (!c->buf)
            abort();
    }
    for (;;) {
        n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
        if (n >= 0) {
            c->len += (size_t)n;
            c->buf[c->len] = '\0';
            return (int)n;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return errno == ECONNRESET ? -ECONNRESET : -errno;
        if ((rc = wait_fd(c->fd, POLLIN, deadline)) != 0)
            return rc;
    }
}

/* Makes sure at least need bytes are buffered. */
static int need(struct nmc_test_http_conn *c, size_t n, int64_t deadline)
{
    int rc;

    while (c->len < n) {
        if (n > MAX_RESPONSE)
            return -EPROTO;
        rc = fill(c, deadline);
        if (rc == 0)
            return -ECONNRESET;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static char *find_crlf(struct nmc_test_http_conn *c, size_t from)
{
    size_t i;

    for (i = from; i + 1 < c->len; i++)
        if (c->buf[i] == '\r' && c->buf[i + 1] == '\n')
            return c->buf + i;
    return NULL;
}

/* Waits for a CRLF at or after from; returns its offset. */
static int need_line(struct nmc_test_http_conn *c, size_t from, int64_t deadline, size_t *at)
{
    char *crlf;
    int rc;

    while (!(crlf = find_crlf(c, from))) {
        rc = fill(c, deadline);
        if (rc == 0)
            return -ECONNRESET;
        if (rc < 0)
            return rc;
        if (c->len > MAX_RESPONSE)
            return -EPROTO;
    }
    *at = (size_t)(crlf - c->buf);
    return 0;
}

static char *trimdup(const char *s, size_t n)
{
    char *out;

    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    out = malloc(n + 1);
    if (!out)
        abort();
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

static int parse_head(struct nmc_test_http_resp *r, const char *head, size_t len)
{
    const char *line = head, *end = head + len, *eol, *colon;
    char code[4];

    eol = strstr(line, "\r\n");
    if (!eol || eol - line < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ')
        return -EPROTO;
    r->minor = line[7] - '0';
    memcpy(code, line + 9, 3);
    code[3] = '\0';
    r->status = (int)strtol(code, NULL, 10);
    r->reason = trimdup(line + 12, (size_t)(eol - line - 12));
    for (line = eol + 2; line < end; line = eol + 2) {
        eol = strstr(line, "\r\n");
        if (!eol || eol == line)
            break;
        colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon)
            return -EPROTO;
        r->headers = realloc(r->headers, (r->nheaders + 1) * sizeof(*r->headers));
        if (!r->headers)
            abort();
        r->headers[r->nheaders].name = trimdup(line, (size_t)(colon - line));
        r->headers[r->nheaders].value = trimdup(colon + 1, (size_t)(eol - colon - 1));
        r->nheaders++;
    }
    return 0;
}

static void consume(struct nmc_test_http_conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static void set_body(struct nmc_test_http_resp *r, const char *data, size_t n)
{
    r->body = malloc(n + 1);
    if (!r->body)
        abort();
    memcpy(r->body, data, n);
    r->body[n] = '\0';
    r->body_len = n;
}

/* Decodes a chunked body that starts at the front of the buffer. */
static int read_chunked(struct nmc_test_http_conn *c, struct nmc_test_http_resp *r, int64_t deadline)
{
    size_t pos = 0, at, size, out_len = 0;
    char *out = NULL, *endp;
    int rc;

    for (;;) {
        if ((rc = need_line(c, pos, deadline, &at)) != 0)
            goto out;
        size = (size_t)strtoul(c->buf + pos, &endp, 16);
        if (endp == c->buf + pos) {
            rc = -EPROTO;
            goto out;
        }
        pos = at + 2;
        if (size == 0)
            break;
        if ((rc = need(c, pos + size + 2, deadline)) != 0)
            goto out;
        out = realloc(out, out_len + size + 1);
        if (!out)
            abort();
        memcpy(out + out_len, c->buf + pos, size);
        out_len += size;
        pos += size + 2;
    }
    do { /* trailers up to the empty line */
        if ((rc = need_line(c, pos, deadline, &at)) != 0)
            goto out;
        size = at - pos;
        pos = at + 2;
    } while (size > 0);
    set_body(r, out ? out : "", out_len);
    consume(c, pos);
out:
    free(out);
    return rc;
}

static int read_body(struct nmc_test_http_conn *c, struct nmc_test_http_resp *r, int64_t deadline)
{
    const char *cl = nmc_test_http_resp_header(r, "content-length");
    const char *te = nmc_test_http_resp_header(r, "transfer-encoding");
    size_t n;
    int rc;

    if (r->status < 200 || r->status == 204 || r->status == 304) {
        set_body(r, "", 0);
        return 0;
    }
    if (te && strcasecmp(te, "chunked") == 0)
        return read_chunked(c, r, deadline);
    if (cl) {
        n = (size_t)strtoull(cl, NULL, 10);
        if ((rc = need(c, n, deadline)) != 0)
            return rc;
    } else {
        while ((rc = fill(c, deadline)) > 0)
            ;
        if (rc < 0 && rc != -ECONNRESET)
            return rc;
        n = c->len;
    }
    set_body(r, c->buf, n);
    consume(c, n);
    return 0;
}

static int read_response(struct nmc_test_http_conn *c, int timeout_ms, int head, struct nmc_test_http_resp *out)
{
    int64_t deadline = now_ms() + timeout_ms;
    size_t at = 0;
    char *end;
    int rc;

    memset(out, 0, sizeof(*out));
    while (!(end = c->len >= 4 ? strstr(c->buf, "\r\n\r\n") : NULL)) {
        if (c->len > MAX_RESPONSE)
            return -EPROTO;
        rc = fill(c, deadline);
        if (rc == 0)
            return -ECONNRESET;
        if (rc < 0)
            return rc;
    }
    at = (size_t)(end - c->buf) + 4;
    if ((rc = parse_head(out, c->buf, at)) != 0)
        goto fail;
    consume(c, at);
    if (head)
        set_body(out, "", 0);
    else if ((rc = read_body(c, out, deadline)) != 0)
        goto fail;
    return 0;
fail:
    nmc_test_http_resp_free(out);
    return rc;
}

int nmc_test_http_read(struct nmc_test_http_conn *c, int timeout_ms, struct nmc_test_http_resp *out)
{
    return read_response(c, timeout_ms, 0, out);
}

int nmc_test_http_read_head(struct nmc_test_http_conn *c, int timeout_ms, struct nmc_test_http_resp *out)
{
    return read_response(c, timeout_ms, 1, out);
}

int nmc_test_http_wait_close(struct nmc_test_http_conn *c, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    int rc;

    if (c->len > 0)
        return -EPROTO;
    rc = fill(c, deadline);
    if (rc == 0 || rc == -ECONNRESET)
        return 0;
    return rc < 0 ? rc : -EPROTO;
}

int nmc_test_http_shutdown_write(struct nmc_test_http_conn *c)
{
    return shutdown(c->fd, SHUT_WR) == 0 ? 0 : -errno;
}

void nmc_test_http_close(struct nmc_test_http_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

const char *nmc_test_http_resp_header(const struct nmc_test_http_resp *r, const char *name)
{
    size_t i;

    for (i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

void nmc_test_http_resp_free(struct nmc_test_http_resp *r)
{
    size_t i;

    for (i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->reason);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

int nmc_test_http_request(int port, const char *raw, int timeout_ms, struct nmc_test_http_resp *out)
{
    struct nmc_test_http_conn c;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = nmc_test_http_connect(&c, port, timeout_ms)) != 0)
        return rc;
    rc = nmc_test_http_send_str(&c, raw);
    if (rc == 0)
        rc = nmc_test_http_read(&c, timeout_ms, out);
    nmc_test_http_close(&c);
    return rc;
}
