/* The first-response tracker on the message (migration 0038, owner: perf
 * engineer), against a real PostgreSQL with every migration applied:
 * nmc_conv_first_reply stamps the trigger on the message and the
 * first_responses view shows it; marking the send (NMC_CONV_SQL_MARK_SENT,
 * set-based) sets first_queued_at once and writes FirstReplySent once, also
 * when two sessions mark the same send at the same time and when one
 * statement marks it twice; a message that is not a first reply gets neither;
 * a reply held for compliance is timed from its release. Migration 0040:
 * marking a send and a status callback's update are heap-only (no index of
 * messages names a column they change); status 'held' goes with a hold
 * reason and nothing else does. Migration 0043: a repeat call is counted on
 * the open conversation once, however often it is delivered. Migration 0044:
 * two calls of one caller decided at the same time in two transactions get
 * one first reply, and two adoptions of Twilio's one message with their
 * text take it once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/conversation/conversation_sql.h"
#include "tests/support/pgtest.h"

#define CALLER "+15557770001"
#define BUSINESS "+15550007000"

static struct {
    char *url;
    PGconn *db;
    char tenant[40];
} F;

static int64_t num(const char *sql)
{
    return pgtest_int(F.db, sql);
}

/* Records a first reply for call sid and returns the message id (malloc'd). */
static char *first_reply(const char *sid, const char *triggered_at)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT message_id FROM nmc_conv_first_reply('%s', '%s', '%s', 'missed_call', '%s', %s,"
             " 'first:%s', 'Sorry we missed you', 'pending', NULL, 1, 0, 'corr', 'cause', NULL, 0, NULL)",
             F.tenant, CALLER, BUSINESS, sid, triggered_at, sid);
    char *id = pgtest_value(F.db, sql);
    assert_non_null(id);
    return id;
}

/* NMC_CONV_SQL_MARK_SENT for the sends of ids (an array literal, statuses
 * and SIDs alike; correlation and causation ids made up, no lease). */
static PGresult *mark_sends(PGconn *c, const char *ids, const char *statuses, const char *sids, int n)
{
    char corr[256] = "{", cause[256] = "{";
    size_t lc = 1, la = 1;
    for (int i = 0; i < n; i++) {
        lc += (size_t)snprintf(corr + lc, sizeof corr - lc, "%scorr", i > 0 ? "," : "");
        la += (size_t)snprintf(cause + la, sizeof cause - la, "%scause", i > 0 ? "," : "");
    }
    snprintf(corr + lc, sizeof corr - lc, "}");
    snprintf(cause + la, sizeof cause - la, "}");
    const char *v[7] = { ids, statuses, sids, corr, cause, NULL, "0" };
    return PQexecParams(c, NMC_CONV_SQL_MARK_SENT, 7, NULL, v, NULL, NULL, 0);
}

/* Marks msg's send queued alone: its first response ms when this mark
 * recorded it (malloc'd), else NULL. */
static char *mark_sent_on(PGconn *c, const char *msg)
{
    char ids[64], sids[64];
    snprintf(ids, sizeof ids, "{%s}", msg);
    snprintf(sids, sizeof sids, "{SM%.30s}", msg);
    PGresult *r = mark_sends(c, ids, "{queued}", sids, 1);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    char *v = PQntuples(r) > 0 ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return v;
}

static int64_t first_reply_sent_events(const char *msg)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox_events WHERE event_name = 'FirstReplySent' AND payload->>'message_id' = '%s'",
             msg);
    return num(sql);
}

static int setup(void **state)
{
    (void)state;
    F.url = pgtest_db_migrated();
    F.db = pgtest_connect(F.url);
    pgtest_tenant(F.db, "First Response Plumbing", F.tenant);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(F.db);
    pgtest_db_drop(F.url);
    return 0;
}

