/*
 * fuzz_proto: the supervisor protocol (src/proto/proto.h) and the service's
 * reader of supervisor output (run_reader_* in src/sandbox/run.h).
 *
 * Input: byte 0 seeds the split (how the stream is cut into reads), byte 1
 * picks the reader's output cap (bits 0-2) and artifact cap (bits 3-4), the
 * rest is what a (possibly broken or hostile) supervisor wrote.
 *
 *  - proto_decoder, fed in those pieces, must deliver exactly the frames a
 *    whole-buffer reference parse finds, fail exactly where it meets an
 *    unknown type or an oversized length, and be idle exactly when no
 *    partial frame is left.
 *  - proto_kv_int, on the raw input and on every frame payload, must agree
 *    with a reference (strtoll) for a few keys and one taken from the input.
 *  - run_reader, fed the same pieces, must end in the state a replay of the
 *    reference frames predicts: the output kept within the cap as a prefix
 *    of what was sent, output_limit set when bytes were dropped, artifacts
 *    within their cap, DONE last, and a refusal exactly where one is due.
 *    run_result_free then leaves nothing behind (LeakSanitizer).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "proto/proto.h"
#include "sandbox/run.h"

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_proto: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ------------------------------------------------------------ proto_kv_int */

static const uint8_t *input_key_src;
static size_t input_key_len;

/* The first line "key=..." decides: '-'? digits+, within int64. */
static int kv_reference(const uint8_t *p, size_t len, const char *key, int64_t *out)
{
    size_t klen = strlen(key), pos = 0;
    if (!klen)
        return -1;
    while (pos < len) {
        const uint8_t *line = p + pos;
        const uint8_t *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;
        if (llen > klen && memcmp(line, key, klen) == 0 && line[klen] == '=') {
            const uint8_t *v = line + klen + 1;
            size_t vlen = llen - klen - 1, i = vlen && v[0] == '-';
            if (i == vlen)
                return -1;
            for (; i < vlen; i++)
                if (v[i] < '0' || v[i] > '9')
                    return -1;
            char *text = strndup((const char *)v, vlen);
            CHECK(text);
            errno = 0;
            long long x = strtoll(text, NULL, 10);
            int overflow = errno == ERANGE;
            free(text);
            if (overflow)
                return -1;
            *out = x;
            return 0;
        }
        pos += llen + 1;
    }
    return -1;
}

static void check_kv(const uint8_t *p, uint32_t len)
{
    static const char *const keys[] = {"exit_code", "signal", "wall_ms", "memory_kb",
                                       "x", "", NULL};
    char own[33];
    for (size_t i = 0; keys[i]; i++) {
        int64_t a = 0x5a5a, b = 0x5a5a;
        int ra = proto_kv_int(p, len, keys[i], &a), rb = kv_reference(p, len, keys[i], &b);
        CHECK(ra == rb && (ra < 0 || a == b));
    }
    /* A key from the input: the text before its first '=' (if short). */
    const uint8_t *eq = memchr(input_key_src, '=', input_key_len);
    size_t klen = eq ? (size_t)(eq - input_key_src) : 0;
    if (eq && klen < sizeof own) {
        memcpy(own, input_key_src, klen);
        own[klen] = '\0';
        int64_t a = 0, b = 0;
        int ra = proto_kv_int(p, len, own, &a), rb = kv_reference(p, len, own, &b);
        CHECK(ra == rb && (ra < 0 || a == b));
    }
}

/* ------------------------------------------------------- frames, reference */

struct frame {
    uint8_t type;
    const uint8_t *payload; /* into the input */
    uint32_t len;
};

struct frames {
    struct frame *v;
    size_t n;
    int failed;  /* a bad header was met */
    int partial; /* bytes of an incomplete frame are left */
};

