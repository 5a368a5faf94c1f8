/* Migration runner (db/migrate.h). Synchronous, blocking libpq: it runs
 * from the CLI and start-up checks, never on the serving loop.
 *
 * A run: scan the folder (every *.sql must be NNNN_name.up.sql or
 * NNNN_name.down.sql, in pairs, numbers unique), connect, take a session
 * advisory lock so concurrent runs (several instances deploying at once)
 * serialise, then read schema_migrations *after* the lock and apply what is
 * pending, each file in its own transaction together with its bookkeeping
 * row, so a failure leaves no half-applied migration behind.
 *
 * A file whose first line is NMC_MIGRATE_NO_TXN (db/migrate.h) runs outside
 * a transaction instead, one statement at a time, for what PostgreSQL
 * refuses inside one (CREATE INDEX CONCURRENTLY, which builds an index
 * without blocking writes to a big table). Such a file must be safe to run
 * again (IF NOT EXISTS, IF EXISTS): a failure leaves the statements before
 * it applied and the migration unrecorded. After its statements the runner
 * refuses to record it while an index of the schema is invalid (a build
 * that failed or was cancelled leaves one, and IF NOT EXISTS would then
 * skip it for good), and says which.
 *
 * The lock is polled (pg_try_advisory_lock every LOCK_POLL_MS), never
 * waited for in a statement: a runner waiting inside a statement holds a
 * snapshot, and CREATE INDEX CONCURRENTLY waits for every older snapshot to
 * go, so the lock holder's index build and the waiting runner would wait
 * for each other (a deadlock PostgreSQL breaks by failing one of them). */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>
#include "db/migrate.h"
#include "db/sql_split.h"

#define LOCK_KEY "7283746501" /* fixed advisory lock key of the migration runner ("nmc" + 01) */
#define MAX_FILE_BYTES (16u << 20)
#define MAX_NAME 128
#define LOCK_POLL_MS 100

struct mig {
    long version;
    char name[MAX_NAME];  /* "0001_foundation" */
    char *up, *down;      /* file paths, NULL until seen */
    int applied;
};

struct migset {
    struct mig *v;
    size_t n, cap;
};

struct run {
    const char *dir;
    FILE *out;
    char *err;
    size_t errlen;
    PGconn *pg;
    struct migset set;
};

static void fail(struct run *r, const char *fmt, ...) NMC_PRINTF(2, 3);
static void fail(struct run *r, const char *fmt, ...)
{
    if (!r->err || r->errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->errlen, fmt, ap);
    va_end(ap);
    nmc_rtrim(r->err);
}

static void say(struct run *r, const char *fmt, ...) NMC_PRINTF(2, 3);
static void say(struct run *r, const char *fmt, ...)
{
    if (!r->out)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(r->out, fmt, ap);
    va_end(ap);
    fflush(r->out);
}

/* ---- the folder ------------------------------------------------------ */

/* Splits "0001_name.up.sql" into version 1, stem "0001_name", up = 1.
 * Returns 0 when the name does not follow the pattern. */
static int parse_name(const char *file, long *version, char *stem, size_t stemlen, int *up)
{
    size_t len = strlen(file), digits = 0;
    while (file[digits] >= '0' && file[digits] <= '9')
        digits++;
    if (digits == 0 || digits > 9 || file[digits] != '_')
        return 0;
    size_t suffix;
    if (len > 7 && strcmp(file + len - 7, ".up.sql") == 0)
        suffix = 7, *up = 1;
    else if (len > 9 && strcmp(file + len - 9, ".down.sql") == 0)
        suffix = 9, *up = 0;
    else
        return 0;
    size_t stem_len = len - suffix;
    if (stem_len <= digits + 1 || stem_len >= stemlen)
        return 0;
    for (size_t i = digits + 1; i < stem_len; i++) {
        char c = file[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    memcpy(stem, file, stem_len);
    stem[stem_len] = '\0';
    *version = strtol(file, NULL, 10);
    return 1;
}

static struct mig *set_find(struct migset *s, long version)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].version == version)
            return &s->v[i];
    return NULL;
}

static struct mig *set_add(struct migset *s, long version, const char *stem)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = nmc_xrealloc(s->v, s->cap * sizeof *s->v);
    }
    struct mig *m = &s->v[s->n++];
    memset(m, 0, sizeof *m);
    m->version = version;
    nmc_strlcpy(m->name, stem, sizeof m->name);
    return m;
}

