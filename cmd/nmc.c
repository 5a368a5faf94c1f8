/* nmc: the NeverMissCall server and its operator commands.
 *
 *   nmc serve [--role web|worker|all]   run the server (one libuv loop)
 *   nmc migrate up | down N | down all | status
 *   nmc outbox dead-letters [--event NAME] [--limit N]
 *   nmc outbox requeue ID... | --all [--event NAME]
 *   nmc --version | --help
 *
 * Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "actors/app.h"
#include "actors/infra/infra.h"
#include "actors/outbox/dead_letters.h"
#include "actors/outbox/outbox.h"
#include "db/migrate.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#define EXIT_USAGE 2
#define SHUTDOWN_GRACE_MS 3000
/* After HTTP has drained: how long the events already taken may take to
 * settle (the SMS being sent, the projections' acks) before the rest is
 * left to its lease. */
#define OUTBOX_DRAIN_MS 1000

struct server {
    uv_loop_t loop;
    struct nmc_app app;
    struct nmc_config cfg;
    uv_signal_t sigterm, sigint;
    uv_timer_t hard_stop;
    uv_timer_t drained; /* runs the stop outside the actor that reported the drain */
    int stopping;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: nmc serve [--role web|worker|all]\n"
            "       nmc migrate up | down N | down all | status\n"
            "       nmc outbox dead-letters [--event NAME] [--limit N]\n"
            "       nmc outbox requeue ID... | --all [--event NAME]\n"
            "       nmc --version | --help\n");
}

static void help(void)
{
    size_t n;
    const struct nmc_config_var *vars = nmc_config_vars(&n);
    printf("nmc %s: NeverMissCall, missed calls to booked jobs.\n\n", NMC_VERSION);
    usage(stdout);
    printf("\nroles: web serves HTTP; worker runs the outbox dispatcher and background jobs\n"
           "(and serves only /healthz, /readyz, /metrics); all (default) does both.\n\n"
           "environment:\n");
    for (size_t i = 0; i < n; i++)
        printf("  %-34s %-24s %s\n", vars[i].name, vars[i].def ? vars[i].def : "(unset)", vars[i].help);
}

static int load_config(struct nmc_config *cfg)
{
    char err[512];
    if (nmc_config_load(cfg, NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "nmc: configuration error: %s\n", err);
        return EXIT_USAGE;
    }
    if (cfg->database_url == NULL || cfg->database_url[0] == '\0') {
        fprintf(stderr, "nmc: configuration error: DATABASE_URL: required\n");
        nmc_config_free(cfg);
        return EXIT_USAGE;
    }
    return 0;
}

static int cmd_migrate(int argc, char **argv)
{
    struct nmc_config cfg;
    char err[1024];
    int rc, pending = 0;
    if (argc < 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    int64_t n = 0;
    int is_up = strcmp(argv[0], "up") == 0 && argc == 1;
    int is_status = strcmp(argv[0], "status") == 0 && argc == 1;
    int is_down = strcmp(argv[0], "down") == 0 && argc == 2 &&
                  (strcmp(argv[1], "all") == 0 || nmc_parse_i64(argv[1], 1, 1000000, &n) == 0);
    if (!is_up && !is_status && !is_down) {
        fprintf(stderr, "nmc migrate: expected 'up', 'down N' (N >= 1), 'down all' or 'status'\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((rc = load_config(&cfg)) != 0)
        return rc;
    const char *dir = nmc_db_migrate_default_dir();
    if (is_up)
        rc = nmc_db_migrate_up(cfg.database_url, dir, stdout, err, sizeof(err));
    else if (is_status)
        rc = nmc_db_migrate_status(cfg.database_url, dir, stdout, &pending, err, sizeof(err));
    else
        rc = nmc_db_migrate_down(cfg.database_url, dir, strcmp(argv[1], "all") == 0 ? -1 : (int)n, stdout, err,
                                 sizeof(err));
    nmc_config_free(&cfg);
    if (rc != 0) {
        fprintf(stderr, "nmc migrate: %s\n", err);
        return rc == NMC_EINVAL ? EXIT_USAGE : 1;
    }
    return 0;
}

/* An event name as the catalog spells them ([A-Z][A-Za-z]+, at most 64). */
static int event_name_ok(const char *v)
{
    size_t n = strlen(v);
    if (n < 2 || n > 64 || v[0] < 'A' || v[0] > 'Z')
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= 'a' && v[i] <= 'z')))
            return 0;
    return 1;
}

