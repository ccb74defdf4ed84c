/* The plugin host: hooks, ordering, refusal, limits, and hostile plugins
 * that must fail closed, fast, without taking the process down. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "script/plugins.h"

#define FIXTURES BG_SOURCE_DIR "/tests/fixtures/plugins"

static struct store *store;

static int setup(void **state)
{
    (void)state;
    store = store_new();
    /* A hook that escaped its budget would hang: fail the test instead. */
    alarm(60);
    return store ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    store_free(store);
    return 0;
}

static struct plugin_host *load(const char *names, const char *settings, char *err)
{
    struct plugin_options o = {names, FIXTURES, BG_SOURCE_DIR "/plugins", settings};
    struct plugin_host *h = NULL;
    int rc = plugins_load(&o, store, &h, err);
    return rc == 0 ? h : NULL;
}

static const struct plugin_kv headers[] = {{"Authorization", "Bearer s3cret"},
                                           {"X-Refuse", "none"}};

static struct plugin_request request(void)
{
    static const struct plugin_file files[] = {{"main.py", "print(1)", 8}};
    struct plugin_request r = {0};
    r.request_id = "test";
    r.method = "POST";
    r.path = "/compile";
    r.client = "192.0.2.7";
    r.headers = headers;
    r.nheaders = 2;
    r.parsed = 1;
    r.lang = "python";
    r.files = files;
    r.nfiles = 1;
    r.count = 3;
    r.max_count = 10;
    r.timeout_ms = 10000;
    r.memory_mb = 256;
    r.output_kb = 30;
    return r;
}

static void expect_fail_closed(const char *name)
{
    char err[BG_ERRLEN];
    struct plugin_host *h = load(name, NULL, err);
    assert_non_null(h);
    struct plugin_request r = request();
    /* Twice: the broken state is rebuilt and fails closed again. */
    for (int i = 0; i < 2; i++) {
        struct plugin_verdict v;
        assert_int_equal(plugins_on_request(h, &r, &v), 0);
        assert_true(v.failed);
        assert_false(v.refused);
        plugin_verdict_free(&v);
    }
    plugins_unref(h);
}

static void test_endless_loop(void **s) { (void)s; expect_fail_closed("loop"); }
static void test_endless_loop_in_pcall(void **s) { (void)s; expect_fail_closed("loop_pcall"); }
static void test_spin_in_xpcall_handler(void **s) { (void)s; expect_fail_closed("loop_xpcall"); }
static void test_gc_finalizer(void **s) { (void)s; expect_fail_closed("gc"); }
static void test_unbounded_allocation(void **s) { (void)s; expect_fail_closed("alloc"); }
static void test_error(void **s) { (void)s; expect_fail_closed("error"); }
static void test_wrong_return_type(void **s) { (void)s; expect_fail_closed("garbage"); }
static void test_raising_a_limit(void **s) { (void)s; expect_fail_closed("raise"); }
static void test_no_io(void **s) { (void)s; expect_fail_closed("escape"); }

static void test_load_failure_names_file_and_line(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    assert_null(load("badload", NULL, err));
    assert_non_null(strstr(err, "badload.lua:3"));
    assert_null(load("nosuchplugin", NULL, err));
    assert_non_null(strstr(err, "nosuchplugin"));
    assert_null(load("../etc", NULL, err));
}

static void test_order_ctx_limits_headers(void **state)
{
    (void)state;
    char err[BG_ERRLEN];
    struct plugin_host *h = load("first,second", NULL, err);
    assert_non_null(h);
    struct plugin_request r = request();
    struct plugin_verdict v;
    plugins_on_request(h, &r, &v);
    assert_false(v.failed);
    assert_false(v.refused);
    assert_int_equal(v.timeout_ms, 1000); /* lowered by second */
    assert_int_equal(v.count, 3);
    assert_non_null(strstr(v.headers.data, "X-Trail: first,second\n"));
    assert_non_null(strstr(v.ctx_json, "\"trail\":\"first,second\""));
    /* on_result sees the ctx and may annotate and redact. */
    cJSON *results = cJSON_Parse("[{\"stdout\":\"1\\n\",\"stderr\":\"secret\"}]");
    plugins_on_result(h, &r, v.ctx_json, &results);
    char *out = cJSON_PrintUnformatted(results);
    assert_non_null(strstr(out, "\"trail\":\"first,second\""));
    assert_non_null(strstr(out, "\"stderr\":\"[redacted]\""));
    assert_null(strstr(out, "secret"));
    free(out);
    cJSON_Delete(results);
    plugin_verdict_free(&v);
    plugins_unref(h);
}