static void test_first_response_marked_once_with_one_event(void **state)
{
    (void)state;
    char *msg = first_reply("CAfr0001", "now() - interval '2 seconds'");
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM first_responses f JOIN messages m ON m.id = f.message_id WHERE f.message_id = '%s'"
             " AND f.trigger = 'missed_call' AND f.first_queued_at IS NULL AND f.tenant_id = m.tenant_id"
             " AND f.conversation_id = m.conversation_id",
             msg);
    assert_int_equal(num(sql), 1);

    char *ms = mark_sent_on(F.db, msg);
    assert_non_null(ms);               /* the first mark times it ... */
    assert_true(atoll(ms) >= 2000);    /* ... from the trigger, two seconds back */
    free(ms);
    snprintf(sql, sizeof sql, "SELECT first_queued_at FROM first_responses WHERE message_id = '%s'", msg);
    char *queued = pgtest_value(F.db, sql);
    assert_non_null(queued);
    assert_int_equal(first_reply_sent_events(msg), 1);

    assert_null(mark_sent_on(F.db, msg)); /* a second mark (redelivery) writes nothing */
    char *again = pgtest_value(F.db, sql);
    assert_string_equal(again, queued);   /* and keeps the first time */
    assert_int_equal(first_reply_sent_events(msg), 1);
    free(again);
    free(queued);
    free(msg);
}

/* Two sessions mark the same send; the second waits for the first's row
 * lock and, reading the committed first_queued_at, writes no second event. */
static void test_first_response_concurrent_marks_write_one_event(void **state)
{
    (void)state;
    char *msg = first_reply("CAfr0002", "now()");
    PGconn *a = pgtest_connect(F.url), *b = pgtest_connect(F.url);
    pgtest_exec(a, "BEGIN");
    char *ms = mark_sent_on(a, msg);
    assert_non_null(ms);
    free(ms);
    char ids[64];
    snprintf(ids, sizeof ids, "{%s}", msg);
    const char *v[7] = { ids, "{queued}", "{SMother}", "{corr}", "{cause}", NULL, "0" };
    assert_int_equal(PQsendQueryParams(b, NMC_CONV_SQL_MARK_SENT, 7, NULL, v, NULL, NULL, 0), 1); /* blocks on a's row lock */
    pgtest_exec(F.db, "SELECT pg_sleep(0.2)");
    pgtest_exec(a, "COMMIT");
    PGresult *r = PQgetResult(b);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 0);
    PQclear(r);
    while ((r = PQgetResult(b)) != NULL)
        PQclear(r);
    assert_int_equal(first_reply_sent_events(msg), 1);
    PQfinish(a);
    PQfinish(b);
    free(msg);
}

static void test_first_response_not_for_other_messages(void **state)
{
    (void)state;
    char *conv = pgtest_value(F.db, "SELECT conversation_id FROM messages LIMIT 1");
    char sql[768];
    snprintf(sql, sizeof sql,
             "INSERT INTO messages (tenant_id, conversation_id, direction, kind, dedupe_key, from_e164, to_e164, body,"
             " status) VALUES ('%s', '%s', 'outbound', 'reply', 'reply:1', '%s', '%s', 'On our way', 'pending')"
             " RETURNING id",
             F.tenant, conv, BUSINESS, CALLER);
    char *msg = pgtest_value(F.db, sql);
    assert_null(mark_sent_on(F.db, msg));
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM messages WHERE id = '%s' AND status = 'queued' AND queued_at IS NOT NULL"
             " AND first_queued_at IS NULL AND triggered_at IS NULL",
             msg);
    assert_int_equal(num(sql), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM first_responses WHERE message_id = '%s'", msg);
    assert_int_equal(num(sql), 0);
    assert_int_equal(first_reply_sent_events(msg), 0);
    free(msg);
    free(conv);
}

/* A reply held while the tenant awaited approval is timed from the
 * release, not from the call an hour earlier. */
