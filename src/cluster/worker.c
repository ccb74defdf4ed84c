#include "worker.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/jsonstr.h"
#include "../common/log.h"
#include "front.h"
#include "wire.h"

#define TAKE_BLOCK_MS 1000
#define BACKOFF_MAX_MS 5000
#define PRUNE_EVERY_S 60
#define PRUNE_IDLE_MS (10 * 60 * 1000L) /* a consumer silent this long has left */

struct workers {
    struct worker_options o;
    char consumer[200];
    pthread_t *threads;
    size_t nthreads;
    atomic_int stopping;    /* take no more jobs */
    atomic_int keeper_stop; /* the job threads are gone */

    pthread_mutex_t lock;  /* guards inflight and conn (leaf) */
    char (*inflight)[64];  /* per thread: the entry it runs, "" when none */
    struct rq *conn;       /* keepalive, statistics, pings */
    pthread_t keeper, announcer;
    int keeping, announcing;
};

/* One job on one thread. */
struct task {
    struct workers *w;
    struct rq *conn;
    struct rq_msg *msg;
    struct front_header h;
    const struct run_spec *spec;
    long long started_ms; /* wall clock, as the header's times */
    struct run_result res;
};

/* Push the task's result to its front door and acknowledge the job. */
static void reply(struct task *t)
{
    char err[BG_ERRLEN];
    size_t len = 0, out_len = 0;
    char *res = wire_result_encode(&t->res, &len);
    char *text = res ? front_reply_encode(t->h.seq, res, len, &out_len) : NULL;
    if (!text)
        log_error("worker: out of memory encoding the result of job %s", t->msg->id);
    else if (rq_finish(t->conn, t->msg->id, t->h.reply, t->h.spec, text, out_len,
                       t->w->o.result_ttl_s, err) < 0)
        /* Unacknowledged, the job is taken over and run again elsewhere. */
        log_error("worker: cannot deliver the result of job %s: %s", t->msg->id, err);
    free(text);
    free(res);
}

