/*
 * queue: where accepted jobs wait for a worker.
 *
 * An interface so that a shared queue (Redis) can replace the in-process
 * one without touching the HTTP side or the workers. The in-process queue
 * is a bounded ring under one mutex. Lock order: the queue's mutex is a
 * leaf; nothing else is taken while holding it.
 */
#ifndef BG_QUEUE_H
#define BG_QUEUE_H

#include <stddef.h>

#include "job.h"

struct queue_ops {
    /*
     * All n jobs or none, and `reserve` more places kept for jobs that will
     * follow (a compiled request's runs, queued once its compile is done):
     * BG_EFULL when n + reserve do not fit, BG_ECLOSED when closed.
     */
    int (*push)(void *self, struct job **jobs, size_t n, size_t reserve);
    /* Queue n jobs into places reserved earlier; never full, but a shared
     * queue may fail (BG_EQUEUE). */
    int (*push_reserved)(void *self, struct job **jobs, size_t n);
    /* Give back n reserved places that will not be used. */
    void (*release)(void *self, size_t n);
    /* Blocks for a job; NULL once the queue is closed and empty. */
    struct job *(*pop)(void *self);
    /* Takes one job without blocking, NULL when empty (for draining). */
    struct job *(*try_pop)(void *self);
    /* Refuse new jobs and wake every waiting pop. */
    void (*close)(void *self);
    size_t (*depth)(void *self);
    void (*free)(void *self);
};

struct queue {
    const struct queue_ops *ops;
    void *self;
};

struct queue *queue_mem_new(size_t capacity);
void queue_free(struct queue *q);

#endif
