#include "service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../cluster/front.h"
#include "../cluster/worker.h"
#include "../common/clock.h"
#include "../common/jsonstr.h"
#include "../common/log.h"
#include "metrics.h"
#include "request.h"
#include "../sandbox/reaper.h"
#include "../sandbox/supervisor.h"

static struct docker *engine_new(const struct service *s)
{
    struct dk_transport *t = transport_curl_new(s->cfg.docker_host);
    return t ? docker_new(t) : NULL;
}

static void remote_done(struct job *j, void *arg);

/* The in-process queue, or a front door's view of the shared one. */
static int queue_new(struct service *s, char *err)
{
    if (!s->cfg.queue || s->cfg.worker_process) {
        s->queue = queue_mem_new((size_t)s->cfg.backlog);
        return s->queue ? 0 : bg_fail(err, BG_ENOMEM, "out of memory");
    }
    struct front_options o = {s->redis, s->inst.id, s->cfg.backlog, s->cfg.queue_timeout_s,
                              s->cfg.result_ttl_s, remote_done, s};
    s->queue = front_new(&o, err);
    return s->queue ? 0 : BG_ENOMEM;
}

int service_init(struct service *s, struct config *cfg, struct profile_set *profiles,
                 char err[BG_ERRLEN])
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    s->profiles = profiles;
    pthread_mutex_init(&s->profiles_lock, NULL);
    pthread_mutex_init(&s->control_lock, NULL);
    pthread_mutex_init(&s->supervisor_lock, NULL);
    pthread_mutex_init(&s->stop_lock, NULL);
    pthread_cond_init(&s->stop_cond, NULL);
    if (instance_init(&s->inst) < 0)
        return bg_fail(err, BG_EIO, "cannot read this process's start time from /proc");
    supervisor_volume_name(bg_supervisor_blob, bg_supervisor_blob_len, s->volume);
    s->run_ctx.supervisor_volume = s->volume;
    s->run_ctx.runtime = config_runtime(&s->cfg);
    s->run_ctx.labels = s->inst.labels;
    s->run_ctx.name_prefix = s->inst.name_prefix;
    s->cfg.workers = config_workers(&s->cfg, s->cfg.worker_process);
    if (s->cfg.queue && rq_parse_url(s->cfg.queue, &s->redis, err) < 0)
        return BG_EINVAL;
    if (s->cfg.worker_process && !s->cfg.queue)
        return bg_fail(err, BG_EINVAL, "a worker needs --queue redis://HOST:PORT");
    int rc = queue_new(s, err);
    if (rc < 0)
        return rc;
    s->control = engine_new(s);
    s->store = store_new();
    if (!s->control || !s->store)
        return bg_fail(err, BG_ENOMEM, "out of memory");
    return service_load_plugins(s, err);
}

int service_load_plugins(struct service *s, char err[BG_ERRLEN])
{
    struct plugin_options o = {s->cfg.plugins, s->cfg.plugin_dir, "plugins",
                               s->cfg.plugin_settings};
    struct plugin_host *h = NULL;
    int rc = plugins_load(&o, s->store, &h, err);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&s->profiles_lock);
    struct plugin_host *old = s->plugins;
    s->plugins = h;
    pthread_mutex_unlock(&s->profiles_lock);
    plugins_unref(old);
    if (plugins_count(h))
        log_info("plugins enabled: %s", s->cfg.plugins);
    return 0;
}

struct plugin_host *service_plugins(struct service *s)
{
    pthread_mutex_lock(&s->profiles_lock);
    struct plugin_host *h = s->plugins;
    if (h)
        plugins_ref(h);
    pthread_mutex_unlock(&s->profiles_lock);
    return h;
}

struct profile_set *service_profiles(struct service *s)
{
    pthread_mutex_lock(&s->profiles_lock);
    struct profile_set *p = s->profiles;
    profile_set_ref(p);
    pthread_mutex_unlock(&s->profiles_lock);
    return p;
}

void service_set_profiles(struct service *s, struct profile_set *set)
{
    pthread_mutex_lock(&s->profiles_lock);
    struct profile_set *old = s->profiles;
    s->profiles = set;
    pthread_mutex_unlock(&s->profiles_lock);
    profile_set_unref(old);
}