/* Answer without a run. */
static void refuse(struct task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(struct task *t, const char *fmt, ...)
{
    char message[BG_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    run_result_fail(&t->res, "%s", message);
    log_warn("[%s] worker: %s", t->h.request_id, t->res.message);
    reply(t);
}

/* The run's result is known (called before the container goes). */
static void run_done(void *arg)
{
    struct task *t = arg;
    /* Our own shutdown cut the run short: leave it to another worker. */
    if (t->res.status == RUN_INTERNAL_ERROR && atomic_load(&t->w->stopping))
        return;
    log_info("[%s] job %s: %s in %ld ms", t->h.request_id, t->msg->id,
             run_status_name(t->res.status), t->res.duration_ms);
    t->w->o.exec.ran(t->w->o.exec.ctx, t->spec, &t->res,
                     (long)(t->started_ms - t->h.queued_ms));
    reply(t);
}

static void set_inflight(struct workers *w, size_t slot, const char *id)
{
    pthread_mutex_lock(&w->lock);
    snprintf(w->inflight[slot], sizeof w->inflight[slot], "%s", id);
    pthread_mutex_unlock(&w->lock);
}

/* Check, fetch and run one job the thread took. */
static void handle(struct workers *w, size_t slot, struct rq *conn, struct docker *d,
                   struct rq_msg *msg)
{
    struct task t = {.w = w, .conn = conn, .msg = msg};
    struct run_spec spec = {0};
    struct buf text = BUF_INIT;
    char err[BG_ERRLEN];
    run_result_init(&t.res);
    if (front_header_decode(msg->job.data, msg->job.len, &t.h) < 0) {
        log_error("worker: job %s has an unreadable header: dropped", msg->id);
        rq_finish(conn, msg->id, "", "", "", 0, w->o.result_ttl_s, err);
        goto out;
    }
    if (msg->claimed && rq_count(conn, "claimed", err) < 0)
        log_warn("worker: %s", err);
    if (msg->deliveries > RQ_MAX_DELIVERIES) {
        rq_count(conn, "dead", err);
        refuse(&t, "the job was given to %d workers and none finished it (given up)",
               RQ_MAX_DELIVERIES);
        goto out;
    }
    if (clock_wall_ms() > t.h.deadline_ms) {
        refuse(&t, "the job waited in the queue past its deadline");
        goto out;
    }
    int got = rq_get_spec(conn, t.h.spec, &text, err);
    if (got <= 0) {
        refuse(&t, "the job's files are gone from the queue: %s", got < 0 ? err : "expired");
        goto out;
    }
    if (wire_spec_decode(text.data, text.len, &spec, err) < 0) {
        refuse(&t, "the job's spec is unreadable: %s", err);
        goto out;
    }
    if (w->o.exec.admit(w->o.exec.ctx, &spec, err) < 0) {
        refuse(&t, "%s", err);
        goto out;
    }
    if (atomic_load(&w->stopping)) /* taken as we began to stop: leave it to another */
        goto out;
    t.spec = &spec;
    t.started_ms = clock_wall_ms();
    set_inflight(w, slot, msg->id);
    w->o.exec.execute(w->o.exec.ctx, d, &spec, &t.res, run_done, &t);
    set_inflight(w, slot, "");
out:
    run_spec_free(&spec);
    run_result_free(&t.res);
    buf_free(&text);
}

struct thread_arg {
    struct workers *w;
    size_t slot;
};

static void *thread_main(void *arg)
{
    struct thread_arg *a = arg;
    struct workers *w = a->w;
    size_t slot = a->slot;
    free(a);
    struct rq *conn = rq_new(&w->o.url);
    struct docker *d = w->o.exec.engine_new(w->o.exec.ctx);
    struct rq_msg msg = {.job = BUF_INIT};
    char err[BG_ERRLEN];
    struct backoff b = {0};
    while (conn && d && !atomic_load(&w->stopping)) {
        int rc = rq_take(conn, w->consumer, w->o.claim_after_s * 1000L, TAKE_BLOCK_MS, &msg, err);
        if (rc < 0) {
            if (backoff_fail(&b, BACKOFF_MAX_MS))
                log_warn("worker: cannot take jobs: %s (retrying)", err);
            clock_sleep_ms(b.ms);
            continue;
        }
        if (backoff_ok(&b))
            log_info("worker: Redis answers again");
        if (rc == 1)
            handle(w, slot, conn, d, &msg);
    }
    if (!conn || !d)
        log_error("worker: out of memory starting a worker thread");
    buf_free(&msg.job);
    docker_free(d);
    rq_free(conn);
    return NULL;
}

/* What this worker says of itself to front doors. */
static int describe(struct workers *w, struct buf *out)
{
    size_t busy = 0;
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->nthreads; i++)
        busy += w->inflight[i][0] != '\0';
    pthread_mutex_unlock(&w->lock);
    buf_reset(out);
    int rc = buf_appendf(out, "{\"id\":");
    if (rc == 0)
        rc = json_quote(w->consumer, strlen(w->consumer), out);
    if (rc == 0)
        rc = buf_appendf(out, ",\"threads\":%zu,\"busy\":%zu,\"images\":", w->nthreads, busy);
    if (rc == 0) /* asks the engine: never under w->lock */
        rc = w->o.exec.images(w->o.exec.ctx, out);
    return rc == 0 ? buf_append(out, "}", 1) : rc;
}

/* Keep our running jobs ours, and now and then forget consumers that left. */
static void keep(struct workers *w, long *pruned_at)
{
    char err[BG_ERRLEN];
    const char **ids = calloc(w->nthreads, sizeof *ids);
    size_t n = 0;
    if (!ids)
        return;
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->nthreads; i++)
        if (w->inflight[i][0])
            ids[n++] = w->inflight[i];
    if (rq_keepalive(w->conn, w->consumer, ids, n, err) < 0)
        log_warn("worker: keepalive: %s", err);
    long now = (long)(clock_wall_ms() / 1000);
    if (now - *pruned_at >= PRUNE_EVERY_S) {
        *pruned_at = now;
        if (rq_prune_consumers(w->conn, PRUNE_IDLE_MS, err) < 0)
            log_debug("worker: pruning consumers: %s", err);
    }
    pthread_mutex_unlock(&w->lock);
    free(ids);
}

static long tick_ms(const struct workers *w)
{
    long every_ms = w->o.claim_after_s * 1000L / 3;
    return every_ms < 200 ? 200 : every_ms;
}

/* Sleep one tick, or less once flag is set. */
static void tick(const struct workers *w, atomic_int *flag)
{
    for (long slept = 0; slept < tick_ms(w) && !atomic_load(flag); slept += 100)
        clock_sleep_ms(100);
}

