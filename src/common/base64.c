#include "base64.h"

#include <stdint.h>

#include "err.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_encode(const void *in, size_t len, struct buf *out)
{
    const unsigned char *p = in;
    /* 4 characters per 3 bytes, rounded up; refuse what would overflow. */
    if (len / 3 + 1 > (SIZE_MAX - out->len - 1) / 4)
        return BG_ENOMEM;
    size_t n = (len + 2) / 3 * 4;
    if (buf_reserve(out, n) < 0)
        return BG_ENOMEM;
    char *o = out->data + out->len;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = alphabet[v >> 6 & 63];
        *o++ = alphabet[v & 63];
    }
    if (i < len) {
        int two = i + 1 < len;
        uint32_t v = (uint32_t)p[i] << 16 | (two ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = two ? alphabet[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    out->len += n;
    out->data[out->len] = '\0';
    return 0;
}

static int value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int base64_decode(const char *in, size_t len, struct buf *out)
{
    while (len && in[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return BG_EINVAL;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = value((unsigned char)in[i]);
        if (v < 0)
            return BG_EINVAL;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char byte = (char)((acc >> bits) & 0xFF);
            if (buf_append(out, &byte, 1) < 0)
                return BG_ENOMEM;
        }
    }
    /* Leftover bits must be zero padding, or the text was not canonical. */
    if (bits && (acc & ((1u << bits) - 1)))
        return BG_EINVAL;
    return 0;
}