int service_engine_version(struct service *s, char version[64], char err[BG_ERRLEN])
{
    pthread_mutex_lock(&s->control_lock);
    int rc = docker_ping(s->control, err);
    if (rc == 0)
        snprintf(version, 64, "%s", s->control->engine_version);
    pthread_mutex_unlock(&s->control_lock);
    return rc;
}

int service_image_present(struct service *s, const char *image, char err[BG_ERRLEN])
{
    pthread_mutex_lock(&s->control_lock);
    int rc = docker_image_exists(s->control, image, err);
    pthread_mutex_unlock(&s->control_lock);
    return rc;
}

/* A pull of image failed less than PULL_BACKOFF_S ago (control_lock held). */
static struct pull_failure *recent_failure(struct service *s, const char *image, int make)
{
    struct pull_failure *oldest = &s->pull_failures[0];
    for (size_t i = 0; i < sizeof s->pull_failures / sizeof s->pull_failures[0]; i++) {
        struct pull_failure *f = &s->pull_failures[i];
        if (strcmp(f->image, image) == 0)
            return make || (long)(clock_mono_ms() / 1000) - f->at < PULL_BACKOFF_S ? f : NULL;
        if (f->at < oldest->at)
            oldest = f;
    }
    if (!make)
        return NULL;
    snprintf(oldest->image, sizeof oldest->image, "%s", image);
    return oldest;
}

int service_image_ready(struct service *s, const char *image, char err[BG_ERRLEN])
{
    char why[BG_ERRLEN];
    int rc = service_image_present(s, image, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&s->control_lock);
    if (!recent_failure(s, image, 0)) {
        log_info("image %s is missing: trying to pull it", image);
        if (docker_pull(s->control, image, PULL_TIMEOUT_MS, why) == 0 &&
            docker_image_exists(s->control, image, why) == 1)
            rc = 1;
        else {
            log_warn("pull of %s failed: %s (not again for %d s)", image, why, PULL_BACKOFF_S);
            recent_failure(s, image, 1)->at = (long)(clock_mono_ms() / 1000);
        }
    }
    pthread_mutex_unlock(&s->control_lock);
    return rc;
}

/* Make sure the supervisor volume is filled; once per process, retried on
 * failure (e.g. before any image exists, or while the engine is down). */
static int ensure_supervisor(struct service *s, struct docker *d, char *err)
{
    if (atomic_load(&s->supervisor_ready))
        return 0;
    pthread_mutex_lock(&s->supervisor_lock);
    int rc = 0;
    if (!atomic_load(&s->supervisor_ready)) {
        struct profile_set *set = service_profiles(s);
        const char **images = calloc(set->n + 1, sizeof *images);
        rc = BG_ENOMEM;
        if (images) {
            for (size_t i = 0; i < set->n; i++)
                images[i] = set->items[i].image;
            rc = supervisor_ensure(d, s->volume, images, bg_supervisor_blob,
                                   bg_supervisor_blob_len, err);
        }
        free(images);
        profile_set_unref(set);
        if (rc == 0)
            atomic_store(&s->supervisor_ready, 1);
    }
    pthread_mutex_unlock(&s->supervisor_lock);
    return rc;
}

struct finish {
    struct service *svc;
    struct job *job;
    long started_ms;
};

/* A compile is done: queue its runs into their reserved places, or answer
 * every run with the compile's failure. */
static void compile_finished(struct service *s, struct job *j)
{
    struct batch *b = j->batch;
    const struct run_result *c = &b->compile;
    struct queue *q = s->queue;
    if (c->status == RUN_OK && !atomic_load(&b->cancelled) && batch_prepare_runs(b) == 0) {
        struct job **jobs = calloc(b->count, sizeof *jobs);
        if (jobs) {
            for (size_t i = 0; i < b->count; i++) {
                jobs[i] = &b->jobs[i];
                batch_ref(b);
            }
            int rc = q->ops->push_reserved(q->self, jobs, b->count);
            free(jobs);
            if (rc == 0) {
                batch_job_done(j);
                return;
            }
            for (size_t i = 0; i < b->count; i++) /* the runs were not queued */
                batch_unref(b);
            batch_fail_runs(b, RUN_INTERNAL_ERROR,
                            "the compiled runs could not be queued (the shared queue failed)");
            batch_job_done(j);
            return;
        }
    }
    q->ops->release(q->self, b->count);
    if (c->status == RUN_COMPILE_ERROR)
        batch_fail_runs(b, RUN_COMPILE_ERROR, "");
    else
        batch_fail_runs(b, RUN_INTERNAL_ERROR,
                        c->status == RUN_OK ? "the compiled files could not be prepared"
                                            : c->message);
    batch_job_done(j);
}

