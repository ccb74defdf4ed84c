/*
 * Unit tests of the frame codec (src/proto): header layout, decoding in any
 * split, rejection of malformed streams, and proto_kv_int.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

/* ------------------------------------------------------------ helpers */

#define MAX_FRAMES 16

struct seen {
    int count;
    uint8_t type[MAX_FRAMES];
    uint32_t len[MAX_FRAMES];
    uint8_t *payload[MAX_FRAMES];
    int fail_at; /* return non-zero for this frame index; -1 never */
};

static int collect(void *arg, uint8_t type, const uint8_t *payload, uint32_t len)
{
    struct seen *s = arg;
    assert_true(s->count < MAX_FRAMES);
    s->type[s->count] = type;
    s->len[s->count] = len;
    s->payload[s->count] = malloc(len ? len : 1);
    assert_non_null(s->payload[s->count]);
    if (len)
        memcpy(s->payload[s->count], payload, len);
    return s->count++ == s->fail_at;
}

static void seen_init(struct seen *s)
{
    memset(s, 0, sizeof(*s));
    s->fail_at = -1;
}

static void seen_free(struct seen *s)
{
    for (int i = 0; i < s->count; i++)
        free(s->payload[i]);
    seen_init(s);
}

/* Append one frame to buf at *off. */
static void put_frame(uint8_t *buf, size_t *off, uint8_t type, const void *payload, uint32_t len)
{
    proto_put_header(buf + *off, type, len);
    if (len)
        memcpy(buf + *off + PROTO_HEADER_SIZE, payload, len);
    *off += PROTO_HEADER_SIZE + len;
}

/* A stream of mixed frames, including empty ones and binary content. */
static size_t sample_stream(uint8_t *buf)
{
    static const uint8_t bin[] = {0, 1, 2, 0xff, 0, '\n', 'Z'};
    size_t off = 0;
    put_frame(buf, &off, PROTO_LIMITS, "timeout_ms=1\n", 13);
    put_frame(buf, &off, PROTO_FILE, bin, sizeof(bin));
    put_frame(buf, &off, PROTO_STDIN, NULL, 0);
    put_frame(buf, &off, PROTO_RUN, "sh\0-c\0", 6);
    put_frame(buf, &off, PROTO_END, NULL, 0);
    return off;
}

static void check_sample(const struct seen *s)
{
    assert_int_equal(s->count, 5);
    assert_int_equal(s->type[0], PROTO_LIMITS);
    assert_int_equal(s->len[0], 13);
    assert_memory_equal(s->payload[0], "timeout_ms=1\n", 13);
    assert_int_equal(s->type[1], PROTO_FILE);
    assert_int_equal(s->len[1], 7);
    assert_int_equal(s->payload[1][3], 0xff);
    assert_int_equal(s->type[2], PROTO_STDIN);
    assert_int_equal(s->len[2], 0);
    assert_int_equal(s->type[3], PROTO_RUN);
    assert_memory_equal(s->payload[3], "sh\0-c\0", 6);
    assert_int_equal(s->type[4], PROTO_END);
    assert_int_equal(s->len[4], 0);
}

/* -------------------------------------------------------------- header */

static void test_header_layout(void **state)
{
    (void)state;
    uint8_t h[PROTO_HEADER_SIZE];
    proto_put_header(h, PROTO_OUT, 0x01020304u);
    uint8_t want[] = {'O', 1, 2, 3, 4};
    assert_memory_equal(h, want, sizeof(want));
    proto_put_header(h, PROTO_DONE, 0);
    uint8_t zero[] = {'D', 0, 0, 0, 0};
    assert_memory_equal(h, zero, sizeof(zero));
}

static void test_type_valid(void **state)
{
    (void)state;
    const char *valid = "LFGVCRIZSOEXAPD";
    for (int t = 0; t < 256; t++)
        assert_int_equal(proto_type_valid((uint8_t)t), t != 0 && strchr(valid, t) != NULL);
}

/* ------------------------------------------------------------ decoding */

static void test_round_trip(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = sample_stream(buf);
    struct seen s;
    seen_init(&s);
    struct proto_decoder d;
    proto_decoder_init(&d, 1024, collect, &s);
    assert_true(proto_decoder_idle(&d));
    assert_int_equal(proto_decoder_feed(&d, buf, n), 0);
    assert_true(proto_decoder_idle(&d));
    check_sample(&s);
    seen_free(&s);
    proto_decoder_free(&d);
}

static void test_split_at_every_offset(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = sample_stream(buf);
    for (size_t cut = 0; cut <= n; cut++) {
        struct seen s;
        seen_init(&s);
        struct proto_decoder d;
        proto_decoder_init(&d, 1024, collect, &s);
        assert_int_equal(proto_decoder_feed(&d, buf, cut), 0);
        assert_int_equal(proto_decoder_feed(&d, buf + cut, n - cut), 0);
        assert_true(proto_decoder_idle(&d));
        check_sample(&s);
        seen_free(&s);
        proto_decoder_free(&d);
    }
}

