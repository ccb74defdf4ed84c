#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct batch *batch_new(struct run_spec *spec, size_t count, const char *request_id)
{
    struct batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->jobs = calloc(count, sizeof *b->jobs);
    b->results = calloc(count, sizeof *b->results);
    if (!b->jobs || !b->results) {
        free(b->jobs);
        free(b->results);
        free(b);
        return NULL;
    }
    atomic_init(&b->refs, 1);
    atomic_init(&b->remaining, (int)count);
    atomic_init(&b->cancelled, 0);
    b->spec = *spec;
    memset(spec, 0, sizeof *spec);
    b->count = count;
    for (size_t i = 0; i < count; i++) {
        b->jobs[i].batch = b;
        b->jobs[i].index = i;
        run_result_init(&b->results[i]);
    }
    snprintf(b->request_id, sizeof b->request_id, "%s", request_id);
    return b;
}

void batch_ref(struct batch *b) { atomic_fetch_add(&b->refs, 1); }

void batch_unref(struct batch *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    for (size_t i = 0; i < b->count; i++)
        run_result_free(&b->results[i]);
    run_spec_free(&b->spec);
    profile_set_unref(b->profiles);
    free(b->results);
    free(b->jobs);
    free(b);
}

void batch_job_done(struct job *j)
{
    struct batch *b = j->batch;
    if (atomic_fetch_sub(&b->remaining, 1) == 1 && b->on_done)
        b->on_done(b, b->arg);
    batch_unref(b);
}

void batch_job_fail(struct job *j, const char *message)
{
    struct run_result *r = &j->batch->results[j->index];
    run_result_init(r);
    r->status = RUN_INTERNAL_ERROR;
    snprintf(r->message, sizeof r->message, "%s", message);
    batch_job_done(j);
}
