/* The actor runtime (runtime/actor.h).
 *
 * Scheduling: actors with pending mail sit on the runtime's ready list. A
 * uv_check handle (always started, unreferenced) runs one pass per loop
 * iteration; a uv_idle handle is started only while the ready list is
 * non-empty, which makes the loop poll with a zero timeout and keeps
 * uv_run() alive until the mail is handled. With no mail the idle handle is
 * stopped, so an idle loop really sleeps in epoll.
 *
 * A pass takes the ready list as it stands, gives each actor a quota of
 * min(depth, budget) messages fixed at the start of the pass, and returns
 * to the loop. Messages sent during the pass (even to oneself) wait for a
 * later pass, so handlers never run re-entrantly and I/O gets a turn
 * between passes. Everything runs on the loop thread: no locks, no async.
 *
 * Timers: one uv_timer per timer, indexed by id in a small chained hash so
 * cancel is O(1). A fired timer stays in the index until its message is
 * delivered, so a cancel between firing and delivery still suppresses it. */
#include "runtime/actor.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/metrics.h"

#define DEFAULT_BUDGET 64

struct nmc_actor {
    struct nmc_rt *rt;
    const char *name;
    nmc_actor_handler_cb handler;
    void *state;
    size_t cap;
    struct nmc_msg *head, *tail; /* mailbox: intrusive FIFO through _next */
    size_t depth;
    size_t quota;                /* messages this actor may handle in the current pass */
    int queued;                  /* on the ready list, or in the pass being run */
    struct nmc_actor *ready_next;
    struct nmc_actor *next;      /* all actors of the runtime */
    uint64_t handled, dropped, handler_ns_total;
};

struct rt_timer {
    uv_timer_t handle;
    struct nmc_rt *rt;
    struct nmc_actor *actor;
    uint64_t id;
    uint64_t cookie;
    struct rt_timer *hnext; /* hash chain */
    int indexed;            /* in the id index: pending, or fired and undelivered */
    int closed;             /* handle closed: storage may go once unindexed */
};

struct nmc_rt {
    uv_loop_t *loop;
    unsigned budget;
    uv_check_t check;
    uv_idle_t idle;
    int idle_active;
    int stopped;
    int destroying;
    int in_pass;
    uint64_t now_ns;         /* during a pass: when the running handler started */
    int closes_pending;
    int foreign_close;       /* a handle was closed behind our back: never free */
    struct nmc_actor *actors;
    struct nmc_actor *ready_head, *ready_tail;
    struct rt_timer **timers;
    size_t ntimer_buckets, ntimers;
    uint64_t next_timer_id;
    struct nmc_metric *m_depth, *m_handled, *m_dropped, *m_seconds;
    struct nmc_rt *live_next; /* list of live runtimes, for the metrics collector */
};

/* Handler time buckets in seconds: a handler is expected to take a few
 * microseconds, so resolution is below the millisecond. */
static const double handler_buckets[] = {1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4,
                                         5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.25, 1};

static struct nmc_rt *live_rts;

static void on_collect(void *ud)
{
    struct nmc_rt *rt;
    struct nmc_actor *a;

    for (rt = live_rts; rt; rt = rt->live_next)
        for (a = rt->actors; a; a = a->next)
            nmc_metrics_set(rt->m_depth, &a->name, (double)a->depth);
}

/* Collectors cannot be removed, so one collector serves every live runtime
 * through a static list; it is registered whenever the list becomes
 * non-empty, which re-registers it after nmc_metrics_reset() (call that
 * only while no runtime is alive). A duplicate registration is harmless:
 * the collector only sets gauges. */
static void metrics_attach(struct nmc_rt *rt)
{
    rt->m_depth = nmc_metrics_gauge("nmc_actor_mailbox_depth", "Messages waiting in the actor's mailbox.",
                                    "actor");
    rt->m_handled = nmc_metrics_counter("nmc_actor_messages_total", "Messages handled by the actor.", "actor");
    rt->m_dropped = nmc_metrics_counter("nmc_actor_messages_dropped_total",
                                        "Messages refused because the actor's mailbox was full.", "actor");
    rt->m_seconds = nmc_metrics_histogram("nmc_actor_handler_seconds",
                                          "Time spent in the actor's handler per message.", "actor",
                                          handler_buckets, NMC_ARRAY_SIZE(handler_buckets));
    if (!live_rts)
        nmc_metrics_on_collect(on_collect, NULL);
    rt->live_next = live_rts;
    live_rts = rt;
}

