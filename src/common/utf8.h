/*
 * utf8: make program output safe to put in JSON.
 *
 * Programs may print anything; JSON strings must be valid UTF-8. Invalid
 * bytes become U+FFFD. When the output was cut at the byte cap, an
 * incomplete character at the very end is dropped rather than replaced, so
 * a cap never shows up as a character cut in two.
 */
#ifndef BG_UTF8_H
#define BG_UTF8_H

#include <stddef.h>

#include "buf.h"

/* Append the repaired form of in[0..len) to out. Returns 0 or BG_ENOMEM. */
int utf8_repair(const char *in, size_t len, int cut, struct buf *out);

/* Length of the longest prefix of s[0..len) that is valid UTF-8. */
size_t utf8_valid_prefix(const char *s, size_t len);

#endif