static void test_first_response_compliance_release_restarts_the_clock(void **state)
{
    (void)state;
    char sql[768];
    snprintf(sql, sizeof sql, "UPDATE tenants SET compliance_status = 'pending' WHERE id = '%s'", F.tenant);
    pgtest_exec(F.db, sql);
    snprintf(sql, sizeof sql,
             "SELECT message_id FROM nmc_conv_first_reply('%s', '+15557770002', '%s', 'missed_call', 'CAfr0003',"
             " now() - interval '1 hour', 'first:CAfr0003', 'Sorry we missed you', 'pending', NULL, 1, 0, 'corr',"
             " 'cause', NULL, 0, NULL)",
             F.tenant, BUSINESS);
    char *msg = pgtest_value(F.db, sql);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE id = '%s' AND status = 'held'", msg);
    assert_int_equal(num(sql), 1);
    snprintf(sql, sizeof sql, "UPDATE tenants SET compliance_status = 'approved' WHERE id = '%s'", F.tenant);
    pgtest_exec(F.db, sql);
    snprintf(sql, sizeof sql, "SELECT released FROM nmc_conv_release_compliance('%s', 1440, 'corr', 'cause')",
             F.tenant);
    assert_int_equal(num(sql), 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM first_responses WHERE message_id = '%s' AND triggered_at > now() - interval '1 minute'",
             msg);
    assert_int_equal(num(sql), 1);
    char *ms = mark_sent_on(F.db, msg);
    assert_non_null(ms);
    assert_true(atoll(ms) < 60000);
    free(ms);
    free(msg);
}

/* One statement marks several sends: each first reply once (a send listed
 * twice gets one event), a reply that is not a first reply gets none, and
 * each row names its send's position in the arrays. */
static void test_first_response_group_marks_each_send_once(void **state)
{
    (void)state;
    char *a = first_reply("CAfr0010", "now() - interval '1 second'");
    char *b = first_reply("CAfr0011", "now()");
    char *conv = pgtest_value(F.db, "SELECT conversation_id FROM messages LIMIT 1");
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO messages (tenant_id, conversation_id, direction, kind, dedupe_key, from_e164, to_e164, body,"
             " status) VALUES ('%s', '%s', 'outbound', 'reply', 'reply:group', '%s', '%s', 'On our way', 'pending')"
             " RETURNING id",
             F.tenant, conv, BUSINESS, CALLER);
    char *c = pgtest_value(F.db, sql);
    char ids[256];
    snprintf(ids, sizeof ids, "{%s,%s,%s,%s}", c, a, b, a);
    PGresult *r = mark_sends(F.db, ids, "{queued,queued,accepted,queued}", "{SMg1,SMg2,SMg3,SMg2}", 4);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 2);
    int seen_a = 0, seen_b = 0;
    for (int k = 0; k < 2; k++) {
        long i = strtol(PQgetvalue(r, k, 5), NULL, 10);
        seen_a += i == 2 || i == 4;
        seen_b += i == 3;
        assert_false(PQgetisnull(r, k, 1)); /* the event's outbox id */
    }
    assert_int_equal(seen_a, 1);
    assert_int_equal(seen_b, 1);
    PQclear(r);
    assert_int_equal(first_reply_sent_events(a), 1);
    assert_int_equal(first_reply_sent_events(b), 1);
    assert_int_equal(first_reply_sent_events(c), 0);
    snprintf(sql, sizeof sql,
             "SELECT string_agg(status || ':' || provider_sid, ' ' ORDER BY provider_sid) FROM messages"
             " WHERE id IN ('%s', '%s', '%s')", a, b, c);
    char *st = pgtest_value(F.db, sql);
    assert_string_equal(st, "queued:SMg1 queued:SMg2 accepted:SMg3");
    free(st);
    free(a);
    free(b);
    free(c);
    free(conv);
}

/* In one transaction, pg_stat_xact_user_tables counts that transaction's
 * updates of messages and how many of them were heap-only (HOT). */
static void assert_updates_heap_only(PGconn *c, int64_t expected)
{
    char *v = pgtest_value(c, "SELECT n_tup_upd || ' ' || n_tup_hot_upd FROM pg_stat_xact_user_tables"
                              " WHERE relname = 'messages'");
    assert_non_null(v);
    long long upd = -1, hot = -1;
    assert_int_equal(sscanf(v, "%lld %lld", &upd, &hot), 2);
    assert_int_equal(upd, expected);
    assert_int_equal(hot, expected);
    free(v);
}

