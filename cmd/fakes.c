/* nmc-fakes: the provider emulator used by tests, bench and the local demo.
 * Options, the HTTP server, the /_fakes inspection routes and the JWKS
 * file; the Twilio wire format lives in cmd/fakes_twilio.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "cmd/fakes.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/log.h"

#define MAX_UNSUBSCRIBED 256
#define MAX_JWKS_BYTES (1024 * 1024)

static const char usage_text[] =
    "usage: nmc-fakes --port N [options]\n"
    "  --port N                 listen port (0: any free port; printed once listening)\n"
    "  --bind ADDR              listen address (default 127.0.0.1)\n"
    "  --latency-ms N           delay every Twilio answer by N ms\n"
    "  --fail-rate R            answer this share (0..1) of sends with 500\n"
    "  --timeout-rate R         never answer this share (0..1) of sends\n"
    "  --timeout-after-accept   injected timeouts still create the message (the answer is lost)\n"
    "  --twilio-auth-token T    auth token for Basic auth and callback signatures (default test-auth-token)\n"
    "  --account-sid AC...      only accept this account (default: any AC sid matching Basic auth)\n"
    "  --status-callbacks       POST signed 'sent' and 'delivered' callbacks to StatusCallback\n"
    "  --callback-delay-ms N    delay before each callback (default 20)\n"
    "  --unsubscribed NUMBER    answer 21610 for this recipient (repeatable, or comma-separated)\n"
    "  --jwks FILE              serve FILE at GET /.well-known/jwks.json\n"
    "  --max-records N          messages kept for GET /_fakes/messages (default 100000)\n"
    "  --seed N                 seed the fault-injection RNG\n"
    "The faults can be changed while it runs: PUT /_fakes/faults {\"fail_rate\":R, \"timeout_rate\":R,\n"
    "\"timeout_after_accept\":true|false} (any of them); GET /_fakes/faults shows them.\n";

static void usage_exit(const char *why)
{
    if (why != NULL)
        fprintf(stderr, "nmc-fakes: %s\n", why);
    fputs(usage_text, stderr);
    exit(2);
}

static int64_t int_arg(const char *flag, const char *v, int64_t min, int64_t max)
{
    int64_t out;
    char why[128];

    if (v == NULL || nmc_parse_i64(v, min, max, &out) != 0) {
        snprintf(why, sizeof(why), "%s wants an integer in [%lld, %lld]", flag, (long long)min, (long long)max);
        usage_exit(why);
    }
    return out;
}

static double rate_arg(const char *flag, const char *v)
{
    char *end = NULL, why[128];
    double r = v ? strtod(v, &end) : -1;

    if (v == NULL || end == v || *end != '\0' || !(r >= 0.0 && r <= 1.0)) {
        snprintf(why, sizeof(why), "%s wants a number in [0, 1]", flag);
        usage_exit(why);
    }
    return r;
}

/* Adds each comma-separated number of v to the unsubscribed list. */
static void add_unsubscribed(struct fakes_opts *o, char *v)
{
    char *save = NULL;

    for (char *p = strtok_r(v, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save)) {
        if (o->nunsubscribed == MAX_UNSUBSCRIBED)
            usage_exit("too many --unsubscribed numbers");
        o->unsubscribed[o->nunsubscribed++] = p;
    }
}

