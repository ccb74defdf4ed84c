/*
 * Unit tests of request parsing (src/core/request.h): the raw form, our
 * JSON form and the original service's, each 4xx with its status and
 * code, the limits a run gets, and the program's environment.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/profile.h"
#include "core/request.h"
#include "script/script.h"

/* ------------------------------------------------------------ helpers */

struct fixture {
    struct profile_set *set;
    struct config cfg;
};

static struct fixture fx;

static int group_setup(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    /* Set before anything is parsed: no request may carry it along. */
    setenv("SECRET_TOKEN", "x", 1);
    if (script_load_languages(BG_SOURCE_DIR "/lua/languages.lua", &fx.set, err) < 0) {
        print_error("languages.lua: %s\n", err);
        return -1;
    }
    config_defaults(&fx.cfg);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    profile_set_unref(fx.set);
    config_free(&fx.cfg);
    return 0;
}

struct parsed {
    int rc;
    struct run_spec spec;
    size_t count;
    const struct profile *profile;
    struct request_error e;
};

static void parse(struct parsed *p, const char *ctype, const char *lang, const char *count,
                  const char *body, size_t len)
{
    struct request_in in = {ctype, lang, count, body, len};
    memset(p, 0, sizeof *p);
    p->rc = request_parse(&in, fx.set, &fx.cfg, &p->spec, &p->count, &p->profile, &p->e);
}

static void parse_json(struct parsed *p, const char *json)
{
    parse(p, "application/json", NULL, NULL, json, strlen(json));
}

/* Expect a failure with this status and code; nothing left to free. */
static void expect_error(const struct parsed *p, int status, const char *code)
{
    if (p->rc != BG_EINVAL || p->e.status != status || !p->e.code || strcmp(p->e.code, code) != 0)
        fail_msg("got rc %d, status %d, code %s (%s); wanted %d %s", p->rc, p->e.status,
                 p->e.code ? p->e.code : "(null)", p->e.message, status, code);
    assert_true(p->e.message[0] != '\0');
    assert_null(p->spec.files);
    assert_null(p->spec.run);
    assert_null(p->spec.env);
}

static void expect_json_error(const char *json, int status, const char *code)
{
    struct parsed p;
    parse_json(&p, json);
    expect_error(&p, status, code);
    run_spec_free(&p.spec);
}

static void expect_ok(const struct parsed *p)
{
    if (p->rc != 0)
        fail_msg("request refused: %d %s: %s", p->e.status, p->e.code ? p->e.code : "?",
                 p->e.message);
}

static void assert_argv(char *const *argv, const char *const *want)
{
    assert_non_null(argv);
    size_t i = 0;
    for (; want[i]; i++) {
        if (!argv[i])
            fail_msg("argv ends at %zu, wanted '%s' there", i, want[i]);
        assert_string_equal(argv[i], want[i]);
    }
    assert_null(argv[i]);
}

/* ---------------------------------------------------------- raw form */

static void test_raw_form(void **state)
{
    (void)state;
    const char *code = "print('hi')\n";
    struct parsed p;
    parse(&p, "text/plain", "python", "3", code, strlen(code));
    expect_ok(&p);
    assert_int_equal(p.count, 3);
    assert_non_null(p.profile);
    assert_string_equal(p.profile->name, "python");
    assert_string_equal(p.spec.language, "python");
    assert_string_equal(p.spec.image, "bg-compiler/python:3.11");
    assert_int_equal(p.spec.nfiles, 1);
    assert_string_equal(p.spec.files[0].name, "main.py");
    assert_int_equal(p.spec.files[0].len, strlen(code));
    assert_memory_equal(p.spec.files[0].data, code, strlen(code));
    const char *const run[] = {"python3", "main.py", NULL};
    assert_argv(p.spec.run, run);
    assert_null(p.spec.compile);
    assert_null(p.spec.stdin_data);
    run_spec_free(&p.spec);
}

static void test_raw_form_alias_and_default_count(void **state)
{
    (void)state;
    struct parsed p;
    parse(&p, NULL, "gcc", NULL, "int main(void){return 0;}", 25);
    expect_ok(&p);
    assert_int_equal(p.count, 1);
    assert_string_equal(p.spec.language, "c");
    assert_non_null(p.spec.compile);
    assert_string_equal(p.spec.compile[0], "gcc");
    assert_string_equal(p.spec.files[0].name, "main.c");
    run_spec_free(&p.spec);
}

