/* http/router.c: pattern registration, matching (exact beats parameter,
 * backtracking, trailing slash), 405 Allow lists, path splitting and
 * percent-decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include "http/router.h"

static void h_a(struct nmc_http_req *req, void *ud) {}
static void h_b(struct nmc_http_req *req, void *ud) {}

static struct nmc_http_router *R;

static int setup(void **state)
{
    return nmc_http_router_create(&R);
}

static int teardown(void **state)
{
    nmc_http_router_free(R);
    R = NULL;
    return 0;
}

/* Splits raw, matches, returns the result; m is filled. */
static enum nmc_http_route_result route(const char *method, const char *raw, struct nmc_http_route_match *m,
                                        char *buf, char *path)
{
    const char *segs[NMC_HTTP_MAX_SEGMENTS];
    size_t n;

    assert_int_equal(nmc_http_router_split(raw, strlen(raw), buf, path, segs, &n), 0);
    return nmc_http_router_match(R, method, segs, n, m);
}

static void test_http_router_match_exact_wins_over_param(void **state)
{
    struct nmc_http_route_match m;
    char buf[256], path[256];
    int ud_a, ud_b;

    assert_int_equal(nmc_http_router_add(R, "GET", "/v1/tenants/{id}", h_a, &ud_a), 0);
    assert_int_equal(nmc_http_router_add(R, "GET", "/v1/tenants/me", h_b, &ud_b), 0);
    assert_int_equal(route("GET", "/v1/tenants/me", &m, buf, path), NMC_HTTP_ROUTE_FOUND);
    assert_ptr_equal(m.handler, h_b);
    assert_ptr_equal(m.ud, &ud_b);
    assert_string_equal(m.pattern, "/v1/tenants/me");
    assert_int_equal(m.nparams, 0);
    assert_int_equal(route("GET", "/v1/tenants/t-1", &m, buf, path), NMC_HTTP_ROUTE_FOUND);
    assert_ptr_equal(m.handler, h_a);
    assert_string_equal(m.pattern, "/v1/tenants/{id}");
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.param_names[0], "id");
    assert_string_equal(m.param_values[0], "t-1");
}

/* "/a/me/x" exists only under the parameter: the literal "me" branch is a
 * dead end and matching backs up into "{id}". */
static void test_http_router_match_backtracks_into_param(void **state)
{
    struct nmc_http_route_match m;
    char buf[256], path[256];

    assert_int_equal(nmc_http_router_add(R, "GET", "/a/me", h_a, NULL), 0);
    assert_int_equal(nmc_http_router_add(R, "GET", "/a/{id}/x", h_b, NULL), 0);
    assert_int_equal(route("GET", "/a/me/x", &m, buf, path), NMC_HTTP_ROUTE_FOUND);
    assert_ptr_equal(m.handler, h_b);
    assert_string_equal(m.param_values[0], "me");
}

static void test_http_router_match_params_percent_decoded(void **state)
{
    struct nmc_http_route_match m;
    char buf[256], path[256];

    assert_int_equal(nmc_http_router_add(R, "PUT", "/t/{tenant}/items/{item}", h_a, NULL), 0);
    assert_int_equal(route("PUT", "/t/a%2Fb/items/caf%C3%A9+x", &m, buf, path), NMC_HTTP_ROUTE_FOUND);
    assert_int_equal(m.nparams, 2);
    assert_string_equal(m.param_names[0], "tenant");
    assert_string_equal(m.param_values[0], "a/b");     /* %2F does not split segments */
    assert_string_equal(m.param_names[1], "item");
    assert_string_equal(m.param_values[1], "caf\xc3\xa9+x"); /* '+' is literal in paths */
    assert_string_equal(path, "/t/a/b/items/caf\xc3\xa9+x");
}

static void test_http_router_match_trailing_slash_differs(void **state)
{
    struct nmc_http_route_match m;
    char buf[256], path[256];

    assert_int_equal(nmc_http_router_add(R, "GET", "/healthz", h_a, NULL), 0);
    assert_int_equal(nmc_http_router_add(R, "GET", "/", h_b, NULL), 0);
    assert_int_equal(route("GET", "/healthz", &m, buf, path), NMC_HTTP_ROUTE_FOUND);
    assert_int_equal(route("GET", "/healthz/", &m, buf, path), NMC_HTTP_ROUTE_NOT_FOUND);
    assert_int_equal(route("GET", "//healthz", &m, buf, path), NMC_HTTP_ROUTE_NOT_FOUND);
    assert_int_equal(route("GET", "/", &m, buf, path), NMC_HTTP_ROUTE_FOUND);
    assert_ptr_equal(m.handler, h_b);
}

static void test_http_router_match_param_needs_a_segment(void **state)
{
    struct nmc_http_route_match m;
    char buf[256], path[256];

    assert_int_equal(nmc_http_router_add(R, "GET", "/x/{id}", h_a, NULL), 0);
    assert_int_equal(route("GET", "/x", &m, buf, path), NMC_HTTP_ROUTE_NOT_FOUND);
    assert_int_equal(route("GET", "/x/1/2", &m, buf, path), NMC_HTTP_ROUTE_NOT_FOUND);
    /* an empty segment is still a segment: the handler sees "" */
    assert_int_equal(route("GET", "/x/", &m, buf, path), NMC_HTTP_ROUTE_FOUND);
    assert_string_equal(m.param_values[0], "");
}

