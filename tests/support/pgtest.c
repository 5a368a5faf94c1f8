/* Integration-test helpers for PostgreSQL (tests/support/pgtest.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "db/migrate.h"
#include "runtime/common.h"
#include "tests/support/pgtest.h"

#define MAX_DBS 64

static char created[MAX_DBS][64]; /* databases to drop at exit */
static int atexit_set;

const char *pgtest_server_url(void)
{
    const char *url = getenv("NMC_TEST_DATABASE_URL");
    if (!url || !url[0]) {
        fprintf(stderr, "\n*** NMC_TEST_DATABASE_URL is not set: run integration tests through ctest "
                        "(the pg_start fixture provides it) ***\n\n");
        fail_msg("NMC_TEST_DATABASE_URL is not set");
    }
    return url;
}

/* Appends key='value' with libpq's quoting (backslash and quote escaped). */
static void append_kv(char *out, size_t outlen, const char *key, const char *val)
{
    size_t n = strlen(out);
    if (n + strlen(key) + 4 >= outlen)
        fail_msg("conninfo too long");
    n += (size_t)snprintf(out + n, outlen - n, "%s%s='", n ? " " : "", key);
    for (; *val && n + 3 < outlen; val++) {
        if (*val == '\\' || *val == '\'')
            out[n++] = '\\';
        out[n++] = *val;
    }
    if (n + 2 >= outlen)
        fail_msg("conninfo too long");
    out[n++] = '\'';
    out[n] = '\0';
}

/* The server conninfo as key=value with dbname replaced by db. */
static char *conninfo_with_db(const char *db)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(pgtest_server_url(), &err);
    if (!opts)
        fail_msg("NMC_TEST_DATABASE_URL does not parse: %s", err ? err : "out of memory");
    char out[2048] = "";
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && strcmp(o->keyword, "dbname") != 0)
            append_kv(out, sizeof out, o->keyword, o->val);
    append_kv(out, sizeof out, "dbname", db);
    PQconninfoFree(opts);
    return nmc_xstrdup(out);
}

PGconn *pgtest_connect(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[512];
        nmc_strlcpy(msg, PQerrorMessage(c), sizeof msg);
        PQfinish(c);
        fail_msg("cannot connect to PostgreSQL (%s): %s", conninfo, msg);
    }
    PQsetNoticeProcessor(c, NULL, NULL);
    return c;
}

static PGresult *run(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[512];
        nmc_strlcpy(msg, PQresultErrorMessage(r), sizeof msg);
        PQclear(r);
        fail_msg("SQL failed: %s\n  statement: %.300s", msg, sql);
    }
    return r;
}

void pgtest_exec(PGconn *c, const char *sql)
{
    PQclear(run(c, sql));
}

char *pgtest_value(PGconn *c, const char *sql)
{
    PGresult *r = run(c, sql);
    char *v = NULL;
    if (PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0))
        v = nmc_xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

int64_t pgtest_int(PGconn *c, const char *sql)
{
    char *v = pgtest_value(c, sql);
    int64_t out = 0;
    int bad = !v || nmc_parse_i64(v, INT64_MIN, INT64_MAX, &out) != 0;
    if (bad) {
        char shown[64];
        nmc_strlcpy(shown, v ? v : "NULL", sizeof shown);
        free(v);
        fail_msg("not an integer (%s) from: %.300s", shown, sql);
    }
    free(v);
    return out;
}

static void drop_by_name(const char *name)
{
    char *admin = conninfo_with_db("postgres");
    PGconn *c = PQconnectdb(admin);
    free(admin);
    if (PQstatus(c) == CONNECTION_OK) {
        char sql[160];
        /* a database name is at most 63 bytes (PostgreSQL's NAMEDATALEN - 1) */
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%.63s\" WITH (FORCE)", name);
        PQclear(PQexec(c, sql));
    }
    PQfinish(c);
}

static void drop_leftovers(void)
{
    for (int i = 0; i < MAX_DBS; i++)
        if (created[i][0])
            drop_by_name(created[i]);
}

static void remember(const char *name, int add)
{
    for (int i = 0; i < MAX_DBS; i++) {
        if (add && !created[i][0]) {
            nmc_strlcpy(created[i], name, sizeof created[i]);
            return;
        }
        if (!add && strcmp(created[i], name) == 0) {
            created[i][0] = '\0';
            return;
        }
    }
}

char *pgtest_db_create(void)
{
    uint8_t rnd[8];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        fail_msg("getrandom failed");
    char name[64] = "nmc_t_";
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(name + 6 + 2 * i, 3, "%02x", rnd[i]);
    char *admin = conninfo_with_db("postgres");
    PGconn *c = pgtest_connect(admin);
    free(admin);
    char sql[160];
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\" TEMPLATE template0 ENCODING 'UTF8'", name);
    pgtest_exec(c, sql);
    PQfinish(c);
    if (!atexit_set && atexit(drop_leftovers) == 0)
        atexit_set = 1;
    remember(name, 1);
    return conninfo_with_db(name);
}

void pgtest_db_name(const char *conninfo, char *out, size_t outlen)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (!opts)
        fail_msg("conninfo does not parse: %s", err ? err : "out of memory");
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && strcmp(o->keyword, "dbname") == 0)
            nmc_strlcpy(out, o->val, outlen);
    PQconninfoFree(opts);
}

void pgtest_db_drop(char *conninfo)
{
    if (!conninfo)
        return;
    char name[64];
    pgtest_db_name(conninfo, name, sizeof name);
    free(conninfo);
    if (strncmp(name, "nmc_t_", 6) != 0)
        fail_msg("refusing to drop database %s: not created by pgtest", name);
    drop_by_name(name);
    remember(name, 0);
}

static void on_tick(uv_timer_t *t)
{
    (void)t; /* only wakes the loop so the predicate is checked again */
}

int pgtest_run_until(uv_loop_t *loop, pgtest_pred_cb pred, void *ud, uint64_t timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uv_update_time(loop);
    uint64_t deadline = uv_now(loop) + timeout_ms;
    int ok = pred(ud);
    while (!ok && uv_now(loop) < deadline) {
        uv_run(loop, UV_RUN_ONCE);
        ok = pred(ud);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* runs the close callback before tick goes out of scope */
    return ok;
}

char *pgtest_db_migrated(void)
{
    char err[512];
    char *url = pgtest_db_create();
    if (nmc_db_migrate_up(url, nmc_db_migrate_default_dir(), NULL, err, sizeof err) != 0)
        fail_msg("migrate: %s", err);
    return url;
}

void pgtest_tenant(PGconn *c, const char *name, char id[40])
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO tenants (name, timezone, compliance_status, api_key_hash, api_key_prefix)"
             " VALUES ('%s', 'UTC', 'approved', 'h:' || md5(random()::text), 'p1') RETURNING id",
             name);
    char *t = pgtest_value(c, sql);
    if (t == NULL)
        fail_msg("no tenant inserted");
    snprintf(id, 40, "%s", t);
    free(t);
}
