/*
 * pool: containers made ready ahead of demand, each used exactly once.
 *
 * Starting a container is most of a run's cost (~100 ms here, see
 * docs/PERFORMANCE.md); the program itself starts in milliseconds. So a
 * refill thread creates, attaches and starts containers in the background;
 * their supervisor waits on stdin for a job. A worker takes one, sends the
 * job (the program starts then, as a fresh process with its real argv,
 * files and stdin), answers, and removes the container: never reused.
 *
 * What waits ahead is the container and our supervisor, never the
 * language's interpreter or the user's program. Containers are alike when
 * their image and container limits (memory, pids, files, tmpfs, CPU) are
 * equal; a job whose limits differ from every ready container's (a request
 * that lowered its memory, say) takes the cold path. How many wait per
 * kind follows demand: a miss raises the kind's target (up to
 * POOL_PER_KIND), a kind unused for POOL_IDLE_S drops to zero, and the
 * total never exceeds the --pool cap, so idle containers stay within the
 * memory and pids the operator allows. Nothing of the pool outlives the
 * service: pool_free removes what waits, and the containers carry the
 * instance labels the reaper knows after a crash.
 */
#ifndef BG_POOL_H
#define BG_POOL_H

#include "../docker/docker.h"
#include "run.h"

#define POOL_PER_KIND 4
#define POOL_IDLE_S 300

struct pool;

/* cap: the most ready containers in all (0 disables the pool). */
struct pool *pool_new(const char *docker_host, const struct run_context *ctx, long cap);
/* Take a ready container for spec, or 0 (a miss: demand is noted). */
int pool_take(struct pool *p, const struct run_spec *spec, struct run_container *out);
/* Ask for n ready containers of spec's kind ahead of any demand. */
void pool_warm(struct pool *p, const struct run_spec *spec, int n);
/* Ready containers now, for metrics. */
long pool_ready(struct pool *p);
/* Stop refilling and remove every ready container. NULL is fine. */
void pool_free(struct pool *p);

#endif
