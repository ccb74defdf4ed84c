/*
 * err: the one error convention of the core.
 *
 * Functions return 0 on success or a negative BG_E* code; bg_strerror()
 * names the code. Where a caller needs to tell a user precisely what went
 * wrong, the function also fills a caller-provided `char err[BG_ERRLEN]`.
 */
#ifndef BG_ERR_H
#define BG_ERR_H

#include <stddef.h>

#define BG_ERRLEN 256

enum {
    BG_OK = 0,
    BG_ENOMEM = -1,   /* allocation failed */
    BG_EINVAL = -2,   /* bad input (request, profile, flag) */
    BG_EIO = -3,      /* a system call failed */
    BG_EENGINE = -4,  /* the Docker engine is unreachable or answered badly */
    BG_ENOIMAGE = -5, /* the language's image is missing */
    BG_EFULL = -6,    /* the queue has no room */
    BG_ECLOSED = -7,  /* the queue or service is shutting down */
    BG_ETIMEOUT = -8, /* a deadline passed */
    BG_EPROTO = -9,   /* a peer broke its protocol */
    BG_ENOTFOUND = -10,
    BG_ESCRIPT = -11, /* a Lua file failed to load or validate */
    BG_EREFUSED = -12, /* the engine answered, with an error */
    BG_EQUEUE = -13,   /* the shared queue (Redis) is unreachable or failed */
};

const char *bg_strerror(int code);

/* snprintf into err (BG_ERRLEN bytes) when err is not NULL; returns code. */
int bg_fail(char *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
