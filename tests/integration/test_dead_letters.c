/* Dead letters (actors/outbox/dead_letters.c, owner: sms engineer) against
 * a real PostgreSQL with every migration applied: events dead-lettered the
 * way the dispatcher does it (NMC_OUTBOX_SQL_DEAD) are listed oldest first,
 * filtered by name and limited; requeued by id they are back in
 * outbox_events as written (id, event_id, payload, created_at), due, with
 * their attempts reset, and a LISTENing dispatcher is woken; an id that
 * names no dead letter moves nothing (all or nothing); --all with an event
 * name moves only those; bad arguments are refused before any change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/outbox/dead_letters.h"
#include "actors/outbox/outbox_sql.h"
#include "tests/support/pgtest.h"

static struct {
    char *url;
    PGconn *db;
    char tenant[40];
} F;

static int setup(void **state)
{
    (void)state;
    F.url = pgtest_db_migrated();
    F.db = pgtest_connect(F.url);
    pgtest_tenant(F.db, "Dead Letter Plumbing", F.tenant);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(F.db);
    pgtest_db_drop(F.url);
    return 0;
}

static int64_t num(const char *sql)
{
    return pgtest_int(F.db, sql);
}

/* Inserts an event, marks it tried `attempts` times, dead-letters it as the
 * dispatcher does with error err; returns its id. */
static int64_t dead_event(const char *name, int attempts, const char *err)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id, attempts,"
             " last_error) VALUES ('%s', 1, '{\"tenant_id\": \"%s\", \"n\": %d}', '%s', 'corr-%s', %d, 'boom')"
             " RETURNING id",
             name, F.tenant, attempts, F.tenant, name, attempts);
    int64_t id = num(sql);
    char ids[32], errs[128];
    snprintf(ids, sizeof ids, "{%lld}", (long long)id);
    snprintf(errs, sizeof errs, "{\"%s\"}", err);
    const char *p[2] = { ids, errs };
    PGresult *r = PQexecParams(F.db, NMC_OUTBOX_SQL_DEAD, 2, NULL, p, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    return id;
}

/* What a function wrote to its FILE, NUL-terminated (malloc'd). */
static char *captured(FILE *f)
{
    long len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    char *s = calloc(1, (size_t)len + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)len, f), (size_t)len);
    return s;
}