static void metrics_detach(struct nmc_rt *rt)
{
    struct nmc_rt **pp;

    for (pp = &live_rts; *pp; pp = &(*pp)->live_next) {
        if (*pp == rt) {
            *pp = rt->live_next;
            return;
        }
    }
}

/* ---- messages ---- */

struct nmc_msg *nmc_rt_msg_new(int type, void *payload, nmc_payload_free_cb payload_free)
{
    struct nmc_msg *m = nmc_xcalloc(1, sizeof(*m));

    m->type = type;
    m->payload = payload;
    m->payload_free = payload_free;
    return m;
}

void nmc_rt_msg_inherit(struct nmc_msg *m, const struct nmc_msg *parent)
{
    nmc_strlcpy(m->tenant_id, parent->tenant_id, sizeof(m->tenant_id));
    nmc_strlcpy(m->correlation_id, parent->correlation_id, sizeof(m->correlation_id));
    m->trace = parent->trace;
    if (m->causation_id[0] == '\0')
        nmc_strlcpy(m->causation_id, parent->correlation_id, sizeof(m->causation_id));
}

void nmc_rt_msg_free(struct nmc_msg *m)
{
    if (!m)
        return;
    if (m->payload_free && m->payload)
        m->payload_free(m->payload);
    free(m);
}

/* The message whose handler is running, and whether ownership left the
 * runtime during the handler. Kept outside the message because a handler
 * that keeps a message may free it before returning. Saved and restored
 * around each handler, so a handler running a nested loop stays correct. */
static struct nmc_msg *handling;
static int handling_kept;

void nmc_rt_msg_keep(struct nmc_msg *m)
{
    m->_kept = 1;
    if (m == handling)
        handling_kept = 1;
}

/* ---- ready list and mailbox ---- */

/* The idle handle exists only to keep the loop from blocking in poll while
 * mail is pending; the work happens in on_check. */
static void on_idle(uv_idle_t *h)
{
}

static void ready_push(struct nmc_rt *rt, struct nmc_actor *a)
{
    a->queued = 1;
    a->ready_next = NULL;
    if (rt->ready_tail)
        rt->ready_tail->ready_next = a;
    else
        rt->ready_head = a;
    rt->ready_tail = a;
    if (!rt->idle_active) {
        rt->idle_active = 1;
        uv_idle_start(&rt->idle, on_idle);
    }
}

static struct nmc_msg *mailbox_pop(struct nmc_actor *a)
{
    struct nmc_msg *m = a->head;

    assert(m && a->depth > 0);
    a->head = m->_next;
    if (!a->head)
        a->tail = NULL;
    a->depth--;
    m->_next = NULL;
    return m;
}

static void mailbox_drain(struct nmc_actor *a)
{
    while (a->head)
        nmc_rt_msg_free(mailbox_pop(a));
}

int nmc_rt_send(struct nmc_actor *to, struct nmc_msg *msg)
{
    struct nmc_rt *rt;

    if (!msg)
        return NMC_EINVAL;
    if (!to) {
        nmc_rt_msg_free(msg);
        return NMC_EINVAL;
    }
    rt = to->rt;
    if (msg == handling)
        handling_kept = 1; /* forwarding the borrowed message hands it on */
    msg->_kept = 0;
    if (rt->stopped) {
        nmc_rt_msg_free(msg);
        return NMC_ESHUTDOWN;
    }
    if (to->cap && to->depth >= to->cap) {
        to->dropped++;
        nmc_metrics_add(rt->m_dropped, &to->name, 1);
        nmc_rt_msg_free(msg);
        return NMC_EFULL;
    }
    msg->_next = NULL;
    /* a clock read costs ~25 ns here; inside a pass the start of the
     * running handler is close enough for queueing-delay purposes */
    msg->_enqueued_ns = rt->in_pass ? rt->now_ns : uv_hrtime();
    if (to->tail)
        to->tail->_next = msg;
    else
        to->head = msg;
    to->tail = msg;
    to->depth++;
    if (!to->queued)
        ready_push(rt, to);
    return 0;
}