static void set_free(struct migset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].up);
        free(s->v[i].down);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

static char *path_join(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = nmc_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, file);
    return p;
}

/* Files one directory entry; 0 or NMC_EINVAL naming the file. */
static int scan_entry(struct run *r, const char *file)
{
    long version;
    char stem[MAX_NAME];
    int up;
    size_t len = strlen(file);
    if (file[0] == '.' || len < 4 || strcmp(file + len - 4, ".sql") != 0)
        return 0; /* READMEs and editor files are not migrations */
    if (!parse_name(file, &version, stem, sizeof stem, &up)) {
        fail(r, "%s/%s: bad migration file name (want NNNN_name.up.sql or NNNN_name.down.sql)", r->dir, file);
        return NMC_EINVAL;
    }
    struct mig *m = set_find(&r->set, version);
    if (m && strcmp(m->name, stem) != 0) {
        fail(r, "%s/%s: duplicate migration number %ld (also %s)", r->dir, file, version, m->name);
        return NMC_EINVAL;
    }
    if (!m)
        m = set_add(&r->set, version, stem);
    char **slot = up ? &m->up : &m->down;
    *slot = path_join(r->dir, file);
    return 0;
}

static int cmp_mig(const void *a, const void *b)
{
    const struct mig *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

static int scan_pairs(struct run *r)
{
    for (size_t i = 0; i < r->set.n; i++) {
        const struct mig *m = &r->set.v[i];
        if (!m->up || !m->down) {
            fail(r, "%s: has no matching %s file (%s.%s.sql)", m->up ? m->up : m->down, m->up ? "down" : "up",
                 m->name, m->up ? "down" : "up");
            return NMC_EINVAL;
        }
    }
    qsort(r->set.v, r->set.n, sizeof *r->set.v, cmp_mig);
    return 0;
}

static int scan_dir(struct run *r)
{
    if (!r->dir) {
        fail(r, "no migrations folder given");
        return NMC_EINVAL;
    }
    DIR *d = opendir(r->dir);
    if (!d) {
        fail(r, "%s: cannot open migrations folder: %s", r->dir, strerror(errno));
        return NMC_EINVAL;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL)
        rc = scan_entry(r, e->d_name);
    closedir(d);
    return rc ? rc : scan_pairs(r);
}

static char *read_file(struct run *r, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(r, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = nmc_xrealloc(buf, cap);
        }
        got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
    } while (got > 0 && len <= MAX_FILE_BYTES);
    int bad = ferror(f) || len > MAX_FILE_BYTES;
    fclose(f);
    if (bad) {
        fail(r, "%s: %s", path, len > MAX_FILE_BYTES ? "file too large" : "read error");
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* ---- the database ---------------------------------------------------- */

static void on_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "already exists, skipping" and friends: not progress */
}

/* Runs sql; on failure records "<what>: <server message>" and returns NMC_EDB. */
static int exec(struct run *r, const char *what, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = nparams ? PQexecParams(r->pg, sql, nparams, NULL, params, NULL, NULL, 0) : PQexec(r->pg, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        fail(r, "%s: %s", what, PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res) : PQerrorMessage(r->pg));
        rc = NMC_EDB;
    }
    PQclear(res);
    return rc;
}

static int db_open(struct run *r, const char *conninfo)
{
    if (!conninfo) {
        fail(r, "no database connection string");
        return NMC_EINVAL;
    }
    r->pg = PQconnectdb(conninfo);
    if (PQstatus(r->pg) != CONNECTION_OK) {
        fail(r, "cannot connect to the database: %s", PQerrorMessage(r->pg));
        return NMC_EDB;
    }
    PQsetNoticeProcessor(r->pg, on_notice, NULL);
    return 0;
}

/* Takes the runner's lock (polling while another runner holds it: see the
 * top of this file) and makes sure the bookkeeping table exists. */
