#include "frame.h"

void frame_decoder_init(struct frame_decoder *d, frame_data_fn on_data, void *arg)
{
    d->header_have = 0;
    d->remaining = 0;
    d->stream = 0;
    d->failed = 0;
    d->on_data = on_data;
    d->arg = arg;
}

static int take_header(struct frame_decoder *d)
{
    const uint8_t *h = d->header;
    /* stdin (0) never comes back; 3 is the engine's "system error" stream. */
    if (h[0] < 1 || h[0] > 3 || h[1] || h[2] || h[3])
        return -1;
    d->stream = h[0];
    d->remaining = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
    d->header_have = 0;
    return 0;
}

int frame_decoder_feed(struct frame_decoder *d, const uint8_t *buf, size_t len)
{
    if (d->failed)
        return -1;
    while (len) {
        if (d->remaining == 0) {
            d->header[d->header_have++] = *buf++;
            len--;
            if (d->header_have == 8 && take_header(d) < 0)
                goto fail;
            continue;
        }
        size_t n = len < d->remaining ? len : d->remaining;
        if (d->on_data(d->arg, d->stream, buf, n) != 0)
            goto fail;
        d->remaining -= (uint32_t)n;
        buf += n;
        len -= n;
    }
    return 0;
fail:
    d->failed = 1;
    return -1;
}