static void test_first_response_send_updates_are_heap_only(void **state)
{
    (void)state;
    char *msg = first_reply("CAfr0004", "now()");
    PGconn *c = pgtest_connect(F.url);
    pgtest_exec(c, "BEGIN");
    char *ms = mark_sent_on(c, msg); /* queued: status, provider_sid, queued_at, first_queued_at */
    assert_non_null(ms);
    free(ms);
    char sql[512];
    snprintf(sql, sizeof sql, /* a status callback's update (actors/telephony/telephony_sql.h) */
             "UPDATE messages m SET status = CASE WHEN nmc_sms_status_advances(m.status, 'delivered')"
             " THEN 'delivered' ELSE m.status END, hold_reason = CASE WHEN nmc_sms_status_advances(m.status,"
             " 'delivered') THEN NULL ELSE m.hold_reason END, updated_at = now() WHERE m.id = '%s'",
             msg);
    pgtest_exec(c, sql);
    assert_updates_heap_only(c, 2);
    pgtest_exec(c, "COMMIT");
    PQfinish(c);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE id = '%s' AND status = 'delivered'", msg);
    assert_int_equal(num(sql), 1);
    free(msg);
}

/* A message is 'held' exactly when it says why: the database refuses
 * either without the other, and a keyword reply held by the pause records
 * 'pause' (nmc_conv_release_held releases by that reason). */
static void test_first_response_held_goes_with_a_reason(void **state)
{
    (void)state;
    char *conv = pgtest_value(F.db, "SELECT conversation_id FROM messages LIMIT 1");
    const char *bad[] = { "'held', NULL", "'pending', 'pause'" };
    for (size_t i = 0; i < 2; i++) {
        char sql[768];
        snprintf(sql, sizeof sql,
                 "INSERT INTO messages (tenant_id, conversation_id, direction, kind, dedupe_key, from_e164, to_e164,"
                 " body, status, hold_reason) VALUES ('%s', '%s', 'outbound', 'reply', 'bad-hold:%zu', '%s', '%s',"
                 " 'x', %s)",
                 F.tenant, conv, i, BUSINESS, CALLER, bad[i]);
        PGresult *r = PQexec(F.db, sql);
        assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
        assert_string_equal(PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME), "messages_held_has_reason");
        PQclear(r);
    }
    char sql[768];
    snprintf(sql, sizeof sql,
             "SELECT message_status FROM nmc_conv_keyword('%s', '%s', '%s', 'SMkw0001', 'HELP', NULL, 'Help text',"
             " 'help', 'held', NULL, 'corr', 'cause')",
             F.tenant, CALLER, BUSINESS);
    char *st = pgtest_value(F.db, sql);
    assert_string_equal(st, "held");
    free(st);
    assert_int_equal(num("SELECT count(*) FROM messages WHERE dedupe_key = 'kw:SMkw0001' AND hold_reason = 'pause'"),
                     1);
    assert_true(num("SELECT nmc_conv_release_held()") >= 1);
    assert_int_equal(num("SELECT count(*) FROM messages WHERE dedupe_key = 'kw:SMkw0001' AND status = 'retry'"
                         " AND hold_reason IS NULL"),
                     1);
    free(conv);
}

/* Migration 0043: a missed call inside the repeat window writes no message
 * and is counted on the caller's open conversation, once, however often its
 * CallDetected is delivered (at least once: after a crash it comes again);
 * an inbound SMS in the window counts nothing. */