static void test_raw_binary_body(void **state)
{
    (void)state;
    /* The raw form carries any bytes, NULs included. */
    static const char body[] = {'a', 0, 'b', (char)0xff};
    struct parsed p;
    parse(&p, NULL, "python", NULL, body, sizeof body);
    expect_ok(&p);
    assert_int_equal(p.spec.files[0].len, sizeof body);
    assert_memory_equal(p.spec.files[0].data, body, sizeof body);
    run_spec_free(&p.spec);
}

static void test_raw_errors(void **state)
{
    (void)state;
    struct parsed p;
    parse(&p, NULL, NULL, NULL, "x", 1);
    expect_error(&p, 400, "missing_field");
    parse(&p, NULL, "", NULL, "x", 1);
    expect_error(&p, 400, "missing_field");
    parse(&p, NULL, "cobol", NULL, "x", 1);
    expect_error(&p, 404, "unknown_language");
    const char *bad_counts[] = {"0", "11", "abc", "", "-1", "3x", "1.0",
                                "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad_counts / sizeof bad_counts[0]; i++) {
        parse(&p, NULL, "python", bad_counts[i], "x", 1);
        if (p.rc != BG_EINVAL || p.e.status != 400)
            fail_msg("count '%s' accepted", bad_counts[i]);
        expect_error(&p, 400, "bad_count");
    }
    parse(&p, NULL, "python", "10", "x", 1); /* the maximum itself */
    expect_ok(&p);
    assert_int_equal(p.count, 10);
    run_spec_free(&p.spec);
    parse(&p, NULL, "python", NULL, "", 0);
    expect_error(&p, 400, "empty_script");
}

/* ------------------------------------------------------ our JSON form */

static void test_json_ours(void **state)
{
    (void)state;
    struct parsed p;
    parse_json(&p, "{\"lang\":\"py\",\"script\":\"print(input())\",\"count\":2,"
                   "\"stdin\":\"hello\\n\"}");
    expect_ok(&p);
    assert_int_equal(p.count, 2);
    assert_string_equal(p.spec.language, "python");
    assert_string_equal(p.spec.files[0].name, "main.py");
    assert_int_equal(p.spec.files[0].len, 14);
    assert_memory_equal(p.spec.files[0].data, "print(input())", 14);
    assert_int_equal(p.spec.stdin_len, 6);
    assert_memory_equal(p.spec.stdin_data, "hello\n", 6);
    const char *const run[] = {"python3", "main.py", NULL};
    assert_argv(p.spec.run, run);
    run_spec_free(&p.spec);
}

static void test_json_content_type_variants(void **state)
{
    (void)state;
    const char *json = "{\"lang\":\"c\",\"script\":\"int main(){}\"}";
    struct parsed p;
    parse(&p, "Application/JSON; charset=utf-8", NULL, NULL, json, strlen(json));
    expect_ok(&p);
    assert_int_equal(p.count, 1);
    assert_string_equal(p.spec.language, "c");
    assert_non_null(p.spec.compile);
    run_spec_free(&p.spec);
}

static void test_json_stdin_aliases(void **state)
{
    (void)state;
    struct parsed p;
    parse_json(&p, "{\"lang\":\"python\",\"script\":\"x\",\"stdIn\":\"abc\"}");
    expect_ok(&p);
    assert_int_equal(p.spec.stdin_len, 3);
    run_spec_free(&p.spec);
    parse_json(&p, "{\"lang\":\"python\",\"script\":\"x\",\"input\":\"abcd\"}");
    expect_ok(&p);
    assert_int_equal(p.spec.stdin_len, 4);
    run_spec_free(&p.spec);
}

/* ------------------------------------------------ the original's form */

static void test_json_original(void **state)
{
    (void)state;
    struct parsed p;
    parse_json(&p, "{\"script\":\"print(1)\",\"image\":\"bg-compiler/python:3.11\","
                   "\"count\":3,\"cmd\":\"python3\"}");
    expect_ok(&p);
    assert_int_equal(p.count, 3);
    assert_string_equal(p.spec.language, "python");
    assert_string_equal(p.spec.files[0].name, "main.py");
    const char *const run[] = {"/bin/sh", "-c", "python3 main.py", NULL};
    assert_argv(p.spec.run, run);
    assert_null(p.spec.compile);
    run_spec_free(&p.spec);
}

