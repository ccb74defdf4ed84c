/*
 * worker: threads that take jobs from the shared queue (Redis) and run them
 * on this host's engine.
 *
 * Each thread has its own Redis connection and engine connection. The
 * keepalive thread also announces the process in bg:workers (threads,
 * busy, the images its engine has) so front doors can count live workers. A job
 * goes: take (a job another consumer held past claim_after_s first, since
 * its worker died; else a new one) -> read its header and spec -> run it
 * through the service's executor -> push the result on the front door's
 * reply list and acknowledge it, in one step. A keepalive thread tells
 * Redis every claim_after_s / 3 which jobs this process still runs, so a
 * live worker's long run is never taken over.
 *
 * A job handed out more than RQ_MAX_DELIVERIES times (its workers kept
 * dying) is answered internal_error and counted dead, never run again. A
 * job past its deadline, or whose spec expired, is answered without a run.
 * A run cut short by this worker's own shutdown is left unanswered, so
 * another worker takes it over.
 *
 * The worker never sees Lua or HTTP: the executor and the image check come
 * from the service as callbacks.
 */
#ifndef BG_WORKER_H
#define BG_WORKER_H

#include "../sandbox/run.h"
#include "rq.h"

struct worker_exec {
    /* Run spec (see run_execute): fill res, call done(arg), remove the container. */
    int (*execute)(void *ctx, struct docker *d, const struct run_spec *spec,
                   struct run_result *res, run_done_fn done, void *arg);
    /* Admit a job taken from Redis: its image must be one this host's
     * profiles name, and its limits are lowered to what this host would
     * give a request (Redis may not pick the image or raise a limit).
     * 0, or BG_EINVAL with why. */
    int (*admit)(void *ctx, struct run_spec *spec, char err[BG_ERRLEN]);
    struct docker *(*engine_new)(void *ctx);
    /* Append the images this host's engine has, of those the profiles
     * name, as a JSON array of strings (for front doors' /languages). */
    int (*images)(void *ctx, struct buf *out);
    /* A run's result is known (for metrics); wait_ms: queued to started. */
    void (*ran)(void *ctx, const struct run_spec *spec, const struct run_result *res,
                long wait_ms);
    void *ctx;
};

struct worker_options {
    struct rq_url url;
    const char *consumer; /* this process's name in the group (instance id) */
    long threads;
    long claim_after_s;
    long result_ttl_s;
    struct worker_exec exec;
};

struct workers;
/* NULL with err on failure. */
struct workers *workers_start(const struct worker_options *o, char err[BG_ERRLEN]);
/* Stop taking jobs (returns at once; runs in flight go on). */
void workers_quit(struct workers *w);
/* Stop taking jobs and join the threads (runs in flight end first). */
void workers_stop(struct workers *w);
void workers_free(struct workers *w);
/* Redis answers (0 with its version), and the cluster's queue figures. */
int workers_ping(struct workers *w, char version[32], char err[BG_ERRLEN]);
int workers_stats(struct workers *w, struct rq_stats *out, char err[BG_ERRLEN]);
/* The live workers, as front doors see them (rq_workers). */
int workers_list(struct workers *w, struct buf *out, char err[BG_ERRLEN]);

#endif
