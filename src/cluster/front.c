#include "front.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/log.h"
#include "../core/job.h"
#include "wire.h"

#define BUCKETS 1024
#define LISTEN_WAIT_S 1    /* the listener's BLPOP: also its deadline tick */
#define BACKOFF_MAX_MS 2000

/* A job sent to Redis and not answered yet. */
struct entry {
    unsigned long long seq;
    struct job *job;
    long deadline_s; /* monotonic */
    struct entry *next;
};

struct front {
    struct queue base;
    struct front_options o;
    char id[200];
    char reply_key[256];

    pthread_mutex_t conn_lock; /* guards conn (leaf) */
    struct rq *conn;           /* pushes, pings, statistics */

    pthread_mutex_t lock; /* guards the table and counters (leaf) */
    struct entry *buckets[BUCKETS];
    size_t outstanding, reserved;
    unsigned long long seq;
    int closed;

    pthread_t listener;
    int listening;
    atomic_int stop;
    struct rq *listen_conn; /* the listener's own: BLPOP blocks it */
};

char *front_header_encode(const struct front_header *h)
{
    cJSON *j = cJSON_CreateObject();
    char *text = NULL;
    if (!j)
        return NULL;
    if (cJSON_AddNumberToObject(j, "job", (double)h->seq) &&
        cJSON_AddStringToObject(j, "reply", h->reply) &&
        cJSON_AddStringToObject(j, "spec", h->spec) &&
        cJSON_AddNumberToObject(j, "queued", (double)h->queued_ms) &&
        cJSON_AddNumberToObject(j, "deadline", (double)h->deadline_ms) &&
        cJSON_AddStringToObject(j, "request", h->request_id))
        text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

static int copy_string(const cJSON *j, const char *name, char *out, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= size)
        return BG_EINVAL;
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return 0;
}

/* Integral, non-negative and exact in a double. */
static int read_count(const cJSON *j, const char *name, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != (double)(long long)v->valuedouble)
        return BG_EINVAL;
    *out = v->valuedouble;
    return 0;
}

int front_header_decode(const char *text, size_t len, struct front_header *h)
{
    cJSON *j = cJSON_ParseWithLength(text, len);
    double seq = 0, queued = 0, deadline = 0;
    memset(h, 0, sizeof *h);
    int rc = BG_EINVAL;
    if (cJSON_IsObject(j) && read_count(j, "job", &seq) == 0 &&
        read_count(j, "queued", &queued) == 0 && read_count(j, "deadline", &deadline) == 0 &&
        copy_string(j, "reply", h->reply, sizeof h->reply) == 0 &&
        copy_string(j, "spec", h->spec, sizeof h->spec) == 0 &&
        copy_string(j, "request", h->request_id, sizeof h->request_id) == 0 &&
        strncmp(h->reply, "bg:reply:", 9) == 0 && strncmp(h->spec, "bg:spec:", 8) == 0) {
        h->seq = (unsigned long long)seq;
        h->queued_ms = (long long)queued;
        h->deadline_ms = (long long)deadline;
        rc = 0;
    }
    cJSON_Delete(j);
    return rc;
}

char *front_reply_encode(unsigned long long seq, const char *result, size_t len, size_t *out_len)
{
    struct buf b = BUF_INIT;
    if (buf_appendf(&b, "%llu\n", seq) < 0 || buf_append(&b, result, len) < 0) {
        buf_free(&b);
        return NULL;
    }
    *out_len = b.len;
    return buf_steal(&b);
}

/* --- the table of unanswered jobs (f->lock held) --- */

static void table_add(struct front *f, struct entry *e)
{
    struct entry **b = &f->buckets[e->seq % BUCKETS];
    e->next = *b;
    *b = e;
    f->outstanding++;
}

static struct entry *table_take(struct front *f, unsigned long long seq)
{
    for (struct entry **p = &f->buckets[seq % BUCKETS]; *p; p = &(*p)->next)
        if ((*p)->seq == seq) {
            struct entry *e = *p;
            *p = e->next;
            f->outstanding--;
            return e;
        }
    return NULL;
}

