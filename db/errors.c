/* SQLSTATE to typed error mapping and result accessors (db/pool.h).
 * Callers switch on the typed error, never on SQLSTATE strings, so this
 * table is the one place that knows PostgreSQL's error classes. */
#include <string.h>
#include "db/pool.h"
#include "runtime/buf.h"

struct state_map {
    const char *sqlstate;
    int err;
};

static const struct state_map exact[] = {
    {"23505", NMC_EUNIQUE},        {"23P01", NMC_EEXCLUSION},     {"23503", NMC_EFOREIGNKEY},
    {"23514", NMC_ECHECK},         {"23502", NMC_ECHECK},         {"40001", NMC_ESERIALIZATION},
    {"40P01", NMC_ESERIALIZATION}, {"57014", NMC_ETIMEDOUT},
    /* The server is going away under us: admin_shutdown (pg_terminate_backend),
     * crash_shutdown, cannot_connect_now. The session is gone either way. */
    {"57P01", NMC_ECONNLOST},      {"57P02", NMC_ECONNLOST},      {"57P03", NMC_ECONNLOST},
};

/* Returns the typed error for a five-character SQLSTATE; anything unknown,
 * empty or malformed is NMC_EDB. Class 08 (connection exception) is
 * NMC_ECONNLOST whatever its subclass. */
int nmc_db_error_from_sqlstate(const char *sqlstate)
{
    if (!sqlstate || strlen(sqlstate) != 5)
        return NMC_EDB;
    for (size_t i = 0; i < NMC_ARRAY_SIZE(exact); i++)
        if (memcmp(sqlstate, exact[i].sqlstate, 5) == 0)
            return exact[i].err;
    if (sqlstate[0] == '0' && sqlstate[1] == '8')
        return NMC_ECONNLOST;
    return NMC_EDB;
}

/* Returns the text of a cell, or NULL for SQL NULL, a NULL result or a
 * row/column out of range. The string is borrowed from r. */
const char *nmc_db_get(const PGresult *r, int row, int col)
{
    if (!r || row < 0 || col < 0 || row >= PQntuples(r) || col >= PQnfields(r))
        return NULL;
    if (PQgetisnull(r, row, col))
        return NULL;
    return PQgetvalue(r, row, col);
}

int nmc_db_array_append(struct nmc_buf *b, const char *v)
{
    int rc = b->len > 0 && b->data[b->len - 1] != '{' ? nmc_buf_puts(b, ",") : 0;
    if (rc != 0 || v == NULL)
        return rc != 0 ? rc : nmc_buf_puts(b, "NULL");
    rc = nmc_buf_puts(b, "\"");
    for (const char *s = v; rc == 0 && *s != '\0';) {
        size_t run = strcspn(s, "\"\\");
        rc = nmc_buf_append(b, s, run);
        s += run;
        if (rc == 0 && *s != '\0') {
            char esc[2] = { '\\', *s++ };
            rc = nmc_buf_append(b, esc, 2);
        }
    }
    return rc != 0 ? rc : nmc_buf_puts(b, "\"");
}

PGresult *nmc_db_result_row(const PGresult *r, int row)
{
    if (r == NULL || row < 0 || row >= PQntuples(r))
        return NULL;
    PGresult *one = PQcopyResult(r, PG_COPYRES_ATTRS);
    for (int c = 0; one != NULL && c < PQnfields(r); c++) {
        int isnull = PQgetisnull(r, row, c);
        if (!PQsetvalue(one, 0, c, isnull ? NULL : PQgetvalue(r, row, c), isnull ? -1 : PQgetlength(r, row, c))) {
            PQclear(one);
            one = NULL;
        }
    }
    return one;
}