/* Flags that take a value; 1 when flag was one of them. */
static int value_flag(struct fakes_opts *o, const char *flag, char *v, uint64_t *seed, int *seeded)
{
    if (strcmp(flag, "--port") == 0)
        o->port = (int)int_arg(flag, v, 0, 65535);
    else if (strcmp(flag, "--bind") == 0)
        o->bind = v;
    else if (strcmp(flag, "--latency-ms") == 0)
        o->latency_ms = (int)int_arg(flag, v, 0, 600000);
    else if (strcmp(flag, "--fail-rate") == 0)
        o->fail_rate = rate_arg(flag, v);
    else if (strcmp(flag, "--timeout-rate") == 0)
        o->timeout_rate = rate_arg(flag, v);
    else if (strcmp(flag, "--twilio-auth-token") == 0)
        o->auth_token = v;
    else if (strcmp(flag, "--account-sid") == 0)
        o->account_sid = v;
    else if (strcmp(flag, "--callback-delay-ms") == 0)
        o->callback_delay_ms = (int)int_arg(flag, v, 0, 600000);
    else if (strcmp(flag, "--unsubscribed") == 0 && v != NULL)
        add_unsubscribed(o, v);
    else if (strcmp(flag, "--jwks") == 0)
        o->jwks_path = v;
    else if (strcmp(flag, "--max-records") == 0)
        o->max_records = (size_t)int_arg(flag, v, 0, 10000000);
    else if (strcmp(flag, "--seed") == 0) {
        *seed = (uint64_t)int_arg(flag, v, 0, INT64_MAX);
        *seeded = 1;
    } else
        return 0;
    return 1;
}

static void parse_args(struct fakes_opts *o, int argc, char **argv)
{
    static const char *unsub[MAX_UNSUBSCRIBED];
    uint64_t seed = 0;
    int seeded = 0, have_port = 0;

    memset(o, 0, sizeof(*o));
    o->bind = "127.0.0.1";
    o->auth_token = "test-auth-token";
    o->unsubscribed = unsub;
    o->max_records = 100000;
    o->callback_delay_ms = 20;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--status-callbacks") == 0)
            o->status_callbacks = 1;
        else if (strcmp(argv[i], "--timeout-after-accept") == 0)
            o->timeout_after_accept = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        } else if (i + 1 < argc && value_flag(o, argv[i], argv[i + 1], &seed, &seeded)) {
            have_port |= strcmp(argv[i], "--port") == 0;
            i++;
        } else {
            char why[160];
            snprintf(why, sizeof(why), "unknown or incomplete option '%s'", argv[i]);
            usage_exit(why);
        }
    }
    if (!have_port)
        usage_exit("--port is required");
    if (*o->auth_token == '\0')
        usage_exit("--twilio-auth-token must not be empty");
    if (o->fail_rate + o->timeout_rate > 1.0)
        usage_exit("--fail-rate plus --timeout-rate exceeds 1");
    if (seeded)
        nmc_rng_seed(seed);
}

/* ---- inspection routes ------------------------------------------------------ */

static void respond_json_obj(struct nmc_http_req *req, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);

    nmc_http_respond_json(req, status, s);
    free(s);
    json_decref(j);
}

/* GET /_fakes/messages[?to=+1555...]: what was accepted, oldest first. */
static void on_messages_list(struct nmc_http_req *req, void *ud)
{
    struct fakes *f = ud;
    char *to = nmc_http_req_query(req, "to");
    json_t *arr = json_array();

    for (size_t i = 0; i < f->nmsgs; i++)
        if (to == NULL || (f->msgs[i].to != NULL && strcmp(f->msgs[i].to, to) == 0))
            json_array_append_new(arr, fakes_store_record(&f->msgs[i]));
    free(to);
    respond_json_obj(req, 200, json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(arr), "messages", arr));
}

static void on_messages_clear(struct nmc_http_req *req, void *ud)
{
    struct fakes *f = ud;
    size_t n = f->nmsgs;

    fakes_store_clear(f);
    respond_json_obj(req, 200, json_pack("{s:I}", "deleted", (json_int_t)n));
}

static void on_stats(struct nmc_http_req *req, void *ud)
{
    const struct fakes_stats *s = &((struct fakes *)ud)->stats;

    respond_json_obj(req, 200,
                     json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "requests", (json_int_t)s->requests,
                               "accepted", (json_int_t)s->accepted, "auth_failures", (json_int_t)s->auth_failures,
                               "invalid", (json_int_t)s->invalid, "unsubscribed", (json_int_t)s->unsubscribed,
                               "injected_5xx", (json_int_t)s->injected_5xx, "injected_timeouts",
                               (json_int_t)s->injected_timeouts, "callbacks_sent", (json_int_t)s->callbacks_sent,
                               "callbacks_failed", (json_int_t)s->callbacks_failed, "records_dropped",
                               (json_int_t)s->records_dropped));
}