static void test_dead_letters_list_and_requeue(void **state)
{
    (void)state;
    pgtest_exec(F.db, "DELETE FROM outbox_events_errors; DELETE FROM outbox_events");
    int64_t a = dead_event("CallDetected", 10, "consumer conversation: database unavailable");
    int64_t b = dead_event("SmsSendReleased", 10, "consumer conversation: database unavailable");
    int64_t c = dead_event("CallDetected", 3, "permanent: bad payload");
    assert_int_equal(num("SELECT count(*) FROM outbox_events"), 0);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT event_id::text || created_at::text FROM outbox_events_errors WHERE id = %lld",
             (long long)a);
    char *before = pgtest_value(F.db, sql);

    /* listed oldest first, one JSON object per line */
    FILE *out = tmpfile();
    size_t n = 0;
    char err[512] = "";
    assert_int_equal(nmc_dead_letters_list(F.url, NULL, 100, out, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    char *text = captured(out);
    fclose(out);
    char want[64];
    snprintf(want, sizeof want, "{\"id\" : %lld, ", (long long)a);
    assert_non_null(strstr(text, want));
    assert_ptr_equal(strstr(text, want), text); /* the first dead-lettered comes first */
    assert_non_null(strstr(text, "\"last_error\" : \"permanent: bad payload\""));
    assert_non_null(strstr(text, "\"payload\" : {\"n\": 3, \"tenant_id\""));
    free(text);
    /* by name, and limited */
    out = tmpfile();
    assert_int_equal(nmc_dead_letters_list(F.url, "SmsSendReleased", 100, out, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    fclose(out);
    out = tmpfile();
    assert_int_equal(nmc_dead_letters_list(F.url, NULL, 2, out, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    fclose(out);

    /* requeued by id: back as written, due, attempts reset; a listener woken */
    PGconn *listener = pgtest_connect(F.url);
    pgtest_exec(listener, "LISTEN " NMC_OUTBOX_NOTIFY_CHANNEL);
    int64_t ids[2] = { c, a };
    out = tmpfile();
    assert_int_equal(nmc_dead_letters_requeue(F.url, ids, 2, NULL, out, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    text = captured(out);
    fclose(out);
    char lines[64];
    snprintf(lines, sizeof lines, "%lld\n%lld\n", (long long)a, (long long)c);
    assert_string_equal(text, lines);
    free(text);
    snprintf(sql, sizeof sql, "SELECT event_id::text || created_at::text FROM outbox_events WHERE id = %lld",
             (long long)a);
    char *after = pgtest_value(F.db, sql);
    assert_string_equal(after, before);
    free(before);
    free(after);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outbox_events WHERE id IN (%lld, %lld) AND attempts = 0 AND dispatched_at IS NULL"
             " AND locked_by IS NULL AND available_at <= now() AND payload ? 'tenant_id'",
             (long long)a, (long long)c);
    assert_int_equal(num(sql), 2);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM outbox_events_errors WHERE id <> %lld", (long long)b);
    assert_int_equal(num(sql), 0);
    PGnotify *note = NULL; /* sent at the requeue's commit, delivered when the listener's backend gets to it */
    for (int i = 0; i < 500 && note == NULL; i++) {
        assert_int_equal(PQconsumeInput(listener), 1);
        if ((note = PQnotifies(listener)) == NULL)
            pgtest_exec(F.db, "SELECT pg_sleep(0.01)");
    }
    assert_non_null(note);
    assert_string_equal(note->relname, NMC_OUTBOX_NOTIFY_CHANNEL);
    PQfreemem(note);
    PQfinish(listener);

    /* the dispatcher's claim takes them: they are ordinary pending events again */
    const char *cp[3] = { "test-instance", "10", "30000" };
    PGresult *r = PQexecParams(F.db, NMC_OUTBOX_SQL_CLAIM, 3, NULL, cp, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 2);
    PQclear(r);
}

static void test_dead_letters_requeue_is_all_or_nothing(void **state)
{
    (void)state;
    pgtest_exec(F.db, "DELETE FROM outbox_events_errors; DELETE FROM outbox_events");
    int64_t a = dead_event("CallDetected", 10, "x");
    int64_t ids[3] = { a, a + 1000, a + 2000 };
    size_t n = 7;
    char err[512] = "";
    assert_int_equal(nmc_dead_letters_requeue(F.url, ids, 3, NULL, NULL, &n, err, sizeof err), NMC_ENOTFOUND);
    assert_int_equal(n, 0);
    char want[96];
    snprintf(want, sizeof want, "no dead letter with id %lld (nothing requeued)", (long long)(a + 1000));
    assert_string_equal(err, want);
    assert_int_equal(num("SELECT count(*) FROM outbox_events_errors"), 1);
    assert_int_equal(num("SELECT count(*) FROM outbox_events"), 0);
    /* the same id twice is one dead letter */
    int64_t twice[2] = { a, a };
    assert_int_equal(nmc_dead_letters_requeue(F.url, twice, 2, NULL, NULL, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    /* requeued once, it is no dead letter any more */
    assert_int_equal(nmc_dead_letters_requeue(F.url, &a, 1, NULL, NULL, &n, err, sizeof err), NMC_ENOTFOUND);
    assert_int_equal(num("SELECT count(*) FROM outbox_events"), 1);
}

static void test_dead_letters_requeue_all_by_name(void **state)
{
    (void)state;
    pgtest_exec(F.db, "DELETE FROM outbox_events_errors; DELETE FROM outbox_events");
    (void)dead_event("CallDetected", 10, "x");
    (void)dead_event("CallDetected", 10, "y");
    int64_t other = dead_event("SmsSendReleased", 10, "z");
    size_t n = 0;
    char err[512] = "";
    assert_int_equal(nmc_dead_letters_requeue(F.url, NULL, 0, "CallDetected", NULL, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT id FROM outbox_events_errors");
    assert_int_equal(num(sql), other);
    assert_int_equal(num("SELECT count(*) FROM outbox_events WHERE event_name = 'CallDetected'"), 2);
    /* nothing left of that name: nothing moves, and that is no error */
    assert_int_equal(nmc_dead_letters_requeue(F.url, NULL, 0, "CallDetected", NULL, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    /* every one */
    assert_int_equal(nmc_dead_letters_requeue(F.url, NULL, 0, NULL, NULL, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(num("SELECT count(*) FROM outbox_events_errors"), 0);
}

static void test_dead_letters_bad_arguments(void **state)
{
    (void)state;
    pgtest_exec(F.db, "DELETE FROM outbox_events_errors; DELETE FROM outbox_events");
    int64_t a = dead_event("CallDetected", 10, "x");
    size_t n = 0;
    char err[512] = "";
    assert_int_equal(nmc_dead_letters_requeue(F.url, &a, 1, "CallDetected", NULL, &n, err, sizeof err), NMC_EINVAL);
    assert_string_equal(err, "give ids or an event name, not both");
    FILE *out = tmpfile();
    assert_int_equal(nmc_dead_letters_list(F.url, NULL, 0, out, &n, err, sizeof err), NMC_EINVAL);
    assert_int_equal(nmc_dead_letters_list(F.url, NULL, NMC_DEAD_LETTERS_LIMIT_MAX + 1, out, &n, err, sizeof err),
                     NMC_EINVAL);
    assert_string_equal(err, "limit must be 1..10000");
    fclose(out);
    assert_int_equal(nmc_dead_letters_list("host=/nonexistent port=1 dbname=x connect_timeout=1", NULL, 10, stdout,
                                           &n, err, sizeof err),
                     NMC_EDB);
    assert_non_null(strstr(err, "cannot connect to the database"));
    assert_int_equal(num("SELECT count(*) FROM outbox_events_errors"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_letters_list_and_requeue),
        cmocka_unit_test(test_dead_letters_requeue_is_all_or_nothing),
        cmocka_unit_test(test_dead_letters_requeue_all_by_name),
        cmocka_unit_test(test_dead_letters_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