/* Any entry whose deadline passed (or any at all when now < 0). */
static struct entry *table_take_due(struct front *f, long now)
{
    for (size_t i = 0; i < BUCKETS; i++)
        for (struct entry **p = &f->buckets[i]; *p; p = &(*p)->next)
            if (now < 0 || (*p)->deadline_s <= now) {
                struct entry *e = *p;
                *p = e->next;
                f->outstanding--;
                return e;
            }
    return NULL;
}

/* --- queue_ops --- */

/* The entries of n jobs, headers encoded; all or nothing. */
static int make_entries(struct front *f, struct job **jobs, size_t n, char *spec_key,
                        struct entry **entries, char **headers)
{
    long long now = clock_wall_ms(), deadline = now + f->o.queue_timeout_s * 1000LL;
    for (size_t i = 0; i < n; i++) {
        struct front_header h = {0};
        entries[i] = calloc(1, sizeof *entries[i]);
        if (!entries[i])
            return BG_ENOMEM;
        pthread_mutex_lock(&f->lock);
        h.seq = ++f->seq;
        pthread_mutex_unlock(&f->lock);
        if (i == 0) /* the spec is named after its first job */
            snprintf(spec_key, sizeof h.spec, "bg:spec:%s:%llu", f->id, h.seq);
        snprintf(h.reply, sizeof h.reply, "%s", f->reply_key);
        snprintf(h.spec, sizeof h.spec, "%s", spec_key);
        h.queued_ms = now;
        h.deadline_ms = deadline;
        snprintf(h.request_id, sizeof h.request_id, "%s", jobs[i]->batch->request_id);
        headers[i] = front_header_encode(&h);
        if (!headers[i])
            return BG_ENOMEM;
        *entries[i] = (struct entry){h.seq, jobs[i], (long)(clock_mono_ms() / 1000) + f->o.queue_timeout_s, NULL};
    }
    return 0;
}

static int table_has(struct front *f, unsigned long long seq)
{
    for (struct entry *e = f->buckets[seq % BUCKETS]; e; e = e->next)
        if (e->seq == seq)
            return 1;
    return 0;
}

/*
 * A push failed: take its n jobs back out of the table, so the caller
 * answers the request, and give back its reserved places. While Redis was
 * slow to fail, a deadline, a drain or a result may have answered some of
 * them already; then nothing is taken back (0) and the rest are answered
 * the same way, so no job is answered twice.
 */
static int take_back(struct front *f, const unsigned long long *seqs, size_t n, size_t reserve)
{
    size_t present = 0;
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < n; i++)
        present += table_has(f, seqs[i]);
    if (present == n) {
        for (size_t i = 0; i < n; i++)
            free(table_take(f, seqs[i]));
        f->reserved -= reserve <= f->reserved ? reserve : f->reserved;
    }
    pthread_mutex_unlock(&f->lock);
    return present == n;
}

/* Queue n jobs sharing one spec, keeping `reserve` more places, or into
 * places reserved earlier (use_reserved). */
