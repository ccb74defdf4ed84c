/*
 * clock: milliseconds and pauses, and the back-off of a retried connection.
 *
 * Monotonic time for deadlines and durations within a process; wall-clock
 * time only where another process must read the value (a job's queued time
 * and deadline in the shared queue).
 */
#ifndef BG_CLOCK_H
#define BG_CLOCK_H

long long clock_mono_ms(void);
long long clock_wall_ms(void);
void clock_sleep_ms(long ms);

/* Pauses between retries: 100 ms after the first failure, doubling up to a cap. */
struct backoff {
    long ms; /* the current pause; 0 while things work */
};
/* A failure: the next pause is in b->ms; 1 when it begins a run of failures. */
int backoff_fail(struct backoff *b, long max_ms);
/* A success: 1 when it ends a run of failures. */
int backoff_ok(struct backoff *b);

#endif
