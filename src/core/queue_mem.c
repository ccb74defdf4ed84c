#include "queue.h"

#include <pthread.h>
#include <stdlib.h>

#include "../common/err.h"

struct mem_queue {
    struct queue base;
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    struct job **ring;
    size_t cap, head, len;
    size_t reserved; /* places promised to jobs not queued yet */
    int closed;
};

static void append(struct mem_queue *q, struct job **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        q->ring[(q->head + q->len++) % q->cap] = jobs[i];
    pthread_cond_broadcast(&q->nonempty);
}

static int m_push(void *self, struct job **jobs, size_t n, size_t reserve)
{
    struct mem_queue *q = self;
    int rc = 0;
    pthread_mutex_lock(&q->lock);
    if (q->closed)
        rc = BG_ECLOSED;
    else if (n + reserve > q->cap - q->len - q->reserved)
        rc = BG_EFULL; /* all or nothing: no part of a request waits alone */
    else {
        q->reserved += reserve;
        append(q, jobs, n);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

static int m_push_reserved(void *self, struct job **jobs, size_t n)
{
    struct mem_queue *q = self;
    pthread_mutex_lock(&q->lock);
    q->reserved -= n <= q->reserved ? n : q->reserved;
    /* The places were kept, so this fits even while closing: accepted work
     * is finished or answered, never dropped. */
    append(q, jobs, n);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

static void m_release(void *self, size_t n)
{
    struct mem_queue *q = self;
    pthread_mutex_lock(&q->lock);
    q->reserved -= n <= q->reserved ? n : q->reserved;
    pthread_mutex_unlock(&q->lock);
}

static struct job *take(struct mem_queue *q)
{
    struct job *j = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    return j;
}

static struct job *m_pop(void *self)
{
    struct mem_queue *q = self;
    struct job *j = NULL;
    pthread_mutex_lock(&q->lock);
    while (!q->len && !q->closed)
        pthread_cond_wait(&q->nonempty, &q->lock);
    if (q->len)
        j = take(q);
    pthread_mutex_unlock(&q->lock);
    return j;
}

static struct job *m_try_pop(void *self)
{
    struct mem_queue *q = self;
    struct job *j = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->len)
        j = take(q);
    pthread_mutex_unlock(&q->lock);
    return j;
}

static void m_close(void *self)
{
    struct mem_queue *q = self;
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}

static size_t m_depth(void *self)
{
    struct mem_queue *q = self;
    pthread_mutex_lock(&q->lock);
    size_t n = q->len;
    pthread_mutex_unlock(&q->lock);
    return n;
}

static void m_free(void *self)
{
    struct mem_queue *q = self;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->nonempty);
    free(q->ring);
    free(q);
}

static const struct queue_ops mem_ops = {
    .push = m_push,
    .push_reserved = m_push_reserved,
    .release = m_release,
    .pop = m_pop,
    .try_pop = m_try_pop,
    .close = m_close,
    .depth = m_depth,
    .free = m_free,
};

struct queue *queue_mem_new(size_t capacity)
{
    struct mem_queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->ring = calloc(capacity ? capacity : 1, sizeof *q->ring);
    if (!q->ring) {
        free(q);
        return NULL;
    }
    q->cap = capacity ? capacity : 1;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->nonempty, NULL);
    q->base.ops = &mem_ops;
    q->base.self = q;
    return &q->base;
}

void queue_free(struct queue *q)
{
    if (q)
        q->ops->free(q->self);
}