/* Job j's result is known: log it, count it, and answer or queue the runs
 * of a compile (the batch may go). started_ms: when its run began. */
static void job_complete(struct service *s, struct job *j, long started_ms)
{
    struct batch *b = j->batch;
    const struct run_result *res = batch_job_result(j);
    char which[32];
    if (j->index == JOB_COMPILE)
        snprintf(which, sizeof which, "compile");
    else
        snprintf(which, sizeof which, "run %zu", j->index + 1);
    metrics_run(b->spec.language, run_status_name(res->status), res->duration_ms,
                started_ms - b->queued_ms);
    if (res->status == RUN_INTERNAL_ERROR)
        log_error("[%s] %s of %s: %s", b->request_id, which, b->spec.language, res->message);
    else
        log_info("[%s] %s of %s: %s in %ld ms", b->request_id, which, b->spec.language,
                 run_status_name(res->status), res->duration_ms);
    if (j->index == JOB_COMPILE)
        compile_finished(s, j);
    else
        batch_job_done(j);
}

static void job_finished(void *arg)
{
    struct finish *f = arg;
    job_complete(f->svc, f->job, f->started_ms);
}

/* A front door's job came back from a worker elsewhere (its wait is
 * counted up to the answer: the run's start is not known here). */
static void remote_done(struct job *j, void *arg)
{
    long now = (long)clock_mono_ms();
    job_complete(arg, j, now - batch_job_result(j)->duration_ms);
}

/* Run spec on d: in a ready container when the pool has one. Used by the
 * in-process workers and by the shared queue's (worker_exec). */
static int execute(void *ctx, struct docker *d, const struct run_spec *spec,
                   struct run_result *res, run_done_fn done, void *arg)
{
    struct service *s = ctx;
    char err[BG_ERRLEN];
    if (ensure_supervisor(s, d, err) < 0) {
        log_error("cannot stage the sandbox helper: %s", err);
        run_result_fail(res, "cannot prepare the sandbox: %.200s", err);
        res->engine_down = 1;
        done(arg);
        return BG_EENGINE;
    }
    struct run_container warm;
    int have = pool_take(s->pool, spec, &warm);
    atomic_fetch_add(&s->busy, 1);
    int rc = run_execute(d, &s->run_ctx, spec, res, done, arg, have ? &warm : NULL);
    atomic_fetch_sub(&s->busy, 1);
    return rc;
}

static void run_one(struct service *s, struct docker *d, struct job *j)
{
    struct batch *b = j->batch;
    struct finish f = {s, j, (long)clock_mono_ms()};
    if (atomic_load(&b->cancelled)) {
        if (j->index == JOB_COMPILE)
            s->queue->ops->release(s->queue->self, b->count);
        batch_job_fail(j, "the client went away before the run started");
        return;
    }
    execute(s, d, batch_job_spec(j), batch_job_result(j), job_finished, &f);
}

static void *worker_main(void *arg)
{
    struct service *s = arg;
    /* Each worker owns its engine connection: kept alive, never shared. */
    struct docker *d = engine_new(s);
    struct job *j;
    while ((j = s->queue->ops->pop(s->queue->self)) != NULL) {
        if (!d)
            batch_job_fail(j, "out of memory opening an engine connection");
        else
            run_one(s, d, j);
    }
    docker_free(d);
    return NULL;
}

static int admit(void *ctx, struct run_spec *spec, char err[BG_ERRLEN])
{
    struct service *s = ctx;
    struct profile_set *set = service_profiles(s);
    const struct profile *p = profile_find_image(set, spec->image);
    const struct profile none = {0}; /* an allowed image of no profile: the flags alone */
    struct run_limits run, compile;
    int rc = 0;
    if (!profile_image_allowed(set, spec->image))
        rc = bg_fail(err, BG_EINVAL, "this worker's profiles do not name image %.100s",
                     spec->image);
    if (rc == 0) {
        request_limits(p ? p : &none, &s->cfg, &run, &compile);
        request_clamp_limits(&spec->limits, &run);
        request_clamp_limits(&spec->compile_limits, &compile);
        if (spec->limits.artifact_bytes > BATCH_ARTIFACT_MAX)
            spec->limits.artifact_bytes = BATCH_ARTIFACT_MAX;
    }
    profile_set_unref(set);
    return rc;
}

