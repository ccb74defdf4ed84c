#include "base64.h"

#include "err.h"

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
