/*
 * Unit tests of the Lua boundary (src/script/script.h): the shipped
 * languages.lua loads; every kind of broken profile file fails with an
 * error naming file, line, language and key; the sandbox keeps files from
 * hanging, reading files or loading bytecode; settings files set flags.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "core/profile.h"
#include "script/script.h"

/* ------------------------------------------------------------ helpers */

static char tmpdir[] = "/tmp/bg-test-script-XXXXXX";

static int group_setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return rmdir(tmpdir);
}

/* Write len bytes to a new file in tmpdir; path receives its name. */
static void write_file_n(char path[256], const char *text, size_t len)
{
    snprintf(path, 256, "%s/lua-XXXXXX", tmpdir);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static void write_file(char path[256], const char *text)
{
    write_file_n(path, text, strlen(text));
}

/* Load text as a languages file; the error text when it fails. */
static int load_text(const char *text, struct profile_set **set, char err[BG_ERRLEN], char path[256])
{
    write_file(path, text);
    err[0] = '\0';
    *set = NULL;
    int rc = script_load_languages(path, set, err);
    unlink(path);
    return rc;
}

/* The file must fail with BG_ESCRIPT and an error holding every needle. */
static void expect_fail(const char *text, const char *const *needles)
{
    char path[256], err[BG_ERRLEN];
    struct profile_set *set;
    int rc = load_text(text, &set, err, path);
    if (rc != BG_ESCRIPT)
        fail_msg("loading gave %d, wanted BG_ESCRIPT, for:\n%s", rc, text);
    assert_null(set);
    for (size_t i = 0; needles && needles[i]; i++)
        if (!strstr(err, needles[i]))
            fail_msg("error '%s' does not mention '%s'", err, needles[i]);
}

static void expect_fail1(const char *text, const char *needle)
{
    const char *const n[] = {needle, NULL};
    expect_fail(text, n);
}

/*
 * Load in a child process under alarm(), so a file that escapes the
 * budget fails this test instead of hanging the whole run. The load must
 * fail with BG_ESCRIPT and (unless needle is NULL) an error holding needle.
 */
static void expect_fail_in_child(const char *text, const char *needle)
{
    char path[256];
    int pipefd[2];
    write_file(path, text);
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[BG_ERRLEN] = "";
        struct profile_set *set = NULL;
        close(pipefd[0]);
        alarm(5);
        int rc = script_load_languages(path, &set, err);
        profile_set_unref(set);
        if (write(pipefd[1], err, strlen(err)) < 0)
            _exit(3);
        _exit(rc == BG_ESCRIPT ? 0 : 2);
    }
    close(pipefd[1]);
    char err[BG_ERRLEN] = "";
    ssize_t got = 0, n;
    while ((n = read(pipefd[0], err + got, sizeof err - 1 - (size_t)got)) > 0)
        got += n;
    close(pipefd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    unlink(path);
    if (WIFSIGNALED(status))
        fail_msg("the load did not end within 5 s (signal %d): the budget was escaped",
                 WTERMSIG(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    if (needle && !strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

/* A complete profile body, to which a test adds one line. */
#define OK_BODY "  image = \"img:1\", file = \"main.x\", run = {\"x\"},\n"

/* ------------------------------------------------- the shipped file */

static void test_shipped_languages(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    struct profile_set *set = NULL;
    int rc = script_load_languages(BG_SOURCE_DIR "/lua/languages.lua", &set, err);
    if (rc != 0)
        fail_msg("shipped languages.lua: %s", err);
    assert_non_null(set);
    const struct profile *py = profile_find(set, "python");
    const struct profile *c = profile_find(set, "c");
    assert_non_null(py);
    assert_non_null(c);
    assert_ptr_equal(profile_find(set, "py"), py);
    assert_ptr_equal(profile_find(set, "python3"), py);
    assert_null(profile_find(set, "cobol"));
    assert_null(py->compile);
    assert_non_null(py->run);
    assert_string_equal(py->run[0], "python3");
    assert_string_equal(py->file, "main.py");
    assert_string_equal(py->image, "bg-compiler/python:3.11");
    assert_int_equal(py->limits.timeout_ms, 10000);
    assert_int_equal(py->limits.memory_mb, 256);
    assert_non_null(py->test_code);
    assert_string_equal(py->test_stdout, "OK\n");
    assert_non_null(c->compile);
    assert_string_equal(c->compile[0], "gcc");
    assert_string_equal(c->file, "main.c");
    assert_int_equal(c->compile_limits.timeout_ms, 20000);
    /* Where each was declared, for error messages. */
    assert_non_null(py->source);
    assert_non_null(strstr(py->source, "languages.lua:"));
    profile_set_unref(set);
}

static void test_small_valid_file(void **state)
{
    (void)state;
    char path[256], err[BG_ERRLEN];
    struct profile_set *set;
    int rc = load_text("language \"x\" {\n" OK_BODY
                       "  aliases = {\"ex\"}, env = {FOO = \"bar\"},\n"
                       "  limits = {pids = 10, nofile = 20},\n"
                       "}\n"
                       "local helper = \"y\"\n"
                       "language (helper) { image = \"img:2\", file = \"f\", run = {\"y\", \"-v\"} }\n",
                       &set, err, path);
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(set->n, 2);
    const struct profile *x = profile_find(set, "ex");
    assert_non_null(x);
    assert_string_equal(x->name, "x");
    assert_string_equal(x->env[0], "FOO=bar");
    assert_null(x->env[1]);
    assert_int_equal(x->limits.pids, 10);
    assert_int_equal(x->limits.nofile, 20);
    const struct profile *y = profile_find(set, "y");
    assert_non_null(y);
    assert_string_equal(y->run[1], "-v");
    assert_null(y->run[2]);
    profile_set_unref(set);
}

/* ------------------------------------------------- broken profiles */

static void test_unknown_key(void **state)
{
    (void)state;
    char path[256], err[BG_ERRLEN];
    struct profile_set *set;
    int rc = load_text("-- line 1\n"
                       "-- line 2\n"
                       "language \"pyx\" {\n" OK_BODY
                       "  colour = \"blue\",\n"
                       "}\n",
                       &set, err, path);
    assert_int_equal(rc, BG_ESCRIPT);
    assert_null(set);
    /* File, line, language and key, all in the one message. */
    char where[300];
    snprintf(where, sizeof where, "%s:3:", path);
    if (!strstr(err, where) || !strstr(err, "pyx") || !strstr(err, "colour"))
        fail_msg("error '%s' should name %s, 'pyx' and 'colour'", err, where);
}

static void test_wrong_type(void **state)
{
    (void)state;
    const char *const file_num[] = {"'x'", "file", NULL};
    expect_fail("language \"x\" { image = \"i\", file = 5, run = {\"x\"} }\n", file_num);
    const char *const run_str[] = {"'x'", "run", NULL};
    expect_fail("language \"x\" { image = \"i\", file = \"f\", run = \"x\" }\n", run_str);
    const char *const run_mixed[] = {"run", NULL};
    expect_fail("language \"x\" { image = \"i\", file = \"f\", run = {\"x\", 5} }\n", run_mixed);
    expect_fail("language \"x\" { image = \"i\", file = \"f\", run = {} }\n", run_mixed);
    const char *const img[] = {"image", NULL};
    expect_fail("language \"x\" { image = \"\", file = \"f\", run = {\"x\"} }\n", img);
    const char *const lim[] = {"timeout_ms", NULL};
    expect_fail("language \"x\" {\n" OK_BODY " limits = {timeout_ms = \"10\"} }\n", lim);
    expect_fail("language \"x\" {\n" OK_BODY " limits = {timeout_ms = -1} }\n", lim);
    expect_fail("language \"x\" {\n" OK_BODY " limits = {timeout_ms = 1.5} }\n", lim);
    const char *const lim2[] = {"'x'", "walltime", NULL};
    expect_fail("language \"x\" {\n" OK_BODY " limits = {walltime = 1} }\n", lim2);
    const char *const env[] = {"env", NULL};
    expect_fail("language \"x\" {\n" OK_BODY " env = {\"A=B\"} }\n", env);
    const char *const test[] = {"test", NULL};
    expect_fail("language \"x\" {\n" OK_BODY " test = {code = \"c\"} }\n", test);
    const char *const body[] = {"'x'", NULL};
    expect_fail("language \"x\" \"not a table\"\n", body);
}

static void test_missing_required(void **state)
{
    (void)state;
    const char *const image[] = {"'x'", "image", NULL};
    expect_fail("language \"x\" { file = \"f\", run = {\"x\"} }\n", image);
    const char *const file[] = {"'x'", "file", NULL};
    expect_fail("language \"x\" { image = \"i\", run = {\"x\"} }\n", file);
    const char *const run[] = {"'x'", "run", NULL};
    expect_fail("language \"x\" { image = \"i\", file = \"f\" }\n", run);
}

static void test_duplicate_name(void **state)
{
    (void)state;
    const char *const n[] = {"'dup'", "taken", NULL};
    expect_fail("language \"dup\" {\n" OK_BODY "}\n"
                "language \"dup\" {\n" OK_BODY "}\n",
                n);
    /* A name that is an earlier language's alias clashes too. */
    const char *const a[] = {"'ex'", "taken", NULL};
    expect_fail("language \"x\" {\n" OK_BODY " aliases = {\"ex\"} }\n"
                "language \"ex\" {\n" OK_BODY "}\n",
                a);
}

static void test_duplicate_alias(void **state)
{
    (void)state;
    const char *const n[] = {"'b'", "alias 'same'", "taken", NULL};
    expect_fail("language \"a\" {\n" OK_BODY " aliases = {\"same\"} }\n"
                "language \"b\" {\n" OK_BODY " aliases = {\"same\"} }\n",
                n);
    /* An alias that is an earlier language's name. */
    const char *const m[] = {"'b'", "alias 'a'", NULL};
    expect_fail("language \"a\" {\n" OK_BODY "}\n"
                "language \"b\" {\n" OK_BODY " aliases = {\"a\"} }\n",
                m);
    const char *const bad[] = {"'b'", "Bad Alias", NULL};
    expect_fail("language \"b\" {\n" OK_BODY " aliases = {\"Bad Alias\"} }\n", bad);
}

static void test_bad_name(void **state)
{
    (void)state;
    expect_fail1("language \"Py!\" {\n" OK_BODY "}\n", "Py!");
    expect_fail1("language \"\" {\n" OK_BODY "}\n", "''");
    expect_fail1("language \"a/b\" {\n" OK_BODY "}\n", "a/b");
}

static void test_syntax_error(void **state)
{
    (void)state;
    char path[256], err[BG_ERRLEN];
    struct profile_set *set;
    int rc = load_text("language \"x\" {\n" OK_BODY "\n\n", &set, err, path);
    assert_int_equal(rc, BG_ESCRIPT);
    assert_null(set);
    if (!strstr(err, path))
        fail_msg("error '%s' does not name the file", err);
}

static void test_endless_loop(void **state)
{
    (void)state;
    expect_fail_in_child("while true do end\n", "budget");
}

/*
 * The budget must hold even against pcall: a file must not be able to
 * catch the budget error and keep going. (Whether it fails on the budget
 * or because pcall is not there is the sandbox's choice: it must fail.)
 */
static void test_endless_loop_under_pcall(void **state)
{
    (void)state;
    expect_fail_in_child("while true do pcall(function() while true do end end) end\n", NULL);
    /* A message handler that loops too, to catch the error again. */
    expect_fail_in_child("local function spin() while true do end end\n"
                         "while true do xpcall(spin, spin) end\n",
                         NULL);
}

/* Lua runs finalizers with hooks off, so the budget cannot stop a __gc
 * that loops (here at lua_close): the file must fail, and in time. */
static void test_endless_finalizer(void **state)
{
    (void)state;
    expect_fail_in_child("setmetatable({}, {__gc = function() while true do end end})\n"
                         "language \"x\" {\n" OK_BODY "}\n"
                         "error(\"stop here\")\n",
                         NULL);
}

static void test_memory_cap(void **state)
{
    (void)state;
    expect_fail_in_child("local s = string.rep(\"x\", 200 * 1024 * 1024)\n", "memory");
}

static void test_undefined_global(void **state)
{
    (void)state;
    const char *const n[] = {"IMAGE", NULL};
    expect_fail("language \"x\" { image = IMAGE, file = \"f\", run = {\"x\"} }\n", n);
    const char *const m[] = {"undefined", "nosuch", NULL};
    expect_fail("local v = nosuch\n", m);
}

static void test_no_dangerous_functions(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"local f = io.open(\"/etc/passwd\")\n", "io"},
        {"os.execute(\"true\")\n", "os"},
        {"local m = require(\"os\")\n", "require"},
        {"local f = load(\"return 1\")\n", "load"},
        {"dofile(\"/etc/passwd\")\n", "dofile"},
        {"local f = loadfile(\"/etc/passwd\")\n", "loadfile"},
        {"local p = package.path\n", "package"},
        {"local d = debug.getinfo(1)\n", "debug"},
        {"collectgarbage()\n", "collectgarbage"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const n[] = {cases[i][1], NULL};
        expect_fail(cases[i][0], n);
    }
}

static void test_bytecode_refused(void **state)
{
    (void)state;
    char path[256], err[BG_ERRLEN] = "";
    static const char chunk[] = "\x1bLua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08";
    write_file_n(path, chunk, sizeof chunk - 1);
    struct profile_set *set = NULL;
    int rc = script_load_languages(path, &set, err);
    unlink(path);
    assert_int_equal(rc, BG_ESCRIPT);
    assert_null(set);
    if (!strstr(err, "binary"))
        fail_msg("error '%s' does not say a binary chunk was refused", err);
}

static void test_no_language_defined(void **state)
{
    (void)state;
    expect_fail1("local x = 1\n", "no language");
    expect_fail1("", "no language");
}

static void test_missing_file(void **state)
{
    (void)state;
    char err[BG_ERRLEN] = "";
    struct profile_set *set = NULL;
    assert_int_equal(script_load_languages("/nonexistent/languages.lua", &set, err), BG_ESCRIPT);
    assert_null(set);
    assert_non_null(strstr(err, "/nonexistent/languages.lua"));
}

/* ----------------------------------------------------- settings files */

static int load_config_text(const char *text, struct config *cfg, char err[BG_ERRLEN])
{
    char path[256];
    write_file(path, text);
    err[0] = '\0';
    int rc = script_load_config(path, cfg, err);
    unlink(path);
    return rc;
}

static void test_config_sets(void **state)
{
    (void)state;
    struct config cfg;
    char err[BG_ERRLEN];
    config_defaults(&cfg);
    int rc = load_config_text("workers = 8 max_count = 3 allow_images = {\"a:1\"}\n"
                              "gvisor = true\nhost = \"0.0.0.0\"\n"
                              "local scratch = 5\n",
                              &cfg, err);
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(cfg.workers, 8);
    assert_int_equal(cfg.max_count, 3);
    assert_int_equal(cfg.gvisor, 1);
    assert_string_equal(cfg.host, "0.0.0.0");
    assert_non_null(cfg.allow_images);
    assert_string_equal(cfg.allow_images[0], "a:1");
    assert_null(cfg.allow_images[1]);
    assert_int_equal(cfg.port, 8080); /* untouched */
    config_free(&cfg);
}

static void expect_config_fail(const char *text, int want_rc, const char *needle)
{
    struct config cfg;
    char err[BG_ERRLEN];
    config_defaults(&cfg);
    int rc = load_config_text(text, &cfg, err);
    config_free(&cfg);
    if (rc != want_rc)
        fail_msg("settings file gave %d, wanted %d, for:\n%s", rc, want_rc, text);
    if (needle && !strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_config_fail("wokers = 8\n", BG_EINVAL, "wokers");
    expect_config_fail("workers = {}\n", BG_EINVAL, "workers");
    expect_config_fail("workers = 1.5\n", BG_EINVAL, "workers");
    expect_config_fail("workers = 0\n", BG_EINVAL, "workers");
    expect_config_fail("gvisor = \"maybe\"\n", BG_EINVAL, "gvisor");
    expect_config_fail("allow_images = \"a:1\"\n", BG_EINVAL, "allow_images");
    expect_config_fail("allow_images = {\"a:1\", 5}\n", BG_EINVAL, "allow_images");
    expect_config_fail("function helper() end\n", BG_EINVAL, "helper");
    expect_config_fail("workers = \n", BG_ESCRIPT, NULL);
    expect_config_fail("local x = io.open(\"/etc/passwd\")\n", BG_ESCRIPT, "io");
    expect_config_fail("while true do end\n", BG_ESCRIPT, "budget");
}

static void test_config_error_names_file(void **state)
{
    (void)state;
    struct config cfg;
    char path[256], err[BG_ERRLEN] = "";
    config_defaults(&cfg);
    write_file(path, "unknown_thing = 1\n");
    assert_int_equal(script_load_config(path, &cfg, err), BG_EINVAL);
    unlink(path);
    config_free(&cfg);
    if (!strstr(err, path) || !strstr(err, "unknown_thing"))
        fail_msg("error '%s' should name %s and the setting", err, path);
}

/* Settings files run in the same sandbox: a typo read as a global fails
 * instead of silently leaving the setting at its default. */
static void test_config_undefined_global(void **state)
{
    (void)state;
    expect_config_fail("max_count = MAX_COUNT\n", BG_ESCRIPT, "MAX_COUNT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_languages),
        cmocka_unit_test(test_small_valid_file),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_duplicate_name),
        cmocka_unit_test(test_duplicate_alias),
        cmocka_unit_test(test_bad_name),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_endless_loop),
        cmocka_unit_test(test_endless_loop_under_pcall),
        cmocka_unit_test(test_endless_finalizer),
        cmocka_unit_test(test_memory_cap),
        cmocka_unit_test(test_undefined_global),
        cmocka_unit_test(test_no_dangerous_functions),
        cmocka_unit_test(test_bytecode_refused),
        cmocka_unit_test(test_no_language_defined),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_config_sets),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_error_names_file),
        cmocka_unit_test(test_config_undefined_global),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
