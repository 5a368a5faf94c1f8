/* Answers: formatting the head and body into the request's own buffer
 * (one write per answer), and recording each request's access log line,
 * duration histogram, in-flight gauge and span. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "http/internal.h"
#include "runtime/clock.h"
#include "runtime/log.h"

const char *nmc_http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status >= 500 ? "Server Error" : status >= 400 ? "Client Error" : "Unknown";
    }
}

/* The out buffer has no cap, so appends cannot fail. */
static void put(struct nmc_buf *b, const char *s, size_t n)
{
    (void)nmc_buf_append(b, s, n);
}

static void puts_(struct nmc_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_u(struct nmc_buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);

    do
        tmp[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    put(b, tmp + i, sizeof(tmp) - i);
}

/* Formatted once per second, not per answer. */
static const char *date_line(struct nmc_http_server *s)
{
    time_t now = time(NULL);
    struct tm tm;

    if (now != s->date_sec) {
        s->date_sec = now;
        gmtime_r(&now, &tm);
        strftime(s->date, sizeof(s->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    }
    return s->date;
}

/* "Name: value" with a token name and no CR or LF anywhere: a handler must
 * not be able to split the response. */
static int header_ok(const char *h)
{
    const char *colon = strchr(h, ':');
    const char *p;

    if (!colon || colon == h || strpbrk(h, "\r\n"))
        return 0;
    for (p = h; p < colon; p++)
        if (*p <= ' ' || *p >= 127 || strchr("\"(),/:;<=>?@[\\]{}", *p))
            return 0;
    return 1;
}

static int headers_ok(const char *const *headers)
{
    size_t i;

    for (i = 0; headers && headers[i]; i++)
        if (!header_ok(headers[i]))
            return 0;
    return 1;
}

static void format(struct nmc_http_ireq *r, int status, const char *ctype, const char *body, size_t len,
                   const char *const *headers)
{
    struct nmc_buf *b = &r->out;
    int nobody = status == 204 || status == 304;
    char num[4] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10), (char)('0' + status % 10), ' '};
    size_t i;

    nmc_buf_reset(b);
    puts_(b, "HTTP/1.1 ");
    put(b, num, 4);
    puts_(b, nmc_http_status_text(status));
    if (!nobody) {
        puts_(b, "\r\nContent-Type: ");
        puts_(b, ctype ? ctype : "application/octet-stream");
        puts_(b, "\r\nContent-Length: ");
        put_u(b, len);
    }
    puts_(b, "\r\nX-Correlation-Id: ");
    puts_(b, r->pub.correlation_id);
    puts_(b, "\r\n");
    puts_(b, date_line(r->conn->server));
    if (!r->keep_alive)
        puts_(b, "Connection: close\r\n");
    else if (r->http10)
        puts_(b, "Connection: keep-alive\r\n");
    for (i = 0; headers && headers[i]; i++) {
        puts_(b, headers[i]);
        puts_(b, "\r\n");
    }
    puts_(b, "\r\n");
    if (!nobody && len && !r->head)
        put(b, body, len);
}

static void end_span(struct nmc_http_ireq *r, int status, const char *route)
{
    if (!r->span)
        return;
    nmc_trace_span_attr(r->span, "http.method", r->pub.method ? r->pub.method : "unknown");
    nmc_trace_span_attr(r->span, "http.route", route);
    nmc_trace_span_attr_int(r->span, "http.status_code", status);
    nmc_trace_span_attr(r->span, "correlation_id", r->pub.correlation_id);
    if (status >= 500)
        nmc_trace_span_error(r->span, nmc_http_status_text(status));
    nmc_trace_span_end(r->span);
    r->span = NULL;
}

/* Health checks and scrapes arrive constantly: those routes log at DEBUG. */
static void access_log(struct nmc_http_ireq *r, int status, const char *route, double ms)
{
    struct nmc_log_rec *lr = nmc_log_begin(r->quiet ? NMC_LOG_DEBUG : NMC_LOG_INFO, "infra", "http.request");

    if (!lr)
        return;
    nmc_log_ids(lr, NULL, r->pub.correlation_id, NULL);
    nmc_log_str(lr, "method", r->pub.method ? r->pub.method : "unknown");
    nmc_log_str(lr, "route", route);
    nmc_log_int(lr, "status", status);
    nmc_log_double(lr, "latency_ms", ms);
    nmc_log_end(lr);
}

static void observe(struct nmc_http_ireq *r, int status)
{
    struct nmc_http_server *s = r->conn->server;
    const char *route = r->pub.route ? r->pub.route : "unmatched";
    char st[4] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10), (char)('0' + status % 10), 0};
    const char *labels[3] = {route, r->pub.method ? r->pub.method : "unknown", st};
    uint64_t now = nmc_clock_mono_ns();
    double ms = r->pub.received_ns && now > r->pub.received_ns ? (double)(now - r->pub.received_ns) / 1e6 : 0;

    nmc_metrics_observe(s->m_duration, labels, ms);
    if (r->in_flight) {
        nmc_metrics_add(s->m_inflight, NULL, -1);
        r->in_flight = 0;
    }
    end_span(r, status, route);
    access_log(r, status, route, ms);
}

