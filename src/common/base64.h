/*
 * base64: decoding of the standard alphabet (RFC 4648), padding optional,
 * no whitespace. Binary file contents travel in JSON this way.
 */
#ifndef BG_BASE64_H
#define BG_BASE64_H

#include <stddef.h>

#include "buf.h"

/* Append the decoded bytes to out; BG_EINVAL on a bad character or length. */
int base64_decode(const char *in, size_t len, struct buf *out);

#endif