static void test_first_refusal_wins(void **state)
{
    (void)state;
    char err[BG_ERRLEN];
    static const struct plugin_kv refuse_first[] = {{"X-Refuse", "first"}};
    struct plugin_host *h = load("first,second", NULL, err);
    struct plugin_request r = request();
    r.headers = refuse_first;
    r.nheaders = 1;
    struct plugin_verdict v;
    plugins_on_request(h, &r, &v);
    assert_true(v.refused);
    assert_int_equal(v.status, 418);
    assert_string_equal(v.message, "first says no");
    plugin_verdict_free(&v);
    plugins_unref(h);
}

static void test_observer_failure_is_ignored(void **state)
{
    (void)state;
    char err[BG_ERRLEN];
    struct plugin_host *h = load("observer_error", NULL, err);
    struct plugin_request r = request();
    cJSON *results = cJSON_Parse("[{\"stdout\":\"kept\"}]");
    plugins_on_result(h, &r, NULL, &results);
    char *out = cJSON_PrintUnformatted(results);
    assert_string_equal(out, "[{\"stdout\":\"kept\"}]");
    free(out);
    cJSON_Delete(results);
    plugins_unref(h);
}

static void test_shipped_auth(void **state)
{
    (void)state;
    char err[BG_ERRLEN];
    setenv("BG_API_KEYS", "other, s3cret", 1);
    struct plugin_host *h = load("auth", NULL, err);
    assert_non_null(h);
    struct plugin_request r = request();
    struct plugin_verdict v;
    plugins_on_request(h, &r, &v);
    assert_false(v.refused);
    assert_non_null(strstr(v.ctx_json, "\"key_id\":\"key2\""));
    plugin_verdict_free(&v);
    static const struct plugin_kv wrong[] = {{"authorization", "Bearer s3creT"}};
    r.headers = wrong;
    r.nheaders = 1;
    plugins_on_request(h, &r, &v);
    assert_true(v.refused);
    assert_int_equal(v.status, 401);
    assert_non_null(strstr(v.headers.data, "WWW-Authenticate: Bearer"));
    assert_null(strstr(v.message, "s3cre")); /* the key never shows */
    plugin_verdict_free(&v);
    r.nheaders = 0;
    plugins_on_request(h, &r, &v);
    assert_int_equal(v.status, 401);
    plugin_verdict_free(&v);
    plugins_unref(h);
    unsetenv("BG_API_KEYS");
    assert_null(load("auth", NULL, err)); /* no keys at all: refuse to start */
    assert_non_null(strstr(err, "no API keys"));
}

static void test_shipped_ratelimit_burst_then_refusal(void **state)
{
    (void)state;
    char err[BG_ERRLEN];
    setenv("BG_RATE_LIMIT", "3/3600", 1);
    struct plugin_host *h = load("ratelimit", NULL, err);
    unsetenv("BG_RATE_LIMIT");
    assert_non_null(h);
    struct plugin_request r = request();
    r.client = "198.51.100.9";
    struct plugin_verdict v;
    for (int i = 0; i < 3; i++) {
        plugins_on_request(h, &r, &v);
        assert_false(v.refused);
        plugin_verdict_free(&v);
    }
    plugins_on_request(h, &r, &v);
    assert_true(v.refused);
    assert_int_equal(v.status, 429);
    assert_non_null(strstr(v.headers.data, "Retry-After: "));
    assert_non_null(strstr(v.headers.data, "RateLimit-Remaining: 0\n"));
    plugin_verdict_free(&v);
    /* Another client has its own bucket; a reload keeps the first one's. */
    plugins_unref(h);
    setenv("BG_RATE_LIMIT", "3/3600", 1);
    h = load("ratelimit", NULL, err);
    unsetenv("BG_RATE_LIMIT");
    plugins_on_request(h, &r, &v);
    assert_true(v.refused);
    plugin_verdict_free(&v);
    r.client = "198.51.100.10";
    plugins_on_request(h, &r, &v);
    assert_false(v.refused);
    plugin_verdict_free(&v);
    plugins_unref(h);
}

