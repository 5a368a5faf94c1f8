/* db/migrate.c against a real PostgreSQL: up/status/down cycles on a
 * temporary folder, bad file sets, failure atomicity, the advisory lock
 * under concurrent runs, migrations outside a transaction (CREATE INDEX
 * CONCURRENTLY: applied, reverted, a failed build's invalid index named,
 * a second runner waiting without blocking the build), and the real
 * migrations/ folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "db/migrate.h"
#include "tests/support/pgtest.h"

struct fixture {
    char *url;
    PGconn *db;
    char dir[64];
    char err[512];
    char *out;
    size_t outlen;
    FILE *outf;
};

static struct fixture F;

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", F.dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void write_pair(const char *stem, const char *up, const char *down)
{
    char name[128];
    snprintf(name, sizeof name, "%s.up.sql", stem);
    write_file(name, up);
    snprintf(name, sizeof name, "%s.down.sql", stem);
    write_file(name, down);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* The captured progress output so far. */
static const char *output(void)
{
    fflush(F.outf);
    return F.out ? F.out : "";
}

static int test_setup(void **state)
{
    (void)state;
    F.url = pgtest_db_create();
    F.db = pgtest_connect(F.url);
    nmc_strlcpy(F.dir, "/tmp/nmc-migrate-XXXXXX", sizeof F.dir);
    assert_non_null(mkdtemp(F.dir));
    F.err[0] = '\0';
    F.outf = open_memstream(&F.out, &F.outlen);
    assert_non_null(F.outf);
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    fclose(F.outf);
    free(F.out);
    F.out = NULL;
    remove_dir(F.dir);
    PQfinish(F.db);
    pgtest_db_drop(F.url);
    return 0;
}

static int64_t count(const char *sql)
{
    return pgtest_int(F.db, sql);
}

static char *public_tables(void)
{
    return pgtest_value(F.db, "SELECT coalesce(string_agg(tablename, ',' ORDER BY tablename), '') FROM pg_tables "
                              "WHERE schemaname = 'public'");
}

static void tiny_set(void)
{
    write_pair("0001_alpha", "CREATE TABLE alpha (id int PRIMARY KEY);\nINSERT INTO alpha VALUES (1);\n",
               "DROP TABLE alpha;\n");
    write_pair("0002_beta", "CREATE TABLE beta (id int REFERENCES alpha(id));", "DROP TABLE beta;");
    write_pair("0003_gamma", "ALTER TABLE alpha ADD COLUMN note text;", "ALTER TABLE alpha DROP COLUMN note;");
    write_file("README.md", "not a migration\n");
}

static int status(int *pending)
{
    return nmc_db_migrate_status(F.url, F.dir, F.outf, pending, F.err, sizeof F.err);
}

static void test_db_migrate_up_status_down_cycle(void **state)
{
    (void)state;
    tiny_set();
    int pending = -1;
    assert_int_equal(status(&pending), 0);
    assert_int_equal(pending, 3);
    assert_int_equal(count("SELECT count(*) FROM pg_tables WHERE tablename = 'schema_migrations'"), 0);

    assert_int_equal(nmc_db_migrate_up(F.url, F.dir, F.outf, F.err, sizeof F.err), 0);
    assert_non_null(strstr(output(), "applying 0001_alpha"));
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 3);
    char *name = pgtest_value(F.db, "SELECT name FROM schema_migrations WHERE version = 2");
    assert_string_equal(name, "0002_beta");
    free(name);
    assert_int_equal(count("SELECT count(*) FROM information_schema.columns WHERE column_name = 'note'"), 1);
    assert_int_equal(status(&pending), 0);
    assert_int_equal(pending, 0);
    assert_non_null(strstr(output(), "applied"));

    assert_int_equal(nmc_db_migrate_down(F.url, F.dir, 1, F.outf, F.err, sizeof F.err), 0);
    assert_int_equal(count("SELECT count(*) FROM information_schema.columns WHERE column_name = 'note'"), 0);
    assert_int_equal(count("SELECT max(version) FROM schema_migrations"), 2);
    assert_int_equal(status(&pending), 0);
    assert_int_equal(pending, 1);
    assert_non_null(strstr(output(), "pending"));

    assert_int_equal(nmc_db_migrate_down(F.url, F.dir, -1, F.outf, F.err, sizeof F.err), 0);
    char *tables = public_tables();
    assert_string_equal(tables, "schema_migrations");
    free(tables);
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 0);

    assert_int_equal(nmc_db_migrate_up(F.url, F.dir, F.outf, F.err, sizeof F.err), 0);
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 3);
    assert_int_equal(count("SELECT count(*) FROM alpha"), 1);
    assert_int_equal(nmc_db_migrate_up(F.url, F.dir, F.outf, F.err, sizeof F.err), 0);
    assert_non_null(strstr(output(), "schema is current"));
    assert_int_equal(count("SELECT count(*) FROM alpha"), 1); /* nothing ran twice */
}

