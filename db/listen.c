/* LISTEN/NOTIFY (db/pool.h): one dedicated connection, separate from the
 * pool so a subscription never occupies a query slot. It LISTENs again on
 * every channel after each reconnect; notifications sent while it was down
 * are lost (PostgreSQL keeps none for absent listeners), so once each LISTEN
 * has taken effect its subscribers get an empty notification to read again
 * what they watch, and they also poll as a safety net. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db/pool_impl.h"
#include "runtime/log.h"

/* Channel names are identifiers we quote ourselves, so allow only the
 * plain ones: [a-z_][a-z0-9_]*, at most 63 bytes. */
static int channel_valid(const char *ch)
{
    size_t n = ch ? strlen(ch) : 0;
    if (n == 0 || n > 63 || (ch[0] >= '0' && ch[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char k = ch[i];
        if (!((k >= 'a' && k <= 'z') || (k >= '0' && k <= '9') || k == '_'))
            return 0;
    }
    return 1;
}

static void notify_free(void *payload);

static void deliver(struct nmc_db_pool *p, const char *channel, const char *payload)
{
    for (struct nmc_db_sub *s = p->subs; s; s = s->next) {
        if (strcmp(s->channel, channel) != 0)
            continue;
        struct nmc_db_notify *nt = nmc_xcalloc(1, sizeof *nt);
        nmc_strlcpy(nt->channel, channel, sizeof nt->channel);
        nt->payload = nmc_xstrdup(payload);
        int r = nmc_rt_send(s->to, nmc_rt_msg_new(NMC_MSG_DB_NOTIFY, nt, notify_free));
        if (r) {
            struct nmc_log_rec *l = nmc_log_begin(NMC_LOG_WARN, "db", "db.notify_dropped");
            nmc_log_str(l, "channel", s->channel);
            nmc_log_str(l, "actor", nmc_rt_actor_name(s->to));
            nmc_log_error(l, r, NULL);
            nmc_log_end(l);
        }
    }
}

struct listened {
    struct nmc_db_pool *pool;
    char channel[64];
};

/* The LISTEN took effect: what was notified before it is lost, so each
 * subscriber of the channel gets one empty notification and reads again
 * what it watches (pool.h). */
static void on_listened(void *ud, int status)
{
    struct listened *l = ud;
    if (status == 0 && !l->pool->closing)
        deliver(l->pool, l->channel, "");
    free(l);
}

static void send_listen(struct nmc_db_conn *c, const char *channel)
{
    char sql[80];
    snprintf(sql, sizeof sql, "LISTEN \"%s\"", channel);
    struct nmc_db_stmt st = {.name = NULL, .sql = sql, .nparams = 0};
    struct nmc_db_batch *b = nmc_db_batch_new(&st, 1, 0);
    struct listened *l = nmc_xcalloc(1, sizeof *l);
    l->pool = c->pool;
    nmc_strlcpy(l->channel, channel, sizeof l->channel);
    b->internal_done = on_listened;
    b->internal_ud = l;
    nmc_db_conn_send(c, b);
}

/* Called when the LISTEN connection is (again) ready. */
void nmc_db_listen_resubscribe(struct nmc_db_conn *c)
{
    for (struct nmc_db_sub *s = c->pool->subs; s; s = s->next) {
        if (c->state != NMC_DB_CONN_READY)
            return; /* a send failed and dropped the connection: it will come back here */
        send_listen(c, s->channel);
    }
}

static void notify_free(void *payload)
{
    struct nmc_db_notify *n = payload;
    if (!n)
        return;
    free(n->payload);
    free(n);
}

void nmc_db_listen_deliver(struct nmc_db_pool *p, const PGnotify *n)
{
    deliver(p, n->relname, n->extra ? n->extra : "");
}

static int subscribed(const struct nmc_db_pool *p, const char *channel, const struct nmc_actor *to)
{
    for (const struct nmc_db_sub *s = p->subs; s; s = s->next)
        if (s->to == to && strcmp(s->channel, channel) == 0)
            return 1;
    return 0;
}

int nmc_db_listen(struct nmc_db_pool *p, const char *channel, struct nmc_actor *to)
{
    if (!p || !to || !channel_valid(channel))
        return NMC_EINVAL;
    if (p->closing)
        return NMC_ESHUTDOWN;
    if (subscribed(p, channel, to))
        return 0;
    struct nmc_db_sub *s = nmc_xcalloc(1, sizeof *s);
    nmc_strlcpy(s->channel, channel, sizeof s->channel);
    s->to = to;
    s->next = p->subs;
    p->subs = s;
    if (!p->listener) {
        p->listener = nmc_xcalloc(1, sizeof *p->listener);
        nmc_db_conn_init(p, p->listener, -1);
        nmc_db_conn_start(p->listener);
    } else if (p->listener->state == NMC_DB_CONN_READY) {
        send_listen(p->listener, channel);
    }
    return 0;
}