static int db_lock(struct run *r)
{
    int rc = 0, said = 0;
    for (;;) {
        PGresult *res = PQexec(r->pg, "SELECT pg_try_advisory_lock(" LOCK_KEY ")");
        int ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
        int got = ok && PQgetvalue(res, 0, 0)[0] == 't';
        if (!ok)
            fail(r, "taking the migration lock: %s", PQerrorMessage(r->pg));
        PQclear(res);
        if (!ok) {
            rc = NMC_EDB;
            break;
        }
        if (got)
            break;
        if (!said)
            say(r, "waiting for another migration run to finish (advisory lock " LOCK_KEY ")\n");
        said = 1;
        struct timespec ts = {0, LOCK_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (rc == 0)
        rc = exec(r, "creating schema_migrations",
                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  "version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                  0, NULL);
    return rc;
}

static int table_exists(struct run *r)
{
    PGresult *t = PQexec(r->pg, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    int exists = PQresultStatus(t) == PGRES_TUPLES_OK && PQntuples(t) == 1 && PQgetvalue(t, 0, 0)[0] == 't';
    PQclear(t);
    return exists;
}

/* Marks applied migrations. An applied version without files came from a
 * newer build: reported by up and status, an error for down (it cannot
 * be reverted, and skipping it would revert the wrong ones). */
static int db_load_applied(struct run *r, int for_down)
{
    if (!table_exists(r))
        return 0; /* status on a fresh database: everything is pending */
    PGresult *res = PQexec(r->pg, "SELECT version, name FROM schema_migrations ORDER BY version");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fail(r, "reading schema_migrations: %s", PQresultErrorMessage(res));
        PQclear(res);
        return NMC_EDB;
    }
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        long v = strtol(PQgetvalue(res, i, 0), NULL, 10);
        struct mig *m = set_find(&r->set, v);
        if (m) {
            m->applied = 1;
        } else if (for_down) {
            fail(r, "applied migration %04ld (%s) has no files in %s", v, PQgetvalue(res, i, 1), r->dir);
            rc = NMC_EINVAL;
        } else {
            say(r, "warning: applied migration %04ld (%s) has no files in %s\n", v, PQgetvalue(res, i, 1), r->dir);
        }
    }
    PQclear(res);
    return rc;
}

enum run_kind { RUN_UP, RUN_DOWN, RUN_STATUS };

/* Scans, connects, locks (not for status: it only reads) and loads. */
static int run_open(struct run *r, const char *conninfo, enum run_kind kind)
{
    int rc = scan_dir(r);
    if (rc == 0)
        rc = db_open(r, conninfo);
    if (rc == 0 && kind != RUN_STATUS)
        rc = db_lock(r);
    if (rc == 0)
        rc = db_load_applied(r, kind == RUN_DOWN);
    return rc;
}

static void run_close(struct run *r)
{
    PQfinish(r->pg); /* ends the session, releasing the advisory lock */
    set_free(&r->set);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* 1 when the file's first line is the NMC_MIGRATE_NO_TXN marker. */
static int no_transaction(const char *sql)
{
    size_t k = strlen(NMC_MIGRATE_NO_TXN);
    if (strncmp(sql, NMC_MIGRATE_NO_TXN, k) != 0)
        return 0;
    sql += k;
    while (*sql == ' ' || *sql == '\t' || *sql == '\r')
        sql++;
    return *sql == '\n' || *sql == '\0';
}

/* The invalid indexes of the current schema, comma-separated, into out
 * ("" for none). Returns NMC_EDB when the catalog cannot be read. */
static int invalid_indexes(struct run *r, char *out, size_t outlen)
{
    PGresult *res = PQexec(r->pg, "SELECT coalesce(string_agg(c.relname, ', ' ORDER BY c.relname), '')"
                                  " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                                  " WHERE NOT i.indisvalid AND c.relnamespace = current_schema()::regnamespace");
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    snprintf(out, outlen, "%s", ok ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return ok ? 0 : NMC_EDB;
}

/* Runs a NMC_MIGRATE_NO_TXN file statement by statement (each its own
 * implicit transaction), then checks that no index was left invalid. */
static int run_statements(struct run *r, const char *path, const char *sql)
{
    size_t n = strlen(sql), off = 0;
    int rc = 0, stmt = 0;
    while (rc == 0 && off < n) {
        size_t len = nmc_sql_statement_len(sql + off, n - off);
        if (!nmc_sql_is_blank(sql + off, len)) {
            char *one = strndup(sql + off, len);
            char what[PATH_MAX + 64];
            snprintf(what, sizeof what, "%s (statement %d, run outside a transaction: the ones before it stay"
                                        " applied)", path, ++stmt);
            rc = one != NULL ? exec(r, what, one, 0, NULL) : NMC_ENOMEM;
            free(one);
        }
        off += len;
    }
    char bad[512];
    if (invalid_indexes(r, bad, sizeof bad) != 0) {
        if (rc == 0)
            fail(r, "%s: reading pg_index: %s", path, PQerrorMessage(r->pg));
        return NMC_EDB;
    }
    if (bad[0] != '\0') {
        char before[512]; /* the failed statement's error, or the file */
        snprintf(before, sizeof before, "%s", rc != 0 && r->err != NULL ? r->err : path);
        fail(r, "%s%s invalid index(es) left: %s (an index build failed or was cancelled); drop them with"
                " DROP INDEX CONCURRENTLY and run again", before, rc != 0 ? ";" : ":", bad);
        rc = NMC_EDB;
    }
    return rc;
}

/* Runs one file and its bookkeeping statement in one transaction (or, for
 * a NMC_MIGRATE_NO_TXN file, its statements one by one and then the
 * bookkeeping). */
static int apply_one(struct run *r, const struct mig *m, int up)
{
    const char *path = up ? m->up : m->down;
    char *sql = read_file(r, path);
    if (!sql)
        return NMC_EINVAL;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int txn = !no_transaction(sql);
    say(r, "%s %s%s ... ", up ? "applying" : "reverting", m->name, txn ? "" : " (outside a transaction)");
    char version[24];
    snprintf(version, sizeof version, "%ld", m->version);
    const char *params[2] = {version, m->name};
    int rc = txn ? exec(r, path, "BEGIN", 0, NULL) : 0;
    if (rc == 0)
        rc = txn ? exec(r, path, sql, 0, NULL) : run_statements(r, path, sql);
    if (rc == 0 && up)
        rc = exec(r, path, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, params);
    if (rc == 0 && !up)
        rc = exec(r, path, "DELETE FROM schema_migrations WHERE version = $1", 1, params);
    if (rc == 0 && txn)
        rc = exec(r, path, "COMMIT", 0, NULL);
    if (rc && txn)
        PQclear(PQexec(r->pg, "ROLLBACK"));
    if (rc)
        say(r, "FAILED\n");
    else
        say(r, "ok (%.0f ms)\n", ms_since(&t0));
    free(sql);
    return rc;
}

int nmc_db_migrate_up(const char *conninfo, const char *dir, FILE *out, char *err, size_t errlen)
{
    struct run r = {.dir = dir, .out = out, .err = err, .errlen = errlen};
    int rc = run_open(&r, conninfo, RUN_UP);
    int applied = 0;
    for (size_t i = 0; rc == 0 && i < r.set.n; i++) {
        if (r.set.v[i].applied)
            continue;
        rc = apply_one(&r, &r.set.v[i], 1);
        applied += rc == 0;
    }
    if (rc == 0)
        say(&r, applied ? "%d migration(s) applied\n" : "schema is current\n", applied);
    run_close(&r);
    return rc;
}

int nmc_db_migrate_down(const char *conninfo, const char *dir, int n, FILE *out, char *err, size_t errlen)
{
    struct run r = {.dir = dir, .out = out, .err = err, .errlen = errlen};
    int rc = run_open(&r, conninfo, RUN_DOWN);
    int reverted = 0;
    for (size_t i = r.set.n; rc == 0 && i-- > 0 && (n < 0 || reverted < n);) {
        if (!r.set.v[i].applied)
            continue;
        rc = apply_one(&r, &r.set.v[i], 0);
        reverted += rc == 0;
    }
    if (rc == 0)
        say(&r, "%d migration(s) reverted\n", reverted);
    run_close(&r);
    return rc;
}

int nmc_db_migrate_status(const char *conninfo, const char *dir, FILE *out, int *pending, char *err, size_t errlen)
{
    struct run r = {.dir = dir, .out = out, .err = err, .errlen = errlen};
    int rc = run_open(&r, conninfo, RUN_STATUS);
    int count = 0;
    for (size_t i = 0; rc == 0 && i < r.set.n; i++) {
        say(&r, "%-40s %s\n", r.set.v[i].name, r.set.v[i].applied ? "applied" : "pending");
        count += !r.set.v[i].applied;
    }
    if (rc == 0)
        say(&r, "%d pending\n", count);
    if (pending)
        *pending = rc == 0 ? count : 0;
    run_close(&r);
    return rc;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *nmc_db_migrate_default_dir(void)
{
    static char installed[PATH_MAX + 64];
    const char *env = getenv("NMC_MIGRATIONS_DIR");
    if (env && env[0])
        return env;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        snprintf(installed, sizeof installed, "%s/../share/nmc/migrations", dirname(exe));
        if (is_dir(installed))
            return installed;
    }
    return NMC_SOURCE_DIR "/migrations";
}