static void test_byte_by_byte(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = sample_stream(buf);
    struct seen s;
    seen_init(&s);
    struct proto_decoder d;
    proto_decoder_init(&d, 1024, collect, &s);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(proto_decoder_feed(&d, buf + i, 1), 0);
        /* Idle exactly at frame boundaries. */
        int boundary = i + 1 == n || i + 1 == 18 || i + 1 == 30 || i + 1 == 35 || i + 1 == 46;
        assert_int_equal(proto_decoder_idle(&d), boundary);
    }
    check_sample(&s);
    seen_free(&s);
    proto_decoder_free(&d);
}

static void test_large_payload_in_chunks(void **state)
{
    (void)state;
    const uint32_t len = 1u << 20;
    uint8_t *buf = malloc(PROTO_HEADER_SIZE + len);
    assert_non_null(buf);
    for (uint32_t i = 0; i < len; i++)
        buf[PROTO_HEADER_SIZE + i] = (uint8_t)(i * 7);
    proto_put_header(buf, PROTO_STDIN, len);
    struct seen s;
    seen_init(&s);
    struct proto_decoder d;
    proto_decoder_init(&d, PROTO_MAX_PAYLOAD, collect, &s);
    size_t off = 0, step = 1;
    while (off < PROTO_HEADER_SIZE + len) {
        size_t n = step < PROTO_HEADER_SIZE + len - off ? step : PROTO_HEADER_SIZE + len - off;
        assert_int_equal(proto_decoder_feed(&d, buf + off, n), 0);
        off += n;
        step = step * 3 + 1;
    }
    assert_int_equal(s.count, 1);
    assert_int_equal(s.len[0], len);
    assert_memory_equal(s.payload[0], buf + PROTO_HEADER_SIZE, len);
    seen_free(&s);
    proto_decoder_free(&d);
    free(buf);
}

static void test_empty_feed(void **state)
{
    (void)state;
    struct seen s;
    seen_init(&s);
    struct proto_decoder d;
    proto_decoder_init(&d, 16, collect, &s);
    assert_int_equal(proto_decoder_feed(&d, NULL, 0), 0);
    assert_int_equal(s.count, 0);
    assert_true(proto_decoder_idle(&d));
    proto_decoder_free(&d);
}

/* ---------------------------------------------------------- rejection */

static void test_oversized_payload_rejected(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t off = 0;
    struct seen s;
    seen_init(&s);
    struct proto_decoder d;
    proto_decoder_init(&d, 10, collect, &s);
    put_frame(buf, &off, PROTO_STDIN, "0123456789", 10); /* exactly the maximum */
    assert_int_equal(proto_decoder_feed(&d, buf, off), 0);
    assert_int_equal(s.count, 1);
    uint8_t h[PROTO_HEADER_SIZE];
    proto_put_header(h, PROTO_STDIN, 11);
    assert_int_equal(proto_decoder_feed(&d, h, sizeof(h)), -1);
    /* Refused for good, even valid input. */
    assert_int_equal(proto_decoder_feed(&d, buf, off), -1);
    assert_int_equal(s.count, 1);
    seen_free(&s);
    proto_decoder_free(&d);
}

static void test_oversized_rejected_from_header_alone(void **state)
{
    (void)state;
    struct proto_decoder d;
    struct seen s;
    seen_init(&s);
    proto_decoder_init(&d, PROTO_MAX_PAYLOAD, collect, &s);
    uint8_t h[PROTO_HEADER_SIZE];
    proto_put_header(h, PROTO_FILE, 0xffffffffu);
    assert_int_equal(proto_decoder_feed(&d, h, 3), 0);
    assert_int_equal(proto_decoder_feed(&d, h + 3, 2), -1);
    assert_int_equal(s.count, 0);
    proto_decoder_free(&d);
}

static void test_announced_length_not_allocated_upfront(void **state)
{
    (void)state;
    struct proto_decoder d;
    struct seen s;
    seen_init(&s);
    proto_decoder_init(&d, PROTO_MAX_PAYLOAD, collect, &s);
    uint8_t buf[PROTO_HEADER_SIZE + 10] = {0};
    proto_put_header(buf, PROTO_FILE, PROTO_MAX_PAYLOAD);
    assert_int_equal(proto_decoder_feed(&d, buf, sizeof(buf)), 0);
    assert_false(proto_decoder_idle(&d));
    assert_true(d.payload_cap < 1024 * 1024);
    proto_decoder_free(&d);
}