static int send_jobs(struct front *f, struct job **jobs, size_t n, size_t reserve,
                     int use_reserved)
{
    char err[BG_ERRLEN];
    size_t spec_len = 0;
    char *spec = wire_spec_encode(batch_job_spec(jobs[0]), &spec_len);
    char spec_key[256];
    struct entry **entries = calloc(n, sizeof *entries);
    char **headers = calloc(n, sizeof *headers);
    unsigned long long *seqs = calloc(n, sizeof *seqs);
    size_t owned = n; /* entries still ours to free */
    int rc = BG_ENOMEM;
    if (!spec || !entries || !headers || !seqs ||
        make_entries(f, jobs, n, spec_key, entries, headers))
        goto out;
    pthread_mutex_lock(&f->lock);
    rc = f->closed && !use_reserved ? BG_ECLOSED : 0;
    size_t extra = use_reserved ? 0 : f->reserved + reserve;
    if (rc == 0) { /* in the table before Redis has them: a quick result finds its job */
        for (size_t i = 0; i < n; i++) {
            seqs[i] = entries[i]->seq;
            table_add(f, entries[i]);
        }
        owned = 0; /* the table's now: the listener or a drain may free them */
        f->reserved = use_reserved ? (f->reserved > n ? f->reserved - n : 0) : f->reserved + reserve;
    }
    pthread_mutex_unlock(&f->lock);
    if (rc < 0)
        goto out;
    pthread_mutex_lock(&f->conn_lock);
    rc = rq_push(f->conn, spec_key, spec, spec_len, f->o.queue_timeout_s + 60,
                 (const char *const *)headers, n, use_reserved ? LONG_MAX / 2 : f->o.backlog,
                 (long)extra, err);
    pthread_mutex_unlock(&f->conn_lock);
    if (rc < 0 && rc != BG_EFULL)
        log_warn("front: cannot queue %zu job(s) of request %s: %s", n,
                 jobs[0]->batch->request_id, err);
    if (rc < 0 && !take_back(f, seqs, n, use_reserved ? 0 : reserve))
        rc = 0; /* some were answered meanwhile: the rest will be, the same way */
out:
    for (size_t i = 0; entries && i < owned; i++)
        free(entries[i]);
    for (size_t i = 0; headers && i < n; i++)
        free(headers[i]);
    free(entries);
    free(headers);
    free(seqs);
    free(spec);
    return rc;
}

static int f_push(void *self, struct job **jobs, size_t n, size_t reserve)
{
    return send_jobs(self, jobs, n, reserve, 0);
}

static int f_push_reserved(void *self, struct job **jobs, size_t n)
{
    return send_jobs(self, jobs, n, 0, 1);
}

static void f_release(void *self, size_t n)
{
    struct front *f = self;
    pthread_mutex_lock(&f->lock);
    f->reserved -= n <= f->reserved ? n : f->reserved;
    pthread_mutex_unlock(&f->lock);
}

static struct job *f_pop(void *self)
{
    (void)self; /* workers of a shared queue take jobs from Redis */
    return NULL;
}

static struct job *f_try_pop(void *self)
{
    struct front *f = self;
    pthread_mutex_lock(&f->lock);
    struct entry *e = table_take_due(f, -1);
    pthread_mutex_unlock(&f->lock);
    if (!e)
        return NULL;
    struct job *j = e->job;
    free(e);
    return j;
}

static void f_close(void *self)
{
    struct front *f = self;
    pthread_mutex_lock(&f->lock);
    f->closed = 1;
    pthread_mutex_unlock(&f->lock);
}

static size_t f_depth(void *self)
{
    struct front *f = self;
    pthread_mutex_lock(&f->lock);
    size_t n = f->outstanding;
    pthread_mutex_unlock(&f->lock);
    return n;
}

void front_stop_listener(struct queue *q)
{
    struct front *f = q->self;
    atomic_store(&f->stop, 1);
    if (f->listening)
        pthread_join(f->listener, NULL);
    f->listening = 0;
}

static void f_free(void *self)
{
    struct front *f = self;
    char err[BG_ERRLEN];
    front_stop_listener(&f->base);
    struct job *j;
    while ((j = f_try_pop(f)) != NULL) /* the service answered them already */
        ;
    if (f->listen_conn && rq_del(f->listen_conn, f->reply_key, err) < 0)
        log_debug("front: %s", err);
    rq_free(f->conn);
    rq_free(f->listen_conn);
    pthread_mutex_destroy(&f->lock);
    pthread_mutex_destroy(&f->conn_lock);
    free(f);
}

static const struct queue_ops front_ops = {
    f_push, f_push_reserved, f_release, f_pop, f_try_pop, f_close, f_depth, f_free,
};

/* --- the listener --- */

static void answer(struct front *f, struct entry *e, const char *text, size_t len)
{
    struct run_result *res = batch_job_result(e->job);
    char err[BG_ERRLEN];
    run_result_free(res);
    if (wire_result_decode(text, len, res, err) < 0) {
        log_error("front: a worker's result for job %llu is unreadable: %s", e->seq, err);
        run_result_fail(res, "a worker sent a result that could not be read");
    }
    struct job *j = e->job;
    free(e);
    f->o.done(j, f->o.arg);
}