/* ---- timers ---- */

static void timer_payload_free(void *p)
{
    free(p);
}

static struct rt_timer **timer_slot(struct nmc_rt *rt, uint64_t id)
{
    struct rt_timer **pp = &rt->timers[id & (rt->ntimer_buckets - 1)];

    while (*pp && (*pp)->id != id)
        pp = &(*pp)->hnext;
    return pp;
}

/* Doubles the bucket array when chains would average more than one. */
static void timer_index_grow(struct nmc_rt *rt)
{
    size_t n = rt->ntimer_buckets * 2, i;
    struct rt_timer **old = rt->timers, *t, *next;
    size_t oldn = rt->ntimer_buckets;

    rt->timers = nmc_xcalloc(n, sizeof(*rt->timers));
    rt->ntimer_buckets = n;
    for (i = 0; i < oldn; i++) {
        for (t = old[i]; t; t = next) {
            next = t->hnext;
            t->hnext = rt->timers[t->id & (n - 1)];
            rt->timers[t->id & (n - 1)] = t;
        }
    }
    free(old);
}

static void timer_index_add(struct nmc_rt *rt, struct rt_timer *t)
{
    struct rt_timer **slot;

    if (rt->ntimers >= rt->ntimer_buckets)
        timer_index_grow(rt);
    slot = &rt->timers[t->id & (rt->ntimer_buckets - 1)];
    t->hnext = *slot;
    *slot = t;
    t->indexed = 1;
    rt->ntimers++;
}

/* Removes the timer from the index; frees it if its handle is closed too. */
static void timer_unindex(struct nmc_rt *rt, struct rt_timer **slot)
{
    struct rt_timer *t = *slot;

    *slot = t->hnext;
    t->hnext = NULL;
    t->indexed = 0;
    rt->ntimers--;
    if (t->closed)
        free(t);
}

static void on_timer_close(uv_handle_t *h)
{
    struct rt_timer *t = nmc_container_of(h, struct rt_timer, handle);

    t->closed = 1;
    if (!t->indexed)
        free(t);
}

/* The timer stays indexed until its message is delivered (see
 * deliver_timer), so a cancel in between still suppresses it. */
static void on_timer(uv_timer_t *h)
{
    struct rt_timer *t = nmc_container_of(h, struct rt_timer, handle);
    struct nmc_rt_timer_fire *f = nmc_xmalloc(sizeof(*f));
    struct nmc_msg *m = nmc_rt_msg_new(NMC_MSG_TIMER, f, timer_payload_free);
    struct rt_timer **slot = timer_slot(t->rt, t->id);
    struct nmc_actor *a = t->actor;

    f->timer_id = t->id;
    f->cookie = t->cookie;
    m->cookie = t->cookie;
    uv_close((uv_handle_t *)&t->handle, on_timer_close);
    if (nmc_rt_send(a, m) != 0 && *slot)
        timer_unindex(a->rt, slot); /* mailbox full: the firing is lost, forget the id */
}

int nmc_rt_timer_start(struct nmc_actor *a, uint64_t delay_ms, uint64_t cookie, uint64_t *id)
{
    struct nmc_rt *rt = a->rt;
    struct rt_timer *t;
    int rc;

    if (rt->stopped)
        return NMC_ESHUTDOWN;
    t = nmc_xcalloc(1, sizeof(*t));
    rc = uv_timer_init(rt->loop, &t->handle);
    if (rc) {
        free(t);
        return rc;
    }
    t->rt = rt;
    t->actor = a;
    t->id = ++rt->next_timer_id;
    t->cookie = cookie;
    uv_timer_start(&t->handle, on_timer, delay_ms, 0);
    timer_index_add(rt, t);
    *id = t->id;
    return 0;
}

void nmc_rt_timer_cancel(struct nmc_rt *rt, uint64_t id)
{
    struct rt_timer **slot;
    struct rt_timer *t;

    if (!rt || rt->ntimers == 0)
        return;
    slot = timer_slot(rt, id);
    t = *slot;
    if (!t)
        return;
    if (!uv_is_closing((uv_handle_t *)&t->handle))
        uv_close((uv_handle_t *)&t->handle, on_timer_close);
    timer_unindex(rt, slot);
}