static struct docker *worker_engine(void *ctx) { return engine_new(ctx); }

/* Was an earlier profile's image the same (list each image once)? */
static int seen_image(const struct profile_set *set, size_t i)
{
    for (size_t k = 0; k < i; k++)
        if (strcmp(set->items[k].image, set->items[i].image) == 0)
            return 1;
    return 0;
}

static int worker_images(void *ctx, struct buf *out)
{
    struct service *s = ctx;
    struct profile_set *set = service_profiles(s);
    char err[BG_ERRLEN];
    const char *sep = "";
    int rc = buf_append(out, "[", 1);
    for (size_t i = 0; rc == 0 && i < set->n; i++) {
        const char *image = set->items[i].image;
        if (seen_image(set, i) || service_image_present(s, image, err) != 1)
            continue;
        rc = buf_append(out, sep, strlen(sep));
        if (rc == 0)
            rc = json_quote(image, strlen(image), out);
        sep = ",";
    }
    profile_set_unref(set);
    return rc == 0 ? buf_append(out, "]", 1) : rc;
}

static void worker_ran(void *ctx, const struct run_spec *spec, const struct run_result *res,
                       long wait_ms)
{
    (void)ctx;
    metrics_run(spec->language, run_status_name(res->status), res->duration_ms, wait_ms);
}

/* The threads that run jobs: the shared queue's, or the in-process queue's. */
static int start_workers(struct service *s, char *err)
{
    if (s->cfg.queue) {
        struct worker_options o = {s->redis, s->inst.id, s->cfg.workers, s->cfg.claim_after_s,
                                   s->cfg.result_ttl_s,
                                   {execute, admit, worker_engine, worker_images, worker_ran, s}};
        s->cluster = workers_start(&o, err);
        return s->cluster ? 0 : BG_EIO;
    }
    s->workers = calloc((size_t)s->cfg.workers, sizeof *s->workers);
    if (!s->workers)
        return bg_fail(err, BG_ENOMEM, "out of memory");
    for (long i = 0; i < s->cfg.workers; i++) {
        if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0)
            return bg_fail(err, BG_EIO, "cannot start worker threads");
        s->nworkers++;
    }
    return 0;
}

static void sweep(struct service *s, struct docker *d, int own)
{
    char err[BG_ERRLEN];
    int removed = 0;
    if (reaper_sweep(d, &s->inst, own, &removed, err) < 0)
        log_warn("reaper: %s", err);
    else if (removed)
        log_info("reaper: %d leftover container(s) removed", removed);
}

static void *reaper_main(void *arg)
{
    struct service *s = arg;
    struct docker *d = engine_new(s);
    pthread_mutex_lock(&s->stop_lock);
    while (!atomic_load(&s->stopping)) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += REAP_INTERVAL_S;
        int rc = 0;
        while (!atomic_load(&s->stopping) && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->stop_cond, &s->stop_lock, &until);
        if (atomic_load(&s->stopping) || !d)
            break;
        pthread_mutex_unlock(&s->stop_lock);
        sweep(s, d, 0);
        pthread_mutex_lock(&s->stop_lock);
    }
    pthread_mutex_unlock(&s->stop_lock);
    docker_free(d);
    return NULL;
}

int service_runs_jobs(const struct service *s) { return s->cfg.workers > 0; }

int service_start(struct service *s, char err[BG_ERRLEN])
{
    char version[64], why[BG_ERRLEN];
    if (!service_runs_jobs(s)) /* a bare front door: Redis holds its jobs */
        return 0;
    if (service_engine_version(s, version, why) == 0) {
        log_info("docker engine %s, API %s", version, s->control->version);
        pthread_mutex_lock(&s->control_lock);
        sweep(s, s->control, 0);
        pthread_mutex_unlock(&s->control_lock);
        ensure_supervisor(s, s->control, why);
    } else {
        log_warn("docker engine not reachable yet: %s (runs fail until it is)", why);
    }
    s->pool = pool_new(s->cfg.docker_host, &s->run_ctx, s->cfg.pool);
    if (!s->pool)
        return bg_fail(err, BG_ENOMEM, "out of memory");
    int rc = start_workers(s, err);
    if (rc < 0)
        return rc;
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0)
        return bg_fail(err, BG_EIO, "cannot start the reaper thread");
    s->reaper_started = 1;
    return 0;
}

