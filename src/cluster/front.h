/*
 * front: the shared queue as a front door sees it (a queue_ops on Redis).
 *
 * push() stores the jobs' run_spec once (bg:spec:<front>:<n>) and adds one
 * header per job to the stream, after checking the cluster-wide backlog,
 * all in one Redis script. The jobs stay in a table here, keyed by a
 * sequence number, until their result comes back: a listener thread pops
 * this front door's reply list, decodes each result into its job and hands
 * the job to `done` (the service's completion: compile follow-up, answer).
 * A result whose job is no longer in the table (a duplicate from a job run
 * twice, or one that came after its deadline) is dropped, so each request
 * gets exactly one result per job.
 *
 * A job not answered within queue_timeout_s is answered internal_error by
 * the listener: nothing waits forever, even if Redis lost the job.
 *
 * pop() never yields a job (the workers are elsewhere, see worker.h);
 * try_pop() hands back unanswered jobs while the service drains; depth()
 * counts the jobs still unanswered. Locks: the front's mutex is a leaf;
 * `done` is called without it.
 */
#ifndef BG_FRONT_H
#define BG_FRONT_H

#include "../common/err.h"
#include "../core/queue.h"
#include "rq.h"

typedef void (*front_done_fn)(struct job *j, void *arg);

struct front_options {
    struct rq_url url;
    const char *id;        /* this front door's name in keys (instance id) */
    long backlog;          /* cluster-wide waiting jobs */
    long queue_timeout_s;  /* a job unanswered this long fails */
    long result_ttl_s;     /* an unread reply list lives this long */
    front_done_fn done;
    void *arg;
};

struct queue *front_new(const struct front_options *o, char err[BG_ERRLEN]);
/* Stop and join the listener: no job is answered through `done` after
 * this (the service drains what is left with try_pop). */
void front_stop_listener(struct queue *q);
/* Redis answers: 0 with its version, or BG_EQUEUE with why. */
int front_ping(struct queue *q, char version[32], char err[BG_ERRLEN]);
/* The live workers (rq_workers). */
int front_workers(struct queue *q, struct buf *out, char err[BG_ERRLEN]);
/* The cluster's queue figures (see rq_stats). */
int front_stats(struct queue *q, struct rq_stats *out, char err[BG_ERRLEN]);

/* The header of a job, as the worker reads it. */
struct front_header {
    unsigned long long seq;
    char reply[256];
    char spec[256];
    long long queued_ms;   /* wall clock (ms since the epoch) */
    long long deadline_ms; /* wall clock */
    char request_id[33];
};
/* Encode (malloc'd text) and decode (BG_EINVAL on anything malformed). */
char *front_header_encode(const struct front_header *h);
int front_header_decode(const char *text, size_t len, struct front_header *h);
/* The reply a worker sends: {"job": seq, "result": <result>}. */
char *front_reply_encode(unsigned long long seq, const char *result, size_t len, size_t *out_len);

#endif