static void test_http_router_match_wrong_method_allow_list(void **state)
{
    struct nmc_http_route_match m;
    char buf[256], path[256];

    assert_int_equal(nmc_http_router_add(R, "GET", "/items/{id}", h_a, NULL), 0);
    assert_int_equal(nmc_http_router_add(R, "DELETE", "/items/{id}", h_a, NULL), 0);
    assert_int_equal(nmc_http_router_add(R, "POST", "/items/new", h_b, NULL), 0);
    assert_int_equal(route("PATCH", "/items/7", &m, buf, path), NMC_HTTP_ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "GET, DELETE");
    /* "/items/new" matches both nodes: Allow is the union */
    assert_int_equal(route("PUT", "/items/new", &m, buf, path), NMC_HTTP_ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "POST, GET, DELETE");
    /* GET /items/new falls back to the parameter route */
    assert_int_equal(route("GET", "/items/new", &m, buf, path), NMC_HTTP_ROUTE_FOUND);
    assert_string_equal(m.pattern, "/items/{id}");
    assert_int_equal(route("HEAD", "/items/7", &m, buf, path), NMC_HTTP_ROUTE_BAD_METHOD);
}

static void test_http_router_add_invalid_einval(void **state)
{
    assert_int_equal(nmc_http_router_add(R, "GET", "", h_a, NULL), NMC_EINVAL);
    assert_int_equal(nmc_http_router_add(R, "GET", "x/y", h_a, NULL), NMC_EINVAL);
    assert_int_equal(nmc_http_router_add(R, "GET", "/a/{", h_a, NULL), NMC_EINVAL);
    assert_int_equal(nmc_http_router_add(R, "GET", "/a/{}", h_a, NULL), NMC_EINVAL);
    assert_int_equal(nmc_http_router_add(R, "GET", "/a/x{id}", h_a, NULL), NMC_EINVAL);
    assert_int_equal(nmc_http_router_add(R, "GET", "/a/{i{d}", h_a, NULL), NMC_EINVAL);
    assert_int_equal(nmc_http_router_add(R, "OPTIONS", "/a", h_a, NULL), NMC_EINVAL);
    assert_int_equal(nmc_http_router_add(R, "GET", "/a", NULL, NULL), NMC_EINVAL);
    assert_int_equal(nmc_http_router_add(R, "GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", h_a, NULL), NMC_EINVAL);
    assert_int_equal(nmc_http_router_add(R, "GET", "/p/{id}", h_a, NULL), 0);
    assert_int_equal(nmc_http_router_add(R, "GET", "/p/{id}", h_a, NULL), NMC_EINVAL);   /* duplicate */
    assert_int_equal(nmc_http_router_add(R, "POST", "/p/{key}", h_a, NULL), NMC_EINVAL); /* two names, one place */
    assert_int_equal(nmc_http_router_add(R, "POST", "/p/{id}", h_a, NULL), 0);
}

static void test_http_router_list_registration_order(void **state)
{
    const char **methods, **patterns;

    assert_int_equal(nmc_http_router_add(R, "POST", "/b", h_a, NULL), 0);
    assert_int_equal(nmc_http_router_add(R, "GET", "/a/{x}", h_a, NULL), 0);
    assert_int_equal(nmc_http_router_list(R, &methods, &patterns), 2);
    assert_string_equal(methods[0], "POST");
    assert_string_equal(patterns[0], "/b");
    assert_string_equal(methods[1], "GET");
    assert_string_equal(patterns[1], "/a/{x}");
}

static void test_http_router_split_malformed_eparse(void **state)
{
    const char *segs[NMC_HTTP_MAX_SEGMENTS];
    char buf[128], path[128];
    size_t n;

    assert_int_equal(nmc_http_router_split("x", 1, buf, path, segs, &n), NMC_EPARSE);
    assert_int_equal(nmc_http_router_split("", 0, buf, path, segs, &n), NMC_EPARSE);
    assert_int_equal(nmc_http_router_split("/a%2", 4, buf, path, segs, &n), NMC_EPARSE);
    assert_int_equal(nmc_http_router_split("/a%g0", 5, buf, path, segs, &n), NMC_EPARSE);
    assert_int_equal(nmc_http_router_split("/a%00", 5, buf, path, segs, &n), NMC_EPARSE);
    assert_int_equal(nmc_http_router_split("/a/b/", 5, buf, path, segs, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(segs[0], "a");
    assert_string_equal(segs[1], "b");
    assert_string_equal(segs[2], "");
    assert_string_equal(path, "/a/b/");
}

static void test_http_router_split_too_deep_etoobig(void **state)
{
    const char *segs[NMC_HTTP_MAX_SEGMENTS];
    char raw[256], buf[256], path[256];
    size_t i, n = 0;

    for (i = 0; i < NMC_HTTP_MAX_SEGMENTS + 1; i++)
        n += (size_t)snprintf(raw + n, sizeof(raw) - n, "/s");
    assert_int_equal(nmc_http_router_split(raw, n, buf, path, segs, &i), NMC_ETOOBIG);
    assert_int_equal(nmc_http_router_split(raw, n - 2, buf, path, segs, &i), 0);
    assert_int_equal(i, NMC_HTTP_MAX_SEGMENTS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_router_match_exact_wins_over_param, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_router_match_backtracks_into_param, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_router_match_params_percent_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_router_match_trailing_slash_differs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_router_match_param_needs_a_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_router_match_wrong_method_allow_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_router_add_invalid_einval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_router_list_registration_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_router_split_malformed_eparse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_router_split_too_deep_etoobig, setup, teardown),
    };

    return cmocka_run_group_tests_name("http_router", tests, NULL, NULL);
}