static void test_shipped_policy(void **state)
{
    (void)state;
    char err[BG_ERRLEN];
    const char *settings = "{\"policy\":{\"tiers\":{\"default\":{\"languages\":[\"c\"],"
                           "\"max_count\":1},\"pro\":{\"languages\":[\"*\"],\"timeout_ms\":500}},"
                           "\"keys\":{\"key1\":\"pro\"}}}";
    struct plugin_host *h = load("policy", settings, err);
    assert_non_null(h);
    struct plugin_request r = request();
    struct plugin_verdict v;
    plugins_on_request(h, &r, &v); /* default tier: python not allowed */
    assert_true(v.refused);
    assert_int_equal(v.status, 403);
    plugin_verdict_free(&v);
    plugins_unref(h);
    /* With auth in front, key1 is "pro": any language, timeout lowered. */
    setenv("BG_API_KEYS", "s3cret", 1);
    struct plugin_options o = {"auth,policy", FIXTURES, BG_SOURCE_DIR "/plugins", settings};
    assert_int_equal(plugins_load(&o, store, &h, err), 0);
    unsetenv("BG_API_KEYS");
    plugins_on_request(h, &r, &v);
    assert_false(v.refused);
    assert_int_equal(v.timeout_ms, 500);
    plugin_verdict_free(&v);
    plugins_unref(h);
}

struct hammer {
    struct plugin_host *h;
    int calls;
};

static void *hammer(void *arg)
{
    struct hammer *x = arg;
    struct plugin_request r = request();
    for (int i = 0; i < x->calls; i++) {
        struct plugin_verdict v;
        plugins_on_request(x->h, &r, &v);
        plugin_verdict_free(&v);
    }
    return NULL;
}

static void test_store_shared_across_threads(void **state)
{
    (void)state;
    char err[BG_ERRLEN];
    struct plugin_host *h = load("counter", NULL, err);
    assert_non_null(h);
    pthread_t t[8];
    struct hammer x = {h, 200};
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, hammer, &x);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    struct store_value v;
    assert_int_equal(store_get(store, "test:count", &v), 1);
    assert_true(v.is_number);
    assert_int_equal((int)v.number, 1600);
    plugins_unref(h);
}

static void test_no_plugins_costs_nothing(void **state)
{
    (void)state;
    char err[BG_ERRLEN];
    struct plugin_host *h = load("", NULL, err);
    assert_non_null(h);
    assert_int_equal(plugins_count(h), 0);
    struct plugin_request r = request();
    struct plugin_verdict v;
    plugins_on_request(h, &r, &v);
    assert_false(v.failed || v.refused);
    assert_int_equal(v.count, 3);
    plugin_verdict_free(&v);
    plugins_unref(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endless_loop),
        cmocka_unit_test(test_endless_loop_in_pcall),
        cmocka_unit_test(test_spin_in_xpcall_handler),
        cmocka_unit_test(test_gc_finalizer),
        cmocka_unit_test(test_unbounded_allocation),
        cmocka_unit_test(test_error),
        cmocka_unit_test(test_wrong_return_type),
        cmocka_unit_test(test_raising_a_limit),
        cmocka_unit_test(test_no_io),
        cmocka_unit_test(test_load_failure_names_file_and_line),
        cmocka_unit_test(test_order_ctx_limits_headers),
        cmocka_unit_test(test_first_refusal_wins),
        cmocka_unit_test(test_observer_failure_is_ignored),
        cmocka_unit_test(test_shipped_auth),
        cmocka_unit_test(test_shipped_ratelimit_burst_then_refusal),
        cmocka_unit_test(test_shipped_policy),
        cmocka_unit_test(test_store_shared_across_threads),
        cmocka_unit_test(test_no_plugins_costs_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