void nmc_http_ireq_answer(struct nmc_http_ireq *r, int status, const char *content_type, const char *body,
                          size_t len, const char *const *headers)
{
    static const char internal[] = "{\"error\":{\"code\":\"internal\",\"message\":\"invalid response\"}}";

    if (status < 200 || status > 599 || !headers_ok(headers) || (len && !body)) {
        struct nmc_log_rec *lr = nmc_log_begin(NMC_LOG_ERROR, "infra", "http.invalid_response");
        nmc_log_ids(lr, NULL, r->pub.correlation_id, NULL);
        nmc_log_str(lr, "route", r->pub.route);
        nmc_log_int(lr, "status", status);
        nmc_log_end(lr);
        status = 500;
        content_type = "application/json";
        body = internal;
        len = sizeof(internal) - 1;
        headers = NULL;
    }
    format(r, status, content_type, body, len, headers);
    observe(r, status);
    r->state = REQ_READY;
    nmc_http_conn_flush(r->conn);
}

void nmc_http_ireq_error(struct nmc_http_ireq *r, int status, const char *code, const char *message,
                         const char *const *headers)
{
    struct nmc_buf b = {0};

    (void)nmc_buf_puts(&b, "{\"error\":{\"code\":");
    (void)nmc_buf_json_str(&b, code ? code : "error");
    (void)nmc_buf_puts(&b, ",\"message\":");
    (void)nmc_buf_json_str(&b, message ? message : nmc_http_status_text(status));
    (void)nmc_buf_puts(&b, "}}");
    nmc_http_ireq_answer(r, status, "application/json", b.data, b.len, headers);
    nmc_buf_free(&b);
}

void nmc_http_ireq_abandon(struct nmc_http_ireq *r)
{
    struct nmc_log_rec *lr;

    if (r->in_flight) {
        nmc_metrics_add(r->conn->server->m_inflight, NULL, -1);
        r->in_flight = 0;
        lr = nmc_log_begin(NMC_LOG_INFO, "infra", "http.abandoned");
        nmc_log_ids(lr, NULL, r->pub.correlation_id, NULL);
        nmc_log_str(lr, "method", r->pub.method);
        nmc_log_str(lr, "route", r->pub.route);
        nmc_log_msgf(lr, "client connection closed before the answer");
        nmc_log_end(lr);
    }
    if (r->span) {
        nmc_trace_span_error(r->span, "client connection closed");
        end_span(r, 499, r->pub.route ? r->pub.route : "unmatched");
    }
}

/* ---- the public answering API ---- */

static struct nmc_http_ireq *ireq_of(struct nmc_http_req *req)
{
    return nmc_container_of(req, struct nmc_http_ireq, pub);
}

/* Exactly one answer per request: a second one is logged and dropped. An
 * answer for a request whose connection already closed goes nowhere. */
static int answerable(struct nmc_http_ireq *r)
{
    struct nmc_log_rec *lr;

    if (r->state == REQ_HANDLING || r->state == REQ_DEFERRED) {
        if (!r->conn->closing)
            return 1;
        r->state = REQ_READY;
        return 0;
    }
    lr = nmc_log_begin(NMC_LOG_ERROR, "infra", "http.answered_twice");
    nmc_log_ids(lr, NULL, r->pub.correlation_id, NULL);
    nmc_log_str(lr, "route", r->pub.route);
    nmc_log_end(lr);
    return 0;
}

void nmc_http_respond(struct nmc_http_req *req, int status, const char *content_type, const char *body, size_t len,
                      const char *const *headers)
{
    struct nmc_http_ireq *r = ireq_of(req);

    if (answerable(r))
        nmc_http_ireq_answer(r, status, content_type, body, len, headers);
}

void nmc_http_respond_json(struct nmc_http_req *req, int status, const char *json)
{
    nmc_http_respond(req, status, "application/json", json, json ? strlen(json) : 0, NULL);
}

void nmc_http_respond_error(struct nmc_http_req *req, int status, const char *code, const char *message)
{
    struct nmc_http_ireq *r = ireq_of(req);

    if (answerable(r))
        nmc_http_ireq_error(r, status, code, message, NULL);
}
