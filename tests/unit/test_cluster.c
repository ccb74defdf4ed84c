/*
 * Unit tests of the shared queue's pure parts: the --queue URL
 * (src/cluster/rq.h) and the job header and reply a front door and its
 * workers exchange (src/cluster/front.h). Redis itself is exercised by
 * tests/integration/test_cluster.py against a real redis-server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/front.h"
#include "cluster/rq.h"
#include "common/err.h"

static void test_url_forms(void **state)
{
    (void)state;
    struct rq_url u;
    char err[BG_ERRLEN];
    unsetenv("BG_REDIS_PASSWORD");
    assert_int_equal(rq_parse_url("redis://cache.internal", &u, err), 0);
    assert_string_equal(u.host, "cache.internal");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");
    assert_int_equal(rq_parse_url("redis://10.0.0.5:7000/3", &u, err), 0);
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 3);
    assert_int_equal(rq_parse_url("redis://:pa:ss@h:1/", &u, err), 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "pa:ss"); /* the first colon ends the user */
    assert_int_equal(rq_parse_url("redis://bg:pw@h", &u, err), 0);
    assert_string_equal(u.user, "bg");
    assert_string_equal(u.password, "pw");
}

static void test_password_from_environment(void **state)
{
    (void)state;
    struct rq_url u;
    char err[BG_ERRLEN];
    setenv("BG_REDIS_PASSWORD", "from-env", 1);
    assert_int_equal(rq_parse_url("redis://h", &u, err), 0);
    assert_string_equal(u.password, "from-env");
    /* The URL's own password wins. */
    assert_int_equal(rq_parse_url("redis://:mine@h", &u, err), 0);
    assert_string_equal(u.password, "mine");
    unsetenv("BG_REDIS_PASSWORD");
}

static void test_bad_urls(void **state)
{
    (void)state;
    static const struct {
        const char *url, *says;
    } bad[] = {
        {"http://h:6379", "redis://"},
        {"h:6379", "redis://"},
        {"redis://", "host"},
        {"redis://:6379", "host"},
        {"redis://h:0", "port"},
        {"redis://h:70000", "port"},
        {"redis://h:12ab", "port"},
        {"redis://h:6379/x", "database"},
        {"redis://h:6379/-1", "database"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct rq_url u;
        char err[BG_ERRLEN] = "";
        assert_int_equal(rq_parse_url(bad[i].url, &u, err), BG_EINVAL);
        if (!strstr(err, bad[i].says))
            fail_msg("%s: '%s' does not mention %s", bad[i].url, err, bad[i].says);
    }
}

static void test_header_round_trip(void **state)
{
    (void)state;
    struct front_header h = {.seq = 999999999999999ULL, /* cJSON prints 15 digits exactly */
                             .queued_ms = 1795668631758LL,
                             .deadline_ms = 1795668931758LL};
    snprintf(h.reply, sizeof h.reply, "bg:reply:host:1:2");
    snprintf(h.spec, sizeof h.spec, "bg:spec:host:1:2:7");
    snprintf(h.request_id, sizeof h.request_id, "0123456789abcdef0123456789abcdef");
    char *text = front_header_encode(&h);
    assert_non_null(text);
    struct front_header back;
    assert_int_equal(front_header_decode(text, strlen(text), &back), 0);
    assert_true(back.seq == h.seq);
    assert_true(back.queued_ms == h.queued_ms && back.deadline_ms == h.deadline_ms);
    assert_string_equal(back.reply, h.reply);
    assert_string_equal(back.spec, h.spec);
    assert_string_equal(back.request_id, h.request_id);
    free(text);
}

static void test_header_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "[]",
        "{\"job\":1}",
        /* keys outside our prefix: a header may not name any key */
        "{\"job\":1,\"reply\":\"other\",\"spec\":\"bg:spec:x\",\"queued\":1,\"deadline\":2,"
        "\"request\":\"r\"}",
        "{\"job\":1,\"reply\":\"bg:reply:x\",\"spec\":\"bg:jobs\",\"queued\":1,\"deadline\":2,"
        "\"request\":\"r\"}",
        /* numbers that are not counts */
        "{\"job\":-1,\"reply\":\"bg:reply:x\",\"spec\":\"bg:spec:x\",\"queued\":1,\"deadline\":2,"
        "\"request\":\"r\"}",
        "{\"job\":1.5,\"reply\":\"bg:reply:x\",\"spec\":\"bg:spec:x\",\"queued\":1,\"deadline\":2,"
        "\"request\":\"r\"}",
        "{\"job\":1,\"reply\":\"bg:reply:x\",\"spec\":\"bg:spec:x\",\"queued\":1,\"deadline\":\"2\","
        "\"request\":\"r\"}",
        /* a request id longer than ours */
        "{\"job\":1,\"reply\":\"bg:reply:x\",\"spec\":\"bg:spec:x\",\"queued\":1,\"deadline\":2,"
        "\"request\":\"0123456789abcdef0123456789abcdef0\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct front_header h;
        if (front_header_decode(bad[i], strlen(bad[i]), &h) != BG_EINVAL)
            fail_msg("accepted: %s", bad[i]);
    }
}

static void test_reply_carries_sequence(void **state)
{
    (void)state;
    size_t len = 0;
    char *r = front_reply_encode(42, "{\"status\":\"ok\"}\0x", 17, &len);
    assert_non_null(r);
    assert_int_equal(len, 3 + 17);
    assert_memory_equal(r, "42\n{\"status\":\"ok\"}\0x", len);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_forms),
        cmocka_unit_test(test_password_from_environment),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_header_round_trip),
        cmocka_unit_test(test_header_rejects),
        cmocka_unit_test(test_reply_carries_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
