/* Migrations: numbered SQL files migrations/NNNN_name.up.sql and
 * NNNN_name.down.sql, applied in order under an advisory lock, each in its
 * own transaction (or, marked NMC_MIGRATE_NO_TXN, outside one), recorded in
 * schema_migrations(version, name, applied_at).
 * This runner is synchronous (blocking libpq): it runs from the CLI
 * (`nmc migrate`) and at start-up checks, never on the serving loop. */
#ifndef NMC_DB_MIGRATE_H
#define NMC_DB_MIGRATE_H

#include <stdio.h>
#include "runtime/common.h"

/* The first line of a migration file that must run outside a transaction,
 * one statement at a time (CREATE INDEX CONCURRENTLY): see db/migrate.c. */
#define NMC_MIGRATE_NO_TXN "-- nmc:no-transaction"

/* dir: folder holding the SQL files. out: progress lines (may be NULL).
 * Errors: NMC_EINVAL (bad folder or file set: names the file in err),
 * NMC_EDB (a statement failed: the file and server message in err). */
NMC_MUST_CHECK int nmc_db_migrate_up(const char *conninfo, const char *dir, FILE *out, char *err, size_t errlen);
/* Reverts the newest n applied migrations (n < 0: all). */
NMC_MUST_CHECK int nmc_db_migrate_down(const char *conninfo, const char *dir, int n, FILE *out, char *err,
                                       size_t errlen);
/* Prints each migration with applied/pending. *pending gets the count of
 * files not applied (0 means current). */
NMC_MUST_CHECK int nmc_db_migrate_status(const char *conninfo, const char *dir, FILE *out, int *pending,
                                         char *err, size_t errlen);
/* Directory of the migrations: $NMC_MIGRATIONS_DIR, else next to the
 * executable's install (share/nmc/migrations), else the source tree. */
const char *nmc_db_migrate_default_dir(void);

#endif
