/* Tests for runtime/actor.c: ordering, ownership, fairness, timers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/actor.h"
#include "runtime/clock.h"
#include "runtime/metrics.h"

/* Every payload is a struct payload; frees are counted so each test can
 * prove every payload was freed exactly once. */
struct payload {
    int sender;
    int seq;
};

static int payloads_alive;
static int payloads_freed;

static void payload_free(void *p)
{
    payloads_alive--;
    payloads_freed++;
    free(p);
}

static struct nmc_msg *new_msg(int sender, int seq)
{
    struct payload *p = malloc(sizeof(*p));

    p->sender = sender;
    p->seq = seq;
    payloads_alive++;
    return nmc_rt_msg_new(NMC_MSG_MODULE, p, payload_free);
}

/* A log of what handlers saw, shared by the tests. */
#define LOG_MAX 20000
struct entry {
    const char *actor;
    int type;
    int sender;
    int seq;
    uint64_t cookie;
    size_t iter;   /* loop iterations seen so far (prepare callbacks) */
};

struct fixture {
    uv_loop_t loop;
    struct nmc_rt *rt;
    struct entry log[LOG_MAX];
    size_t nlog;
    struct nmc_actor *a, *b;
    struct nmc_msg *kept;  /* a message kept by a handler */
    int send_in_handler;   /* handler of "a" sends to itself / "b" */
    int in_handler;        /* detects re-entrancy */
    int reentered;
    size_t a_handled, b_handled;
    size_t a_when_b;       /* a's count when b handled its message */
    size_t prepare_samples[LOG_MAX];
    size_t nprepare;
    int spin_ns;           /* busy work per message */
    size_t a_when_timer;
};

static struct fixture *fx;

static void record(struct nmc_actor *self, struct nmc_msg *m)
{
    struct entry *e;

    if (fx->nlog >= LOG_MAX)
        return;
    e = &fx->log[fx->nlog++];
    e->actor = nmc_rt_actor_name(self);
    e->type = m->type;
    e->cookie = m->cookie;
    e->iter = fx->nprepare;
    if (m->type == NMC_MSG_MODULE) {
        const struct payload *p = m->payload;
        e->sender = p->sender;
        e->seq = p->seq;
    } else if (m->type == NMC_MSG_TIMER) {
        const struct nmc_rt_timer_fire *f = m->payload;
        assert_int_equal(f->cookie, m->cookie);
        e->seq = (int)f->timer_id;
    }
}

static void spin(int ns)
{
    uint64_t end = nmc_clock_mono_ns() + (uint64_t)ns;

    while (nmc_clock_mono_ns() < end)
        ;
}

static void on_msg(struct nmc_actor *self, struct nmc_msg *m, void *state)
{
    struct fixture *f = state;

    if (f->in_handler)
        f->reentered = 1;
    f->in_handler = 1;
    record(self, m);
    if (self == f->a)
        f->a_handled++;
    if (self == f->b) {
        f->b_handled++;
        f->a_when_b = f->a_handled;
    }
    if (f->spin_ns)
        spin(f->spin_ns);
    if (f->send_in_handler && self == f->a && m->type == NMC_MSG_MODULE) {
        const struct payload *p = m->payload;
        if (p->seq < 3) {
            assert_int_equal(nmc_rt_send(f->a, new_msg(9, p->seq + 1)), 0);
            assert_int_equal(nmc_rt_send(f->b, new_msg(9, 100 + p->seq)), 0);
        }
    }
    f->in_handler = 0;
}

static void on_msg_keep(struct nmc_actor *self, struct nmc_msg *m, void *state)
{
    struct fixture *f = state;

    record(self, m);
    nmc_rt_msg_keep(m);
    f->kept = m;
}

static int setup(void **state)
{
    fx = calloc(1, sizeof(*fx));
    nmc_metrics_reset();
    payloads_alive = 0;
    payloads_freed = 0;
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(nmc_rt_create(&fx->loop, 4, &fx->rt), 0);
    assert_int_equal(nmc_rt_actor_create(fx->rt, "a", on_msg, fx, 0, &fx->a), 0);
    assert_int_equal(nmc_rt_actor_create(fx->rt, "b", on_msg, fx, 0, &fx->b), 0);
    *state = fx;
    return 0;
}

/* Destroys the runtime, runs the loop so close callbacks free everything,
 * and checks the loop really has nothing left (uv_loop_close succeeds). */
