#include "clock.h"

#include <time.h>

static long long ms_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long clock_mono_ms(void) { return ms_of(CLOCK_MONOTONIC); }

long long clock_wall_ms(void) { return ms_of(CLOCK_REALTIME); }

void clock_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int backoff_fail(struct backoff *b, long max_ms)
{
    int first = b->ms == 0;
    b->ms = first ? 100 : b->ms * 2;
    if (b->ms > max_ms)
        b->ms = max_ms;
    return first;
}

int backoff_ok(struct backoff *b)
{
    int ended = b->ms != 0;
    b->ms = 0;
    return ended;
}
