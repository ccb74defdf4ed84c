/*
 * run: one job in one fresh container, from create to remove.
 *
 * Uses: docker (the engine), proto (bg-supervisor's protocol), frame (the
 * attach stream). The life of a run: create the container hardened (see
 * run.c for each setting and why), attach before start so no output is
 * lost, start, stream the files, argv, environment, stdin and END to
 * bg-supervisor, read its frames until DONE, then remove the container on
 * every path. Nothing here reads Lua or request JSON: a run_spec is plain
 * data built by the layer above.
 */
#ifndef BG_RUN_H
#define BG_RUN_H

#include <stddef.h>

#include "../common/buf.h"
#include "../common/err.h"
#include "../docker/docker.h"

struct run_file {
    char *name;
    char *data;
    size_t len;
    int exec; /* written executable (a compiled program carried to a run) */
};

struct run_limits {
    long timeout_ms;
    long compile_timeout_ms;
    long memory_mb;
    long output_bytes;
    long pids;
    long nofile;
    long tmpfs_mb;
    long cpu_shares;
    long artifact_bytes; /* >0: compile only, send the workspace back */
    int custom_memory;   /* the request lowered the memory: no ready container */
};

/* Everything a run needs; owned by whoever builds it (job layer). */
struct run_spec {
    char *language;
    char *image;
    char **compile; /* NULL-terminated argv, or NULL */
    char **run;     /* NULL-terminated argv */
    char **env;     /* "KEY=VALUE", NULL-terminated */
    struct run_file *files;
    size_t nfiles;
    char *stdin_data;
    size_t stdin_len;
    char **args; /* the request's args (already in run); kept for policy */
    struct run_limits limits;
    /* The compile container's memory, pids, nofile and tmpfs, used when
     * the job is a compile only (limits.artifact_bytes > 0). */
    struct run_limits compile_limits;
};

enum run_status {
    RUN_OK,
    RUN_RUNTIME_ERROR,
    RUN_TIMEOUT,
    RUN_MEMORY_LIMIT,
    RUN_OUTPUT_LIMIT,
    RUN_COMPILE_ERROR,
    RUN_INTERNAL_ERROR,
};

/* What one step (compile or run) did. */
struct step_result {
    int present;
    struct buf out, err; /* raw bytes as the program wrote them */
    int exit_code;       /* -1 when killed by a signal */
    int signal;          /* 0 when none */
    int timed_out, output_limit, oom_killed;
    int artifact_limit; /* a compile left more than the service carries */
    long wall_ms, cpu_ms, memory_kb;
};

struct run_result {
    enum run_status status;
    struct step_result compile;
    struct step_result run;
    long duration_ms; /* the whole run: create to result */
    struct run_file *artifacts; /* compile only: the workspace's files */
    size_t nartifacts;
    size_t artifact_total;
    char message[BG_ERRLEN]; /* for internal errors: what failed */
    int engine_down;         /* the failure was the engine being unreachable */
    int image_missing;
};

/* Shared by all runs of one service instance. */
struct run_context {
    const char *supervisor_volume; /* named volume holding bg-supervisor */
    const char *runtime;           /* NULL: the engine's default */
    const char *const *labels;     /* "key=value" pairs, NULL-terminated */
    const char *name_prefix;       /* container names: prefix + sequence */
};

/*
 * Containers whose removal failed (the engine was away): kept here and
 * retried by the reaper, because the reaper leaves a live instance's own
 * containers alone.
 */
void run_graveyard_add(const char *id);
/* Retry removing them through d; returns how many went. */
int run_graveyard_sweep(struct docker *d);

/* Process-wide counts, for metrics. */
struct run_counters {
    unsigned long created, removed, engine_errors;
};
void run_counters(struct run_counters *out);

const char *run_status_name(enum run_status s);
void run_result_init(struct run_result *r);
/* Make r (initialised) a failure of the service itself: whatever it held
 * goes, the status is internal_error and the message says what failed. */
void run_result_fail(struct run_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void run_result_free(struct run_result *r);
void run_spec_free(struct run_spec *s);

typedef void (*run_done_fn)(void *arg);

/* A container made ready for one run: created, attached and started; its
 * supervisor waits for the job on stdin. Used once, then discarded. */
struct run_container {
    char id[65];
    struct dk_stream *stream;
};

/* The limits spec's container is created with (a compile-only job: the
 * compile's limits). Containers with equal image and limits are alike. */
const struct run_limits *run_container_limits(const struct run_spec *spec);

/* Create, attach and start a container of image with limits. On failure
 * out->id may be set: discard it. */
int run_container_open(struct docker *d, const struct run_context *ctx, const char *image,
                       const struct run_limits *limits, struct run_container *out,
                       char err[BG_ERRLEN]);
/* Close its stream and remove it (retried later if the engine is away). */
void run_container_discard(struct docker *d, struct run_container *c);

/*
 * Run spec through d, in `warm` (a ready container of spec's image and
 * limits, taken from the pool) or, when warm is NULL or turns out dead, in
 * a new one. Always fills res (status internal_error with a message when
 * the service itself failed), then calls done(arg) (which may free spec
 * and res), then removes the container, on every path. Returns 0, or a
 * BG_E* code of the failure.
 */
int run_execute(struct docker *d, const struct run_context *ctx, const struct run_spec *spec,
                struct run_result *res, run_done_fn done, void *arg, struct run_container *warm);

/* The create body for spec (exposed for unit tests). Caller frees. */
char *run_create_body(const struct run_context *ctx, const struct run_spec *spec);

/* The supervisor input frames for spec (exposed for unit tests). */
int run_encode_input(const struct run_spec *spec, struct buf *out);

/*
 * Interpret the supervisor's output (the stdout stream payload bytes).
 * Exposed for unit tests: feed whole stream, get the result filled.
 */
struct run_reader;
struct run_reader *run_reader_new(struct run_result *res, long output_cap, long artifact_cap);
int run_reader_feed(struct run_reader *r, const void *data, size_t len);
/* 1 when DONE arrived, 0 otherwise. */
int run_reader_done(const struct run_reader *r);
void run_reader_free(struct run_reader *r);

#endif
