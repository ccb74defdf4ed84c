/*
 * rq: the shared job queue's Redis side, and the only code that sees hiredis.
 *
 * Layout in Redis (every key under the "bg:" prefix of the chosen DB):
 *   bg:jobs              stream of waiting and running jobs; field "job" is
 *                        a small JSON header (see cluster/front.c)
 *   bg-workers           the consumer group on bg:jobs; each worker process
 *                        is one consumer (its instance id)
 *   bg:spec:<front>:<n>  hash: the run_spec (JSON) a header points to,
 *                        shared by the jobs of one push, and how many of them
 *                        are unanswered; goes with the last, or at the deadline
 *   bg:reply:<front>     list of results for one front door; expires when
 *                        nobody reads it
 *   bg:workers           hash: worker process (consumer) -> what it said of
 *                        itself last (JSON); bg:workers:until says until when
 *                        (Redis's clock); lapsed ones are dropped by readers
 *   bg:stats:claimed     jobs taken over from a dead worker (counter)
 *   bg:stats:dead        jobs given up after RQ_MAX_DELIVERIES (counter)
 *
 * Operations that must be atomic (the cluster-wide backlog check and the
 * queueing; a result's reply and ack) are Lua scripts run by Redis itself.
 *
 * One struct rq is one connection, used by one thread at a time. It
 * connects on first use and again after any I/O error, so callers simply
 * retry after a back-off; a failure returns BG_EQUEUE with the reason.
 */
#ifndef BG_RQ_H
#define BG_RQ_H

#include <stddef.h>

#include "../common/buf.h"
#include "../common/err.h"

#define RQ_STREAM "bg:jobs"
#define RQ_GROUP "bg-workers"
#define RQ_MAX_DELIVERIES 3 /* a job whose workers died this often is dead */

struct rq_url {
    char host[256];
    int port;
    int db;
    char user[128];
    char password[256]; /* from the URL, else $BG_REDIS_PASSWORD */
};

/* redis://[[user]:password@]host[:port][/db]; BG_EINVAL with a message. */
int rq_parse_url(const char *url, struct rq_url *out, char err[BG_ERRLEN]);

struct rq;
struct rq *rq_new(const struct rq_url *url);
void rq_free(struct rq *r);

/* The server's version ("7.0.15"), which also proves it answers. */
int rq_ping(struct rq *r, char version[32], char err[BG_ERRLEN]);

/*
 * Queue njobs headers, all or none, with the spec stored once under
 * spec_key for spec_ttl_s: BG_EFULL when the jobs waiting in Redis (not
 * yet taken by a worker) plus njobs plus `extra` exceed backlog.
 */
int rq_push(struct rq *r, const char *spec_key, const char *spec, size_t spec_len,
            long spec_ttl_s, const char *const *headers, size_t njobs, long backlog, long extra,
            char err[BG_ERRLEN]);

/* Wait up to timeout_s for one item of list key: 1 with it in out, 0 none. */
int rq_pop_reply(struct rq *r, const char *key, int timeout_s, struct buf *out,
                 char err[BG_ERRLEN]);
/* Delete a key. */
int rq_del(struct rq *r, const char *key, char err[BG_ERRLEN]);
/* A job's spec: 1 with it in out, 0 when missing (expired). */
int rq_get_spec(struct rq *r, const char *key, struct buf *out, char err[BG_ERRLEN]);

/* A job as a worker took it. */
struct rq_msg {
    char id[64];      /* the stream entry id */
    struct buf job;   /* the header */
    long deliveries;  /* how many times it was handed out, this one included */
    int claimed;      /* taken over from a consumer that went quiet */
};

/*
 * Take one job for consumer: first one that another consumer has held
 * unanswered for claim_idle_ms (its worker died), else a new one, waiting
 * up to block_ms. 1 with msg filled (release msg->job), 0 when none.
 */
int rq_take(struct rq *r, const char *consumer, long claim_idle_ms, long block_ms,
            struct rq_msg *msg, char err[BG_ERRLEN]);
/* Tell Redis the consumer still works on these entries (resets their idle time). */
int rq_keepalive(struct rq *r, const char *consumer, const char *const *ids, size_t n,
                 char err[BG_ERRLEN]);
/*
 * The job's result: push it on reply_key (which then expires after ttl_s
 * unless read), acknowledge and delete the entry, and drop the spec when
 * this was its last job, in one step. An empty result only acknowledges
 * and deletes (a job too malformed to answer).
 */
int rq_finish(struct rq *r, const char *entry_id, const char *reply_key, const char *spec_key,
              const char *result, size_t len, long ttl_s, char err[BG_ERRLEN]);
/* Add one to bg:stats:<name>. */
int rq_count(struct rq *r, const char *name, char err[BG_ERRLEN]);

struct rq_stats {
    long length;  /* entries in the stream: waiting + running */
    long pending; /* handed to a worker, not answered yet */
    long claimed; /* taken over from dead workers, ever */
    long dead;    /* given up after RQ_MAX_DELIVERIES, ever */
};
int rq_stats(struct rq *r, struct rq_stats *out, char err[BG_ERRLEN]);

/* Publish what this worker says of itself (a JSON object), good for
 * ttl_ms by Redis's clock, or withdraw it (info NULL). */
int rq_announce(struct rq *r, const char *consumer, const char *info, long ttl_ms,
                char err[BG_ERRLEN]);
/* The live workers' objects as one JSON array in out; lapsed ones are
 * dropped from Redis on the way. */
int rq_workers(struct rq *r, struct buf *out, char err[BG_ERRLEN]);

/* Remove consumers with nothing pending that were idle over idle_ms. */
int rq_prune_consumers(struct rq *r, long idle_ms, char err[BG_ERRLEN]);

#endif
