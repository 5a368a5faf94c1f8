/* Helpers for integration tests against the throwaway PostgreSQL started by
 * the ctest fixture (NMC_TEST_DATABASE_URL). Every helper fails the current
 * cmocka test loudly on error, so callers need not check results.
 *
 * Typical use, one database per test file:
 *
 *   static char *url;
 *   static int setup(void **s) { url = pgtest_db_create(); return 0; }
 *   static int teardown(void **s) { pgtest_db_drop(url); url = NULL; return 0; }
 *   ...
 *   PGconn *c = pgtest_connect(url);
 *   pgtest_exec(c, "CREATE TABLE t (id int)");
 *   char *n = pgtest_value(c, "SELECT count(*) FROM t");   // "0", caller frees
 *
 * Databases not dropped explicitly are dropped at exit. */
#ifndef NMC_TESTS_SUPPORT_PGTEST_H
#define NMC_TESTS_SUPPORT_PGTEST_H

#include <stdint.h>
#include <libpq-fe.h>
#include <uv.h>

/* The server URL from NMC_TEST_DATABASE_URL; fails the test when unset. */
const char *pgtest_server_url(void);

/* Creates a fresh database nmc_t_<random hex> from template0 and returns a
 * conninfo (key=value) for it, owned by the caller: free it with
 * pgtest_db_drop(), which also drops the database. */
char *pgtest_db_create(void);
/* pgtest_db_create() with every migration of migrations/ applied; fails the
 * test when one does not apply. */
char *pgtest_db_migrated(void);
/* Inserts an approved tenant named name (UTC) and copies its id into id. */
void pgtest_tenant(PGconn *c, const char *name, char id[40]);
/* Drops the database of conninfo (terminating leftover sessions) and frees
 * conninfo. Accepts NULL. */
void pgtest_db_drop(char *conninfo);
/* The database name in conninfo, copied into out. */
void pgtest_db_name(const char *conninfo, char *out, size_t outlen);

/* A blocking connection; fails the test if it cannot connect. PQfinish it. */
PGconn *pgtest_connect(const char *conninfo);
/* Runs sql (may hold several statements); fails the test on error. */
void pgtest_exec(PGconn *c, const char *sql);
/* Runs sql and returns the first column of the first row as a malloc'd
 * string, or NULL when there is no row or the value is NULL. Fails the
 * test on error. */
char *pgtest_value(PGconn *c, const char *sql);
/* Same, parsed as an integer; fails the test when not one. */
int64_t pgtest_int(PGconn *c, const char *sql);

/* Runs loop until pred(ud) is nonzero or timeout_ms passes. Returns 1 when
 * pred held, 0 on timeout. The loop keeps running its own handles; a 5 ms
 * timer guarantees pred is re-checked even when nothing else happens. */
typedef int (*pgtest_pred_cb)(void *ud);
int pgtest_run_until(uv_loop_t *loop, pgtest_pred_cb pred, void *ud, uint64_t timeout_ms);

#endif