static void test_db_migrate_down_more_than_applied_stops_at_zero(void **state)
{
    (void)state;
    tiny_set();
    assert_int_equal(nmc_db_migrate_up(F.url, F.dir, NULL, F.err, sizeof F.err), 0);
    assert_int_equal(nmc_db_migrate_down(F.url, F.dir, 10, NULL, F.err, sizeof F.err), 0);
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 0);
    assert_int_equal(nmc_db_migrate_down(F.url, F.dir, 0, NULL, F.err, sizeof F.err), 0);
}

static void test_db_migrate_up_failure_rolls_back_that_file(void **state)
{
    (void)state;
    write_pair("0001_ok", "CREATE TABLE ok (id int);", "DROP TABLE ok;");
    write_pair("0002_broken", "CREATE TABLE half (id int);\nSELECT 1/0;\n", "DROP TABLE half;");
    write_pair("0003_later", "CREATE TABLE later (id int);", "DROP TABLE later;");
    assert_int_equal(nmc_db_migrate_up(F.url, F.dir, F.outf, F.err, sizeof F.err), NMC_EDB);
    assert_non_null(strstr(F.err, "0002_broken.up.sql"));
    assert_non_null(strstr(F.err, "division by zero"));
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 1);
    char *tables = public_tables();
    assert_string_equal(tables, "ok,schema_migrations"); /* neither half nor later */
    free(tables);
    int pending = 0;
    assert_int_equal(status(&pending), 0);
    assert_int_equal(pending, 2);
}

static void expect_bad_set(const char *file_in_error)
{
    assert_int_equal(nmc_db_migrate_up(F.url, F.dir, NULL, F.err, sizeof F.err), NMC_EINVAL);
    if (!strstr(F.err, file_in_error))
        fail_msg("error \"%s\" does not name %s", F.err, file_in_error);
    int pending = 0;
    assert_int_equal(status(&pending), NMC_EINVAL);
    assert_int_equal(nmc_db_migrate_down(F.url, F.dir, -1, NULL, F.err, sizeof F.err), NMC_EINVAL);
    /* the folder is checked before the database is touched */
    assert_int_equal(count("SELECT count(*) FROM pg_tables WHERE tablename = 'schema_migrations'"), 0);
}

static void test_db_migrate_missing_down_names_file(void **state)
{
    (void)state;
    write_pair("0001_alpha", "SELECT 1;", "SELECT 1;");
    write_file("0002_beta.up.sql", "SELECT 1;");
    expect_bad_set("0002_beta.up.sql");
}

static void test_db_migrate_missing_up_names_file(void **state)
{
    (void)state;
    write_file("0004_delta.down.sql", "SELECT 1;");
    expect_bad_set("0004_delta.down.sql");
}

static void test_db_migrate_duplicate_number_names_file(void **state)
{
    (void)state;
    write_pair("0001_alpha", "SELECT 1;", "SELECT 1;");
    write_pair("0001_other", "SELECT 1;", "SELECT 1;");
    expect_bad_set("0001_");
    assert_non_null(strstr(F.err, "duplicate"));
}

