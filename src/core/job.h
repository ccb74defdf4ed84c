/*
 * job: the jobs of one request and their results.
 *
 * A request with count N becomes one batch of N jobs that share one
 * read-only run_spec. Workers fill results[i]; the last job to finish
 * calls on_done (from a worker thread). The batch is reference-counted:
 * the HTTP side holds one reference and each queued job one, so a client
 * that goes away early frees nothing a worker still uses.
 */
#ifndef BG_JOB_H
#define BG_JOB_H

#include <stdatomic.h>
#include <stddef.h>

#include "../sandbox/run.h"
#include "profile.h"

struct batch;
typedef void (*batch_done_fn)(struct batch *b, void *arg);

struct job {
    struct batch *batch;
    size_t index;
};

struct batch {
    atomic_int refs;
    atomic_int remaining;
    atomic_int cancelled; /* the client went away: skip what has not started */
    struct run_spec spec;
    struct profile_set *profiles; /* held so the profile outlives the run */
    size_t count;
    struct job *jobs;
    struct run_result *results;
    batch_done_fn on_done;
    void *arg;
    char request_id[33];
};

/* A batch of count jobs; takes ownership of spec's contents. */
struct batch *batch_new(struct run_spec *spec, size_t count, const char *request_id);
void batch_ref(struct batch *b);
void batch_unref(struct batch *b);
/* A worker finished job j (its result is filled); may call on_done. */
void batch_job_done(struct job *j);
/* Mark job j failed without running it (shutdown, client gone). */
void batch_job_fail(struct job *j, const char *message);

#endif