static void reference_frames(const uint8_t *p, size_t len, uint32_t max, struct frames *out)
{
    size_t pos = 0;
    memset(out, 0, sizeof *out);
    out->v = malloc((len / PROTO_HEADER_SIZE + 1) * sizeof *out->v);
    CHECK(out->v);
    while (len - pos >= PROTO_HEADER_SIZE) {
        const uint8_t *h = p + pos;
        uint32_t n = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
        if (!proto_type_valid(h[0]) || n > max) {
            out->failed = 1;
            return;
        }
        if (len - pos - PROTO_HEADER_SIZE < n)
            break;
        out->v[out->n++] = (struct frame){h[0], h + PROTO_HEADER_SIZE, n};
        pos += PROTO_HEADER_SIZE + n;
    }
    out->partial = pos < len;
}

/* ------------------------------------------------------ decoder vs reference */

struct seen {
    const struct frames *want;
    size_t n;
    uint32_t max;
};

static int on_frame(void *arg, uint8_t type, const uint8_t *payload, uint32_t len)
{
    struct seen *s = arg;
    CHECK(proto_type_valid(type) && len <= s->max);
    CHECK(payload != NULL || len == 0);
    CHECK(s->n < s->want->n);
    const struct frame *f = &s->want->v[s->n++];
    CHECK(f->type == type && f->len == len && (len == 0 || memcmp(f->payload, payload, len) == 0));
    check_kv(payload, len);
    return 0;
}

static uint32_t next_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Cut [0, len) into pieces and hand each to feed; returns the first error. */
struct splitter {
    uint32_t seed;
    size_t piece;
};

static size_t next_piece(struct splitter *sp, size_t left)
{
    size_t n = 1 + next_rand(&sp->seed) % sp->piece;
    return n < left ? n : left;
}

static void check_decoder(const uint8_t *p, size_t len, struct splitter sp, uint32_t max,
                          const struct frames *want)
{
    struct seen s = {want, 0, max};
    struct proto_decoder d;
    proto_decoder_init(&d, max, on_frame, &s);
    int rc = 0;
    for (size_t off = 0, n; off < len; off += n) {
        n = next_piece(&sp, len - off);
        int r = proto_decoder_feed(&d, p + off, n);
        if (rc < 0)
            CHECK(r < 0);
        rc = rc < 0 ? rc : r;
    }
    CHECK((rc < 0) == want->failed);
    CHECK(s.n == want->n);
    if (!want->failed)
        CHECK(proto_decoder_idle(&d) == !want->partial);
    else
        CHECK(proto_decoder_feed(&d, (const uint8_t *)"D\0\0\0\0", 5) < 0);
    proto_decoder_free(&d);
    proto_decoder_free(&d); /* idempotent */
}

/* -------------------------------------------------- run_reader vs a replay */

struct step_model {
    struct buf out, err; /* everything sent, before the cap */
    int present;
};

/* What run.c's on_frame accepts, replayed on the reference frames: returns
 * the number of frames accepted before the first refusal (or all). */
static size_t replay(const struct frames *fr, long artifact_cap, struct step_model *compile,
                     struct step_model *run, int *done, size_t *nartifacts, size_t *artifact_total)
{
    struct step_model *step = run;
    *done = 0;
    *nartifacts = 0;
    *artifact_total = 0;
    for (size_t i = 0; i < fr->n; i++) {
        const struct frame *f = &fr->v[i];
        if (*done)
            return i;
        switch (f->type) {
        case PROTO_STEP:
            step = f->len == 7 && memcmp(f->payload, "compile", 7) == 0 ? compile : run;
            step->present = 1;
            break;
        case PROTO_OUT:
            CHECK(buf_append(&step->out, f->payload, f->len) == 0);
            break;
        case PROTO_ERR:
            CHECK(buf_append(&step->err, f->payload, f->len) == 0);
            break;
        case PROTO_RESULT:
            step->present = 1;
            break;
        case PROTO_FAIL:
            break;
        case PROTO_DONE:
            *done = 1;
            break;
        case PROTO_ARTIFACT: {
            const uint8_t *nul = f->len > 1 ? memchr(f->payload + 1, '\0', f->len - 1) : NULL;
            if (!nul || (f->payload[0] != 'x' && f->payload[0] != '-'))
                return i;
            size_t dlen = f->len - (size_t)(nul - f->payload) - 1;
            if ((long)(*artifact_total + dlen) > artifact_cap)
                return i;
            (*nartifacts)++;
            *artifact_total += dlen;
            break;
        }
        default:
            return i; /* a frame only the service sends */
        }
    }
    return fr->n;
}

