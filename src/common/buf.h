/*
 * buf: a growable byte buffer. Always NUL-terminated past `len` so text can
 * be used as a C string; binary content may contain NULs.
 */
#ifndef BG_BUF_H
#define BG_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
};

#define BUF_INIT {NULL, 0, 0}

int buf_append(struct buf *b, const void *data, size_t len);
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_reserve(struct buf *b, size_t extra);
/* Hand the storage to the caller (NUL-terminated, never NULL on success). */
char *buf_steal(struct buf *b);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
