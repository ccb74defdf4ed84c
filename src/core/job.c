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
    b->compiled = b->spec.compile != NULL;
    b->compile_job.batch = b;
    b->compile_job.index = JOB_COMPILE;
    run_result_init(&b->compile);
    if (b->compiled) /* artifacts are bounded in size: they are held here */
        b->spec.limits.artifact_bytes = BATCH_ARTIFACT_MAX;
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
    run_spec_free(&b->run_spec);
    run_result_free(&b->compile);
    free(b->plugin_ctx);
    profile_set_unref(b->profiles);
    free(b->results);
    free(b->jobs);
    free(b);
}

const struct run_spec *batch_job_spec(const struct job *j)
{
    struct batch *b = j->batch;
    if (j->index == JOB_COMPILE || !b->compiled)
        return &b->spec;
    return &b->run_spec;
}

struct run_result *batch_job_result(struct job *j)
{
    struct batch *b = j->batch;
    return j->index == JOB_COMPILE ? &b->compile : &b->results[j->index];
}

static char *dup_bytes(const char *p, size_t n)
{
    char *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

static int add_copy(struct run_spec *s, const struct run_file *f)
{
    struct run_file *files = realloc(s->files, (s->nfiles + 1) * sizeof *files);
    if (!files)
        return BG_ENOMEM;
    s->files = files;
    struct run_file *c = &files[s->nfiles];
    c->name = strdup(f->name);
    c->data = dup_bytes(f->data, f->len);
    c->len = f->len;
    c->exec = f->exec;
    if (!c->name || !c->data) {
        free(c->name);
        free(c->data);
        return BG_ENOMEM;
    }
    s->nfiles++;
    return 0;
}

static int has_file(const struct run_spec *s, const char *name)
{
    for (size_t i = 0; i < s->nfiles; i++)
        if (strcmp(s->files[i].name, name) == 0)
            return 1;
    return 0;
}

int batch_prepare_runs(struct batch *b)
{
    struct run_spec *r = &b->run_spec;
    const struct run_spec *s = &b->spec;
    int rc = 0;
    r->language = strdup(s->language);
    r->image = strdup(s->image);
    r->run = strv_dup(s->run);
    r->env = strv_dup(s->env);
    r->limits = s->limits;
    r->limits.artifact_bytes = 0;
    r->compile_limits = s->compile_limits;
    if (s->stdin_len) {
        r->stdin_data = dup_bytes(s->stdin_data, s->stdin_len);
        r->stdin_len = s->stdin_len;
    }
    if (!r->language || !r->image || !r->run || !r->env || (s->stdin_len && !r->stdin_data))
        return BG_ENOMEM;
    /* The compiled workspace, then any source it did not carry back
     * (hidden names are not carried; the run may still want them). */
    for (size_t i = 0; rc == 0 && i < b->compile.nartifacts; i++)
        rc = add_copy(r, &b->compile.artifacts[i]);
    for (size_t i = 0; rc == 0 && i < s->nfiles; i++)
        if (!has_file(r, s->files[i].name))
            rc = add_copy(r, &s->files[i]);
    /* The files now live in run_spec; the compile's copy can go. */
    for (size_t i = 0; i < b->compile.nartifacts; i++) {
        free(b->compile.artifacts[i].name);
        free(b->compile.artifacts[i].data);
    }
    free(b->compile.artifacts);
    b->compile.artifacts = NULL;
    b->compile.nartifacts = 0;
    return rc;
}

void batch_fail_runs(struct batch *b, enum run_status status, const char *message)
{
    for (size_t i = 0; i < b->count; i++) {
        struct run_result *r = &b->results[i];
        run_result_init(r);
        r->status = status;
        r->engine_down = b->compile.engine_down;
        snprintf(r->message, sizeof r->message, "%s", message);
        batch_ref(b); /* as if queued: batch_job_done drops it */
        batch_job_done(&b->jobs[i]);
    }
}

void batch_job_done(struct job *j)
{
    struct batch *b = j->batch;
    if (j->index == JOB_COMPILE) { /* the runs carry the request from here */
        batch_unref(b);
        return;
    }
    if (atomic_fetch_sub(&b->remaining, 1) == 1 && b->on_done)
        b->on_done(b, b->arg);
    batch_unref(b);
}

void batch_job_fail(struct job *j, const char *message)
{
    struct batch *b = j->batch;
    if (j->index == JOB_COMPILE) {
        batch_fail_runs(b, RUN_INTERNAL_ERROR, message);
        batch_job_done(j);
        return;
    }
    run_result_fail(&b->results[j->index], "%s", message);
    batch_job_done(j);
}
