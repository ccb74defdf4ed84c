/*
 * fuzz_base64: base64_decode (src/common/base64.h), the decoder of binary
 * file contents in JSON requests.
 *
 * Two checks per input. As text: an accepted input is canonical, i.e. it
 * is exactly the encoding of what came out, up to trailing '=' padding;
 * either way what the buffer held before stays. As bytes: the standard
 * encoding of the input, padded and unpadded, decodes back to the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/err.h"

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "fuzz_base64: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* RFC 4648 encoding, unpadded; returns the length written. */
static size_t encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        out[o++] = alphabet[in[i] >> 2];
        out[o++] = alphabet[(in[i] & 3) << 4];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
        out[o++] = alphabet[v >> 10 & 63];
        out[o++] = alphabet[v >> 4 & 63];
        out[o++] = alphabet[(v & 15) << 2];
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    size_t unpadded = size;
    while (unpadded && text[unpadded - 1] == '=')
        unpadded--;

    /* As text. A prefix already in the buffer must stay untouched. */
    struct buf out = BUF_INIT;
    CHECK(buf_append(&out, "pre", 3) == 0);
    int rc = base64_decode(text, size, &out);
    CHECK(rc == 0 || rc == BG_EINVAL);
    CHECK(out.len >= 3 && memcmp(out.data, "pre", 3) == 0 && out.data[out.len] == '\0');
    if (rc == 0) {
        size_t n = out.len - 3;
        CHECK(n == unpadded * 6 / 8);
        char *again = malloc(unpadded + 4);
        CHECK(again);
        size_t m = encode((const uint8_t *)out.data + 3, n, again);
        CHECK(m == unpadded && memcmp(again, text, m) == 0);
        free(again);
    }
    buf_free(&out);

    /* As bytes: a round trip, with and without padding. */
    char *enc = malloc(size / 3 * 4 + 8);
    CHECK(enc);
    size_t m = encode(data, size, enc);
    size_t padded = m;
    while (padded % 4)
        enc[padded++] = '=';
    for (int pass = 0; pass < 2; pass++) {
        struct buf back = BUF_INIT;
        CHECK(base64_decode(enc, pass ? padded : m, &back) == 0);
        CHECK(back.len == size && (size == 0 || memcmp(back.data, data, size) == 0));
        buf_free(&back);
    }
    free(enc);
    return 0;
}