static int outbox_usage(const char *why, const char *arg)
{
    fprintf(stderr, "nmc outbox: %s%s%s%s\n", why, arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
    usage(stderr);
    return EXIT_USAGE;
}

struct outbox_args {
    int list, all;           /* dead-letters (else requeue); requeue --all */
    const char *event;       /* --event NAME, or NULL */
    int64_t limit;           /* dead-letters --limit */
    int64_t *ids;            /* requeue ID... (room for argc) */
    size_t nids;
};

/* NULL when argv (after "outbox") makes sense, else what is wrong, with
 * *arg the argument it names (or NULL). */
static const char *outbox_args_parse(int argc, char **argv, struct outbox_args *o, const char **arg)
{
    *arg = argc > 0 ? argv[0] : NULL;
    if (argc < 1)
        return "expected 'dead-letters' or 'requeue'";
    o->list = strcmp(argv[0], "dead-letters") == 0;
    if (!o->list && strcmp(argv[0], "requeue") != 0)
        return "unknown subcommand";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        *arg = a;
        if (strcmp(a, "--event") == 0 || strcmp(a, "--limit") == 0) {
            if (i + 1 >= argc)
                return "missing value after";
            const char *v = *arg = argv[++i];
            if (a[2] == 'e' && !event_name_ok(v))
                return "--event: not an event name ([A-Z][A-Za-z]+)";
            if (a[2] == 'l' && !o->list) {
                *arg = NULL;
                return "--limit is for dead-letters";
            }
            if (a[2] == 'l' && nmc_parse_i64(v, 1, NMC_DEAD_LETTERS_LIMIT_MAX, &o->limit) != 0)
                return "--limit: expected 1..10000, got";
            if (a[2] == 'e')
                o->event = v;
        } else if (!o->list && strcmp(a, "--all") == 0) {
            o->all = 1;
        } else if (!o->list && nmc_parse_i64(a, 1, INT64_MAX, &o->ids[o->nids]) == 0) {
            o->nids++;
        } else {
            return o->list ? "unknown argument"
                           : "expected a dead letter's id (a positive integer), --all or --event, got";
        }
    }
    *arg = NULL;
    if (!o->list && (o->all ? o->nids > 0 : o->nids == 0))
        return o->all ? "give ids or --all, not both" : "give the ids to requeue, or --all";
    if (!o->list && o->event != NULL && !o->all)
        return "--event goes with --all";
    return NULL;
}

/* nmc outbox dead-letters | requeue: see actors/outbox/dead_letters.h. */
static int cmd_outbox(int argc, char **argv)
{
    struct outbox_args o = { .limit = 100, .ids = calloc((size_t)argc + 1, sizeof(int64_t)) };
    if (o.ids == NULL)
        return 1;
    const char *arg, *why = outbox_args_parse(argc, argv, &o, &arg);
    struct nmc_config cfg;
    int rc = why != NULL ? outbox_usage(why, arg) : load_config(&cfg);
    if (rc != 0) {
        free(o.ids);
        return rc;
    }
    char err[1024] = "";
    size_t n = 0;
    if (o.list)
        rc = nmc_dead_letters_list(cfg.database_url, o.event, (int)o.limit, stdout, &n, err, sizeof err);
    else
        rc = nmc_dead_letters_requeue(cfg.database_url, o.ids, o.nids, o.event, stdout, &n, err, sizeof err);
    nmc_config_free(&cfg);
    free(o.ids);
    if (rc != 0) {
        fprintf(stderr, "nmc outbox %s: %s\n", argv[0], err);
        return rc == NMC_EINVAL || rc == NMC_ENOTFOUND ? EXIT_USAGE : 1;
    }
    fprintf(stderr, "nmc outbox %s: %zu %s\n", argv[0], n, o.list ? "dead letter(s)" : "requeued");
    return 0;
}

