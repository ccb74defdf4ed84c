/*
 * jsonstr: JSON string literals for text cJSON cannot hold.
 *
 * cJSON strings are C strings: a NUL byte ends them. Program output may
 * hold NUL bytes and must come back whole, so such text travels as a raw
 * cJSON item holding a literal we quote ourselves ("a\u0000b").
 */
#ifndef BG_JSONSTR_H
#define BG_JSONSTR_H

#include <stddef.h>

#include "buf.h"

/* Append s[0..len) (valid UTF-8) as a quoted JSON string literal. */
int json_quote(const char *s, size_t len, struct buf *out);
/* Append the text of a quoted JSON string literal; BG_EINVAL if malformed. */
int json_unquote(const char *lit, struct buf *out);

#endif