int service_submit(struct service *s, struct batch *b)
{
    /* A compiled language queues its compile and keeps places for its runs. */
    size_t n = b->compiled ? 1 : b->count, reserve = b->compiled ? b->count : 0;
    b->queued_ms = (long)clock_mono_ms();
    struct job **jobs = calloc(n, sizeof *jobs);
    if (!jobs)
        return BG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        jobs[i] = b->compiled ? &b->compile_job : &b->jobs[i];
        batch_ref(b); /* each queued job holds the batch */
    }
    int rc = s->queue->ops->push(s->queue->self, jobs, n, reserve);
    if (rc < 0)
        for (size_t i = 0; i < n; i++)
            batch_unref(b);
    free(jobs);
    return rc;
}

int service_cluster_workers(struct service *s, struct buf *out, char err[BG_ERRLEN])
{
    if (!s->cfg.queue)
        return bg_fail(err, BG_ENOTFOUND, "no shared queue");
    return s->cluster ? workers_list(s->cluster, out, err) : front_workers(s->queue, out, err);
}

int service_queue_stats(struct service *s, char version[32], struct rq_stats *st,
                        char err[BG_ERRLEN])
{
    if (!s->cfg.queue)
        return bg_fail(err, BG_ENOTFOUND, "no shared queue");
    int rc = s->cluster ? workers_ping(s->cluster, version, err)
                        : front_ping(s->queue, version, err);
    if (rc == 0)
        rc = s->cluster ? workers_stats(s->cluster, st, err) : front_stats(s->queue, st, err);
    return rc;
}

void service_stop(struct service *s)
{
    atomic_store(&s->stopping, 1);
    pthread_mutex_lock(&s->stop_lock);
    pthread_cond_broadcast(&s->stop_cond);
    pthread_mutex_unlock(&s->stop_lock);
    s->queue->ops->close(s->queue->self);
    workers_quit(s->cluster); /* the shared queue keeps what we did not take */
    /* Jobs still waiting after the grace period are answered, not run. */
    long until = (long)(clock_mono_ms() / 1000) + s->cfg.grace_s;
    while ((long)(clock_mono_ms() / 1000) < until && (s->queue->ops->depth(s->queue->self) || atomic_load(&s->busy))) {
        clock_sleep_ms(50);
    }
    struct job *j;
    if (s->cfg.queue && !s->cfg.worker_process) /* results after this are not awaited */
        front_stop_listener(s->queue);
    while ((j = s->queue->ops->try_pop(s->queue->self)) != NULL)
        batch_job_fail(j, "the service is shutting down");
    /* Runs still in flight: removing their containers ends them, and their
     * workers then report the failure and exit. */
    if (atomic_load(&s->busy)) {
        pthread_mutex_lock(&s->control_lock);
        sweep(s, s->control, 1);
        pthread_mutex_unlock(&s->control_lock);
    }
    for (size_t i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    workers_stop(s->cluster);
    /* Nothing of the pool outlives the service. */
    pool_free(s->pool);
    s->pool = NULL;
    /* Runs a compile queued during the drain have no worker left. */
    while ((j = s->queue->ops->try_pop(s->queue->self)) != NULL)
        batch_job_fail(j, "the service is shutting down");
    if (s->reaper_started)
        pthread_join(s->reaper, NULL);
    if (!service_runs_jobs(s))
        return;
    pthread_mutex_lock(&s->control_lock);
    sweep(s, s->control, 1);
    pthread_mutex_unlock(&s->control_lock);
}

void service_free(struct service *s)
{
    workers_free(s->cluster);
    queue_free(s->queue);
    docker_free(s->control);
    profile_set_unref(s->profiles);
    plugins_unref(s->plugins);
    store_free(s->store);
    free(s->workers);
    config_free(&s->cfg);
    pthread_mutex_destroy(&s->profiles_lock);
    pthread_mutex_destroy(&s->control_lock);
    pthread_mutex_destroy(&s->supervisor_lock);
    pthread_mutex_destroy(&s->stop_lock);
    pthread_cond_destroy(&s->stop_cond);
}