static void on_closed_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_hard_stop(uv_timer_t *t)
{
    struct server *s = t->data;
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_WARN, "infra", "shutdown.forced");
    nmc_log_msgf(r, "handles still open after %d ms; closing them", SHUTDOWN_GRACE_MS);
    nmc_log_end(r);
    uv_walk(&s->loop, on_closed_walk, NULL);
}

static void stop_all(uv_timer_t *t)
{
    struct server *s = t->data;
    uv_close((uv_handle_t *)&s->drained, NULL);
    nmc_app_stop_modules(&s->app);
    nmc_infra_stop(&s->app);
    nmc_rt_stop(s->app.rt);
    nmc_db_pool_destroy(s->app.db);
    s->app.db = NULL;
    nmc_db_pool_destroy(s->app.db_slow);
    s->app.db_slow = NULL;
    nmc_rt_destroy(s->app.rt);
    s->app.rt = NULL;
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_unref((uv_handle_t *)&s->hard_stop);
}

/* Called by the outbox from its handler: the runtime may not be stopped
 * there, so the stop runs on the next loop turn. */
static void on_outbox_drained(void *ud)
{
    struct server *s = ud;
    uv_timer_start(&s->drained, stop_all, 0, 0);
}

/* HTTP answered every request it had: the events those requests committed
 * settle (outbox drain), then everything stops. */
static void on_http_drained(void *ud)
{
    struct server *s = ud;
    if (nmc_outbox_drain(&s->app, OUTBOX_DRAIN_MS, on_outbox_drained, s) != 0)
        on_outbox_drained(s);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    struct server *s = sig->data;
    if (s->stopping++) {
        uv_walk(&s->loop, on_closed_walk, NULL);
        return;
    }
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_INFO, "infra", "shutdown.begin");
    nmc_log_str(r, "signal", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    nmc_log_end(r);
    uv_timer_start(&s->hard_stop, on_hard_stop, SHUTDOWN_GRACE_MS + OUTBOX_DRAIN_MS + 1500, 0);
    if (s->app.http != NULL)
        nmc_http_server_shutdown(s->app.http, SHUTDOWN_GRACE_MS, on_http_drained, s);
    else
        on_http_drained(s);
}

static int start_http(struct server *s)
{
    struct nmc_http_server_opts o = {
        .bind_addr = s->cfg.bind_addr,
        .port = s->cfg.port,
        .max_body_bytes = s->cfg.http_max_body_bytes,
        .header_timeout_ms = s->cfg.http_header_timeout_ms,
        .idle_timeout_ms = s->cfg.http_idle_timeout_ms,
        .max_connections = s->cfg.http_max_connections,
    };
    int rc = nmc_http_server_create(&s->loop, &o, &s->app.http);
    if (rc == 0)
        rc = nmc_infra_init(&s->app);
    return rc;
}

static int start(struct server *s)
{
    int rc;
    struct nmc_db_pool_opts dbo = {
        .conninfo = s->cfg.database_url,
        .size = s->cfg.db_pool_size,
        .query_timeout_ms = s->cfg.db_query_timeout_ms,
    };
    struct nmc_db_pool_opts slow = dbo;
    slow.size = 1;
    if ((rc = nmc_rt_create(&s->loop, 0, &s->app.rt)) != 0 ||
        (rc = nmc_db_pool_create(s->app.rt, &dbo, &s->app.db)) != 0 || (rc = start_http(s)) != 0)
        return rc;
    /* rollups, gauges, retention and reports, when this instance runs them,
     * on a connection of their own (actors/app.h) */
    if (s->app.run_workers && (rc = nmc_db_pool_create(s->app.rt, &slow, &s->app.db_slow)) != 0)
        return rc;
    struct nmc_http_server *http = s->app.http;
    if (s->cfg.role == NMC_ROLE_WORKER)
        s->app.http = NULL; /* workers serve only the infra routes */
    rc = nmc_app_init_modules(&s->app);
    s->app.http = http;
    if (rc == 0)
        rc = nmc_http_server_listen(http);
    return rc;
}