static int teardown(void **state)
{
    nmc_rt_destroy(fx->rt);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    assert_int_equal(payloads_alive, 0);
    nmc_metrics_reset();
    free(fx);
    fx = NULL;
    return 0;
}

static void test_actor_send_fifo_per_sender(void **state)
{
    int i;

    for (i = 0; i < 50; i++) {
        assert_int_equal(nmc_rt_send(fx->a, new_msg(1, i)), 0);
        assert_int_equal(nmc_rt_send(fx->a, new_msg(2, i)), 0);
    }
    assert_int_equal(nmc_rt_actor_depth(fx->a), 100);
    assert_int_equal(fx->nlog, 0); /* nothing runs inside send */
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->nlog, 100);
    for (i = 0; i < 100; i++) {
        assert_int_equal(fx->log[i].sender, 1 + i % 2);
        assert_int_equal(fx->log[i].seq, i / 2);
    }
    assert_int_equal(payloads_freed, 100);
    assert_int_equal(nmc_rt_actor_depth(fx->a), 0);
    /* with no mail the runtime holds no active referenced handle: an idle
     * loop sleeps in poll instead of spinning */
    assert_false(uv_loop_alive(&fx->loop));
}

static void test_actor_send_full_mailbox_frees_message(void **state)
{
    struct nmc_actor *c;
    struct nmc_actor_stats st;
    int i;

    assert_int_equal(nmc_rt_actor_create(fx->rt, "capped", on_msg, fx, 3, &c), 0);
    for (i = 0; i < 3; i++)
        assert_int_equal(nmc_rt_send(c, new_msg(1, i)), 0);
    assert_int_equal(nmc_rt_send(c, new_msg(1, 3)), NMC_EFULL);
    assert_int_equal(payloads_freed, 1);
    assert_int_equal(payloads_alive, 3);
    nmc_rt_actor_stats(c, &st);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.depth, 3);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(payloads_freed, 4);
    nmc_rt_actor_stats(c, &st);
    assert_int_equal(st.handled, 3);
    assert_int_equal(st.depth, 0);
    assert_int_equal(nmc_rt_send(c, new_msg(1, 4)), 0); /* room again */
}

static void test_actor_send_bad_arguments(void **state)
{
    assert_int_equal(nmc_rt_send(NULL, new_msg(1, 0)), NMC_EINVAL);
    assert_int_equal(payloads_freed, 1);
    assert_int_equal(nmc_rt_send(fx->a, NULL), NMC_EINVAL);
}

static void test_actor_destroy_frees_pending_messages(void **state)
{
    int i;

    for (i = 0; i < 10; i++)
        assert_int_equal(nmc_rt_send(fx->b, new_msg(1, i)), 0);
    nmc_rt_destroy(fx->rt);
    assert_int_equal(payloads_freed, 10);
    assert_int_equal(fx->nlog, 0);
    nmc_rt_destroy(fx->rt); /* twice is a no-op before the loop runs */
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    fx->rt = NULL;          /* freed by its close callbacks */
}

static void on_msg_destroy(struct nmc_actor *self, struct nmc_msg *m, void *state)
{
    struct fixture *f = state;

    record(self, m);
    nmc_rt_destroy(f->rt);
}

/* Shutdown often starts inside a handler: the rest of the pass is skipped,
 * pending messages and timers are freed, nothing runs afterwards. */
static void test_actor_destroy_from_handler(void **state)
{
    struct nmc_actor *d;
    uint64_t id;
    int i;

    assert_int_equal(nmc_rt_actor_create(fx->rt, "destroyer", on_msg_destroy, fx, 0, &d), 0);
    assert_int_equal(nmc_rt_send(d, new_msg(1, 0)), 0);
    for (i = 0; i < 5; i++) {
        assert_int_equal(nmc_rt_send(d, new_msg(1, 1 + i)), 0);
        assert_int_equal(nmc_rt_send(fx->a, new_msg(2, i)), 0);
    }
    assert_int_equal(nmc_rt_timer_start(fx->a, 0, 1, &id), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    fx->rt = NULL; /* freed by its close callbacks */
    assert_int_equal(fx->nlog, 1);
    assert_int_equal(payloads_freed, 11);
}

static void test_actor_stop_refuses_new_messages(void **state)
{
    uint64_t id;

    assert_int_equal(nmc_rt_send(fx->a, new_msg(1, 0)), 0);
    nmc_rt_stop(fx->rt);
    assert_int_equal(payloads_freed, 1);
    assert_int_equal(nmc_rt_send(fx->a, new_msg(1, 1)), NMC_ESHUTDOWN);
    assert_int_equal(payloads_freed, 2);
    assert_int_equal(nmc_rt_timer_start(fx->a, 1, 1, &id), NMC_ESHUTDOWN);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->nlog, 0);
}