static void timers_cancel_all(struct nmc_rt *rt)
{
    size_t i;

    for (i = 0; i < rt->ntimer_buckets; i++)
        while (rt->timers[i])
            nmc_rt_timer_cancel(rt, rt->timers[i]->id);
}

/* A timer message built by on_timer is delivered only if its timer is
 * still indexed (not cancelled); delivery forgets the id. 1: deliver. */
static int deliver_timer(struct nmc_rt *rt, const struct nmc_msg *m)
{
    const struct nmc_rt_timer_fire *f = m->payload;
    struct rt_timer **slot;

    if (m->type != NMC_MSG_TIMER || m->payload_free != timer_payload_free)
        return 1;
    slot = timer_slot(rt, f->timer_id);
    if (!*slot)
        return 0;
    timer_unindex(rt, slot);
    return 1;
}

/* ---- scheduling ---- */

/* Runs one message through a's handler. now is the end of the previous
 * handler, so each message costs one clock read; returns the new now. */
static uint64_t handle_one(struct nmc_rt *rt, struct nmc_actor *a, struct nmc_msg *m, uint64_t now)
{
    struct nmc_msg *saved = handling;
    int saved_kept = handling_kept;
    uint64_t end;

    handling = m;
    handling_kept = 0;
    a->handler(a, m, a->state);
    if (!handling_kept)
        nmc_rt_msg_free(m);
    handling = saved;
    handling_kept = saved_kept;
    end = uv_hrtime();
    rt->now_ns = end;
    a->handled++;
    a->handler_ns_total += end - now;
    nmc_metrics_observe(rt->m_seconds, &a->name, (double)(end - now) / 1e9);
    return end;
}

static uint64_t run_turn(struct nmc_rt *rt, struct nmc_actor *a, uint64_t now)
{
    size_t taken, n = 0;
    struct nmc_msg *m;

    /* The quota counts every message taken, delivered or not, so messages
     * that arrived during this pass always wait for the next one. */
    for (taken = 0; taken < a->quota && a->head && !rt->stopped; taken++) {
        m = mailbox_pop(a);
        if (!deliver_timer(rt, m)) {
            nmc_rt_msg_free(m);
            continue;
        }
        now = handle_one(rt, a, m, now);
        n++;
    }
    if (n)
        nmc_metrics_add(rt->m_handled, &a->name, (double)n);
    return now;
}

/* One pass over the actors that were ready when it started. */
static void on_check(uv_check_t *h)
{
    struct nmc_rt *rt = nmc_container_of(h, struct nmc_rt, check);
    struct nmc_actor *a, *next, *list = rt->ready_head;
    uint64_t now;

    if (!list)
        return;
    rt->ready_head = rt->ready_tail = NULL;
    for (a = list; a; a = a->ready_next)
        a->quota = a->depth < rt->budget ? a->depth : rt->budget;
    now = rt->now_ns = uv_hrtime();
    rt->in_pass = 1;
    for (a = list; a && !rt->stopped; a = next) {
        next = a->ready_next;
        now = run_turn(rt, a, now);
        a->queued = 0;
        if (a->head && !rt->stopped)
            ready_push(rt, a);
    }
    rt->in_pass = 0;
    if (!rt->ready_head && rt->idle_active) {
        rt->idle_active = 0;
        uv_idle_stop(&rt->idle);
    }
}

/* ---- runtime and actors ---- */

int nmc_rt_create(uv_loop_t *loop, unsigned budget, struct nmc_rt **out)
{
    struct nmc_rt *rt;
    int rc;

    if (!loop || !out)
        return NMC_EINVAL;
    rt = nmc_xcalloc(1, sizeof(*rt));
    rt->loop = loop;
    rt->budget = budget ? budget : DEFAULT_BUDGET;
    rt->ntimer_buckets = 64;
    rt->timers = nmc_xcalloc(rt->ntimer_buckets, sizeof(*rt->timers));
    rc = uv_check_init(loop, &rt->check);
    if (rc == 0)
        rc = uv_idle_init(loop, &rt->idle);
    if (rc) {
        /* uv_check_init/uv_idle_init cannot fail on Unix; stay honest anyway */
        free(rt->timers);
        free(rt);
        return rc;
    }
    uv_check_start(&rt->check, on_check);
    uv_unref((uv_handle_t *)&rt->check);
    metrics_attach(rt);
    *out = rt;
    return 0;
}

