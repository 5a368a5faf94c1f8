/* Types shared by the files of the HTTP server (server.c: listener, handles,
 * shutdown; conn.c: one connection's parsing, timers, writes and close;
 * response.c: formatting answers and their logs, metrics and spans).
 * Not a public header: nothing outside http/ includes it. */
#ifndef NMC_HTTP_INTERNAL_H
#define NMC_HTTP_INTERNAL_H

#include <llhttp.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>
#include "http/router.h"
#include "http/server.h"
#include "runtime/buf.h"
#include "runtime/metrics.h"
#include "runtime/trace.h"

#define NMC_HTTP_MAX_HEADERS 100          /* more -> 431 */
#define NMC_HTTP_MAX_PIPELINE 16          /* requests held per connection before reading pauses */
#define NMC_HTTP_READ_BUF (64 * 1024)     /* the server's one read buffer */
#define NMC_HTTP_LINGER_MS 1000           /* discard input this long after a closing response */
#define NMC_HTTP_LINGER_BYTES (1024 * 1024)
#define NMC_HTTP_KEEP_BYTES (64 * 1024)   /* recycled requests keep buffers up to this size */
#define NMC_HTTP_MAX_QUIET 8

enum req_state {
    REQ_PARSING,  /* bytes still arriving */
    REQ_HANDLING, /* inside the route handler */
    REQ_DEFERRED, /* the handler took the reply handle */
    REQ_READY,    /* answer formatted, waiting for earlier answers */
    REQ_WRITING,  /* handed to uv_write */
};

enum conn_phase {
    PH_IDLE,   /* between requests */
    PH_HEAD,   /* request line and headers arriving */
    PH_BODY,   /* headers done, body arriving */
    PH_STOP,   /* no more requests are read; queued answers still go out */
    PH_LINGER, /* last answer sent and write side shut: discarding input */
};

enum timer_mode { TM_NONE, TM_IDLE, TM_HEAD, TM_BODY, TM_WRITE, TM_LINGER };

struct hoff {
    uint32_t name, value; /* offsets into the request's text store */
};

/* Per-request storage, grown by realloc and kept across the requests of a
 * connection so a keep-alive request allocates nothing. */
struct store {
    char *p;
    size_t len, cap;
};

struct nmc_http_conn;

struct nmc_http_ireq {
    struct nmc_http_req pub;          /* what handlers see */
    struct nmc_http_conn *conn;
    struct nmc_http_ireq *next;       /* queue or free list */
    uint64_t seq;
    enum req_state state;
    int keep_alive;
    int http10;
    int head;                         /* HEAD: the answer carries no body */
    int in_flight;                    /* counted in http_requests_in_flight */
    int quiet;                        /* access log at DEBUG only */
    enum nmc_http_route_result route_result;
    struct nmc_http_route_match match;
    struct store text;                /* target, header names/values, decoded path and segments */
    size_t mark;                      /* where the field or value being parsed starts in text */
    struct hoff *hoffs;
    struct nmc_http_header *hdrs;
    size_t nhdr, hcap;
    struct nmc_buf body;
    struct nmc_buf out;               /* formatted answer: head then body */
    uv_write_t wreq;
    struct nmc_span *span;
    const char *segs[NMC_HTTP_MAX_SEGMENTS];
};

struct nmc_http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shut;
    llhttp_t parser;
    struct nmc_http_server *server;
    struct nmc_http_conn *prev, *next; /* the server's list */
    uint32_t slot;
    enum conn_phase phase;
    enum timer_mode tmode;
    int closing;
    int handles_open;
    int eof;
    int finishing;                     /* write side shut (or being shut) */
    int close_when_done;               /* close once every queued answer is written */
    int read_paused;                   /* pipeline full: input waits in stash */
    int event;                         /* what paused llhttp: EV_HEADERS or EV_MESSAGE */
    uint64_t head_start_ms;            /* loop time of the request's first byte */
    uint64_t read_ns;                  /* monotonic time of the current read */
    size_t head_prev;                  /* header-block bytes in earlier reads */
    const char *head_mark;             /* where the header block starts in this read */
    int prev_lf;                       /* last header byte seen was LF (folding check) */
    size_t trailer_bytes;
    size_t linger_bytes;
    int err_status;                    /* set by a callback returning HPE_USER */
    const char *err_code, *err_msg;
    struct nmc_http_ireq *cur;         /* being parsed (also the queue's tail) */
    struct nmc_http_ireq *q_head, *q_tail; /* answers not yet written, in request order */
    struct nmc_http_ireq *free_reqs;
    size_t nreqs;                      /* in the queue or being written */
    size_t nfree;
    uint64_t next_seq;
    struct nmc_buf stash;              /* unparsed input while the pipeline is full */
    char remote_addr[64];
};

struct nmc_http_slot {
    struct nmc_http_conn *conn;
    uint32_t gen;
    uint32_t next_free;
};

struct nmc_http_server {
    uv_loop_t *loop;
    uv_tcp_t *listener;                /* NULL when not listening (or closed) */
    struct nmc_http_server_opts opts;
    char bind_addr[64];
    int port;
    struct nmc_http_router *router;
    struct nmc_http_slot *slots;
    uint32_t nslots, free_slot;
    struct nmc_http_conn *conns;
    size_t nconns;
    char *rbuf;
    int shutting_down;
    uv_timer_t *grace;                 /* set during shutdown until closed */
    int done_called;
    void (*done_cb)(void *ud);
    void *done_ud;
    struct nmc_metric *m_duration, *m_inflight;
    char *quiet[NMC_HTTP_MAX_QUIET];
    size_t nquiet;
    time_t date_sec;
    char date[40];
};

#define EV_HEADERS 1
#define EV_MESSAGE 2

/* conn.c */
void nmc_http_conn_accept(struct nmc_http_server *s);
void nmc_http_conn_close(struct nmc_http_conn *c);
/* Writes every answer at the head of the queue that is ready. */
void nmc_http_conn_flush(struct nmc_http_conn *c);
/* Server shutdown: close when idle, else after the queued answers. */
void nmc_http_conn_drain(struct nmc_http_conn *c);

/* response.c */
/* Formats the answer into r->out, records the access log, metrics and
 * span, marks r ready and flushes the connection. */
void nmc_http_ireq_answer(struct nmc_http_ireq *r, int status, const char *content_type, const char *body,
                          size_t len, const char *const *headers);
void nmc_http_ireq_error(struct nmc_http_ireq *r, int status, const char *code, const char *message,
                         const char *const *headers);
/* Ends an unanswered request whose connection closed. */
void nmc_http_ireq_abandon(struct nmc_http_ireq *r);

/* server.c */
void nmc_http_server_conn_closed(struct nmc_http_server *s, struct nmc_http_conn *c);
uint32_t nmc_http_server_slot_take(struct nmc_http_server *s, struct nmc_http_conn *c);

#endif