static void log_started(struct server *s)
{
    static const char *const roles[] = {"all", "web", "worker"};
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_INFO, "infra", "server.started");
    nmc_log_str(r, "version", NMC_VERSION);
    nmc_log_str(r, "role", roles[s->cfg.role]);
    nmc_log_int(r, "port", nmc_http_server_port(s->app.http));
    nmc_log_int(r, "db_pool_size", s->cfg.db_pool_size);
    nmc_log_end(r);
}

static int cmd_serve(struct server *s)
{
    int rc = uv_loop_init(&s->loop);
    if (rc != 0)
        return 1;
    nmc_log_setup(s->cfg.log_level, s->cfg.log_message_body_prefix, NULL);
    nmc_metrics_register_process();
    s->app.loop = &s->loop;
    s->app.cfg = &s->cfg;
    s->app.run_workers = s->cfg.role != NMC_ROLE_WEB;
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sigint);
    uv_timer_init(&s->loop, &s->hard_stop);
    uv_timer_init(&s->loop, &s->drained);
    s->sigterm.data = s->sigint.data = s->hard_stop.data = s->drained.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    if ((rc = start(s)) != 0) {
        struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_ERROR, "infra", "server.start_failed");
        nmc_log_error(r, rc, NULL);
        nmc_log_end(r);
        fprintf(stderr, "nmc serve: cannot start: %s\n", nmc_strerror(rc));
        nmc_log_flush();
        return 1;
    }
    log_started(s);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&s->hard_stop);
    uv_close((uv_handle_t *)&s->hard_stop, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    nmc_http_server_free(s->app.http);
    uv_loop_close(&s->loop);
    struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_INFO, "infra", "shutdown.done");
    nmc_log_end(r);
    nmc_log_flush();
    nmc_metrics_reset();
    return 0;
}

static int parse_role(int argc, char **argv, enum nmc_role *role)
{
    *role = NMC_ROLE_ALL;
    for (int i = 0; i < argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            v = argv[++i];
        else if (strcmp(argv[i], "--role") == 0) {
            fprintf(stderr, "nmc serve: --role needs a value: web, worker or all\n");
            return EXIT_USAGE;
        } else if (strncmp(argv[i], "--role=", 7) == 0)
            v = argv[i] + 7;
        else {
            fprintf(stderr, "nmc serve: unknown argument '%s'\n", argv[i]);
            return EXIT_USAGE;
        }
        if (strcmp(v, "all") == 0)
            *role = NMC_ROLE_ALL;
        else if (strcmp(v, "web") == 0)
            *role = NMC_ROLE_WEB;
        else if (strcmp(v, "worker") == 0)
            *role = NMC_ROLE_WORKER;
        else {
            fprintf(stderr, "nmc serve: --role must be web, worker or all (got '%s')\n", v);
            return EXIT_USAGE;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    int version = strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0;
    int want_help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0;
    if ((version || want_help) && argc > 2) {
        fprintf(stderr, "nmc %s: unexpected argument '%s'\n", argv[1], argv[2]);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (version) {
        printf("nmc %s\n", NMC_VERSION);
        return 0;
    }
    if (want_help) {
        help();
        return 0;
    }
    if (strcmp(argv[1], "migrate") == 0)
        return cmd_migrate(argc - 2, argv + 2);
    if (strcmp(argv[1], "outbox") == 0)
        return cmd_outbox(argc - 2, argv + 2);
    if (strcmp(argv[1], "serve") == 0) {
        static struct server s;
        enum nmc_role role;
        int rc = parse_role(argc - 2, argv + 2, &role);
        if (rc == 0)
            rc = load_config(&s.cfg);
        if (rc != 0) {
            if (rc == EXIT_USAGE)
                usage(stderr);
            return rc;
        }
        s.cfg.role = role;
        rc = cmd_serve(&s);
        nmc_config_free(&s.cfg);
        return rc;
    }
    fprintf(stderr, "nmc: unknown command or flag '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
