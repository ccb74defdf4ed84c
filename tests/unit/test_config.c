/*
 * Unit tests of the service's settings (src/core/config.h): the original's
 * defaults, both flag forms, --gvisor and --runtime, and an error naming
 * the flag for every kind of bad input.
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

/* ------------------------------------------------------------ helpers */

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int setup(void **state)
{
    struct config *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    config_defaults(c);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    config_free(*state);
    free(*state);
    return 0;
}

/* Parse argv; expect BG_EINVAL and a message containing each of `needles`. */
static void expect_invalid(struct config *c, int argc, char **argv, const char *n1, const char *n2)
{
    char err[BG_ERRLEN] = "";
    int help = -1;
    assert_int_equal(config_parse_args(c, argc, argv, &help, err), BG_EINVAL);
    if (n1 && !strstr(err, n1))
        fail_msg("error '%s' does not mention '%s'", err, n1);
    if (n2 && !strstr(err, n2))
        fail_msg("error '%s' does not mention '%s'", err, n2);
}

/* ------------------------------------------------------------- tests */

static void test_defaults(void **state)
{
    struct config *c = *state;
    /* The original service's defaults. */
    assert_int_equal(c->backlog, 2000);
    assert_int_equal(c->memory_mb, 512);
    assert_int_equal(c->cpu_shares, 1024);
    assert_int_equal(c->output_kb, 30);
    assert_int_equal(c->timeout_s, 30);
    assert_int_equal(config_workers(c, 0), 4);
    assert_int_equal(c->port, 8080);
    assert_string_equal(c->host, "127.0.0.1");
    /* Ours. */
    assert_int_equal(c->max_count, 10);
    assert_int_equal(c->max_body_kb, 1024);
    assert_int_equal(c->gvisor, 0);
    assert_null(c->runtime);
    assert_null(c->allow_images);
    assert_null(config_runtime(c));
    /* A shared queue: a front door runs no workers unless told to. */
    assert_int_equal(config_set(c, "queue", "redis://127.0.0.1:6379", NULL), 0);
    assert_int_equal(config_workers(c, 0), 0);
    assert_int_equal(config_workers(c, 1), 4);
    assert_int_equal(config_set(c, "workers", "2", NULL), 0);
    assert_int_equal(config_workers(c, 0), 2);
    assert_int_equal(c->claim_after_s, 30);
    assert_int_equal(c->result_ttl_s, 60);
    assert_int_equal(c->queue_timeout_s, 300);
}

static void test_flag_space_value(void **state)
{
    struct config *c = *state;
    char *argv[] = {"--port", "9090", "--workers", "8", "--host", "0.0.0.0", "--memory", "256"};
    char err[BG_ERRLEN] = "";
    int help = -1;
    assert_int_equal(config_parse_args(c, ARGC(argv), argv, &help, err), 0);
    assert_int_equal(help, 0);
    assert_int_equal(c->port, 9090);
    assert_int_equal(c->workers, 8);
    assert_string_equal(c->host, "0.0.0.0");
    assert_int_equal(c->memory_mb, 256);
    assert_int_equal(c->backlog, 2000); /* untouched */
}

static void test_flag_equals_value(void **state)
{
    struct config *c = *state;
    char *argv[] = {"--port=9091", "--timeout=5", "--max-count=3", "--host=::1",
                    "--log-level=debug", "--output=64"};
    char err[BG_ERRLEN] = "";
    int help = -1;
    assert_int_equal(config_parse_args(c, ARGC(argv), argv, &help, err), 0);
    assert_int_equal(c->port, 9091);
    assert_int_equal(c->timeout_s, 5);
    assert_int_equal(c->max_count, 3);
    assert_string_equal(c->host, "::1");
    assert_string_equal(c->log_level, "debug");
    assert_int_equal(c->output_kb, 64);
}

static void test_later_flag_wins(void **state)
{
    struct config *c = *state;
    char *argv[] = {"--workers", "2", "--workers=6"};
    char err[BG_ERRLEN] = "";
    int help;
    assert_int_equal(config_parse_args(c, ARGC(argv), argv, &help, err), 0);
    assert_int_equal(c->workers, 6);
}

static void test_gvisor(void **state)
{
    struct config *c = *state;
    char *argv[] = {"--gvisor", "--port", "1"};
    char err[BG_ERRLEN] = "";
    int help;
    /* A bool takes no value: "--port" after it is the next flag. */
    assert_int_equal(config_parse_args(c, ARGC(argv), argv, &help, err), 0);
    assert_int_equal(c->gvisor, 1);
    assert_int_equal(c->port, 1);
    assert_string_equal(config_runtime(c), "runsc");

    char *off[] = {"--gvisor=false"};
    assert_int_equal(config_parse_args(c, ARGC(off), off, &help, err), 0);
    assert_int_equal(c->gvisor, 0);
    assert_null(config_runtime(c));

    char *bad[] = {"--gvisor=yes"};
    expect_invalid(c, ARGC(bad), bad, "--gvisor", "yes");
}

