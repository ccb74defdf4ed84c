#include "jsonstr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

int json_quote(const char *s, size_t len, struct buf *out)
{
    static const char hex[] = "0123456789abcdef";
    int rc = buf_append(out, "\"", 1);
    for (size_t i = 0; rc == 0 && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            if (c >= 0x20) {
                rc = buf_append(out, &s[i], 1);
                continue;
            }
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        rc = buf_append(out, esc, n);
    }
    return rc == 0 ? buf_append(out, "\"", 1) : rc;
}

static int put_utf8(unsigned long cp, struct buf *out)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return buf_append(out, b, n);
}

static int hex4(const char *p, unsigned long *out)
{
    char tmp[5];
    char *end;
    memcpy(tmp, p, 4);
    tmp[4] = '\0';
    *out = strtoul(tmp, &end, 16);
    return end == tmp + 4 ? 0 : -1;
}

int json_unquote(const char *lit, struct buf *out)
{
    if (*lit++ != '"')
        return BG_EINVAL;
    while (*lit && *lit != '"') {
        if (*lit != '\\') {
            if (buf_append(out, lit++, 1) < 0)
                return BG_ENOMEM;
            continue;
        }
        char e = lit[1];
        const char *map = strchr("\"\"\\\\//b\bf\fn\nr\rt\t", e);
        if (e && map && (map - "\"\"\\\\//b\bf\fn\nr\rt\t") % 2 == 0) {
            if (buf_append(out, map + 1, 1) < 0)
                return BG_ENOMEM;
            lit += 2;
            continue;
        }
        unsigned long cp, lo;
        if (e != 'u' || strlen(lit) < 6 || hex4(lit + 2, &cp) < 0)
            return BG_EINVAL;
        lit += 6;
        if (cp >= 0xD800 && cp < 0xDC00 && lit[0] == '\\' && lit[1] == 'u' &&
            strlen(lit) >= 6 && hex4(lit + 2, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            lit += 6;
        }
        if (put_utf8(cp, out) < 0)
            return BG_ENOMEM;
    }
    return *lit == '"' ? 0 : BG_EINVAL;
}
