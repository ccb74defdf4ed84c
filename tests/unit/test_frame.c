/*
 * Unit tests of the attach-stream demultiplexer (src/docker/frame.h):
 * stdout and stderr frames, empty frames, input in any split, malformed
 * headers, and a callback that stops decoding.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "common/buf.h"
#include "docker/frame.h"

/* ------------------------------------------------------------ helpers */

/* What the decoder passed on, per stream, and how. */
struct sink {
    struct buf out, err, sys;
    int calls;
    int fail_at; /* return non-zero on this call (0-based); -1 never */
    int zero_len_calls;
};

static int collect(void *arg, int stream, const uint8_t *data, size_t len)
{
    struct sink *s = arg;
    if (len == 0)
        s->zero_len_calls++;
    struct buf *b = stream == FRAME_STDOUT ? &s->out : stream == FRAME_STDERR ? &s->err : &s->sys;
    assert_int_equal(buf_append(b, data, len), 0);
    return s->calls++ == s->fail_at;
}

static void sink_init(struct sink *s)
{
    memset(s, 0, sizeof *s);
    s->fail_at = -1;
}

static void sink_free(struct sink *s)
{
    buf_free(&s->out);
    buf_free(&s->err);
    buf_free(&s->sys);
}

static void put_frame(uint8_t *buf, size_t *off, uint8_t stream, const char *payload, uint32_t len)
{
    uint8_t h[8] = {stream, 0, 0, 0, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
                    (uint8_t)(len >> 8), (uint8_t)len};
    memcpy(buf + *off, h, 8);
    if (len)
        memcpy(buf + *off + 8, payload, len);
    *off += 8 + len;
}

/* stdout "hello ", an empty stdout frame, stderr "oops\n", an empty
 * stderr frame, stdout "world\n" (with a NUL). */
static size_t sample(uint8_t *buf)
{
    size_t off = 0;
    put_frame(buf, &off, FRAME_STDOUT, "hello ", 6);
    put_frame(buf, &off, FRAME_STDOUT, NULL, 0);
    put_frame(buf, &off, FRAME_STDERR, "oops\n", 5);
    put_frame(buf, &off, FRAME_STDERR, NULL, 0);
    put_frame(buf, &off, FRAME_STDOUT, "wor\0ld\n", 7);
    return off;
}

static void check_sample(const struct sink *s)
{
    assert_int_equal(s->out.len, 13);
    assert_memory_equal(s->out.data, "hello wor\0ld\n", 13);
    assert_int_equal(s->err.len, 5);
    assert_memory_equal(s->err.data, "oops\n", 5);
    assert_int_equal(s->sys.len, 0);
}

/* ------------------------------------------------------------- tests */

static void test_stdout_and_stderr(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = sample(buf);
    struct sink s;
    sink_init(&s);
    struct frame_decoder d;
    frame_decoder_init(&d, collect, &s);
    assert_int_equal(frame_decoder_feed(&d, buf, n), 0);
    check_sample(&s);
    /* Whole frames in one feed: one call per non-empty frame. */
    assert_int_equal(s.calls, 3);
    sink_free(&s);
}

static void test_zero_length_frames(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t off = 0;
    put_frame(buf, &off, FRAME_STDOUT, NULL, 0);
    put_frame(buf, &off, FRAME_STDERR, NULL, 0);
    put_frame(buf, &off, FRAME_STDOUT, NULL, 0);
    struct sink s;
    sink_init(&s);
    struct frame_decoder d;
    frame_decoder_init(&d, collect, &s);
    assert_int_equal(frame_decoder_feed(&d, buf, off), 0);
    assert_int_equal(s.out.len + s.err.len, 0);
    /* The next header is read as a header, not as payload. */
    off = 0;
    put_frame(buf, &off, FRAME_STDERR, "x", 1);
    assert_int_equal(frame_decoder_feed(&d, buf, off), 0);
    assert_int_equal(s.err.len, 1);
    assert_int_equal(s.out.len, 0);
    assert_int_equal(s.zero_len_calls, 0);
    sink_free(&s);
}

static void test_one_byte_at_a_time(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = sample(buf);
    struct sink s;
    sink_init(&s);
    struct frame_decoder d;
    frame_decoder_init(&d, collect, &s);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(frame_decoder_feed(&d, buf + i, 1), 0);
    check_sample(&s);
    /* Passed on as it arrives: one call per payload byte, none empty. */
    assert_int_equal(s.calls, 18);
    assert_int_equal(s.zero_len_calls, 0);
    sink_free(&s);
}