static void test_db_migrate_bad_names_name_file(void **state)
{
    (void)state;
    const char *bad[] = {"0001_x.sql", "0001-x.up.sql", "x_0001.up.sql", "0001_.up.sql", "0001_a b.up.sql",
                         "0001_x.UP.sql"};
    for (size_t i = 0; i < NMC_ARRAY_SIZE(bad); i++) {
        write_file(bad[i], "SELECT 1;");
        expect_bad_set(bad[i]);
        char path[256];
        snprintf(path, sizeof path, "%s/%s", F.dir, bad[i]);
        unlink(path);
    }
}

static void test_db_migrate_missing_folder_is_invalid(void **state)
{
    (void)state;
    assert_int_equal(nmc_db_migrate_up(F.url, "/nonexistent/nmc/migrations", NULL, F.err, sizeof F.err),
                     NMC_EINVAL);
    assert_non_null(strstr(F.err, "/nonexistent/nmc/migrations"));
    assert_int_equal(nmc_db_migrate_up(F.url, NULL, NULL, F.err, sizeof F.err), NMC_EINVAL);
}

static void test_db_migrate_bad_conninfo_is_db_error(void **state)
{
    (void)state;
    tiny_set();
    assert_int_equal(nmc_db_migrate_up("host=127.0.0.1 port=1 dbname=x", F.dir, NULL, F.err, sizeof F.err),
                     NMC_EDB);
    assert_non_null(strstr(F.err, "cannot connect"));
    assert_int_equal(nmc_db_migrate_up(NULL, F.dir, NULL, F.err, sizeof F.err), NMC_EINVAL);
}

static void test_db_migrate_down_refuses_unknown_applied_version(void **state)
{
    (void)state;
    tiny_set();
    assert_int_equal(nmc_db_migrate_up(F.url, F.dir, NULL, F.err, sizeof F.err), 0);
    pgtest_exec(F.db, "INSERT INTO schema_migrations (version, name) VALUES (9, '0009_from_newer_build')");
    assert_int_equal(nmc_db_migrate_down(F.url, F.dir, 1, NULL, F.err, sizeof F.err), NMC_EINVAL);
    assert_non_null(strstr(F.err, "0009"));
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 4); /* nothing reverted */
    /* up and status only warn: the newer build's migration is not ours to judge */
    assert_int_equal(nmc_db_migrate_up(F.url, F.dir, F.outf, F.err, sizeof F.err), 0);
    assert_non_null(strstr(output(), "warning"));
}

struct racer {
    const char *url, *dir;
    int rc;
    char err[512];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    r->rc = nmc_db_migrate_up(r->url, r->dir, NULL, r->err, sizeof r->err);
    return NULL;
}

static void test_db_migrate_concurrent_up_serialised_by_lock(void **state)
{
    (void)state;
    /* Without the lock both runners see 0001 pending, and the second fails
     * on the table (or the schema_migrations key) the first created. */
    write_pair("0001_slow", "CREATE TABLE slow (id int);\nSELECT pg_sleep(0.5);\nINSERT INTO slow VALUES (1);\n",
               "DROP TABLE slow;");
    write_pair("0002_after", "INSERT INTO slow VALUES (2);", "DELETE FROM slow WHERE id = 2;");
    struct racer a = {.url = F.url, .dir = F.dir}, b = {.url = F.url, .dir = F.dir};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, race, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, race, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    if (a.rc || b.rc)
        fail_msg("concurrent up failed: a=%d (%s) b=%d (%s)", a.rc, a.err, b.rc, b.err);
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 2);
    assert_int_equal(count("SELECT count(*) FROM slow"), 2);
}

/* NMC_MIGRATE_NO_TXN: CREATE INDEX CONCURRENTLY, which PostgreSQL refuses
 * in a transaction block (and in a string of several statements), runs
 * statement by statement; down reverts the same way; the same file without
 * the marker fails and records nothing. */
