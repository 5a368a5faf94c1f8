/* bench_db_stmt: the database's share of the first-SMS latency, alone
 * (owner: perf engineer). Run by hand, never in CI.
 *
 *   bench_db_stmt --conninfo "host=... dbname=..." --rate 50 --count 500
 *                 (--tenant UUID --tenant-version XMIN | --floor)
 *
 * Without --floor it runs the missed call's own statement
 * (NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY: the webhook, the missed call,
 * CallDetected, the conversation, the first reply's intent and
 * ConversationStarted, committed durably) from one libpq connection, as a
 * prepared statement with text parameters like nmc's pool, each time for a
 * new call and caller of the tenant. With --floor it commits a one-row
 * INSERT into bench_floor instead (created if missing): what one durable
 * commit costs on this machine at that rate. Calls are paced at --rate (the
 * next waits for the previous: at rates the statement keeps up with, that is
 * the same as open loop; "late" counts the ones that could not start on
 * time). Latency is PQexecPrepared's round trip. Prints one JSON object.
 *
 * Events are inserted leased to "bench-db-stmt" for 30 s: run it against a
 * database no nmc serves (bench/first_sms.sh runs it after stopping nmc),
 * or that nmc delivers them after the lease. */
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actors/telephony/telephony_sql.h"
#include "runtime/clock.h"

#define MAX_COUNT 1000000

static int64_t now_ns(void)
{
    return (int64_t)nmc_clock_mono_ns();
}

static void sleep_until(int64_t t)
{
    int64_t d = t - now_ns();
    if (d > 0) {
        struct timespec ts = { (time_t)(d / 1000000000), (long)(d % 1000000000) };
        nanosleep(&ts, NULL);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *sorted, int n, double p)
{
    int i = (int)(p * (double)n);
    return sorted[i < n ? i : n - 1];
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_db_stmt --conninfo S --rate R --count N (--tenant UUID --tenant-version XMIN | "
                    "--floor)\n");
    return 2;
}

static int exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "bench_db_stmt: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok;
}

int main(int argc, char **argv)
{
    const char *conninfo = NULL, *tenant = NULL, *version = NULL;
    double rate = 0;
    long count = 0;
    int floor_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--floor") == 0)
            floor_only = 1;
        else if (v == NULL)
            return usage();
        else if (strcmp(argv[i], "--conninfo") == 0)
            conninfo = argv[++i];
        else if (strcmp(argv[i], "--rate") == 0)
            rate = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--count") == 0)
            count = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--tenant") == 0)
            tenant = argv[++i];
        else if (strcmp(argv[i], "--tenant-version") == 0)
            version = argv[++i];
        else
            return usage();
    }
    if (conninfo == NULL || rate <= 0 || rate > 100000 || count < 1 || count > MAX_COUNT ||
        (!floor_only && (tenant == NULL || version == NULL))) {
        fprintf(stderr, "bench_db_stmt: --conninfo, --rate (0 < R <= 100000), --count (1..%d) and either --floor "
                        "or --tenant with --tenant-version are needed\n", MAX_COUNT);
        return usage();
    }
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench_db_stmt: %s", PQerrorMessage(c));
        PQfinish(c);
        return 1;
    }
    if (floor_only && !exec_ok(c, "CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, v text NOT NULL,"
                                  " at timestamptz NOT NULL DEFAULT now())")) {
        PQfinish(c);
        return 1;
    }
    const char *sql = floor_only ? "INSERT INTO bench_floor (v) VALUES ($1)" : NMC_TELEPHONY_SQL_VOICE_FIRST_REPLY;
    int nparams = floor_only ? 1 : 17;
    PGresult *r = PQprepare(c, "s", sql, nparams, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "bench_db_stmt: prepare: %s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return 1;
    }
    PQclear(r);

    double *lat = malloc(sizeof(double) * (size_t)count);
    if (lat == NULL) {
        PQfinish(c);
        return 1;
    }
    /* fresh call sids and callers per run: a rerun against the same database
     * must not meet its own webhooks, calls or repeat window */
    unsigned long run = ((unsigned long)time(NULL) * 1000003UL) ^ ((unsigned long)getpid() << 20);
    long late = 0, no_intent = 0;
    int64_t start = now_ns(), period = (int64_t)(1e9 / rate);
    for (long i = 0; i < count; i++) {
        int64_t due = start + i * period;
        if (now_ns() > due + period / 2)
            late++;
        sleep_until(due);
        char sid[48], key[64], from[24], dedupe[72], payload[512];
        snprintf(sid, sizeof sid, "CAdb%016lx%08lx", run, (unsigned long)i);
        snprintf(key, sizeof key, "voice:%s:no-answer", sid);
        snprintf(from, sizeof from, "+1666%07lu", (run + (unsigned long)i) % 10000000UL);
        snprintf(dedupe, sizeof dedupe, "first:call:%s", sid);
        snprintf(payload, sizeof payload,
                 "{\"To\": \"+15550001000\", \"From\": \"%s\", \"CallSid\": \"%s\", \"AccountSid\": \"ACbench\","
                 " \"CallStatus\": \"no-answer\", \"CallDuration\": \"0\"}", from, sid);
        const char *p[17] = { key, tenant, payload, sid, from, "+15550001000", "no-answer", "0", "true",
                              "bench-db-stmt", "bench-db-stmt", "30000", dedupe,
                              "Hi, this is a bench. Sorry we missed your call! Reply STOP to opt out.", "pending",
                              "60", version };
        if (floor_only)
            p[0] = sid;
        int64_t t0 = now_ns();
        r = PQexecPrepared(c, "s", nparams, p, NULL, NULL, 0);
        lat[i] = (double)(now_ns() - t0) / 1e6;
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
            fprintf(stderr, "bench_db_stmt: statement %ld: %s", i, PQerrorMessage(c));
            PQclear(r);
            PQfinish(c);
            free(lat);
            return 1;
        }
        if (!floor_only && (PQnfields(r) < 10 || PQgetisnull(r, 0, 6)))
            no_intent++; /* no first reply recorded: wrong tenant version, or a gate */
        PQclear(r);
    }
    double secs = (double)(now_ns() - start) / 1e9;
    PQfinish(c);
    double sum = 0;
    for (long i = 0; i < count; i++)
        sum += lat[i];
    qsort(lat, (size_t)count, sizeof *lat, cmp_double);
    int n = (int)count;
    printf("{\"statement\": \"%s\", \"rate\": %.1f, \"count\": %ld, \"achieved_rate\": %.1f, \"late\": %ld,"
           " \"without_intent\": %ld, \"latency_ms\": {\"mean\": %.3f, \"p50\": %.3f, \"p95\": %.3f,"
           " \"p99\": %.3f, \"max\": %.3f}}\n",
           floor_only ? "one_row_insert" : "telephony_voice_first_reply", rate, count, (double)count / secs, late,
           no_intent, sum / (double)count, pct(lat, n, 0.50), pct(lat, n, 0.95), pct(lat, n, 0.99), lat[n - 1]);
    free(lat);
    if (no_intent > 0)
        fprintf(stderr, "bench_db_stmt: %ld statements recorded no first reply (stale --tenant-version?)\n",
                no_intent);
    return 0;
}
