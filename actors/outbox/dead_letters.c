/* Dead letters: list and requeue (owner: sms engineer). See dead_letters.h. */
#include "actors/outbox/dead_letters.h"

#include <libpq-fe.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "actors/outbox/outbox_sql.h"
#include "runtime/buf.h"

static void fail(char *err, size_t errlen, const char *fmt, ...) NMC_PRINTF(3, 4);
static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    nmc_rtrim(err);
}

static PGconn *connect_db(const char *conninfo, char *err, size_t errlen)
{
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        fail(err, errlen, "cannot connect to the database: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

/* Runs sql without a result set; 0 or NMC_EDB. */
static int exec_cmd(PGconn *pg, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(pg, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fail(err, errlen, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : NMC_EDB;
}

int nmc_dead_letters_list(const char *conninfo, const char *event_name, int limit, FILE *out, size_t *n, char *err,
                          size_t errlen)
{
    *n = 0;
    if (limit < 1 || limit > NMC_DEAD_LETTERS_LIMIT_MAX) {
        fail(err, errlen, "limit must be 1..%d", NMC_DEAD_LETTERS_LIMIT_MAX);
        return NMC_EINVAL;
    }
    PGconn *pg = connect_db(conninfo, err, errlen);
    if (pg == NULL)
        return NMC_EDB;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[2] = { event_name, lim };
    PGresult *r = PQexecParams(pg, NMC_OUTBOX_SQL_DEAD_LIST, 2, NULL, p, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fail(err, errlen, "listing dead letters: %s", PQresultErrorMessage(r));
        rc = NMC_EDB;
    } else {
        for (int i = 0; i < PQntuples(r); i++)
            fprintf(out, "%s\n", PQgetvalue(r, i, 0));
        *n = (size_t)PQntuples(r);
    }
    PQclear(r);
    PQfinish(pg);
    return rc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The first of the sorted ids not among the sorted moved ones, or -1. */
static int64_t first_missing(const int64_t *want, size_t nwant, const int64_t *got, size_t ngot)
{
    size_t j = 0;
    for (size_t i = 0; i < nwant; i++) {
        while (j < ngot && got[j] < want[i])
            j++;
        if (j == ngot || got[j] != want[i])
            return want[i];
    }
    return -1;
}

int nmc_dead_letters_requeue(const char *conninfo, const int64_t *ids, size_t nids, const char *event_name,
                             FILE *out, size_t *n, char *err, size_t errlen)
{
    *n = 0;
    if (nids > 0 && event_name != NULL) {
        fail(err, errlen, "give ids or an event name, not both");
        return NMC_EINVAL;
    }
    struct nmc_buf arr = { 0 };
    int64_t *want = NULL;
    if (nids > 0) {
        want = malloc(nids * sizeof *want);
        if (want == NULL)
            return NMC_ENOMEM;
        memcpy(want, ids, nids * sizeof *want);
        qsort(want, nids, sizeof *want, cmp_i64);
        nmc_buf_puts(&arr, "{");
        for (size_t i = 0; i < nids; i++)
            nmc_buf_printf(&arr, "%s%lld", i > 0 ? "," : "", (long long)want[i]);
        nmc_buf_puts(&arr, "}");
    }
    PGconn *pg = connect_db(conninfo, err, errlen);
    if (pg == NULL) {
        free(want);
        nmc_buf_free(&arr);
        return NMC_EDB;
    }
    int rc = exec_cmd(pg, "BEGIN", err, errlen);
    PGresult *r = NULL;
    if (rc == 0) {
        const char *p[2] = { nids > 0 ? arr.data : NULL, event_name };
        r = PQexecParams(pg, NMC_OUTBOX_SQL_DEAD_REQUEUE, 2, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fail(err, errlen, "requeueing dead letters: %s", PQresultErrorMessage(r));
            rc = NMC_EDB;
        }
    }
    size_t moved = rc == 0 ? (size_t)PQntuples(r) : 0;
    int64_t *got = moved > 0 ? malloc(moved * sizeof *got) : NULL;
    if (moved > 0 && got == NULL)
        rc = NMC_ENOMEM;
    for (size_t i = 0; rc == 0 && i < moved; i++)
        got[i] = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10); /* ascending: the statement's ORDER BY */
    if (rc == 0 && nids > 0) {
        int64_t missing = first_missing(want, nids, got, moved);
        if (missing >= 0) {
            fail(err, errlen, "no dead letter with id %lld (nothing requeued)", (long long)missing);
            rc = NMC_ENOTFOUND;
        }
    }
    if (rc == 0 && moved > 0) {
        char notify[64];
        snprintf(notify, sizeof notify, "SELECT pg_notify('%s', '')", NMC_OUTBOX_NOTIFY_CHANNEL);
        rc = exec_cmd(pg, notify, err, errlen);
    }
    if (rc == 0)
        rc = exec_cmd(pg, "COMMIT", err, errlen);
    else
        PQclear(PQexec(pg, "ROLLBACK")); /* err keeps the first error */
    if (rc == 0) {
        for (size_t i = 0; out != NULL && i < moved; i++)
            fprintf(out, "%lld\n", (long long)got[i]);
        *n = moved;
    }
    PQclear(r);
    PQfinish(pg);
    free(got);
    free(want);
    nmc_buf_free(&arr);
    return rc;
}
