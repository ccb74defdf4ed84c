#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../sandbox/run.h"

#define MAX_SERIES 256

static const double buckets[] = {10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

struct counter {
    char labels[160];
    unsigned long long n;
};

struct histogram {
    unsigned long long le[NBUCKETS];
    unsigned long long count;
    double sum;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct counter requests[MAX_SERIES], runs[MAX_SERIES];
static size_t nrequests, nruns;
static struct histogram duration, wait;

static void bump(struct counter *set, size_t *n, const char *labels)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(set[i].labels, labels) == 0) {
            set[i].n++;
            return;
        }
    /* Bounded: routes are fixed and languages few; beyond that, one bucket. */
    if (*n == MAX_SERIES)
        return;
    snprintf(set[*n].labels, sizeof set[*n].labels, "%s", labels);
    set[(*n)++].n = 1;
}

static void observe(struct histogram *h, double v)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        if (v <= buckets[i])
            h->le[i]++;
    h->count++;
    h->sum += v;
}

static const char *route_of(const char *path)
{
    static const char *const routes[] = {"/compile", "/languages", "/healthz", "/metrics", "/",
                                         NULL};
    for (size_t i = 0; routes[i]; i++)
        if (strcmp(path, routes[i]) == 0)
            return routes[i];
    return "other"; /* never a client's path: that would be unbounded */
}

void metrics_request(const char *path, int status)
{
    char labels[160];
    snprintf(labels, sizeof labels, "route=\"%s\",status=\"%d\"", route_of(path ? path : ""),
             status);
    pthread_mutex_lock(&lock);
    bump(requests, &nrequests, labels);
    pthread_mutex_unlock(&lock);
}

void metrics_run(const char *language, const char *status, long duration_ms, long wait_ms)
{
    char labels[160];
    snprintf(labels, sizeof labels, "language=\"%.64s\",status=\"%s\"", language, status);
    pthread_mutex_lock(&lock);
    bump(runs, &nruns, labels);
    observe(&duration, (double)duration_ms);
    observe(&wait, (double)wait_ms);
    pthread_mutex_unlock(&lock);
}

static void render_counters(struct buf *out, const char *name, const char *help,
                            const struct counter *set, size_t n)
{
    buf_appendf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t i = 0; i < n; i++)
        buf_appendf(out, "%s{%s} %llu\n", name, set[i].labels, set[i].n);
}

static void render_histogram(struct buf *out, const char *name, const char *help,
                             const struct histogram *h)
{
    buf_appendf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i < NBUCKETS; i++)
        buf_appendf(out, "%s_bucket{le=\"%g\"} %llu\n", name, buckets[i] / 1000, h->le[i]);
    buf_appendf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.3f\n%s_count %llu\n", name, h->count,
                name, h->sum / 1000, name, h->count);
}

static void gauge(struct buf *out, const char *name, const char *help, const char *type, long v)
{
    buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n%s %ld\n", name, help, name, type, name, v);
}

int metrics_render(struct buf *out, long queue_depth, long busy_workers, long workers,
                   long pool_ready)
{
    struct run_counters rc;
    run_counters(&rc);
    pthread_mutex_lock(&lock);
    render_counters(out, "bg_requests_total", "HTTP requests by route and status.", requests,
                    nrequests);
    render_counters(out, "bg_runs_total", "Runs by language and result status.", runs, nruns);
    render_histogram(out, "bg_run_duration_seconds", "Wall time of runs, create to result.",
                     &duration);
    render_histogram(out, "bg_queue_wait_seconds", "Time jobs waited for a worker.", &wait);
    pthread_mutex_unlock(&lock);
    gauge(out, "bg_queue_depth", "Jobs waiting for a worker.", "gauge", queue_depth);
    gauge(out, "bg_workers_busy", "Workers running a job.", "gauge", busy_workers);
    gauge(out, "bg_workers", "Worker threads.", "gauge", workers);
    gauge(out, "bg_pool_ready", "Containers started ahead, waiting for a job.", "gauge",
          pool_ready);
    gauge(out, "bg_containers_created_total", "Run containers created.", "counter",
          (long)rc.created);
    gauge(out, "bg_containers_removed_total", "Run containers removed.", "counter",
          (long)rc.removed);
    gauge(out, "bg_engine_errors_total", "Calls to the engine that failed.", "counter",
          (long)rc.engine_errors);
    return 0;
}