static void test_runtime_wins(void **state)
{
    struct config *c = *state;
    char *argv[] = {"--runtime", "kata", "--gvisor"};
    char err[BG_ERRLEN] = "";
    int help;
    assert_int_equal(config_parse_args(c, ARGC(argv), argv, &help, err), 0);
    assert_string_equal(config_runtime(c), "kata");

    char *plain[] = {"--runtime=runc"};
    struct config d;
    config_defaults(&d);
    assert_int_equal(config_parse_args(&d, ARGC(plain), plain, &help, err), 0);
    assert_string_equal(config_runtime(&d), "runc");
    config_free(&d);
}

static void test_unknown_flag(void **state)
{
    struct config *c = *state;
    char *a[] = {"--port", "1", "--nope", "3"};
    expect_invalid(c, ARGC(a), a, "--nope", NULL);
    char *b[] = {"--nope=3"};
    expect_invalid(c, ARGC(b), b, "--nope", NULL);
    char *d[] = {"port"};
    expect_invalid(c, ARGC(d), d, "port", NULL);
    char *e[] = {"-p", "1"};
    expect_invalid(c, ARGC(e), e, "-p", NULL);
    char *f[] = {"--"};
    expect_invalid(c, ARGC(f), f, "--", NULL);
    char err[BG_ERRLEN] = "";
    assert_int_equal(config_set(c, "nope", "1", err), BG_EINVAL);
    assert_non_null(strstr(err, "nope"));
}

static void test_missing_value(void **state)
{
    struct config *c = *state;
    char *a[] = {"--port"};
    expect_invalid(c, ARGC(a), a, "--port", NULL);
    char *b[] = {"--workers", "2", "--host"};
    expect_invalid(c, ARGC(b), b, "--host", NULL);
}

static void test_not_a_number(void **state)
{
    struct config *c = *state;
    const char *bad[] = {"abc", "", "12x", "0x10", "1.5", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--workers=%s", bad[i]);
        char *a[] = {arg};
        expect_invalid(c, 1, a, "--workers", NULL);
        assert_int_equal(config_workers(c, 0), 4); /* unchanged */
    }
    char *s[] = {"--timeout", "ten"};
    expect_invalid(c, ARGC(s), s, "--timeout", "ten");
}

static void test_out_of_range(void **state)
{
    struct config *c = *state;
    char *a[] = {"--port", "70000"};
    expect_invalid(c, ARGC(a), a, "--port", "70000");
    char *b[] = {"--workers=0"};
    expect_invalid(c, ARGC(b), b, "--workers", NULL);
    char *d[] = {"--max-count=-1"};
    expect_invalid(c, ARGC(d), d, "--max-count", NULL);
    char *e[] = {"--memory=1"};
    expect_invalid(c, ARGC(e), e, "--memory", NULL);
    char *f[] = {"--timeout=0"};
    expect_invalid(c, ARGC(f), f, "--timeout", NULL);
    assert_int_equal(c->port, 8080);
    assert_int_equal(config_workers(c, 0), 4);
    assert_int_equal(c->max_count, 10);
    assert_int_equal(c->memory_mb, 512);
    assert_int_equal(c->timeout_s, 30);
    /* The edges themselves are fine. */
    char *g[] = {"--port=0", "--max-count=1000", "--timeout=86400"};
    char err[BG_ERRLEN];
    int help;
    assert_int_equal(config_parse_args(c, ARGC(g), g, &help, err), 0);
    assert_int_equal(c->port, 0);
    assert_int_equal(c->max_count, 1000);
    assert_int_equal(c->timeout_s, 86400);
}

static void test_help(void **state)
{
    struct config *c = *state;
    char err[BG_ERRLEN] = "";
    int help = 0;
    char *a[] = {"--port", "1", "--help"};
    assert_int_equal(config_parse_args(c, ARGC(a), a, &help, err), 0);
    assert_int_equal(help, 1);
    help = 0;
    char *b[] = {"-h"};
    assert_int_equal(config_parse_args(c, ARGC(b), b, &help, err), 0);
    assert_int_equal(help, 1);
    help = 1;
    assert_int_equal(config_parse_args(c, 0, NULL, &help, err), 0);
    assert_int_equal(help, 0);
}

static void test_known(void **state)
{
    (void)state;
    int is_bool = -1;
    assert_true(config_known("gvisor", &is_bool));
    assert_int_equal(is_bool, 1);
    assert_true(config_known("max-count", &is_bool));
    assert_int_equal(is_bool, 0);
    assert_false(config_known("max_count", NULL));
    assert_false(config_known("", NULL));
}

static void test_string_flags_replace_and_free(void **state)
{
    struct config *c = *state;
    char err[BG_ERRLEN];
    /* Each replaces the old copy; config_free (teardown) frees the last. */
    assert_int_equal(config_set(c, "host", "a", err), 0);
    assert_int_equal(config_set(c, "host", "b", err), 0);
    assert_int_equal(config_set(c, "languages", "/x.lua", err), 0);
    assert_int_equal(config_set(c, "docker-host", "unix:///d.sock", err), 0);
    assert_string_equal(c->host, "b");
    assert_string_equal(c->docker_host, "unix:///d.sock");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flag_space_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flag_equals_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_later_flag_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gvisor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runtime_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_flags_replace_and_free, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
