#include "utf8.h"

#include <stdint.h>

static const char replacement[] = "\xEF\xBF\xBD";

/*
 * Length of the valid sequence at s (1..4), 0 when invalid, or -n when s
 * holds only the first n bytes of what could still become a valid sequence.
 * Follows RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF.
 */
static int seq_len(const unsigned char *s, size_t avail, size_t *skip)
{
    *skip = 1;
    unsigned char c = s[0];
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    for (int i = 1; i < need; i++) {
        if ((size_t)i >= avail)
            return -i;
        unsigned char b = s[i];
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) {
            *skip = (size_t)i; /* the maximal invalid subpart */
            return 0;
        }
    }
    return need;
}

size_t utf8_valid_prefix(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    size_t skip;
    while (i < len) {
        int n = seq_len(p + i, len - i, &skip);
        if (n <= 0)
            break;
        i += (size_t)n;
    }
    return i;
}

int utf8_repair(const char *in, size_t len, int cut, struct buf *out)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0;
    if (buf_reserve(out, len) < 0)
        return -1;
    while (i < len) {
        size_t ok = utf8_valid_prefix(in + i, len - i);
        if (ok && buf_append(out, in + i, ok) < 0)
            return -1;
        i += ok;
        if (i >= len)
            break;
        size_t skip;
        int n = seq_len(p + i, len - i, &skip);
        if (n < 0 && cut)
            break; /* a character cut by the cap: drop its first bytes */
        if (buf_append(out, replacement, 3) < 0)
            return -1;
        /* One U+FFFD per maximal invalid subpart, as Unicode recommends. */
        i += n < 0 ? (size_t)-n : skip;
    }
    return 0;
}