static void test_actor_msg_keep_hands_ownership(void **state)
{
    struct nmc_actor *k;

    assert_int_equal(nmc_rt_actor_create(fx->rt, "keeper", on_msg_keep, fx, 0, &k), 0);
    assert_int_equal(nmc_rt_send(k, new_msg(1, 7)), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_non_null(fx->kept);
    assert_int_equal(payloads_freed, 0);
    assert_int_equal(((struct payload *)fx->kept->payload)->seq, 7);
    /* the kept message can be forwarded: send takes it over again */
    assert_int_equal(nmc_rt_send(fx->a, fx->kept), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(payloads_freed, 1);
    assert_string_equal(fx->log[1].actor, "a");
}

/* Forwarding the message being handled, without keep, hands it on too. */
static void on_forward(struct nmc_actor *self, struct nmc_msg *m, void *state)
{
    struct fixture *f = state;

    record(self, m);
    assert_int_equal(nmc_rt_send(f->b, m), 0);
}

static void test_actor_send_forwarding_borrowed_message(void **state)
{
    struct nmc_actor *fw;

    assert_int_equal(nmc_rt_actor_create(fx->rt, "forwarder", on_forward, fx, 0, &fw), 0);
    assert_int_equal(nmc_rt_send(fw, new_msg(1, 5)), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->nlog, 2);
    assert_string_equal(fx->log[1].actor, "b");
    assert_int_equal(fx->log[1].seq, 5);
    assert_int_equal(payloads_freed, 1);
}

/* Prepare callbacks run once per loop iteration, before polling for I/O:
 * sampling a's count there shows what ran between two I/O phases. */
static void on_prepare(uv_prepare_t *h)
{
    if (fx->nprepare < LOG_MAX)
        fx->prepare_samples[fx->nprepare++] = fx->a_handled;
}

static void test_actor_budget_fairness(void **state)
{
    uv_prepare_t prep;
    size_t i, budget = 4;

    for (i = 0; i < 10000; i++)
        assert_int_equal(nmc_rt_send(fx->a, new_msg(1, (int)i)), 0);
    assert_int_equal(nmc_rt_send(fx->b, new_msg(2, 0)), 0);
    uv_prepare_init(&fx->loop, &prep);
    uv_prepare_start(&prep, on_prepare);
    uv_unref((uv_handle_t *)&prep);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->a_handled, 10000);
    assert_int_equal(fx->b_handled, 1);
    assert_true(fx->a_when_b <= budget * 2);
    assert_false(fx->reentered);
    /* the loop got a turn after every pass: never more than budget per pass */
    assert_true(fx->nprepare >= 10000 / budget);
    for (i = 1; i < fx->nprepare; i++)
        assert_true(fx->prepare_samples[i] - fx->prepare_samples[i - 1] <= budget);
    uv_close((uv_handle_t *)&prep, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT); /* the handle lives on this stack */
    assert_int_equal(payloads_freed, 10001);
}

static void on_io_timer(uv_timer_t *t)
{
    fx->a_when_timer = fx->a_handled;
}

/* A 1 ms uv_timer must fire while a works through 10,000 messages of 2 us. */
static void test_actor_budget_lets_timers_run(void **state)
{
    uv_timer_t t;
    size_t i;

    fx->spin_ns = 2000;
    fx->a_when_timer = SIZE_MAX;
    for (i = 0; i < 10000; i++)
        assert_int_equal(nmc_rt_send(fx->a, new_msg(1, (int)i)), 0);
    uv_timer_init(&fx->loop, &t);
    uv_timer_start(&t, on_io_timer, 1, 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->a_handled, 10000);
    assert_true(fx->a_when_timer < 10000);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
}

static size_t iter_of(const char *actor, int seq)
{
    size_t i;

    for (i = 0; i < fx->nlog; i++)
        if (strcmp(fx->log[i].actor, actor) == 0 && fx->log[i].seq == seq)
            return fx->log[i].iter;
    fail_msg("%s never handled seq %d", actor, seq);
    return 0;
}

static void test_actor_send_in_handler_later_pass(void **state)
{
    uv_prepare_t prep;
    int k;

    fx->send_in_handler = 1;
    assert_int_equal(nmc_rt_send(fx->a, new_msg(1, 0)), 0);
    uv_prepare_init(&fx->loop, &prep);
    uv_prepare_start(&prep, on_prepare);
    uv_unref((uv_handle_t *)&prep);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_false(fx->reentered);
    /* a:0 -> (a:1, b:100); a:1 -> (a:2, b:101); a:2 -> (a:3, b:102); a:3 */
    assert_int_equal(fx->a_handled, 4);
    assert_int_equal(fx->b_handled, 3);
    /* each message sent by a handler waited for a later pass, i.e. a
     * later loop iteration than the handler that sent it */
    for (k = 0; k < 3; k++) {
        assert_true(iter_of("a", k + 1) > iter_of("a", k));
        assert_true(iter_of("b", 100 + k) > iter_of("a", k));
    }
    uv_close((uv_handle_t *)&prep, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT); /* the handle lives on this stack */
    assert_int_equal(payloads_freed, 7);
}

static void test_actor_timer_fires_with_cookie(void **state)
{
    uint64_t id1 = 0, id2 = 0;

    assert_int_equal(nmc_rt_timer_start(fx->a, 5, 42, &id1), 0);
    assert_int_equal(nmc_rt_timer_start(fx->a, 1, 43, &id2), 0);
    assert_true(id1 > 0 && id2 > 0 && id1 != id2);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->nlog, 2);
    assert_int_equal(fx->log[0].type, NMC_MSG_TIMER);
    assert_int_equal(fx->log[0].cookie, 43);
    assert_int_equal(fx->log[0].seq, (int)id2);
    assert_int_equal(fx->log[1].cookie, 42);
    assert_int_equal(fx->log[1].seq, (int)id1);
    nmc_rt_timer_cancel(fx->rt, id1); /* after delivery: ignored */
}

