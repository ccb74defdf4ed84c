/*
 * base64: the standard alphabet (RFC 4648). Encoding writes padding;
 * decoding takes it as optional and refuses whitespace. Binary file
 * contents travel in JSON this way.
 */
#ifndef BG_BASE64_H
#define BG_BASE64_H

#include <stddef.h>

#include "buf.h"

/* Append the padded encoding of in[0..len) to out (NUL-terminated after,
 * even when len is 0). Returns 0 or BG_ENOMEM; on failure out is as before. */
int base64_encode(const void *in, size_t len, struct buf *out);

/* Append the decoded bytes to out; BG_EINVAL on a bad character or length. */
int base64_decode(const char *in, size_t len, struct buf *out);

#endif
