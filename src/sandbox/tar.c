#include "tar.h"

#include <stdio.h>
#include <string.h>

#include "../common/err.h"

int tar_add_file(struct buf *out, const char *name, unsigned mode, const void *data, size_t len)
{
    unsigned char h[512];
    static const unsigned char zeros[512];
    unsigned sum = 0;
    if (strlen(name) >= 100)
        return BG_EINVAL;
    memset(h, 0, sizeof h);
    memcpy(h, name, strlen(name));
    snprintf((char *)h + 100, 8, "%07o", mode & 07777);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011lo", (unsigned long)len);
    snprintf((char *)h + 136, 12, "%011o", 0);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    for (size_t i = 0; i < sizeof h; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    if (buf_append(out, h, sizeof h) < 0 || buf_append(out, data, len) < 0)
        return BG_ENOMEM;
    size_t pad = (512 - len % 512) % 512;
    return buf_append(out, zeros, pad) < 0 ? BG_ENOMEM : 0;
}

int tar_finish(struct buf *out)
{
    static const unsigned char zeros[1024];
    return buf_append(out, zeros, sizeof zeros) < 0 ? BG_ENOMEM : 0;
}