static void test_first_response_repeat_call_counted_once(void **state)
{
    (void)state;
    const char *caller = "+15557770099";
    /* trigger, its ref (CallSid or MessageSid), what the reply was blocked by, the missed calls after */
    static const struct {
        const char *trigger, *ref, *blocked;
        int missed;
    } steps[] = {
        { "missed_call", "CArep1", "", 1 },       { "missed_call", "CArep2", "repeat", 2 },
        { "missed_call", "CArep2", "repeat", 2 }, { "missed_call", "CArep2", "repeat", 2 },
        { "missed_call", "CArep3", "repeat", 3 }, { "inbound_sms", "SMrep1", "repeat", 3 },
    };
    char sql[1024];
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int call = strcmp(steps[i].trigger, "missed_call") == 0;
        snprintf(sql, sizeof sql,
                 "SELECT coalesce(blocked, '') FROM nmc_conv_first_reply('%s', '%s', '%s', '%s', '%s', now(),"
                 " 'first:%s:%s', 'Sorry we missed you', 'pending', NULL, %d, 60, 'corr', 'cause', NULL, 0, NULL)",
                 F.tenant, caller, BUSINESS, steps[i].trigger, steps[i].ref, call ? "call" : "sms", steps[i].ref, call);
        char *b = pgtest_value(F.db, sql);
        assert_string_equal(b, steps[i].blocked);
        free(b);
        snprintf(sql, sizeof sql,
                 "SELECT missed_calls FROM conversations WHERE tenant_id = '%s' AND caller_e164 = '%s'"
                 " AND status = 'open'",
                 F.tenant, caller);
        assert_int_equal(num(sql), steps[i].missed);
    }
    snprintf(sql, sizeof sql, "SELECT count(*) FROM conversation_repeat_calls WHERE tenant_id = '%s'", F.tenant);
    assert_int_equal(num(sql), 2);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE tenant_id = '%s' AND to_e164 = '%s'", F.tenant,
             caller);
    assert_int_equal(num(sql), 1);
}

/* Migration 0044: two missed calls of one caller decided at the same time
 * in two transactions. The second waits (for the first's caller lock; before
 * 0044 for the open conversation's key, after reading no first reply) and,
 * once the first commits, finds its first reply in the repeat window: one
 * first reply, the second call counted on the conversation. */
static void test_first_response_concurrent_calls_of_one_caller_reply_once(void **state)
{
    (void)state;
    const char *caller = "+15557770098";
    char sql[1024];
    PGconn *a = pgtest_connect(F.url), *b = pgtest_connect(F.url);
    pgtest_exec(a, "BEGIN");
    snprintf(sql, sizeof sql,
             "SELECT coalesce(blocked, ''), created FROM nmc_conv_first_reply('%s', '%s', '%s', 'missed_call',"
             " 'CAconc1', now(), 'first:call:CAconc1', 'Sorry we missed you', 'pending', NULL, 1, 60, 'corr',"
             " 'cause', NULL, 0, NULL)",
             F.tenant, caller, BUSINESS);
    char *first = pgtest_value(a, sql);
    assert_string_equal(first, "");
    free(first);
    snprintf(sql, sizeof sql,
             "SELECT coalesce(blocked, ''), created FROM nmc_conv_first_reply('%s', '%s', '%s', 'missed_call',"
             " 'CAconc2', now(), 'first:call:CAconc2', 'Sorry we missed you', 'pending', NULL, 1, 60, 'corr',"
             " 'cause', NULL, 0, NULL)",
             F.tenant, caller, BUSINESS);
    assert_int_equal(PQsendQuery(b, sql), 1);
    /* b is waiting for a lock a holds (not merely not started yet) */
    char waiting[256];
    snprintf(waiting, sizeof waiting,
             "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND wait_event_type = 'Lock'", PQbackendPID(b));
    for (int i = 0; i < 500 && num(waiting) == 0; i++)
        pgtest_exec(F.db, "SELECT pg_sleep(0.01)");
    assert_int_equal(num(waiting), 1);
    pgtest_exec(a, "COMMIT");
    PGresult *r = PQgetResult(b);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "repeat");
    assert_string_equal(PQgetvalue(r, 0, 1), "f");
    PQclear(r);
    while ((r = PQgetResult(b)) != NULL)
        PQclear(r);
    PQfinish(a);
    PQfinish(b);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE tenant_id = '%s' AND to_e164 = '%s'", F.tenant,
             caller);
    assert_int_equal(num(sql), 1);
    snprintf(sql, sizeof sql,
             "SELECT missed_calls FROM conversations WHERE tenant_id = '%s' AND caller_e164 = '%s' AND status = 'open'",
             F.tenant, caller);
    assert_int_equal(num(sql), 2);
}

