/* Runs the provider emulator nmc-fakes (from NMC_BUILD_DIR) for tests.
 *
 *   struct nmc_fakes_proc f;
 *   assert_int_equal(nmc_fakes_proc_start(&f, 0, (const char *const[]){
 *       "--twilio-auth-token", "tok", "--unsubscribed", "+15550000001", NULL}), 0);
 *   ... TWILIO_API_BASE = f.base_url ...
 *   int st = nmc_fakes_proc_request(&f, "GET", "/_fakes/messages", NULL, body, sizeof body);
 *   nmc_fakes_proc_stop(&f);
 *
 * Port 0 lets nmc-fakes pick a free port and reads it back from the line
 * it prints once listening, so parallel tests never collide. The child's
 * output goes to NMC_BUILD_DIR/e2e-logs/nmc-fakes-<pid>.log. */
#ifndef NMC_TESTS_SUPPORT_FAKES_PROC_H
#define NMC_TESTS_SUPPORT_FAKES_PROC_H

#include <stddef.h>
#include <sys/types.h>

struct nmc_fakes_proc {
    pid_t pid;
    int port;
    char base_url[64];   /* "http://127.0.0.1:<port>" */
    char log_path[512];
};

/* Starts nmc-fakes on 127.0.0.1:port (0: any free port) with the extra
 * arguments args (NULL-terminated, may be NULL) and waits up to 10 s until
 * it listens. 0, or -1 (f->pid is 0; the log says why). */
int nmc_fakes_proc_start(struct nmc_fakes_proc *f, int port, const char *const *args);
/* SIGTERM, waits up to 5 s, then SIGKILL; returns the exit status as
 * waitpid gives it (or -1). Accepts a stopped or never-started f. */
int nmc_fakes_proc_stop(struct nmc_fakes_proc *f);
/* One blocking HTTP/1.1 request to the emulator (tests only): returns the
 * status code (or -1) and copies the body into out (NUL-terminated).
 * body may be NULL; it is sent as application/x-www-form-urlencoded. */
int nmc_fakes_proc_request(const struct nmc_fakes_proc *f, const char *method, const char *path, const char *body,
                           char *out, size_t outlen);

#endif
