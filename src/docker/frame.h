/*
 * frame: demultiplex the Docker engine's attach stream.
 *
 * Without a TTY the engine sends stdout and stderr of the container as
 * frames: stream type (1 byte: 1 stdout, 2 stderr), three zero bytes, and a
 * big-endian 32-bit length, then the payload. This decoder is incremental
 * and passes payload bytes on as they arrive, without buffering a frame.
 */
#ifndef BG_FRAME_H
#define BG_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_STDOUT 1
#define FRAME_STDERR 2

typedef int (*frame_data_fn)(void *arg, int stream, const uint8_t *data, size_t len);

struct frame_decoder {
    uint8_t header[8];
    size_t header_have;
    uint32_t remaining; /* payload bytes left in the current frame */
    int stream;
    int failed;
    frame_data_fn on_data;
    void *arg;
};

void frame_decoder_init(struct frame_decoder *d, frame_data_fn on_data, void *arg);
/* 0, or -1 on a malformed header or when on_data returns non-zero. */
int frame_decoder_feed(struct frame_decoder *d, const uint8_t *buf, size_t len);

#endif
