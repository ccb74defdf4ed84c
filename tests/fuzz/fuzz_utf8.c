/*
 * fuzz_utf8: utf8_repair and utf8_valid_prefix (src/common/utf8.h).
 *
 * The whole input is program output. Checked for both cut = 0 and cut = 1:
 * the output is valid UTF-8 (by utf8_valid_prefix and by an independent
 * decoder) and NUL-terminated; valid input comes out unchanged; cutting
 * only ever drops one incomplete character at the very end; repairing is
 * idempotent; utf8_valid_prefix agrees with the independent decoder.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/utf8.h"

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_utf8: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* RFC 3629 by code point: decode, then reject overlongs, surrogates and
 * anything above U+10FFFF. Returns the valid prefix length. */
static size_t reference_valid_prefix(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            break;
        }
        if (i + n > len)
            break;
        size_t k = 1;
        for (; k < n && (s[i + k] & 0xC0) == 0x80; k++)
            cp = cp << 6 | (s[i + k] & 0x3F);
        if (k < n || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            break;
        i += n;
    }
    return i;
}

static void repair(const uint8_t *in, size_t len, int cut, struct buf *out)
{
    CHECK(utf8_repair((const char *)in, len, cut, out) == 0);
    CHECK(out->data != NULL || len == 0);
    if (out->data)
        CHECK(out->data[out->len] == '\0');
    CHECK(utf8_valid_prefix(out->data, out->len) == out->len);
    CHECK(reference_valid_prefix((const uint8_t *)out->data, out->len) == out->len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t valid = utf8_valid_prefix((const char *)data, size);
    CHECK(valid == reference_valid_prefix(data, size));

    struct buf whole = BUF_INIT, cut = BUF_INIT, again = BUF_INIT;
    repair(data, size, 0, &whole);
    repair(data, size, 1, &cut);

    if (valid == size) {
        CHECK(whole.len == size && (size == 0 || memcmp(whole.data, data, size) == 0));
        CHECK(cut.len == size && (size == 0 || memcmp(cut.data, data, size) == 0));
    }
    /* The valid prefix always survives as it was. */
    CHECK(whole.len >= valid && (valid == 0 || memcmp(whole.data, data, valid) == 0));
    /* A cut drops at most the one U+FFFD that marks an incomplete tail. */
    CHECK(cut.len <= whole.len && (cut.len == 0 || memcmp(cut.data, whole.data, cut.len) == 0));
    CHECK(whole.len - cut.len == 0 ||
          (whole.len - cut.len == 3 && memcmp(whole.data + cut.len, "\xEF\xBF\xBD", 3) == 0));
    /* Each replaced subpart is at least one input byte: bounded growth. */
    CHECK(whole.len <= 3 * size);

    /* Repaired text is valid, so repairing it again changes nothing. */
    repair((const uint8_t *)whole.data, whole.len, 0, &again);
    CHECK(again.len == whole.len && (whole.len == 0 || memcmp(again.data, whole.data, whole.len) == 0));

    buf_free(&whole);
    buf_free(&cut);
    buf_free(&again);
    return 0;
}