static void test_split_at_every_offset(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = sample(buf);
    for (size_t cut = 0; cut <= n; cut++) {
        struct sink s;
        sink_init(&s);
        struct frame_decoder d;
        frame_decoder_init(&d, collect, &s);
        assert_int_equal(frame_decoder_feed(&d, buf, cut), 0);
        assert_int_equal(frame_decoder_feed(&d, buf + cut, n - cut), 0);
        check_sample(&s);
        sink_free(&s);
    }
}

static void test_system_error_stream(void **state)
{
    (void)state;
    uint8_t buf[32];
    size_t off = 0;
    put_frame(buf, &off, 3, "sys", 3);
    struct sink s;
    sink_init(&s);
    struct frame_decoder d;
    frame_decoder_init(&d, collect, &s);
    assert_int_equal(frame_decoder_feed(&d, buf, off), 0);
    assert_int_equal(s.sys.len, 3);
    sink_free(&s);
}

static void test_bad_header_rejected(void **state)
{
    (void)state;
    static const uint8_t bad[][8] = {
        {0, 0, 0, 0, 0, 0, 0, 1}, /* stdin never comes back */
        {4, 0, 0, 0, 0, 0, 0, 1}, /* no such stream */
        {'{', '"', 'm', 'e', 0, 0, 0, 1}, /* a JSON error body, not frames */
        {1, 1, 0, 0, 0, 0, 0, 1}, /* padding must be zero */
        {2, 0, 0, 9, 0, 0, 0, 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sink s;
        sink_init(&s);
        struct frame_decoder d;
        frame_decoder_init(&d, collect, &s);
        uint8_t buf[16];
        memcpy(buf, bad[i], 8);
        buf[8] = 'x';
        assert_int_equal(frame_decoder_feed(&d, buf, 9), -1);
        assert_int_equal(s.calls, 0);
        /* Refused for good, even a valid frame. */
        size_t off = 0;
        put_frame(buf, &off, FRAME_STDOUT, "y", 1);
        assert_int_equal(frame_decoder_feed(&d, buf, off), -1);
        assert_int_equal(s.calls, 0);
        sink_free(&s);
    }
}

static void test_bad_header_after_good_frames(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t off = 0;
    put_frame(buf, &off, FRAME_STDOUT, "ok", 2);
    memcpy(buf + off, "\x07\0\0\0\0\0\0\x01z", 9);
    off += 9;
    struct sink s;
    sink_init(&s);
    struct frame_decoder d;
    frame_decoder_init(&d, collect, &s);
    assert_int_equal(frame_decoder_feed(&d, buf, off), -1);
    assert_int_equal(s.out.len, 2);
    sink_free(&s);
}

static void test_callback_error_stops(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = sample(buf);
    struct sink s;
    sink_init(&s);
    s.fail_at = 1; /* the stderr frame */
    struct frame_decoder d;
    frame_decoder_init(&d, collect, &s);
    assert_int_equal(frame_decoder_feed(&d, buf, n), -1);
    assert_int_equal(s.calls, 2);
    assert_int_equal(s.out.len, 6);
    /* Nothing more is decoded afterwards. */
    assert_int_equal(frame_decoder_feed(&d, buf, n), -1);
    assert_int_equal(s.calls, 2);
    sink_free(&s);
}

static void test_large_length(void **state)
{
    (void)state;
    /* A big announced length is just counted down, never allocated. */
    uint8_t h[8] = {1, 0, 0, 0, 0x10, 0, 0, 0};
    uint8_t chunk[4096];
    memset(chunk, 'a', sizeof chunk);
    struct sink s;
    sink_init(&s);
    struct frame_decoder d;
    frame_decoder_init(&d, collect, &s);
    assert_int_equal(frame_decoder_feed(&d, h, 8), 0);
    for (int i = 0; i < 16; i++)
        assert_int_equal(frame_decoder_feed(&d, chunk, sizeof chunk), 0);
    assert_int_equal(s.out.len, 16 * sizeof chunk);
    assert_int_equal(d.remaining, 0x10000000u - 16 * sizeof chunk);
    sink_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stdout_and_stderr),
        cmocka_unit_test(test_zero_length_frames),
        cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_split_at_every_offset),
        cmocka_unit_test(test_system_error_stream),
        cmocka_unit_test(test_bad_header_rejected),
        cmocka_unit_test(test_bad_header_after_good_frames),
        cmocka_unit_test(test_callback_error_stops),
        cmocka_unit_test(test_large_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
