/*
 * proto: the frame codec shared by the service and bg-supervisor.
 *
 * Uses libc only: the supervisor links it statically with musl, so nothing
 * here may depend on the rest of the core.
 */
#include "proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void proto_put_header(uint8_t out[PROTO_HEADER_SIZE], uint8_t type, uint32_t len)
{
    out[0] = type;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

int proto_type_valid(uint8_t type)
{
    switch (type) {
    case PROTO_LIMITS:
    case PROTO_FILE:
    case PROTO_FILE_EXEC:
    case PROTO_ARTIFACT:
    case PROTO_ENV:
    case PROTO_COMPILE:
    case PROTO_RUN:
    case PROTO_STDIN:
    case PROTO_END:
    case PROTO_STEP:
    case PROTO_OUT:
    case PROTO_ERR:
    case PROTO_RESULT:
    case PROTO_FAIL:
    case PROTO_DONE:
        return 1;
    default:
        return 0;
    }
}

void proto_decoder_init(struct proto_decoder *d, uint32_t max_payload,
                        proto_frame_fn on_frame, void *arg)
{
    memset(d, 0, sizeof(*d));
    d->max_payload = max_payload;
    d->on_frame = on_frame;
    d->arg = arg;
}

void proto_decoder_free(struct proto_decoder *d)
{
    if (!d)
        return;
    free(d->payload);
    d->payload = NULL;
    d->payload_cap = 0;
}

int proto_decoder_idle(const struct proto_decoder *d)
{
    return d->header_have == 0;
}

static int decoder_fail(struct proto_decoder *d)
{
    d->failed = 1;
    return -1;
}

/* Validate a complete header and remember the frame it announces. */
static int decoder_take_header(struct proto_decoder *d)
{
    const uint8_t *h = d->header;
    d->type = h[0];
    d->len = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
    d->payload_have = 0;
    if (!proto_type_valid(d->type) || d->len > d->max_payload)
        return decoder_fail(d);
    return 0;
}

/*
 * Make room for `want` payload bytes. The buffer grows with the bytes that
 * actually arrive, not with the announced length, so a peer cannot make us
 * allocate max_payload with a 5-byte header alone.
 */
static int decoder_reserve(struct proto_decoder *d, size_t want)
{
    if (want <= d->payload_cap)
        return 0;
    size_t cap = d->payload_cap ? d->payload_cap : 4096;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    if (cap > d->len)
        cap = d->len;
    uint8_t *p = realloc(d->payload, cap);
    if (!p)
        return -1;
    d->payload = p;
    d->payload_cap = cap;
    return 0;
}

/* Hand a complete frame to the callback and get ready for the next one. */
static int decoder_dispatch(struct proto_decoder *d)
{
    d->header_have = 0;
    d->payload_have = 0;
    if (d->on_frame(d->arg, d->type, d->payload, d->len) != 0)
        return decoder_fail(d);
    return 0;
}

/* Consume header bytes from buf; returns how many, or -1 on a bad header. */
static long decoder_eat_header(struct proto_decoder *d, const uint8_t *buf, size_t len)
{
    size_t n = PROTO_HEADER_SIZE - d->header_have;
    if (n > len)
        n = len;
    memcpy(d->header + d->header_have, buf, n);
    d->header_have += n;
    if (d->header_have == PROTO_HEADER_SIZE && decoder_take_header(d) < 0)
        return -1;
    return (long)n;
}

/* Consume payload bytes from buf; returns how many, or -1. */
static long decoder_eat_payload(struct proto_decoder *d, const uint8_t *buf, size_t len)
{
    size_t n = d->len - d->payload_have;
    if (n > len)
        n = len;
    if (n > 0) {
        if (decoder_reserve(d, (size_t)d->payload_have + n) < 0)
            return decoder_fail(d);
        memcpy(d->payload + d->payload_have, buf, n);
        d->payload_have += (uint32_t)n;
    }
    return (long)n;
}

int proto_decoder_feed(struct proto_decoder *d, const uint8_t *buf, size_t len)
{
    if (d->failed)
        return -1;
    size_t off = 0;
    while (off < len) {
        long n;
        if (d->header_have < PROTO_HEADER_SIZE)
            n = decoder_eat_header(d, buf + off, len - off);
        else
            n = decoder_eat_payload(d, buf + off, len - off);
        if (n < 0)
            return decoder_fail(d);
        off += (size_t)n;
        /* A zero-length frame completes with its header, even at the end of buf. */
        if (d->header_have == PROTO_HEADER_SIZE && d->payload_have == d->len &&
            decoder_dispatch(d) < 0)
            return -1;
    }
    return 0;
}

/* Parse a whole signed 64-bit decimal: optional '-', then digits only. */
static int parse_int64(const uint8_t *s, size_t len, int64_t *out)
{
    int neg = len > 0 && s[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == len)
        return -1;
    /* Accumulate the magnitude; INT64_MIN's is one more than INT64_MAX's. */
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned digit = (unsigned)(s[i] - '0');
        if (v > (limit - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 0;
}

int proto_kv_int(const uint8_t *payload, uint32_t len, const char *key, int64_t *out)
{
    size_t klen = strlen(key);
    if (klen == 0 || !payload)
        return -1;
    size_t pos = 0;
    while (pos < len) {
        const uint8_t *line = payload + pos;
        const uint8_t *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;
        /* The first line whose key matches whole (not a suffix) decides. */
        if (llen > klen && memcmp(line, key, klen) == 0 && line[klen] == '=')
            return parse_int64(line + klen + 1, llen - klen - 1, out);
        pos += llen + 1;
    }
    return -1;
}