static json_t *faults_json(const struct fakes *f)
{
    return json_pack("{s:f, s:f, s:b}", "fail_rate", f->o.fail_rate, "timeout_rate", f->o.timeout_rate,
                     "timeout_after_accept", f->o.timeout_after_accept);
}

static void faults_error(struct nmc_http_req *req, const char *why)
{
    respond_json_obj(req, 400, json_pack("{s:s}", "error", why));
}

/* A rate field of a faults request: 1 and *out when present and valid,
 * 0 when absent, -1 (answered 400) when bad. */
static int faults_rate(struct nmc_http_req *req, json_t *doc, const char *key, double *out)
{
    json_t *v = json_object_get(doc, key);
    if (v == NULL)
        return 0;
    if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1) {
        char why[96];
        snprintf(why, sizeof why, "%s must be a number from 0 to 1", key);
        faults_error(req, why);
        return -1;
    }
    *out = json_number_value(v);
    return 1;
}

/* GET /_fakes/faults: the fault injection now. PUT changes it on the
 * running emulator (what --fail-rate, --timeout-rate and
 * --timeout-after-accept set at start): a JSON object with any of
 * fail_rate, timeout_rate (0..1, together at most 1) and
 * timeout_after_accept (boolean); anything else is a 400 that changes
 * nothing. */
static void on_faults_get(struct nmc_http_req *req, void *ud)
{
    respond_json_obj(req, 200, faults_json(ud));
}

static void on_faults_put(struct nmc_http_req *req, void *ud)
{
    struct fakes *f = ud;
    json_t *doc = json_loadb(req->body != NULL ? req->body : "", req->body_len, 0, NULL);
    double fail = f->o.fail_rate, timeout = f->o.timeout_rate;
    const char *key;
    json_t *v;

    if (!json_is_object(doc)) {
        json_decref(doc);
        faults_error(req, "the body must be a JSON object");
        return;
    }
    json_object_foreach(doc, key, v) {
        if (strcmp(key, "fail_rate") != 0 && strcmp(key, "timeout_rate") != 0 &&
            strcmp(key, "timeout_after_accept") != 0) {
            char why[128];
            snprintf(why, sizeof why, "unknown field '%.64s'", key);
            json_decref(doc);
            faults_error(req, why);
            return;
        }
    }
    v = json_object_get(doc, "timeout_after_accept");
    if (faults_rate(req, doc, "fail_rate", &fail) < 0 || faults_rate(req, doc, "timeout_rate", &timeout) < 0) {
        json_decref(doc);
        return;
    }
    if (v != NULL && !json_is_boolean(v)) {
        json_decref(doc);
        faults_error(req, "timeout_after_accept must be true or false");
        return;
    }
    if (fail + timeout > 1.0) {
        json_decref(doc);
        faults_error(req, "fail_rate plus timeout_rate exceeds 1");
        return;
    }
    f->o.fail_rate = fail;
    f->o.timeout_rate = timeout;
    if (v != NULL)
        f->o.timeout_after_accept = json_is_true(v);
    json_decref(doc);
    respond_json_obj(req, 200, faults_json(f));
}

static void on_jwks(struct nmc_http_req *req, void *ud)
{
    struct fakes *f = ud;
    const char *const headers[] = {"Cache-Control: public, max-age=300", NULL};

    nmc_http_respond(req, 200, "application/json", f->jwks, f->jwks_len, headers);
}

/* Reads the JWKS file once at start-up; it must be a JSON object. */
static void load_jwks(struct fakes *f)
{
    json_error_t err;
    json_t *j;
    FILE *fp = fopen(f->o.jwks_path, "rb");
    struct nmc_buf b = {.max = MAX_JWKS_BYTES};
    char chunk[4096];
    size_t n;

    if (fp == NULL)
        usage_exit("--jwks: cannot open the file");
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        if (nmc_buf_append(&b, chunk, n) != 0)
            usage_exit("--jwks: file over 1 MiB");
    fclose(fp);
    j = json_loadb(b.data ? b.data : "", b.len, 0, &err);
    if (!json_is_object(j))
        usage_exit("--jwks: the file is not a JSON object");
    json_decref(j);
    f->jwks = nmc_buf_steal(&b, &f->jwks_len);
}