/* Adoption (NMC_CONV_SQL_CALLER_LOCK, then NMC_CONV_SQL_ADOPT, in one
 * transaction): two intents with the same text to one caller, both of
 * unknown outcome, reconciled at the same time against Twilio's one message
 * with that text. The first takes it; the second waits for the caller's
 * lock and then finds it taken: no row, so it sends its own. Before, both
 * adopted the same message and the second reply was never sent. */
static void test_first_response_concurrent_adoptions_take_a_message_once(void **state)
{
    (void)state;
    const char *caller = "+15557770097";
    char sql[1024];
    char *ids[2];
    for (int i = 0; i < 2; i++) {
        snprintf(sql, sizeof sql,
                 "SELECT message_id FROM nmc_conv_first_reply('%s', '%s', '%s', 'missed_call', 'CAadopt%d', now(),"
                 " 'first:call:CAadopt%d', 'Sorry we missed you', 'pending', NULL, 1, 0, 'corr', 'cause', NULL, 0,"
                 " NULL)",
                 F.tenant, caller, BUSINESS, i, i);
        ids[i] = pgtest_value(F.db, sql);
        assert_non_null(ids[i]);
    }
    PGconn *c[2] = { pgtest_connect(F.url), pgtest_connect(F.url) };
    for (int i = 0; i < 2; i++) {
        pgtest_exec(c[i], "BEGIN");
        const char *lock[2] = { F.tenant, caller };
        assert_int_equal(PQsendQueryParams(c[i], NMC_CONV_SQL_CALLER_LOCK, 2, NULL, lock, NULL, NULL, 0), 1);
        if (i == 0) {
            PGresult *r;
            while ((r = PQgetResult(c[0])) != NULL) {
                assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
                PQclear(r);
            }
        }
    }
    /* the second waits for the first's lock */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND wait_event_type = 'Lock'",
             PQbackendPID(c[1]));
    for (int i = 0; i < 500 && num(sql) == 0; i++)
        pgtest_exec(F.db, "SELECT pg_sleep(0.01)");
    assert_int_equal(num(sql), 1);
    const char *a[5] = { "{SMadopted1}", "{queued}", F.tenant, caller, ids[0] };
    PGresult *r = PQexecParams(c[0], NMC_CONV_SQL_ADOPT, 5, NULL, a, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "SMadopted1");
    PQclear(r);
    pgtest_exec(c[0], "COMMIT");
    while ((r = PQgetResult(c[1])) != NULL) {
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        PQclear(r);
    }
    const char *b[5] = { "{SMadopted1}", "{queued}", F.tenant, caller, ids[1] };
    r = PQexecParams(c[1], NMC_CONV_SQL_ADOPT, 5, NULL, b, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 0); /* taken: the second intent is sent */
    PQclear(r);
    pgtest_exec(c[1], "COMMIT");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE provider_sid = 'SMadopted1'");
    assert_int_equal(num(sql), 1);
    PQfinish(c[0]);
    PQfinish(c[1]);
    free(ids[0]);
    free(ids[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_response_marked_once_with_one_event),
        cmocka_unit_test(test_first_response_concurrent_marks_write_one_event),
        cmocka_unit_test(test_first_response_not_for_other_messages),
        cmocka_unit_test(test_first_response_compliance_release_restarts_the_clock),
        cmocka_unit_test(test_first_response_group_marks_each_send_once),
        cmocka_unit_test(test_first_response_send_updates_are_heap_only),
        cmocka_unit_test(test_first_response_held_goes_with_a_reason),
        cmocka_unit_test(test_first_response_repeat_call_counted_once),
        cmocka_unit_test(test_first_response_concurrent_calls_of_one_caller_reply_once),
        cmocka_unit_test(test_first_response_concurrent_adoptions_take_a_message_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
