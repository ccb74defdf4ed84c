/*
 * fuzz_frame: the Docker attach stream demultiplexer (src/docker/frame.h).
 *
 * Input: byte 0 seeds the split (how the stream is cut into reads, from
 * one byte at a time to whole buffers), byte 1 picks the call after which
 * the callback refuses (>= 16: never), the rest is the stream as the
 * engine would send it. The decoder, fed in those pieces, must hand over
 * exactly the bytes a whole-buffer reference parse finds, per stream, and
 * fail exactly when the reference meets a malformed header; after a
 * failure it takes nothing more.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker/frame.h"

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_frame: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
    uint8_t *out[4]; /* per stream type 1..3 */
    size_t len[4];
    size_t calls;
    size_t fail_at; /* refuse on this call (1-based); 0: never */
    int failed;
};

static int on_data(void *arg, int stream, const uint8_t *p, size_t len)
{
    struct sink *s = arg;
    CHECK(!s->failed); /* nothing may arrive after a refusal */
    CHECK(stream >= 1 && stream <= 3);
    CHECK(len > 0);
    s->calls++;
    if (s->fail_at && s->calls == s->fail_at) {
        s->failed = 1;
        return -1;
    }
    memcpy(s->out[stream] + s->len[stream], p, len);
    s->len[stream] += len;
    return 0;
}

/* Whole-buffer parse: per-stream bytes; returns -1 at a malformed header. */
static int reference(const uint8_t *p, size_t len, struct sink *s)
{
    size_t pos = 0;
    while (len - pos >= 8) {
        const uint8_t *h = p + pos;
        if (h[0] < 1 || h[0] > 3 || h[1] || h[2] || h[3])
            return -1;
        uint32_t n = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
        pos += 8;
        size_t take = len - pos < n ? len - pos : n;
        memcpy(s->out[h[0]] + s->len[h[0]], p + pos, take);
        s->len[h[0]] += take;
        pos += take;
    }
    return 0;
}

static uint32_t next_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void sink_init(struct sink *s, size_t cap)
{
    memset(s, 0, sizeof *s);
    for (int i = 1; i <= 3; i++) {
        s->out[i] = malloc(cap ? cap : 1);
        CHECK(s->out[i]);
    }
}

static void sink_free(struct sink *s)
{
    for (int i = 1; i <= 3; i++)
        free(s->out[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t max_piece[] = {1, 3, 8, 9, 64, 4096, 1 << 20, 1 << 20};
    if (size < 2)
        return 0;
    uint32_t seed = data[0] * 2654435761u | 1;
    size_t piece = max_piece[data[0] & 7];
    size_t fail_at = data[1] < 16 ? data[1] : 0;
    const uint8_t *stream = data + 2;
    size_t len = size - 2;

    struct sink got, want;
    sink_init(&got, len);
    sink_init(&want, len);
    got.fail_at = fail_at;
    int want_rc = reference(stream, len, &want);

    struct frame_decoder d;
    frame_decoder_init(&d, on_data, &got);
    int rc = 0;
    size_t off = 0;
    while (off < len) {
        size_t n = 1 + next_rand(&seed) % piece;
        if (n > len - off)
            n = len - off;
        int r = frame_decoder_feed(&d, stream + off, n);
        if (rc < 0)
            CHECK(r < 0); /* a failed decoder stays failed */
        if (r < 0)
            rc = r;
        off += n;
    }
    if (rc < 0) /* refused for good, even a well-formed frame */
        CHECK(frame_decoder_feed(&d, (const uint8_t *)"\1\0\0\0\0\0\0\1x", 9) == -1);

    if (got.failed) {
        CHECK(rc < 0);
    } else {
        CHECK(rc == want_rc);
        for (int i = 1; i <= 3; i++)
            CHECK(got.len[i] == want.len[i] &&
                  (want.len[i] == 0 || memcmp(got.out[i], want.out[i], want.len[i]) == 0));
    }
    sink_free(&got);
    sink_free(&want);
    return 0;
}
