/* Splitting a file of SQL into its statements, for the migrations that
 * must run outside a transaction (db/migrate.c: CREATE INDEX CONCURRENTLY
 * refuses to run in one, and so does a string of several statements sent
 * at once, which PostgreSQL runs as one implicit transaction).
 *
 * The split follows PostgreSQL's lexer where a ';' can hide: '--' and
 * nested block comments, 'strings' ('' inside; E'strings' with backslash
 * escapes), "identifiers", and $tag$ dollar quotes $tag$ (not $1
 * parameters, nor a '$' inside an identifier). Anything left open at the
 * end (an unterminated string or comment) belongs to the last statement,
 * for the server to report. */
#ifndef NMC_DB_SQL_SPLIT_H
#define NMC_DB_SQL_SPLIT_H

#include <stddef.h>

/* Bytes of the first statement of s[0..n), its ';' included (n when no ';'
 * ends it). */
size_t nmc_sql_statement_len(const char *s, size_t n);

/* 1 when s[0..n) holds only white space, comments and ';' (nothing to run). */
int nmc_sql_is_blank(const char *s, size_t n);

#endif