static void test_db_migrate_no_transaction_builds_index_concurrently(void **state)
{
    (void)state;
    write_pair("0001_table", "CREATE TABLE t (a int, b int);\nINSERT INTO t SELECT g, g % 7 FROM generate_series(1, 1000) g;",
               "DROP TABLE t;");
    write_pair("0002_unmarked", "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a_idx ON t (a);", "SELECT 1;");
    assert_int_equal(nmc_db_migrate_up(F.url, F.dir, F.outf, F.err, sizeof F.err), NMC_EDB);
    assert_non_null(strstr(F.err, "0002_unmarked.up.sql"));
    assert_non_null(strstr(F.err, "cannot run inside a transaction block"));
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 1);

    char path[256];
    snprintf(path, sizeof path, "%s/0002_unmarked.up.sql", F.dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/0002_unmarked.down.sql", F.dir);
    unlink(path);
    write_pair("0002_indexes",
               NMC_MIGRATE_NO_TXN "\n-- built without blocking writes; safe to run again\n"
               "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a_idx ON t (a);\n"
               "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_b_idx ON t (b) WHERE b > 0; -- a ';' in a comment\n",
               NMC_MIGRATE_NO_TXN "\nDROP INDEX CONCURRENTLY IF EXISTS t_b_idx;\nDROP INDEX CONCURRENTLY IF EXISTS t_a_idx;\n");
    assert_int_equal(nmc_db_migrate_up(F.url, F.dir, F.outf, F.err, sizeof F.err), 0);
    assert_non_null(strstr(output(), "applying 0002_indexes (outside a transaction) ... ok"));
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 2);
    assert_int_equal(count("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                           " WHERE c.relname IN ('t_a_idx', 't_b_idx') AND i.indisvalid"),
                     2);
    assert_int_equal(nmc_db_migrate_down(F.url, F.dir, 1, F.outf, F.err, sizeof F.err), 0);
    assert_int_equal(count("SELECT count(*) FROM pg_class WHERE relname IN ('t_a_idx', 't_b_idx')"), 0);
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 1);
    assert_int_equal(nmc_db_migrate_up(F.url, F.dir, F.outf, F.err, sizeof F.err), 0);
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 2);
}

/* A concurrent unique index build that fails (duplicates) leaves an
 * invalid index: the runner says which, records nothing, and refuses until
 * it is dropped; IF NOT EXISTS alone would have skipped it for good. */
static void test_db_migrate_no_transaction_failure_names_invalid_index(void **state)
{
    (void)state;
    write_pair("0001_table", "CREATE TABLE u (a int);\nINSERT INTO u VALUES (1), (2), (2);", "DROP TABLE u;");
    write_pair("0002_unique", NMC_MIGRATE_NO_TXN "\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS u_a_key ON u (a);\n",
               NMC_MIGRATE_NO_TXN "\nDROP INDEX CONCURRENTLY IF EXISTS u_a_key;\n");
    assert_int_equal(nmc_db_migrate_up(F.url, F.dir, F.outf, F.err, sizeof F.err), NMC_EDB);
    assert_non_null(strstr(F.err, "0002_unique.up.sql (statement 1, run outside a transaction"));
    assert_non_null(strstr(F.err, "could not create unique index"));
    assert_non_null(strstr(F.err, "invalid index(es) left: u_a_key"));
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 1);

    pgtest_exec(F.db, "DELETE FROM u WHERE ctid = (SELECT max(ctid) FROM u WHERE a = 2)");
    assert_int_equal(nmc_db_migrate_up(F.url, F.dir, F.outf, F.err, sizeof F.err), NMC_EDB);
    assert_non_null(strstr(F.err, "0002_unique.up.sql: invalid index(es) left: u_a_key"));
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 1);

    pgtest_exec(F.db, "DROP INDEX CONCURRENTLY u_a_key"); /* what the message tells the operator */
    assert_int_equal(nmc_db_migrate_up(F.url, F.dir, F.outf, F.err, sizeof F.err), 0);
    assert_int_equal(count("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                           " WHERE c.relname = 'u_a_key' AND i.indisvalid AND i.indisunique"),
                     1);
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 2);
}

