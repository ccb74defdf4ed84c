#include "pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"

#define MAX_KINDS 64

struct kind {
    char image[256];
    struct run_limits limits; /* only the container's: memory, pids, ... */
    int target;               /* how many should wait */
    int ready_n, starting;
    struct run_container ready[POOL_PER_KIND];
    time_t last_used;
};

#define REFILL_THREADS 2 /* starts overlap in the engine: two at once keep up better */

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t refill[REFILL_THREADS];
    int started, stopping;
    long cap;
    struct kind kinds[MAX_KINDS];
    size_t nkinds;
    char *docker_host;
    struct run_context ctx;
};

static time_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* The part of the limits that shapes the container (the supervisor gets
 * the time and output limits with each job, so they may differ freely). */
static void container_part(const struct run_limits *l, struct run_limits *out)
{
    memset(out, 0, sizeof *out);
    out->memory_mb = l->memory_mb;
    out->pids = l->pids;
    out->nofile = l->nofile;
    out->tmpfs_mb = l->tmpfs_mb;
    out->cpu_shares = l->cpu_shares;
}

/* The kind of spec's container (lock held); created when make is set. */
static struct kind *kind_of(struct pool *p, const struct run_spec *spec, int make)
{
    struct run_limits l;
    container_part(run_container_limits(spec), &l);
    for (size_t i = 0; i < p->nkinds; i++)
        if (strcmp(p->kinds[i].image, spec->image) == 0 &&
            memcmp(&p->kinds[i].limits, &l, sizeof l) == 0)
            return &p->kinds[i];
    if (!make || p->nkinds == MAX_KINDS || strlen(spec->image) >= sizeof p->kinds[0].image)
        return NULL;
    struct kind *k = &p->kinds[p->nkinds++];
    memset(k, 0, sizeof *k);
    strcpy(k->image, spec->image);
    k->limits = l;
    k->last_used = now_s();
    return k;
}

static long total(const struct pool *p)
{
    long n = 0;
    for (size_t i = 0; i < p->nkinds; i++)
        n += p->kinds[i].ready_n + p->kinds[i].starting;
    return n;
}

static long total_target(const struct pool *p)
{
    long n = 0;
    for (size_t i = 0; i < p->nkinds; i++)
        n += p->kinds[i].target;
    return n;
}

int pool_take(struct pool *p, const struct run_spec *spec, struct run_container *out)
{
    /* A request with a memory of its own would make a kind nobody else
     * shares: it runs cold and asks the pool for nothing. */
    if (!p || p->cap <= 0 || spec->limits.custom_memory)
        return 0;
    pthread_mutex_lock(&p->lock);
    struct kind *k = kind_of(p, spec, 1);
    int got = 0;
    if (k) {
        k->last_used = now_s();
        if (k->ready_n > 0) {
            *out = k->ready[--k->ready_n];
            got = 1;
        } else if (k->target < POOL_PER_KIND && total_target(p) < p->cap) {
            k->target++; /* a miss: keep one more of this kind ready */
        }
        pthread_cond_signal(&p->wake); /* refill what was taken */
    }
    pthread_mutex_unlock(&p->lock);
    return got;
}

void pool_warm(struct pool *p, const struct run_spec *spec, int n)
{
    if (!p || p->cap <= 0)
        return;
    pthread_mutex_lock(&p->lock);
    struct kind *k = kind_of(p, spec, 1);
    while (k && k->target < n && k->target < POOL_PER_KIND && total_target(p) < p->cap)
        k->target++;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

long pool_ready(struct pool *p)
{
    if (!p)
        return 0;
    pthread_mutex_lock(&p->lock);
    long n = 0;
    for (size_t i = 0; i < p->nkinds; i++)
        n += p->kinds[i].ready_n;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* A kind short of its target, or NULL (lock held). Idle kinds shrink. */
static struct kind *next_short(struct pool *p, struct run_container *expired, int *nexpired)
{
    time_t t = now_s();
    *nexpired = 0;
    for (size_t i = 0; i < p->nkinds; i++) {
        struct kind *k = &p->kinds[i];
        if (k->target && t - k->last_used > POOL_IDLE_S) {
            k->target = 0; /* nobody asked for this kind for a while */
            while (k->ready_n && *nexpired < POOL_PER_KIND)
                expired[(*nexpired)++] = k->ready[--k->ready_n];
            return NULL;
        }
    }
    for (size_t i = 0; i < p->nkinds; i++) {
        struct kind *k = &p->kinds[i];
        if (k->ready_n + k->starting < k->target && total(p) < p->cap)
            return k;
    }
    return NULL;
}

static struct docker *engine(const struct pool *p)
{
    struct dk_transport *t = transport_curl_new(p->docker_host);
    return t ? docker_new(t) : NULL;
}

static void *refill_main(void *arg)
{
    struct pool *p = arg;
    struct run_container expired[POOL_PER_KIND];
    int nexpired;
    struct docker *d = engine(p); /* each refill thread its own connection */
    if (!d)
        return NULL;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        struct kind *k = next_short(p, expired, &nexpired);
        if (nexpired) {
            pthread_mutex_unlock(&p->lock);
            for (int i = 0; i < nexpired; i++)
                run_container_discard(d, &expired[i]);
            pthread_mutex_lock(&p->lock);
            continue;
        }
        if (!k) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 5;
            pthread_cond_timedwait(&p->wake, &p->lock, &until);
            continue;
        }
        k->starting++;
        char image[256];
        struct run_limits limits = k->limits;
        strcpy(image, k->image);
        pthread_mutex_unlock(&p->lock);
        struct run_container c;
        char err[BG_ERRLEN];
        int rc = run_container_open(d, &p->ctx, image, &limits, &c, err);
        pthread_mutex_lock(&p->lock);
        k->starting--;
        if (rc == 0 && !p->stopping && k->ready_n < POOL_PER_KIND) {
            k->ready[k->ready_n++] = c;
            continue;
        }
        pthread_mutex_unlock(&p->lock);
        run_container_discard(d, &c);
        if (rc < 0) {
            /* The engine is away or the image missing: back off, and let
             * demand (a miss) ask again. */
            log_warn("pool: cannot make a ready container of %s: %s", image, err);
            struct timespec pause = {2, 0};
            nanosleep(&pause, NULL);
        }
        pthread_mutex_lock(&p->lock);
        if (rc < 0)
            k->target = 0;
    }
    pthread_mutex_unlock(&p->lock);
    docker_free(d);
    return NULL;
}

struct pool *pool_new(const char *docker_host, const struct run_context *ctx, long cap)
{
    struct pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->cap = cap;
    p->ctx = *ctx;
    p->docker_host = docker_host ? strdup(docker_host) : NULL;
    for (int i = 0; cap > 0 && i < REFILL_THREADS; i++)
        if (pthread_create(&p->refill[i], NULL, refill_main, p) == 0)
            p->started++;
    if (!p->started)
        p->cap = 0; /* no refill: every run goes cold */
    return p;
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->refill[i], NULL);
    struct docker *d = engine(p);
    for (size_t i = 0; d && i < p->nkinds; i++)
        while (p->kinds[i].ready_n)
            run_container_discard(d, &p->kinds[i].ready[--p->kinds[i].ready_n]);
    docker_free(d);
    free(p->docker_host);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p);
}
