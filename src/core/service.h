/*
 * service: one running bg-compiler instance and what it owns.
 *
 * Owns the settings, the current profile set (swapped whole on reload),
 * the queue, the worker threads (each with its own engine connection), a
 * control connection for quick engine questions (health, images), the
 * instance identity and the reaper thread. The HTTP side calls in through
 * api.h; workers never see HTTP or Lua.
 *
 * Threads: HTTP threads (libmicrohttpd) call service_* functions; worker
 * threads pop jobs; one reaper thread sweeps every REAP_INTERVAL. Locks:
 * `profiles_lock` guards the profile pointer (taken briefly, leaf);
 * `control_lock` guards the control connection (leaf); the queue has its
 * own leaf lock.
 */
#ifndef BG_SERVICE_H
#define BG_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>

#include "../cluster/rq.h"
#include "../docker/docker.h"
#include "../script/plugins.h"
#include "../sandbox/instance.h"
#include "../sandbox/pool.h"
#include "../sandbox/run.h"
#include "config.h"
#include "profile.h"
#include "queue.h"

#define REAP_INTERVAL_S 10

struct service {
    struct config cfg;
    struct instance inst;
    struct run_context run_ctx;
    char volume[64];

    pthread_mutex_t profiles_lock; /* guards profiles and plugins */
    struct profile_set *profiles;
    struct plugin_host *plugins;
    struct store *store; /* plugins' shared state: outlives reloads */

    struct queue *queue;     /* in-process, or a front door's shared queue */
    struct rq_url redis;     /* with cfg.queue */
    struct workers *cluster; /* threads running the shared queue's jobs */
    pthread_t *workers;
    size_t nworkers;
    atomic_int busy;
    atomic_int supervisor_ready;
    pthread_mutex_t supervisor_lock;

    pthread_mutex_t control_lock;
    struct docker *control;
    struct pull_failure {
        char image[256];
        long at; /* monotonic seconds */
    } pull_failures[16]; /* under control_lock */

    struct pool *pool; /* ready containers; NULL until started */
    pthread_t reaper;
    int reaper_started;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    atomic_int stopping;
};

/* Takes ownership of profiles (one reference) and the config's contents. */
int service_init(struct service *s, struct config *cfg, struct profile_set *profiles,
                 char err[BG_ERRLEN]);
/* Starts workers and the reaper (after a first sweep). */
int service_start(struct service *s, char err[BG_ERRLEN]);
/*
 * Stop: close the queue, give runs in flight up to cfg.grace_s, fail what
 * still waits, join the workers, sweep our own containers.
 */
void service_stop(struct service *s);
void service_free(struct service *s);

/* The current profile set, with a reference the caller drops. */
struct profile_set *service_profiles(struct service *s);
/* Swap in a new set (reload). Takes ownership of one reference. */
void service_set_profiles(struct service *s, struct profile_set *set);
/* The current plugins, with a reference the caller drops (plugins_unref). */
struct plugin_host *service_plugins(struct service *s);
/* Load the configured plugins and swap them in; on failure the old ones
 * stay and err says why (file, line, reason). */
int service_load_plugins(struct service *s, char err[BG_ERRLEN]);

/* Queue a batch (all its jobs or none): 0, BG_EFULL, BG_ECLOSED or
 * BG_EQUEUE (the shared queue is unreachable). */
int service_submit(struct service *s, struct batch *b);

/* Whether this process runs jobs on an engine (not a bare front door). */
int service_runs_jobs(const struct service *s);
/* The shared queue: 0 with Redis's version and the queue figures, or
 * BG_EQUEUE with a message. BG_ENOTFOUND when there is no shared queue. */
int service_queue_stats(struct service *s, char version[32], struct rq_stats *st,
                        char err[BG_ERRLEN]);

/* The shared queue's live workers, a JSON array of objects {"id",
 * "threads", "busy", "until", "images"}; BG_ENOTFOUND without one. */
int service_cluster_workers(struct service *s, struct buf *out, char err[BG_ERRLEN]);

/* Engine health: 0 with its version, or BG_EENGINE with a message. */
int service_engine_version(struct service *s, char version[64], char err[BG_ERRLEN]);
/* 1 present, 0 missing, <0 engine error. */
int service_image_present(struct service *s, const char *image, char err[BG_ERRLEN]);
/*
 * Like service_image_present, but a missing image is pulled first (the
 * original's wish), with a short time limit, and not again for
 * PULL_BACKOFF_S after a failure, so a missing image cannot cause a storm
 * of pulls.
 */
int service_image_ready(struct service *s, const char *image, char err[BG_ERRLEN]);

#define PULL_TIMEOUT_MS 10000L
#define PULL_BACKOFF_S 60

#endif