/* Two runners deploying at once while the first builds an index
 * concurrently: the build waits for every older snapshot, so a second
 * runner waiting for the lock inside a statement (pg_advisory_lock) would
 * deadlock with it; polling holds no snapshot while it waits. */
static void test_db_migrate_concurrent_runner_does_not_block_index_build(void **state)
{
    (void)state;
    write_pair("0001_build",
               NMC_MIGRATE_NO_TXN "\nCREATE TABLE IF NOT EXISTS s (a int);\nSELECT pg_sleep(0.5);\n"
                                  "CREATE INDEX CONCURRENTLY IF NOT EXISTS s_a_idx ON s (a);\n",
               NMC_MIGRATE_NO_TXN "\nDROP TABLE IF EXISTS s;\n");
    struct racer a = {.url = F.url, .dir = F.dir}, b = {.url = F.url, .dir = F.dir};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, race, &a), 0);
    usleep(100000); /* a holds the lock and sleeps before its build; b waits */
    assert_int_equal(pthread_create(&tb, NULL, race, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    if (a.rc || b.rc)
        fail_msg("concurrent up failed: a=%d (%s) b=%d (%s)", a.rc, a.err, b.rc, b.err);
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), 1);
    assert_int_equal(count("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                           " WHERE c.relname = 's_a_idx' AND i.indisvalid"),
                     1);
}

static const char *source_migrations(void)
{
    static char dir[512];
    const char *src = getenv("NMC_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/migrations", src && src[0] ? src : NMC_SOURCE_DIR);
    return dir;
}

static void test_db_migrate_real_folder_up_down_up(void **state)
{
    (void)state;
    const char *dir = source_migrations();
    int pending = -1;
    assert_int_equal(nmc_db_migrate_status(F.url, dir, NULL, &pending, F.err, sizeof F.err), 0);
    int64_t files = pending;
    if (nmc_db_migrate_up(F.url, dir, F.outf, F.err, sizeof F.err) != 0)
        fail_msg("up: %s", F.err);
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), files);
    assert_int_equal(nmc_db_migrate_status(F.url, dir, NULL, &pending, F.err, sizeof F.err), 0);
    assert_int_equal(pending, 0);
    if (nmc_db_migrate_down(F.url, dir, -1, F.outf, F.err, sizeof F.err) != 0)
        fail_msg("down all: %s", F.err);
    char *tables = public_tables();
    assert_string_equal(tables, "schema_migrations");
    free(tables);
    if (nmc_db_migrate_up(F.url, dir, F.outf, F.err, sizeof F.err) != 0)
        fail_msg("up again: %s", F.err);
    assert_int_equal(count("SELECT count(*) FROM schema_migrations"), files);
}

/* The SQL functions the missed-call path calls per statement must be
 * inlined by the planner: one that is not runs through fmgr_sql, which
 * parses and plans its body on every execution of the calling statement
 * (migration 0037: 8.8% of PostgreSQL's CPU for nmc_utc_text). A function
 * is inlined only when its body is no more volatile than its declaration. */
static void test_db_migrate_hot_path_sql_functions_are_inlined(void **state)
{
    (void)state;
    if (nmc_db_migrate_up(F.url, source_migrations(), F.outf, F.err, sizeof F.err) != 0)
        fail_msg("up: %s", F.err);
    static const char *const calls[] = { "nmc_utc_text(now())", "nmc_sms_status_advances('queued', 'sent')",
                                         "nmc_sms_status_rank('sent')", "nmc_uuid_v7()" };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        char sql[1024];
        snprintf(sql, sizeof sql,
                 "CREATE OR REPLACE FUNCTION pg_temp.plan_of() RETURNS text LANGUAGE plpgsql AS $f$"
                 " DECLARE r text; t text := ''; BEGIN"
                 " FOR r IN EXPLAIN (VERBOSE, COSTS OFF) SELECT %s FROM (VALUES (1)) v(x) WHERE x > 0 LOOP"
                 " t := t || r || ' '; END LOOP; RETURN t; END $f$",
                 calls[i]);
        pgtest_exec(F.db, sql);
        char *plan = pgtest_value(F.db, "SELECT pg_temp.plan_of()");
        if (strstr(plan, "nmc_") != NULL)
            fail_msg("%s is not inlined: %s", calls[i], plan);
        free(plan);
    }
}

