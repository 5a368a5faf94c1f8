/* Fuzz target: the HTTP server (llhttp in strict mode and http/conn.c
 * around it: header limits, keep-alive, pipelining, bodies, routing, query
 * decoding, reply handles) as a client on loopback drives it. The server
 * runs on its own loop thread for the whole run; each input is written to a
 * new connection, which is then half-closed, and everything the server
 * sends is read until it closes.
 * Promises checked: the server closes every connection it is done with
 * (within 5 s), everything it sends is HTTP/1.1 responses, and it keeps
 * answering a well-formed request after every input. */
#include "tests/fuzz/fuzz.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include "runtime/buf.h"
#include "runtime/log.h"
#include "tests/http/harness.h"

static struct harness H;

static void on_echo(struct nmc_http_req *req, void *ud)
{
    (void)ud;
    char *q = nmc_http_req_query(req, "q");
    const char *id = nmc_http_req_param(req, "id");
    const char *ct = nmc_http_req_header(req, "content-type");
    struct nmc_buf b = {0};
    FUZZ_CHECK(nmc_buf_puts(&b, "{\"id\":") == 0 && nmc_buf_json_str(&b, id != NULL ? id : "") == 0);
    FUZZ_CHECK(nmc_buf_puts(&b, ",\"q\":") == 0 && nmc_buf_json_str(&b, q != NULL ? q : "") == 0);
    FUZZ_CHECK(nmc_buf_puts(&b, ",\"ct\":") == 0 && nmc_buf_json_str(&b, ct != NULL ? ct : "") == 0);
    FUZZ_CHECK(nmc_buf_printf(&b, ",\"body_len\":%zu}", req->body_len) == 0);
    nmc_http_respond_json(req, 200, b.data);
    nmc_buf_free(&b);
    free(q);
}

/* Answers through a reply handle, as the actors do. */
static void on_later(struct nmc_http_req *req, void *ud)
{
    (void)ud;
    struct nmc_http_handle h = nmc_http_req_handle(req);
    FUZZ_CHECK(nmc_http_reply(h, 202, "text/plain", req->body, req->body_len, NULL) == 0);
    FUZZ_CHECK(nmc_http_reply(h, 500, "text/plain", "", 0, NULL) == NMC_EGONE); /* answered once only */
}

static void routes(struct nmc_http_server *s)
{
    FUZZ_CHECK(nmc_http_server_route(s, "GET", "/items/{id}", on_echo, NULL) == 0);
    FUZZ_CHECK(nmc_http_server_route(s, "POST", "/items/{id}", on_echo, NULL) == 0);
    FUZZ_CHECK(nmc_http_server_route(s, "GET", "/items/me", on_echo, NULL) == 0);
    FUZZ_CHECK(nmc_http_server_route(s, "POST", "/later", on_later, NULL) == 0);
    FUZZ_CHECK(nmc_http_server_route(s, "PATCH", "/a/{x}/b/{y}", on_echo, NULL) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const struct nmc_http_server_opts opts = {
        .bind_addr = "127.0.0.1",
        .max_body_bytes = 2048,
        .header_timeout_ms = 2000,
        .idle_timeout_ms = 2000,
        .max_connections = 16,
    };
    signal(SIGPIPE, SIG_IGN);
    nmc_log_setup(NMC_LOG_ERROR, 0, NULL);
    FUZZ_CHECK(harness_start(&H, &opts, routes) == 0);
    return 0;
}

/* Sends data on a new connection, half-closes, reads until the server
 * closes. Returns what was read (malloc'd, NUL-terminated) and its length. */
static char *exchange(const uint8_t *data, size_t size, size_t *got)
{
    /* Each connection from its own loopback source address (127.1.x.y, in
     * turn): at thousands of connections a second, the closed ones' TIME_WAIT
     * would otherwise use up the ports of one address (connect fails with
     * EADDRNOTAVAIL after ~200,000 inputs). */
    static uint32_t next_src;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    FUZZ_CHECK(fd >= 0);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f010001u + next_src++ % 65000u);
    FUZZ_CHECK(bind(fd, (struct sockaddr *)&src, sizeof src) == 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)H.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    if (rc != 0 && errno == EINTR) { /* libFuzzer's timer: the connect goes on */
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t elen = sizeof err;
        while ((rc = poll(&p, 1, 5000)) < 0 && errno == EINTR)
            ;
        rc = rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0 ? 0 : -1;
        errno = err;
    }
    if (rc != 0) {
        fprintf(stderr, "connect: %s\n", strerror(errno));
        FUZZ_CHECK(0);
    }
    size_t off = 0;
    while (off < size) {
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the server closed early (an error answer): fine */
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    FUZZ_CHECK(buf != NULL);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 5000);
        FUZZ_CHECK(r != 0); /* the connection must end */
        if (r < 0 && errno == EINTR)
            continue;
        if (len + 1 == cap) {
            char *bigger = realloc(buf, cap * 2);
            FUZZ_CHECK(bigger != NULL);
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EOF, or a reset after an error answer */
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    *got = len;
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len;
    char *out = exchange(data, size, &len);
    if (len > 0)
        FUZZ_CHECK(len >= 12 && memcmp(out, "HTTP/1.1 ", 9) == 0);
    free(out);
    static const char ok[] = "GET /items/7?q=a%20b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    out = exchange((const uint8_t *)ok, sizeof ok - 1, &len);
    FUZZ_CHECK(strncmp(out, "HTTP/1.1 200", 12) == 0 && strstr(out, "\"q\":\"a b\"") != NULL);
    free(out);
    return 0;
}