static void deliver(struct front *f, const struct buf *reply)
{
    char *end;
    unsigned long long seq = strtoull(reply->data, &end, 10);
    if (end == reply->data || *end != '\n') {
        log_warn("front: dropped a malformed reply on %s", f->reply_key);
        return;
    }
    pthread_mutex_lock(&f->lock);
    struct entry *e = table_take(f, seq);
    pthread_mutex_unlock(&f->lock);
    if (!e) { /* answered already: a job run twice, or past its deadline */
        log_debug("front: dropped a second result for job %llu", seq);
        return;
    }
    end++;
    answer(f, e, end, reply->len - (size_t)(end - reply->data));
}

static void fail_overdue(struct front *f)
{
    long now = (long)(clock_mono_ms() / 1000);
    for (;;) {
        pthread_mutex_lock(&f->lock);
        struct entry *e = table_take_due(f, now);
        pthread_mutex_unlock(&f->lock);
        if (!e)
            return;
        run_result_fail(batch_job_result(e->job), "no worker answered within %ld s (queue timeout)",
                        f->o.queue_timeout_s);
        struct job *j = e->job;
        free(e);
        f->o.done(j, f->o.arg);
    }
}

static void *listen_main(void *arg)
{
    struct front *f = arg;
    struct buf reply = BUF_INIT;
    char err[BG_ERRLEN];
    struct backoff b = {0};
    while (!atomic_load(&f->stop)) {
        int rc = rq_pop_reply(f->listen_conn, f->reply_key, LISTEN_WAIT_S, &reply, err);
        if (rc == 1)
            deliver(f, &reply);
        if (rc < 0) {
            if (backoff_fail(&b, BACKOFF_MAX_MS))
                log_warn("front: Redis unreachable, results wait: %s", err);
            clock_sleep_ms(b.ms);
        } else if (backoff_ok(&b)) {
            log_info("front: Redis answers again");
        }
        fail_overdue(f);
    }
    buf_free(&reply);
    return NULL;
}

struct queue *front_new(const struct front_options *o, char err[BG_ERRLEN])
{
    struct front *f = calloc(1, sizeof *f);
    if (!f) {
        bg_fail(err, BG_ENOMEM, "out of memory");
        return NULL;
    }
    f->o = *o;
    f->base.ops = &front_ops;
    f->base.self = f;
    /* Keys may not hold the instance id's slashes badly; keep it readable. */
    snprintf(f->id, sizeof f->id, "%s", o->id);
    for (char *p = f->id; *p; p++)
        if (*p == '/')
            *p = ':';
    snprintf(f->reply_key, sizeof f->reply_key, "bg:reply:%s", f->id);
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->conn_lock, NULL);
    f->conn = rq_new(&o->url);
    f->listen_conn = rq_new(&o->url);
    if (!f->conn || !f->listen_conn) {
        bg_fail(err, BG_ENOMEM, "out of memory");
        goto fail;
    }
    if (pthread_create(&f->listener, NULL, listen_main, f) != 0) {
        bg_fail(err, BG_EIO, "cannot start the result listener");
        goto fail;
    }
    f->listening = 1;
    return &f->base;
fail:
    f_free(f);
    return NULL;
}

int front_ping(struct queue *q, char version[32], char err[BG_ERRLEN])
{
    struct front *f = q->self;
    pthread_mutex_lock(&f->conn_lock);
    int rc = rq_ping(f->conn, version, err);
    pthread_mutex_unlock(&f->conn_lock);
    return rc;
}

int front_workers(struct queue *q, struct buf *out, char err[BG_ERRLEN])
{
    struct front *f = q->self;
    pthread_mutex_lock(&f->conn_lock);
    int rc = rq_workers(f->conn, out, err);
    pthread_mutex_unlock(&f->conn_lock);
    return rc;
}

int front_stats(struct queue *q, struct rq_stats *out, char err[BG_ERRLEN])
{
    struct front *f = q->self;
    pthread_mutex_lock(&f->conn_lock);
    int rc = rq_stats(f->conn, out, err);
    pthread_mutex_unlock(&f->conn_lock);
    return rc;
}