static int add_routes(struct fakes *f)
{
    int rc = fakes_twilio_routes(f);

    rc |= nmc_http_server_route(f->server, "GET", "/_fakes/messages", on_messages_list, f);
    rc |= nmc_http_server_route(f->server, "DELETE", "/_fakes/messages", on_messages_clear, f);
    rc |= nmc_http_server_route(f->server, "GET", "/_fakes/stats", on_stats, f);
    rc |= nmc_http_server_route(f->server, "GET", "/_fakes/faults", on_faults_get, f);
    rc |= nmc_http_server_route(f->server, "PUT", "/_fakes/faults", on_faults_put, f);
    if (f->jwks != NULL)
        rc |= nmc_http_server_route(f->server, "GET", "/.well-known/jwks.json", on_jwks, f);
    return rc ? NMC_EINVAL : 0;
}

/* ---- process ---------------------------------------------------------------- */

static uv_signal_t sigterm, sigint;

static void on_callback_msg(struct nmc_actor *self, struct nmc_msg *msg, void *state)
{
    fakes_callbacks_on_done(state, msg);
}

static void on_server_down(void *ud)
{
    struct fakes *f = ud;

    nmc_http_server_free(f->server);
    f->server = NULL;
    nmc_prov_http_destroy(f->http);
    f->http = NULL;
    nmc_rt_destroy(f->rt);
    f->rt = NULL;
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct fakes *f = s->data;

    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    f->stopping = 1;
    nmc_http_server_shutdown(f->server, 500, on_server_down, f);
}

static int start(struct fakes *f)
{
    struct nmc_http_server_opts so = {.bind_addr = f->o.bind, .port = f->o.port, .max_body_bytes = 1024 * 1024,
                                      .header_timeout_ms = 10000, .idle_timeout_ms = 60000,
                                      .max_connections = 10000};
    struct nmc_prov_http_opts ho = {.timeout_ms = 5000, .max_attempts = 1};
    int rc;

    rc = nmc_rt_create(f->loop, 0, &f->rt);
    if (rc == 0)
        rc = nmc_rt_actor_create(f->rt, "fakes-callbacks", on_callback_msg, f, 0, &f->callbacks_actor);
    if (rc == 0)
        rc = nmc_prov_http_create(f->loop, &ho, &f->http);
    if (rc == 0)
        rc = nmc_http_server_create(f->loop, &so, &f->server);
    if (rc == 0)
        rc = add_routes(f);
    if (rc == 0)
        rc = nmc_http_server_listen(f->server);
    return rc;
}

int main(int argc, char **argv)
{
    static struct fakes f;
    int rc;

    signal(SIGPIPE, SIG_IGN);
    parse_args(&f.o, argc, argv);
    nmc_log_setup(NMC_LOG_INFO, 0, NULL);
    if (f.o.jwks_path != NULL)
        load_jwks(&f);
    f.loop = uv_default_loop();
    rc = start(&f);
    if (rc != 0) {
        fprintf(stderr, "nmc-fakes: cannot start on %s:%d: %s\n", f.o.bind, f.o.port, nmc_strerror(rc));
        return 1;
    }
    uv_signal_init(f.loop, &sigterm);
    uv_signal_init(f.loop, &sigint);
    sigterm.data = sigint.data = &f;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    printf("nmc-fakes listening on %s:%d\n", f.o.bind, nmc_http_server_port(f.server));
    fflush(stdout);
    uv_run(f.loop, UV_RUN_DEFAULT);
    fakes_store_clear(&f);
    free(f.msgs);
    free(f.jwks);
    uv_loop_close(f.loop);
    return 0;
}