static void test_json_original_extension(void **state)
{
    (void)state;
    struct parsed p;
    parse_json(&p, "{\"script\":\"print(1)\",\"image\":\"bg-compiler/python:3.11\","
                   "\"cmd\":\"python3\",\"extension\":\"py3\"}");
    expect_ok(&p);
    assert_string_equal(p.spec.files[0].name, "main.py3");
    const char *const run[] = {"/bin/sh", "-c", "python3 main.py3", NULL};
    assert_argv(p.spec.run, run);
    run_spec_free(&p.spec);

    const char *bad[] = {"../x", "", "a/b", "a.b", "py 3", "x;rm", "abcdefghijklmnopq"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"script\":\"1\",\"image\":\"bg-compiler/python:3.11\",\"extension\":\"%s\"}",
                 bad[i]);
        expect_json_error(json, 400, "bad_extension");
    }
}

static void test_json_original_image_not_allowed(void **state)
{
    (void)state;
    expect_json_error("{\"script\":\"1\",\"image\":\"ubuntu:latest\",\"cmd\":\"sh\"}", 403,
                      "image_not_allowed");
    expect_json_error("{\"script\":\"1\",\"image\":\"bg-compiler/python\"}", 403,
                      "image_not_allowed");
}

/* ------------------------------------------------------- bad requests */

static void test_bad_json(void **state)
{
    (void)state;
    expect_json_error("{\"lang\":\"python\",", 400, "bad_json");      /* truncated */
    expect_json_error("{lang: python}", 400, "bad_json");
    expect_json_error("", 400, "bad_json");
    expect_json_error("null", 400, "bad_json");
    expect_json_error("[\"python\", \"x\"]", 400, "bad_json");
    expect_json_error("42", 400, "bad_json");
    expect_json_error("\"script\"", 400, "bad_json");
    /* A valid object cut short by the length given. */
    const char *json = "{\"lang\":\"python\",\"script\":\"x\"}";
    struct parsed p;
    parse(&p, "application/json", NULL, NULL, json, strlen(json) - 1);
    expect_error(&p, 400, "bad_json");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_json_error("{\"lang\":\"python\",\"script\":\"x\",\"count\":\"3\"}", 400, "bad_count");
    expect_json_error("{\"lang\":\"python\",\"script\":\"x\",\"count\":2.5}", 400, "bad_count");
    expect_json_error("{\"lang\":\"python\",\"script\":\"x\",\"count\":0}", 400, "bad_count");
    expect_json_error("{\"lang\":\"python\",\"script\":\"x\",\"count\":11}", 400, "bad_count");
    expect_json_error("{\"lang\":\"python\",\"script\":\"x\",\"count\":-1}", 400, "bad_count");
    expect_json_error("{\"lang\":\"python\",\"script\":\"x\",\"count\":1e300}", 400, "bad_count");
    expect_json_error("{\"lang\":\"python\",\"script\":\"x\",\"count\":true}", 400, "bad_count");
    expect_json_error("{\"lang\":\"python\",\"script\":5}", 400, "bad_type");
    expect_json_error("{\"lang\":\"python\",\"script\":[\"x\"]}", 400, "bad_type");
    expect_json_error("{\"lang\":7,\"script\":\"x\"}", 400, "bad_type");
    expect_json_error("{\"lang\":\"python\",\"script\":\"x\",\"stdin\":{}}", 400, "bad_type");
}

static void test_unknown_field(void **state)
{
    (void)state;
    expect_json_error("{\"lang\":\"python\",\"script\":\"x\",\"langauge\":\"c\"}", 400,
                      "unknown_field");
    struct parsed p;
    parse_json(&p, "{\"lang\":\"python\",\"script\":\"x\",\"timeout\":99}");
    expect_error(&p, 400, "unknown_field");
    assert_non_null(strstr(p.e.message, "timeout"));
}

static void test_missing_and_empty(void **state)
{
    (void)state;
    expect_json_error("{\"lang\":\"python\"}", 400, "missing_field");
    expect_json_error("{\"script\":\"x\"}", 400, "missing_field");
    expect_json_error("{\"lang\":\"python\",\"script\":\"\"}", 400, "empty_script");
    expect_json_error("{\"lang\":\"cobol\",\"script\":\"x\"}", 404, "unknown_language");
}