static void test_unknown_type_rejected(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t off = 0;
    put_frame(buf, &off, PROTO_END, NULL, 0);
    put_frame(buf, &off, 'q', "x", 1);
    put_frame(buf, &off, PROTO_END, NULL, 0);
    struct seen s;
    seen_init(&s);
    struct proto_decoder d;
    proto_decoder_init(&d, 16, collect, &s);
    assert_int_equal(proto_decoder_feed(&d, buf, off), -1);
    assert_int_equal(s.count, 1); /* the frame before the bad one was delivered */
    assert_int_equal(proto_decoder_feed(&d, buf, 5), -1);
    seen_free(&s);
    proto_decoder_free(&d);
}

static void test_callback_error_stops_decoder(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = sample_stream(buf);
    struct seen s;
    seen_init(&s);
    s.fail_at = 1;
    struct proto_decoder d;
    proto_decoder_init(&d, 1024, collect, &s);
    assert_int_equal(proto_decoder_feed(&d, buf, n), -1);
    assert_int_equal(s.count, 2);
    assert_int_equal(proto_decoder_feed(&d, buf, n), -1);
    assert_int_equal(s.count, 2);
    seen_free(&s);
    proto_decoder_free(&d);
}

static void test_free_is_idempotent(void **state)
{
    (void)state;
    struct proto_decoder d;
    proto_decoder_init(&d, 16, collect, NULL);
    proto_decoder_free(&d);
    proto_decoder_free(&d);
    proto_decoder_free(NULL);
}

/* ---------------------------------------------------------- proto_kv_int */

static int kv(const char *text, const char *key, int64_t *out)
{
    return proto_kv_int((const uint8_t *)text, (uint32_t)strlen(text), key, out);
}

static void test_kv_found(void **state)
{
    (void)state;
    const char *t = "compile_timeout_ms=7\ntimeout_ms=5\noutput_bytes=30000\n";
    int64_t v = 0;
    assert_int_equal(kv(t, "timeout_ms", &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(kv(t, "compile_timeout_ms", &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(kv(t, "output_bytes", &v), 0);
    assert_int_equal(v, 30000);
}

static void test_kv_whole_key_only(void **state)
{
    (void)state;
    int64_t v = 42;
    /* Neither a prefix nor a suffix of a longer key matches. */
    assert_int_equal(kv("compile_timeout_ms=7\n", "timeout_ms", &v), -1);
    assert_int_equal(kv("timeout_ms=7\n", "timeout", &v), -1);
    assert_int_equal(kv("timeout_ms=7\n", "timeout_ms=", &v), -1);
    assert_int_equal(kv("timeout_ms=7\n", "", &v), -1);
    assert_int_equal(kv("", "timeout_ms", &v), -1);
    assert_int_equal(v, 42); /* untouched on failure */
}

static void test_kv_limits(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(kv("k=9223372036854775807", "k", &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(kv("k=-9223372036854775808\n", "k", &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(kv("k=9223372036854775808", "k", &v), -1);
    assert_int_equal(kv("k=-9223372036854775809", "k", &v), -1);
    assert_int_equal(kv("k=99999999999999999999999", "k", &v), -1);
    assert_int_equal(kv("k=-0", "k", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(kv("k=007", "k", &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(kv("k=-12\n", "k", &v), 0);
    assert_int_equal(v, -12);
}

static void test_kv_malformed(void **state)
{
    (void)state;
    int64_t v = 0;
    const char *bad[] = {"k=", "k=\n", "k=-", "k=+5", "k= 5", "k=5 ", "k=5x", "k=0x10",
                         "k=5\r\n", "k=1e3", "k", "k\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(kv(bad[i], "k", &v), -1);
    /* A NUL inside the value is not a digit. */
    const uint8_t nul[] = {'k', '=', '1', 0, '2'};
    assert_int_equal(proto_kv_int(nul, sizeof(nul), "k", &v), -1);
}

static void test_kv_first_match_and_no_trailing_newline(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(kv("a=1\nk=2\nk=3", "k", &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(kv("a=1\nk=3", "k", &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(kv("junk\n\nk=4\n", "k", &v), 0);
    assert_int_equal(v, 4);
    /* Only `len` bytes count, whatever follows in memory. */
    assert_int_equal(proto_kv_int((const uint8_t *)"k=12345", 4, "k", &v), 0);
    assert_int_equal(v, 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_type_valid),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_split_at_every_offset),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_large_payload_in_chunks),
        cmocka_unit_test(test_empty_feed),
        cmocka_unit_test(test_oversized_payload_rejected),
        cmocka_unit_test(test_oversized_rejected_from_header_alone),
        cmocka_unit_test(test_announced_length_not_allocated_upfront),
        cmocka_unit_test(test_unknown_type_rejected),
        cmocka_unit_test(test_callback_error_stops_decoder),
        cmocka_unit_test(test_free_is_idempotent),
        cmocka_unit_test(test_kv_found),
        cmocka_unit_test(test_kv_whole_key_only),
        cmocka_unit_test(test_kv_limits),
        cmocka_unit_test(test_kv_malformed),
        cmocka_unit_test(test_kv_first_match_and_no_trailing_newline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
