#include "err.h"

#include <stdarg.h>
#include <stdio.h>

const char *bg_strerror(int code)
{
    switch (code) {
    case BG_OK: return "success";
    case BG_ENOMEM: return "out of memory";
    case BG_EINVAL: return "invalid input";
    case BG_EIO: return "system error";
    case BG_EENGINE: return "docker engine error";
    case BG_ENOIMAGE: return "image missing";
    case BG_EFULL: return "queue full";
    case BG_ECLOSED: return "shutting down";
    case BG_ETIMEOUT: return "timed out";
    case BG_EPROTO: return "protocol error";
    case BG_ENOTFOUND: return "not found";
    case BG_ESCRIPT: return "script error";
    case BG_EREFUSED: return "refused by the docker engine";
    case BG_EQUEUE: return "the shared queue (Redis) failed";
    }
    return "unknown error";
}

int bg_fail(char *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, BG_ERRLEN, fmt, ap);
        va_end(ap);
    }
    return code;
}