static void test_actor_timer_cancel_prevents_delivery(void **state)
{
    uint64_t id1, id2, id3;

    assert_int_equal(nmc_rt_timer_start(fx->a, 1, 1, &id1), 0);
    assert_int_equal(nmc_rt_timer_start(fx->a, 2, 2, &id2), 0);
    assert_int_equal(nmc_rt_timer_start(fx->a, 1000000, 3, &id3), 0);
    nmc_rt_timer_cancel(fx->rt, id1);
    nmc_rt_timer_cancel(fx->rt, id3);
    nmc_rt_timer_cancel(fx->rt, 999999); /* unknown: ignored */
    uv_run(&fx->loop, UV_RUN_DEFAULT);   /* returns: cancelled timers hold no handle */
    assert_int_equal(fx->nlog, 1);
    assert_int_equal(fx->log[0].cookie, 2);
}

/* Cancels a timer that has fired but whose message still waits behind
 * 5,000 others in b's mailbox. */
static void on_cancel_timer(uv_timer_t *t)
{
    uint64_t *id = t->data;

    assert_int_equal(nmc_rt_actor_depth(fx->b), 5001); /* the firing is queued */
    nmc_rt_timer_cancel(fx->rt, *id);
}

static void test_actor_timer_cancel_after_fire_before_delivery(void **state)
{
    uv_timer_t t;
    uint64_t id;
    int i;

    for (i = 0; i < 5000; i++)
        assert_int_equal(nmc_rt_send(fx->b, new_msg(1, i)), 0);
    /* equal timeouts fire in start order: ours first, then the canceller */
    assert_int_equal(nmc_rt_timer_start(fx->b, 0, 7, &id), 0);
    uv_timer_init(&fx->loop, &t);
    t.data = &id;
    uv_timer_start(&t, on_cancel_timer, 0, 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->b_handled, 5000);
    for (i = 0; i < (int)fx->nlog; i++)
        assert_int_not_equal(fx->log[i].type, NMC_MSG_TIMER);
}

static void test_actor_timer_pending_at_destroy(void **state)
{
    uint64_t id;

    assert_int_equal(nmc_rt_timer_start(fx->a, 60000, 1, &id), 0);
    /* teardown destroys the runtime; uv_loop_close proves the handle closed */
}