static void test_escaped_nul_refused(void **state)
{
    (void)state;
    expect_json_error("{\"lang\":\"python\",\"script\":\"a\\u0000b\"}", 400, "bad_json");
    expect_json_error("{\"lang\":\"python\",\"script\":\"x\",\"stdin\":\"\\u0000\"}", 400,
                      "bad_json");
    /* An escaped backslash then "u0000" is text, not a NUL. */
    struct parsed p;
    parse_json(&p, "{\"lang\":\"python\",\"script\":\"a\\\\u0000b\"}");
    expect_ok(&p);
    assert_int_equal(p.spec.files[0].len, 8);
    assert_memory_equal(p.spec.files[0].data, "a\\u0000b", 8);
    run_spec_free(&p.spec);
}

/* A raw NUL byte inside a JSON string is not JSON (control characters
 * must be escaped); it must not silently cut the script short. */
static void test_raw_nul_in_json_string(void **state)
{
    (void)state;
    static const char json[] = "{\"lang\":\"python\",\"script\":\"print(1)\0import os\"}";
    struct parsed p;
    parse(&p, "application/json", NULL, NULL, json, sizeof json - 1);
    if (p.rc == 0) {
        size_t len = p.spec.files[0].len;
        run_spec_free(&p.spec);
        fail_msg("accepted, with a script of %zu bytes out of 19 sent", len);
    }
    expect_error(&p, 400, "bad_json");
}

static void test_has_escaped_nul(void **state)
{
    (void)state;
#define NUL(s) request_has_escaped_nul(s, strlen(s))
    assert_true(NUL("\"\\u0000\""));
    assert_true(NUL("\\u0000"));
    assert_true(NUL("x\\\\\\u0000"));   /* \\ then \u0000 */
    assert_false(NUL("\\\\u0000"));     /* \\ then u0000 */
    assert_false(NUL("\\\\\\\\u0000")); /* \\\\ then u0000 */
    assert_false(NUL("\\u0001"));
    assert_false(NUL("\\u000"));
    assert_false(NUL("u0000"));
    assert_false(NUL(""));
    /* Only len bytes count. */
    assert_false(request_has_escaped_nul("\\u0000", 5));
#undef NUL
}

/* --------------------------------------------------------- limits */

static void test_limits(void **state)
{
    (void)state;
    const struct profile *py = profile_find(fx.set, "python");
    assert_non_null(py);
    struct run_limits l, c;
    memset(&l, 0, sizeof l);
    memset(&c, 0, sizeof c);
    request_limits(py, &fx.cfg, &l, &c);
    assert_int_equal(l.timeout_ms, 10000); /* the profile's, below the flag's 30 s */
    assert_int_equal(l.memory_mb, 256);
    assert_int_equal(l.output_bytes, 30 * 1024);
    assert_int_equal(l.cpu_shares, 1024);
    assert_true(l.pids > 0 && l.nofile > 0 && l.tmpfs_mb > 0);
    /* No compile_limits: a compile gets what the run gets. */
    assert_int_equal(c.memory_mb, 256);
    assert_true(c.pids > 0 && c.nofile > 0 && c.tmpfs_mb > 0);

    /* A flag lower than the profile wins. */
    struct config low = fx.cfg;
    low.timeout_s = 2;
    low.memory_mb = 100;
    low.output_kb = 1;
    request_limits(py, &low, &l, &c);
    assert_int_equal(l.timeout_ms, 2000);
    assert_int_equal(l.compile_timeout_ms, 2000);
    assert_int_equal(l.memory_mb, 100);
    assert_int_equal(l.output_bytes, 1024);
    assert_int_equal(c.memory_mb, 100);
    assert_int_equal(c.output_bytes, 1024);

    /* A profile can lower but never raise: c compiles for 20 s of 30. */
    const struct profile *cc = profile_find(fx.set, "c");
    assert_non_null(cc);
    request_limits(cc, &fx.cfg, &l, &c);
    assert_int_equal(l.compile_timeout_ms, 20000);
    assert_int_equal(l.timeout_ms, 10000);
    struct config mid = fx.cfg;
    mid.timeout_s = 15;
    request_limits(cc, &mid, &l, &c);
    assert_int_equal(l.compile_timeout_ms, 15000);
    assert_int_equal(l.timeout_ms, 10000);
}