/* The keepalive runs until the job threads are joined: runs finishing
 * during a shutdown's grace stay ours. */
static void *keeper_main(void *arg)
{
    struct workers *w = arg;
    long pruned_at = 0;
    while (!atomic_load(&w->keeper_stop)) {
        keep(w, &pruned_at);
        tick(w, &w->keeper_stop);
    }
    return NULL;
}

/* Announce this worker every tick (its own thread: the image list asks the
 * engine, which must never hold up the keepalive); withdraw on shutdown. */
static void *announcer_main(void *arg)
{
    struct workers *w = arg;
    struct buf info = BUF_INIT;
    char err[BG_ERRLEN];
    while (!atomic_load(&w->stopping)) {
        if (describe(w, &info) == 0) {
            pthread_mutex_lock(&w->lock);
            if (rq_announce(w->conn, w->consumer, info.data, 3 * tick_ms(w), err) < 0)
                log_debug("worker: announce: %s", err);
            pthread_mutex_unlock(&w->lock);
        }
        tick(w, &w->stopping);
    }
    pthread_mutex_lock(&w->lock);
    if (rq_announce(w->conn, w->consumer, NULL, 0, err) < 0)
        log_debug("worker: withdraw: %s", err);
    pthread_mutex_unlock(&w->lock);
    buf_free(&info);
    return NULL;
}

struct workers *workers_start(const struct worker_options *o, char err[BG_ERRLEN])
{
    struct workers *w = calloc(1, sizeof *w);
    if (!w) {
        bg_fail(err, BG_ENOMEM, "out of memory");
        return NULL;
    }
    w->o = *o;
    snprintf(w->consumer, sizeof w->consumer, "%s", o->consumer);
    pthread_mutex_init(&w->lock, NULL);
    w->threads = calloc((size_t)o->threads, sizeof *w->threads);
    w->inflight = calloc((size_t)o->threads, sizeof *w->inflight);
    w->conn = rq_new(&o->url);
    if (!w->threads || !w->inflight || !w->conn) {
        bg_fail(err, BG_ENOMEM, "out of memory");
        goto fail;
    }
    for (long i = 0; i < o->threads; i++) {
        struct thread_arg *a = malloc(sizeof *a);
        if (a)
            *a = (struct thread_arg){w, (size_t)i};
        if (!a || pthread_create(&w->threads[i], NULL, thread_main, a) != 0) {
            free(a);
            bg_fail(err, BG_EIO, "cannot start worker threads");
            goto fail;
        }
        w->nthreads++;
    }
    if (pthread_create(&w->keeper, NULL, keeper_main, w) != 0) {
        bg_fail(err, BG_EIO, "cannot start the keepalive thread");
        goto fail;
    }
    w->keeping = 1;
    if (pthread_create(&w->announcer, NULL, announcer_main, w) != 0) {
        bg_fail(err, BG_EIO, "cannot start the announcing thread");
        goto fail;
    }
    w->announcing = 1;
    return w;
fail:
    workers_free(w);
    return NULL;
}

void workers_quit(struct workers *w)
{
    if (w)
        atomic_store(&w->stopping, 1);
}

void workers_stop(struct workers *w)
{
    if (!w)
        return;
    atomic_store(&w->stopping, 1);
    for (size_t i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    atomic_store(&w->keeper_stop, 1);
    if (w->keeping)
        pthread_join(w->keeper, NULL);
    if (w->announcing)
        pthread_join(w->announcer, NULL);
    w->keeping = w->announcing = 0;
    w->nthreads = 0; /* last: the keeper and announcer read it */
}

void workers_free(struct workers *w)
{
    if (!w)
        return;
    workers_stop(w);
    rq_free(w->conn);
    free(w->threads);
    free(w->inflight);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

int workers_ping(struct workers *w, char version[32], char err[BG_ERRLEN])
{
    pthread_mutex_lock(&w->lock);
    int rc = rq_ping(w->conn, version, err);
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int workers_list(struct workers *w, struct buf *out, char err[BG_ERRLEN])
{
    pthread_mutex_lock(&w->lock);
    int rc = rq_workers(w->conn, out, err);
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int workers_stats(struct workers *w, struct rq_stats *out, char err[BG_ERRLEN])
{
    pthread_mutex_lock(&w->lock);
    int rc = rq_stats(w->conn, out, err);
    pthread_mutex_unlock(&w->lock);
    return rc;
}
