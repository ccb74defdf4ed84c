/*
 * job: the jobs of one request and their results.
 *
 * A request with count N becomes one batch of N jobs that share one
 * read-only run_spec. Workers fill results[i]; the last job to finish
 * calls on_done (from a worker thread).
 *
 * A compiled language compiles once: the batch first queues one compile
 * job (with N places reserved in the queue). Its container sends the
 * compiled workspace back through the service; the N runs then get those
 * files (run_spec) and are queued into the reserved places. A failed
 * compile answers all N results with compile_error and runs nothing. The batch is reference-counted:
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

#define JOB_COMPILE ((size_t)-1) /* the index of a batch's compile job */
/* The most a compile may carry to its runs, held in memory meanwhile. */
#define BATCH_ARTIFACT_MAX (32L * 1024 * 1024)

struct job {
    struct batch *batch;
    size_t index;
};

struct batch {
    atomic_int refs;
    atomic_int remaining;
    atomic_int cancelled; /* the client went away: skip what has not started */
    struct run_spec spec;         /* as requested (with the compile step) */
    int compiled;                 /* the language compiles: compile first */
    struct job compile_job;
    struct run_result compile;    /* the compile job's result, artifacts included */
    struct run_spec run_spec;     /* compiled: the runs' spec, made after the compile */
    struct profile_set *profiles; /* held so the profile outlives the run */
    size_t count;
    struct job *jobs;
    struct run_result *results;
    batch_done_fn on_done;
    void *arg;
    char request_id[33];
    char *plugin_ctx;     /* req.ctx of the policy plugins, for on_result */
    long queued_ms;       /* monotonic time the batch was queued (metrics) */
};

/* A batch of count jobs; takes ownership of spec's contents. */
struct batch *batch_new(struct run_spec *spec, size_t count, const char *request_id);
void batch_ref(struct batch *b);
void batch_unref(struct batch *b);
/* The spec job j runs. */
const struct run_spec *batch_job_spec(const struct job *j);
/* The result job j fills. */
struct run_result *batch_job_result(struct job *j);
/*
 * The compile job is done (b->compile filled): build run_spec from the
 * sources and the compiled files. 0, or BG_ENOMEM.
 */
int batch_prepare_runs(struct batch *b);
/* The compile failed: every run's result says so (status, message). */
void batch_fail_runs(struct batch *b, enum run_status status, const char *message);
/* A worker finished job j (its result is filled); may call on_done. */
void batch_job_done(struct job *j);
/* Mark job j failed without running it (shutdown, client gone). */
void batch_job_fail(struct job *j, const char *message);

#endif