/* Kept output of a step: within the cap, each stream a prefix of what was
 * sent, and output_limit set when anything was dropped. */
static void check_step(const struct step_result *got, const struct step_model *m, long cap)
{
    size_t sent = m->out.len + m->err.len;
    size_t room = cap > 0 ? (size_t)cap : 0;
    CHECK(got->out.len + got->err.len == (sent < room ? sent : room));
    CHECK(got->out.len <= m->out.len && got->err.len <= m->err.len);
    CHECK(got->out.len == 0 || memcmp(got->out.data, m->out.data, got->out.len) == 0);
    CHECK(got->err.len == 0 || memcmp(got->err.data, m->err.data, got->err.len) == 0);
    if (sent > room)
        CHECK(got->output_limit);
    if (m->present)
        CHECK(got->present);
}

static void check_reader(const uint8_t *p, size_t len, struct splitter sp, long cap,
                         long artifact_cap, const struct frames *fr)
{
    struct step_model compile = {BUF_INIT, BUF_INIT, 0}, run = {BUF_INIT, BUF_INIT, 0};
    int want_done;
    size_t want_artifacts, want_total;
    size_t accepted = replay(fr, artifact_cap, &compile, &run, &want_done, &want_artifacts,
                             &want_total);
    int want_error = fr->failed || accepted < fr->n;

    struct run_result res;
    run_result_init(&res);
    struct run_reader *r = run_reader_new(&res, cap, artifact_cap);
    CHECK(r);
    int rc = 0;
    for (size_t off = 0, n; off < len; off += n) {
        n = next_piece(&sp, len - off);
        int e = run_reader_feed(r, p + off, n);
        CHECK(e == 0 || e == BG_EPROTO);
        if (rc < 0)
            CHECK(e < 0);
        rc = rc < 0 ? rc : e;
    }
    CHECK((rc < 0) == want_error);
    CHECK(run_reader_done(r) == want_done);
    check_step(&res.run, &run, cap);
    check_step(&res.compile, &compile, cap);
    CHECK(res.nartifacts == want_artifacts && res.artifact_total == want_total);
    for (size_t i = 0; i < res.nartifacts; i++)
        CHECK(res.artifacts[i].name && res.artifacts[i].data);
    CHECK(memchr(res.message, '\0', sizeof res.message));
    run_reader_free(r);
    run_reader_free(NULL);
    run_result_free(&res);
    run_result_free(&res); /* safe to call twice */
    buf_free(&compile.out);
    buf_free(&compile.err);
    buf_free(&run.out);
    buf_free(&run.err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t max_piece[] = {1, 2, 5, 6, 64, 4096, 1 << 20, 1 << 20};
    static const long caps[] = {0, 1, 7, 64, 4096, 30 * 1024, 1 << 20, -1};
    static const long artifact_caps[] = {0, 1, 100, 1 << 16};
    if (size < 2)
        return 0;
    struct splitter sp = {data[0] * 2654435761u | 1, max_piece[data[0] & 7]};
    long cap = caps[data[1] & 7];
    long artifact_cap = artifact_caps[(data[1] >> 3) & 3];
    const uint8_t *p = data + 2;
    size_t len = size - 2;
    input_key_src = p;
    input_key_len = len;

    check_kv(p, (uint32_t)len);

    /* The reader's own limit on one frame, so both see the same frames. */
    uint32_t max = artifact_cap > 0 ? (uint32_t)artifact_cap + 4096 : 1u << 20;
    struct frames fr;
    reference_frames(p, len, max, &fr);
    check_decoder(p, len, sp, max, &fr);
    check_reader(p, len, sp, cap, artifact_cap, &fr);
    free(fr.v);

    /* A tight limit makes the length check fire on ordinary input. */
    reference_frames(p, len, 3, &fr);
    check_decoder(p, len, sp, 3, &fr);
    free(fr.v);
    return 0;
}