/* Conversations and messages get time-ordered ids (migration 0042): UUID
 * version 7 with the RFC 9562 variant, the creation time in milliseconds in
 * the first 48 bits, so a later id sorts after an earlier one. */
static void test_db_migrate_conversation_and_message_ids_are_time_ordered(void **state)
{
    (void)state;
    if (nmc_db_migrate_up(F.url, source_migrations(), F.outf, F.err, sizeof F.err) != 0)
        fail_msg("up: %s", F.err);
    pgtest_exec(F.db, "CREATE TEMP TABLE ids AS SELECT 1 AS n, clock_timestamp() AS at, nmc_uuid_v7() AS id");
    pgtest_exec(F.db, "SELECT pg_sleep(0.002)");
    pgtest_exec(F.db, "INSERT INTO ids SELECT 2, clock_timestamp(), nmc_uuid_v7()");
    /* version 7, variant 10xx */
    assert_int_equal(count("SELECT count(*) FROM ids WHERE substr(id::text, 15, 1) = '7'"
                           " AND substr(id::text, 20, 1) IN ('8', '9', 'a', 'b')"), 2);
    /* the later id sorts after the earlier one */
    assert_int_equal(count("SELECT count(*) FROM ids a JOIN ids b ON a.n = 1 AND b.n = 2 WHERE a.id < b.id"), 1);
    /* the first 48 bits are the time it was made, in ms */
    assert_int_equal(count("SELECT count(*) FROM ids WHERE abs(('x' || lpad(replace(left(id::text, 13), '-', ''), 16, '0'))"
                           "::bit(64)::bigint - (extract(epoch FROM at) * 1000)::bigint) <= 1"), 2);
    /* two ids of the same millisecond differ (74 random bits) */
    assert_int_equal(count("SELECT count(DISTINCT nmc_uuid_v7()) FROM generate_series(1, 1000)"), 1000);
    assert_int_equal(count("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public'"
                           " AND table_name IN ('conversations', 'messages') AND column_name = 'id'"
                           " AND column_default = 'nmc_uuid_v7()'"), 2);
    pgtest_exec(F.db, "DROP TABLE ids");
}

static void test_db_migrate_default_dir_env_then_source(void **state)
{
    (void)state;
    assert_int_equal(setenv("NMC_MIGRATIONS_DIR", "/somewhere/else", 1), 0);
    assert_string_equal(nmc_db_migrate_default_dir(), "/somewhere/else");
    assert_int_equal(unsetenv("NMC_MIGRATIONS_DIR"), 0);
    /* a build-tree executable has no ../share/nmc/migrations */
    assert_string_equal(nmc_db_migrate_default_dir(), NMC_SOURCE_DIR "/migrations");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_db_migrate_up_status_down_cycle, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_down_more_than_applied_stops_at_zero, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_up_failure_rolls_back_that_file, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_missing_down_names_file, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_missing_up_names_file, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_duplicate_number_names_file, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_bad_names_name_file, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_missing_folder_is_invalid, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_bad_conninfo_is_db_error, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_down_refuses_unknown_applied_version, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_concurrent_up_serialised_by_lock, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_no_transaction_builds_index_concurrently, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_no_transaction_failure_names_invalid_index, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_concurrent_runner_does_not_block_index_build, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_real_folder_up_down_up, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_hot_path_sql_functions_are_inlined, test_setup, test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_conversation_and_message_ids_are_time_ordered, test_setup,
                                        test_teardown),
        cmocka_unit_test_setup_teardown(test_db_migrate_default_dir_env_then_source, test_setup, test_teardown),
    };
    return cmocka_run_group_tests_name("db_migrate", tests, NULL, NULL);
}
