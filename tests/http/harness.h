/* Test harness for the HTTP server suites: the server runs on its own uv
 * loop in one extra thread (the server stays single-threaded: only that
 * thread touches it while it runs), the test talks to it over loopback with
 * the blocking client of tests/support/http_client.h.
 *
 * harness_call() runs a function on the loop thread and waits for it, for
 * the few checks that must read server state while it runs. Stopping shuts
 * the server down gracefully, joins the thread and checks that the loop
 * closes with no handle left behind. */
#ifndef NMC_TESTS_HTTP_HARNESS_H
#define NMC_TESTS_HTTP_HARNESS_H

#include <pthread.h>
#include <string.h>
#include <uv.h>
#include "http/server.h"
#include "tests/support/http_client.h"

struct harness {
    uv_loop_t loop;
    uv_async_t wake;
    pthread_t thread;
    struct nmc_http_server *server;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void (*fn)(void *arg);
    void *arg;
    int fn_done;
    int stop;
    int drained;
    int grace_ms;
};

static inline void harness_on_drained(void *ud)
{
    struct harness *h = ud;

    h->drained = 1;
    uv_close((uv_handle_t *)&h->wake, NULL);
}

static inline void harness_on_wake(uv_async_t *a)
{
    struct harness *h = a->data;
    void (*fn)(void *);
    int stop;

    pthread_mutex_lock(&h->mu);
    fn = h->fn;
    stop = h->stop;
    pthread_mutex_unlock(&h->mu);
    if (fn) {
        fn(h->arg);
        pthread_mutex_lock(&h->mu);
        h->fn = NULL;
        h->fn_done = 1;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
    }
    if (stop == 1) {
        h->stop = 2;
        nmc_http_server_shutdown(h->server, h->grace_ms, harness_on_drained, h);
    }
}

static inline void *harness_main(void *arg)
{
    struct harness *h = arg;

    uv_run(&h->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Creates the server with opts (port forced to 0), lets routes() add its
 * routes, listens and starts the loop thread. Returns 0 or an error. */
static inline int harness_start(struct harness *h, const struct nmc_http_server_opts *opts,
                         void (*routes)(struct nmc_http_server *s))
{
    struct nmc_http_server_opts o = *opts;
    int rc;

    memset(h, 0, sizeof(*h));
    o.port = 0;
    h->grace_ms = 1000;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if ((rc = uv_loop_init(&h->loop)) != 0)
        return rc;
    if ((rc = nmc_http_server_create(&h->loop, &o, &h->server)) != 0)
        return rc;
    if (routes)
        routes(h->server);
    if ((rc = nmc_http_server_listen(h->server)) != 0)
        return rc;
    h->port = nmc_http_server_port(h->server);
    uv_async_init(&h->loop, &h->wake, harness_on_wake);
    h->wake.data = h;
    return pthread_create(&h->thread, NULL, harness_main, h);
}

/* Runs fn(arg) on the loop thread; returns when it has run. */
static inline void harness_call(struct harness *h, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&h->mu);
    h->fn = fn;
    h->arg = arg;
    h->fn_done = 0;
    pthread_mutex_unlock(&h->mu);
    uv_async_send(&h->wake);
    pthread_mutex_lock(&h->mu);
    while (!h->fn_done)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

/* Graceful shutdown, join, free. Returns uv_loop_close's result (0 when no
 * handle was left open) or -1 when the drain callback never ran. */
static inline int harness_stop(struct harness *h)
{
    int rc;

    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_mutex_unlock(&h->mu);
    uv_async_send(&h->wake);
    pthread_join(h->thread, NULL);
    nmc_http_server_free(h->server);
    rc = uv_loop_close(&h->loop);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    return h->drained ? rc : -1;
}

#endif
