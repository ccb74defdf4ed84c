/*
 * metrics: counters and histograms for GET /metrics (Prometheus text).
 *
 * One process-wide set behind one mutex (a leaf lock): requests by route
 * and status, runs by language and result status, run duration and queue
 * wait histograms. Container and engine counters come from the sandbox
 * (run_counters); queue depth and busy workers are read at render time.
 */
#ifndef BG_METRICS_H
#define BG_METRICS_H

#include "../common/buf.h"

void metrics_request(const char *path, int status);
void metrics_run(const char *language, const char *status, long duration_ms, long wait_ms);
/* Append the exposition text. */
int metrics_render(struct buf *out, long queue_depth, long busy_workers, long workers,
                   long pool_ready);

#endif
