/* A tiny blocking HTTP/1.1 client for tests, over a raw loopback socket.
 *
 * It sends exactly the bytes it is given (so tests can send malformed,
 * pipelined or byte-by-byte requests) and reads complete responses
 * (Content-Length, chunked, or until close) with a deadline on every call.
 * Bytes that arrive past one response stay buffered for the next read, so
 * pipelined answers are read one at a time.
 *
 *   struct nmc_test_http_conn c;
 *   struct nmc_test_http_resp r;
 *   assert_int_equal(nmc_test_http_connect(&c, port, 1000), 0);
 *   nmc_test_http_send_str(&c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
 *   assert_int_equal(nmc_test_http_read(&c, 1000, &r), 0);
 *   assert_int_equal(r.status, 200);
 *   nmc_test_http_resp_free(&r);
 *   nmc_test_http_close(&c);
 *
 * Errors are negative errno values: -ETIMEDOUT (deadline passed),
 * -ECONNRESET (closed or reset before a whole response), -EPROTO (not
 * HTTP). The server must run elsewhere (another thread or process): every
 * call here blocks. SIGPIPE is ignored on first connect. */
#ifndef NMC_TESTS_SUPPORT_HTTP_CLIENT_H
#define NMC_TESTS_SUPPORT_HTTP_CLIENT_H

#include <stddef.h>

struct nmc_test_http_conn {
    int fd;       /* -1 when closed */
    char *buf;    /* received, not yet consumed */
    size_t len, cap;
};

struct nmc_test_http_header {
    char *name;   /* as received */
    char *value;  /* without surrounding whitespace */
};

struct nmc_test_http_resp {
    int status;
    char *reason;
    int minor;                            /* HTTP/1.<minor> */
    struct nmc_test_http_header *headers;
    size_t nheaders;
    char *body;                           /* NUL-terminated (may contain NULs) */
    size_t body_len;
};

/* Connects to 127.0.0.1:port. 0 or -errno. */
int nmc_test_http_connect(struct nmc_test_http_conn *c, int port, int timeout_ms);
/* Sends all len bytes (blocking). 0 or -errno (-EPIPE/-ECONNRESET when the
 * server closed). */
int nmc_test_http_send(struct nmc_test_http_conn *c, const void *data, size_t len);
int nmc_test_http_send_str(struct nmc_test_http_conn *c, const char *s);
/* Reads one whole response (a 1xx interim response counts as one). The
 * response is owned by the caller: nmc_test_http_resp_free. */
int nmc_test_http_read(struct nmc_test_http_conn *c, int timeout_ms, struct nmc_test_http_resp *out);
/* Same for the answer to a HEAD request: headers only, no body is read
 * whatever Content-Length says. */
int nmc_test_http_read_head(struct nmc_test_http_conn *c, int timeout_ms, struct nmc_test_http_resp *out);
/* Waits until the server closes the connection: 0 on EOF or reset with no
 * further response bytes, -ETIMEDOUT, or -EPROTO if bytes arrive instead. */
int nmc_test_http_wait_close(struct nmc_test_http_conn *c, int timeout_ms);
/* Half-closes: the server sees EOF, the answers can still be read. */
int nmc_test_http_shutdown_write(struct nmc_test_http_conn *c);
/* Closes (accepts a closed or zeroed-with-fd=-1 connection). */
void nmc_test_http_close(struct nmc_test_http_conn *c);

/* Case-insensitive header lookup; NULL when absent. */
const char *nmc_test_http_resp_header(const struct nmc_test_http_resp *r, const char *name);
void nmc_test_http_resp_free(struct nmc_test_http_resp *r);

/* One-shot: connect, send raw, read one response, close. */
int nmc_test_http_request(int port, const char *raw, int timeout_ms, struct nmc_test_http_resp *out);

#endif