static void test_spec_has_limits(void **state)
{
    (void)state;
    struct parsed p;
    parse(&p, NULL, "python", NULL, "x", 1);
    expect_ok(&p);
    assert_int_equal(p.spec.limits.timeout_ms, 10000);
    assert_int_equal(p.spec.limits.memory_mb, 256);
    run_spec_free(&p.spec);
}

/* ------------------------------------------------------ environment */

static void check_env(char *const *env)
{
    static const char *const allowed[] = {"PATH=", "HOME=", "TMPDIR=", "LANG=", NULL};
    int home = 0;
    assert_non_null(env);
    for (size_t i = 0; env[i]; i++) {
        int ok = 0;
        for (size_t k = 0; allowed[k]; k++)
            ok |= strncmp(env[i], allowed[k], strlen(allowed[k])) == 0;
        if (!ok)
            fail_msg("unexpected variable '%s' in the program's environment", env[i]);
        assert_null(strstr(env[i], "SECRET_TOKEN"));
        home |= strcmp(env[i], "HOME=/work") == 0;
    }
    assert_true(home);
}

static void test_environment(void **state)
{
    (void)state;
    assert_string_equal(getenv("SECRET_TOKEN"), "x");
    struct parsed p;
    parse(&p, NULL, "python", NULL, "x", 1);
    expect_ok(&p);
    check_env(p.spec.env);
    run_spec_free(&p.spec);
    parse_json(&p, "{\"script\":\"x\",\"image\":\"bg-compiler/python:3.11\",\"cmd\":\"env\"}");
    expect_ok(&p);
    check_env(p.spec.env);
    run_spec_free(&p.spec);
}

/* A job from the shared queue: nothing above the ceiling, nothing unset. */
static void test_clamp_limits(void **state)
{
    (void)state;
    struct run_limits ceiling = {.timeout_ms = 5000, .compile_timeout_ms = 9000, .memory_mb = 256,
                                 .output_bytes = 30720, .pids = 128, .nofile = 64,
                                 .tmpfs_mb = 64, .cpu_shares = 1024};
    struct run_limits forged = {.timeout_ms = 600000, .compile_timeout_ms = 0, .memory_mb = 1 << 20,
                                .output_bytes = -1, .pids = 100000, .nofile = 100000,
                                .tmpfs_mb = 100000, .cpu_shares = 262144, .artifact_bytes = 7,
                                .custom_memory = 1};
    request_clamp_limits(&forged, &ceiling);
    assert_int_equal(forged.timeout_ms, 5000);
    assert_int_equal(forged.compile_timeout_ms, 9000);
    assert_int_equal(forged.memory_mb, 256);
    assert_int_equal(forged.output_bytes, 30720);
    assert_int_equal(forged.pids, 128);
    assert_int_equal(forged.nofile, 64);
    assert_int_equal(forged.tmpfs_mb, 64);
    assert_int_equal(forged.cpu_shares, 1024);
    assert_int_equal(forged.artifact_bytes, 7); /* not a container limit */
    /* Lower limits (a request that lowered them) stay. */
    struct run_limits lowered = ceiling;
    lowered.timeout_ms = 100;
    lowered.memory_mb = 32;
    request_clamp_limits(&lowered, &ceiling);
    assert_int_equal(lowered.timeout_ms, 100);
    assert_int_equal(lowered.memory_mb, 32);
    assert_int_equal(lowered.pids, 128);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_form),
        cmocka_unit_test(test_raw_form_alias_and_default_count),
        cmocka_unit_test(test_raw_binary_body),
        cmocka_unit_test(test_raw_errors),
        cmocka_unit_test(test_json_ours),
        cmocka_unit_test(test_json_content_type_variants),
        cmocka_unit_test(test_json_stdin_aliases),
        cmocka_unit_test(test_json_original),
        cmocka_unit_test(test_json_original_extension),
        cmocka_unit_test(test_json_original_image_not_allowed),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_unknown_field),
        cmocka_unit_test(test_missing_and_empty),
        cmocka_unit_test(test_escaped_nul_refused),
        cmocka_unit_test(test_raw_nul_in_json_string),
        cmocka_unit_test(test_has_escaped_nul),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_clamp_limits),
        cmocka_unit_test(test_spec_has_limits),
        cmocka_unit_test(test_environment),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
