/* Runs the real nmc binary (from NMC_BUILD_DIR) for end-to-end tests.
 *
 *   struct nmc_proc p;
 *   nmc_proc_init(&p, conninfo);              // defaults: free port, admin key, twilio creds
 *   nmc_proc_setenv(&p, "PAUSE_OUTBOUND_SMS", "true");
 *   assert_int_equal(nmc_proc_migrate(&p, "up"), 0);
 *   assert_int_equal(nmc_proc_start(&p, NULL), 0);   // waits for /readyz
 *   ... talk to 127.0.0.1:p.port ...
 *   assert_int_equal(nmc_proc_stop(&p, &exit_code, &ms), 0);  // SIGTERM, waits
 *   nmc_proc_free(&p);
 *
 * The child's stdout/stderr go to NMC_BUILD_DIR/e2e-logs/<name>-<port>.log. */
#ifndef NMC_TESTS_SUPPORT_NMC_PROC_H
#define NMC_TESTS_SUPPORT_NMC_PROC_H

#include <sys/types.h>

#define NMC_PROC_MAX_ENV 64

struct nmc_proc {
    pid_t pid;
    int port;
    char log_path[512];
    char *env[NMC_PROC_MAX_ENV]; /* "NAME=value", owned */
    int nenv;
};

/* A free TCP port on 127.0.0.1 (bind to port 0 and read it back). */
int nmc_proc_free_port(void);
/* Prepares env: DATABASE_URL=conninfo, PORT=<free>, PUBLIC_BASE_URL,
 * ADMIN_API_KEY=test-admin-key, METRICS_BASIC_AUTH=m:m, LOG_LEVEL=info,
 * TWILIO_ACCOUNT_SID=ACtest..., TWILIO_AUTH_TOKEN=test-auth-token,
 * OUTBOX_POLL_INTERVAL_MS=200. */
void nmc_proc_init(struct nmc_proc *p, const char *conninfo);
/* Sets or replaces one variable. */
void nmc_proc_setenv(struct nmc_proc *p, const char *name, const char *value);
/* Path of a built executable ("nmc", "nmc-fakes"), from NMC_BUILD_DIR. */
const char *nmc_proc_bin(const char *name, char *buf, size_t len);
/* Runs `nmc <args...>` to completion with p's env; returns its exit code
 * (-1 if it could not run). argv is NULL-terminated; output captured into
 * out (may be NULL) up to outlen. */
int nmc_proc_run(struct nmc_proc *p, const char *const *args, char *out, size_t outlen);
/* `nmc migrate <what>` ("up", "status", "down all"). */
int nmc_proc_migrate(struct nmc_proc *p, const char *what);
/* Starts `nmc serve` (role NULL: all) and waits up to 10 s for /readyz to
 * answer 200, as a load balancer would before sending traffic: the
 * database answers, migrations are current and the SMS kill switch has been
 * read. */
int nmc_proc_start(struct nmc_proc *p, const char *role);
/* SIGTERM, then waits up to 10 s; exit code and elapsed ms out. */
int nmc_proc_stop(struct nmc_proc *p, int *exit_code, long *elapsed_ms);
/* SIGKILL and reap. */
void nmc_proc_kill9(struct nmc_proc *p);
/* Resident set size of the running child in KiB (0 if unknown). */
long nmc_proc_rss_kib(const struct nmc_proc *p);
void nmc_proc_free(struct nmc_proc *p);

#endif