static void rt_free(struct nmc_rt *rt)
{
    struct nmc_actor *a, *next;

    for (a = rt->actors; a; a = next) {
        next = a->next;
        mailbox_drain(a);
        free(a);
    }
    free(rt->timers);
    free(rt);
}

static void on_rt_close(uv_handle_t *h)
{
    struct nmc_rt *rt = h->data;

    if (--rt->closes_pending == 0 && !rt->foreign_close)
        rt_free(rt);
}

/* A handle someone else already closed (a forced shutdown walking the loop)
 * will never call on_rt_close, so the runtime is then leaked rather than
 * freed under a pending close: leaking at exit beats a use-after-free. */
static void rt_close_handle(struct nmc_rt *rt, uv_handle_t *h)
{
    if (uv_is_closing(h)) {
        rt->foreign_close = 1;
        return;
    }
    h->data = rt;
    rt->closes_pending++;
    uv_close(h, on_rt_close);
}

void nmc_rt_destroy(struct nmc_rt *rt)
{
    if (!rt || rt->destroying)
        return;
    nmc_rt_stop(rt);
    rt->destroying = 1;
    metrics_detach(rt);
    rt_close_handle(rt, (uv_handle_t *)&rt->check);
    rt_close_handle(rt, (uv_handle_t *)&rt->idle);
}

uv_loop_t *nmc_rt_loop(struct nmc_rt *rt)
{
    return rt->loop;
}

void nmc_rt_stop(struct nmc_rt *rt)
{
    struct nmc_actor *a;

    if (!rt || rt->stopped)
        return;
    rt->stopped = 1;
    for (a = rt->actors; a; a = a->next) {
        mailbox_drain(a);
        a->queued = 0;
    }
    rt->ready_head = rt->ready_tail = NULL;
    if (rt->idle_active) {
        rt->idle_active = 0;
        uv_idle_stop(&rt->idle);
    }
    timers_cancel_all(rt);
}

int nmc_rt_actor_create(struct nmc_rt *rt, const char *name, nmc_actor_handler_cb handler, void *state,
                        size_t mailbox_cap, struct nmc_actor **out)
{
    struct nmc_actor *a;

    if (!rt || !name || !name[0] || !handler || !out)
        return NMC_EINVAL;
    if (rt->stopped)
        return NMC_ESHUTDOWN;
    if (nmc_rt_actor_find(rt, name))
        return NMC_EINVAL;
    a = nmc_xcalloc(1, sizeof(*a));
    a->rt = rt;
    a->name = name;
    a->handler = handler;
    a->state = state;
    a->cap = mailbox_cap;
    a->next = rt->actors;
    rt->actors = a;
    /* create the series now so dashboards show the actor at zero */
    nmc_metrics_add(rt->m_handled, &a->name, 0);
    nmc_metrics_add(rt->m_dropped, &a->name, 0);
    nmc_metrics_set(rt->m_depth, &a->name, 0);
    *out = a;
    return 0;
}

struct nmc_actor *nmc_rt_actor_find(struct nmc_rt *rt, const char *name)
{
    struct nmc_actor *a;

    for (a = rt->actors; a; a = a->next)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

const char *nmc_rt_actor_name(const struct nmc_actor *a)
{
    return a->name;
}

struct nmc_rt *nmc_rt_actor_rt(const struct nmc_actor *a)
{
    return a->rt;
}

size_t nmc_rt_actor_depth(const struct nmc_actor *a)
{
    return a->depth;
}

void nmc_rt_actor_stats(const struct nmc_actor *a, struct nmc_actor_stats *out)
{
    out->depth = a->depth;
    out->handled = a->handled;
    out->dropped = a->dropped;
    out->handler_ns_total = a->handler_ns_total;
}