static void test_actor_msg_inherit_copies_ids(void **state)
{
    struct nmc_msg *parent = nmc_rt_msg_new(NMC_MSG_MODULE, NULL, NULL);
    struct nmc_msg *child = nmc_rt_msg_new(NMC_MSG_MODULE + 1, NULL, NULL);
    struct nmc_msg *other = nmc_rt_msg_new(NMC_MSG_MODULE + 1, NULL, NULL);

    nmc_strlcpy(parent->tenant_id, "t-1", sizeof(parent->tenant_id));
    nmc_strlcpy(parent->correlation_id, "corr-1", sizeof(parent->correlation_id));
    nmc_strlcpy(parent->causation_id, "cause-0", sizeof(parent->causation_id));
    parent->trace.trace_id[0] = 0xab;
    parent->trace.flags = 1;
    nmc_rt_msg_inherit(child, parent);
    assert_string_equal(child->tenant_id, "t-1");
    assert_string_equal(child->correlation_id, "corr-1");
    assert_string_equal(child->causation_id, "corr-1");
    assert_int_equal(child->trace.trace_id[0], 0xab);
    assert_int_equal(child->trace.flags, 1);
    nmc_strlcpy(other->causation_id, "evt-9", sizeof(other->causation_id));
    nmc_rt_msg_inherit(other, parent);
    assert_string_equal(other->causation_id, "evt-9");
    nmc_rt_msg_free(parent);
    nmc_rt_msg_free(child);
    nmc_rt_msg_free(other);
    nmc_rt_msg_free(NULL);
}

static void test_actor_create_rejects_duplicates_and_finds(void **state)
{
    struct nmc_actor *x = NULL;

    assert_int_equal(nmc_rt_actor_create(fx->rt, "a", on_msg, fx, 0, &x), NMC_EINVAL);
    assert_null(x);
    assert_int_equal(nmc_rt_actor_create(fx->rt, "", on_msg, fx, 0, &x), NMC_EINVAL);
    assert_int_equal(nmc_rt_actor_create(fx->rt, "z", NULL, fx, 0, &x), NMC_EINVAL);
    assert_ptr_equal(nmc_rt_actor_find(fx->rt, "b"), fx->b);
    assert_null(nmc_rt_actor_find(fx->rt, "nope"));
    assert_ptr_equal(nmc_rt_actor_rt(fx->a), fx->rt);
    assert_ptr_equal(nmc_rt_loop(fx->rt), &fx->loop);
    assert_string_equal(nmc_rt_actor_name(fx->a), "a");
}

static void test_actor_stats_and_metrics(void **state)
{
    struct nmc_actor_stats st;
    struct nmc_metric *handled, *depth, *secs;
    const char *labels[] = {"a"};
    struct nmc_buf out = {0};
    int i;

    for (i = 0; i < 10; i++)
        assert_int_equal(nmc_rt_send(fx->a, new_msg(1, i)), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    nmc_rt_actor_stats(fx->a, &st);
    assert_int_equal(st.handled, 10);
    assert_int_equal(st.depth, 0);
    assert_int_equal(st.dropped, 0);
    assert_true(st.handler_ns_total > 0);
    handled = nmc_metrics_counter("nmc_actor_messages_total", "Messages handled by the actor.", "actor");
    secs = nmc_metrics_histogram("nmc_actor_handler_seconds", "Time spent in the actor's handler per message.",
                                 "actor", NULL, 0);
    depth = nmc_metrics_gauge("nmc_actor_mailbox_depth", "Messages waiting in the actor's mailbox.", "actor");
    assert_true(nmc_metrics_value(handled, labels) == 10.0);
    assert_true(nmc_metrics_value(secs, labels) == 10.0);
    assert_int_equal(nmc_rt_send(fx->a, new_msg(1, 99)), 0);
    assert_int_equal(nmc_metrics_render(&out), 0); /* runs the depth collector */
    assert_true(nmc_metrics_value(depth, labels) == 1.0);
    assert_non_null(strstr(out.data, "nmc_actor_handler_seconds_bucket{actor=\"a\",le=\"1e-06\"}"));
    nmc_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_actor_send_fifo_per_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_send_full_mailbox_frees_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_send_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_destroy_frees_pending_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_destroy_from_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_stop_refuses_new_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_msg_keep_hands_ownership, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_send_forwarding_borrowed_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_budget_fairness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_budget_lets_timers_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_send_in_handler_later_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_timer_fires_with_cookie, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_timer_cancel_prevents_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_timer_cancel_after_fire_before_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_timer_pending_at_destroy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_msg_inherit_copies_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_create_rejects_duplicates_and_finds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_stats_and_metrics, setup, teardown),
    };
    return cmocka_run_group_tests_name("runtime_actor", tests, NULL, NULL);
}
