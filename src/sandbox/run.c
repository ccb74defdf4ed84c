#include "run.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../docker/frame.h"
#include "../proto/proto.h"

/* Time the service allows beyond the run's own limits before it gives up
 * on the supervisor (container start, file writing, reporting). */
#define SLACK_MS 15000L
#define DIAG_CAP 4096

static atomic_ulong run_seq;
static atomic_ulong n_created, n_removed, n_engine_errors;

#define GRAVEYARD_MAX 4096
static pthread_mutex_t graveyard_lock = PTHREAD_MUTEX_INITIALIZER;
static char (*graveyard)[65];
static size_t graveyard_n;

void run_graveyard_add(const char *id)
{
    pthread_mutex_lock(&graveyard_lock);
    if (!graveyard)
        graveyard = calloc(GRAVEYARD_MAX, sizeof *graveyard);
    if (graveyard && graveyard_n < GRAVEYARD_MAX)
        snprintf(graveyard[graveyard_n++], 65, "%s", id);
    pthread_mutex_unlock(&graveyard_lock);
}

int run_graveyard_sweep(struct docker *d)
{
    char err[BG_ERRLEN];
    int removed = 0;
    pthread_mutex_lock(&graveyard_lock);
    for (size_t i = 0; i < graveyard_n;) {
        if (docker_remove(d, graveyard[i], err) == 0) {
            memcpy(graveyard[i], graveyard[--graveyard_n], 65);
            atomic_fetch_add(&n_removed, 1);
            removed++;
        } else
            i++;
    }
    if (graveyard_n == 0) {
        free(graveyard);
        graveyard = NULL;
    }
    pthread_mutex_unlock(&graveyard_lock);
    return removed;
}

void run_counters(struct run_counters *out)
{
    out->created = atomic_load(&n_created);
    out->removed = atomic_load(&n_removed);
    out->engine_errors = atomic_load(&n_engine_errors);
}

const char *run_status_name(enum run_status s)
{
    switch (s) {
    case RUN_OK: return "ok";
    case RUN_RUNTIME_ERROR: return "runtime_error";
    case RUN_TIMEOUT: return "timeout";
    case RUN_MEMORY_LIMIT: return "memory_limit";
    case RUN_OUTPUT_LIMIT: return "output_limit";
    case RUN_COMPILE_ERROR: return "compile_error";
    case RUN_INTERNAL_ERROR: return "internal_error";
    }
    return "internal_error";
}

static void step_init(struct step_result *s)
{
    memset(s, 0, sizeof *s);
    s->exit_code = -1;
}

void run_result_init(struct run_result *r)
{
    memset(r, 0, sizeof *r);
    step_init(&r->compile);
    step_init(&r->run);
    r->status = RUN_INTERNAL_ERROR;
}

void run_result_fail(struct run_result *r, const char *fmt, ...)
{
    va_list ap;
    run_result_free(r);
    run_result_init(r); /* internal_error */
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
}

static void files_free(struct run_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(files[i].name);
        free(files[i].data);
    }
    free(files);
}

void run_result_free(struct run_result *r)
{
    files_free(r->artifacts, r->nartifacts);
    r->artifacts = NULL;
    r->nartifacts = 0;
    buf_free(&r->compile.out);
    buf_free(&r->compile.err);
    buf_free(&r->run.out);
    buf_free(&r->run.err);
}

void run_spec_free(struct run_spec *s)
{
    if (!s)
        return;
    free(s->language);
    free(s->image);
    for (char **v = s->compile; v && *v; v++)
        free(*v);
    free(s->compile);
    for (char **v = s->run; v && *v; v++)
        free(*v);
    free(s->run);
    for (char **v = s->env; v && *v; v++)
        free(*v);
    free(s->env);
    files_free(s->files, s->nfiles);
    free(s->stdin_data);
    for (char **v = s->args; v && *v; v++)
        free(*v);
    free(s->args);
    memset(s, 0, sizeof *s);
}

/* ---- the create body: every hardening setting, and why ---- */

static void add_ulimit(cJSON *arr, const char *name, long value)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "Name", name);
    cJSON_AddNumberToObject(u, "Soft", (double)value);
    cJSON_AddNumberToObject(u, "Hard", (double)value);
    cJSON_AddItemToArray(arr, u);
}

const struct run_limits *run_container_limits(const struct run_spec *spec)
{
    /* A compile-only container has the compile's own limits. */
    return spec->limits.artifact_bytes > 0 ? &spec->compile_limits : &spec->limits;
}

static cJSON *host_config(const struct run_context *ctx, const struct run_limits *l)
{
    char tmpfs[128];
    cJSON *hc = cJSON_CreateObject();
    /* No network at all: the program can reach neither us, nor the engine,
     * nor anything else (threats.md: network). */
    cJSON_AddStringToObject(hc, "NetworkMode", "none");
    /* Nothing of the image can be changed; only the tmpfs mounts are
     * writable, and they are size-capped and count against memory. */
    cJSON_AddBoolToObject(hc, "ReadonlyRootfs", 1);
    cJSON *t = cJSON_AddObjectToObject(hc, "Tmpfs");
    /* exec: compiled programs run from the workspace (environment.md).
     * Owned by the program's uid: the supervisor writes the files as that
     * user, never as root. (No WorkingDir: runc would reset the mode.) */
    /* nr_inodes: millions of empty files would otherwise eat kernel
     * memory instead of ending in ENOSPC (threats.md: disk). */
    long inodes = l->tmpfs_mb * 256;
    snprintf(tmpfs, sizeof tmpfs,
             "rw,exec,nosuid,nodev,size=%ldm,nr_inodes=%ld,mode=0755,uid=65534,gid=65534",
             l->tmpfs_mb, inodes);
    cJSON_AddStringToObject(t, "/work", tmpfs);
    snprintf(tmpfs, sizeof tmpfs, "rw,noexec,nosuid,nodev,size=%ldm,nr_inodes=%ld,mode=1777",
             l->tmpfs_mb, inodes);
    cJSON_AddStringToObject(t, "/tmp", tmpfs);
    /* /dev/shm is the third writable place: as small as the others. */
    cJSON_AddNumberToObject(hc, "ShmSize", (double)l->tmpfs_mb * 1024 * 1024);
    /* bg-supervisor comes from a read-only volume: no host path is shared,
     * so a remote engine works, and the program cannot change it. */
    cJSON *mounts = cJSON_AddArrayToObject(hc, "Mounts");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "Type", "volume");
    cJSON_AddStringToObject(m, "Source", ctx->supervisor_volume);
    cJSON_AddStringToObject(m, "Target", "/bg");
    cJSON_AddBoolToObject(m, "ReadOnly", 1);
    cJSON_AddItemToArray(mounts, m);
    /* The supervisor starts as uid 0 only to hand the files and the
     * program to uid 65534; SETUID and SETGID are what that switch needs,
     * and the program, started under another uid, keeps none of them. */
    cJSON *drop = cJSON_AddArrayToObject(hc, "CapDrop");
    cJSON_AddItemToArray(drop, cJSON_CreateString("ALL"));
    cJSON *add = cJSON_AddArrayToObject(hc, "CapAdd");
    cJSON_AddItemToArray(add, cJSON_CreateString("SETUID"));
    cJSON_AddItemToArray(add, cJSON_CreateString("SETGID"));
    /* No setuid binary of the image can raise privileges again. */
    cJSON *sec = cJSON_AddArrayToObject(hc, "SecurityOpt");
    cJSON_AddItemToArray(sec, cJSON_CreateString("no-new-privileges"));
    /* Fork bombs end at the pids limit. */
    cJSON_AddNumberToObject(hc, "PidsLimit", (double)l->pids);
    /* Memory equal to memory+swap: no extra swap beyond the limit. */
    double mem = (double)l->memory_mb * 1024 * 1024;
    cJSON_AddNumberToObject(hc, "Memory", mem);
    cJSON_AddNumberToObject(hc, "MemorySwap", mem);
    cJSON_AddNumberToObject(hc, "CpuShares", (double)l->cpu_shares);
    cJSON *ul = cJSON_AddArrayToObject(hc, "Ulimits");
    add_ulimit(ul, "nofile", l->nofile);
    add_ulimit(ul, "fsize", l->tmpfs_mb * 1024 * 1024);
    add_ulimit(ul, "core", 0);
    /* Output travels only through the supervisor's frames; the engine's
     * own log would be a second, uncapped copy on the host's disk. */
    cJSON *log = cJSON_AddObjectToObject(hc, "LogConfig");
    cJSON_AddStringToObject(log, "Type", "none");
    cJSON_AddStringToObject(hc, "IpcMode", "private");
    if (ctx->runtime)
        cJSON_AddStringToObject(hc, "Runtime", ctx->runtime);
    return hc;
}

static char *create_body(const struct run_context *ctx, const char *image,
                         const struct run_limits *limits)
{
    cJSON *c = cJSON_CreateObject();
    if (!c)
        return NULL;
    cJSON_AddStringToObject(c, "Image", image);
    cJSON *ep = cJSON_AddArrayToObject(c, "Entrypoint");
    cJSON_AddItemToArray(ep, cJSON_CreateString("/bg/bg-supervisor"));
    cJSON_AddStringToObject(c, "User", "0:0");
    cJSON_AddStringToObject(c, "Hostname", "sandbox");
    /* The supervisor's own environment: nothing of ours. The program's is
     * built by the supervisor from the ENV frames alone. */
    cJSON *env = cJSON_AddArrayToObject(c, "Env");
    cJSON_AddItemToArray(env, cJSON_CreateString("PATH=/usr/bin:/bin"));
    cJSON_AddBoolToObject(c, "AttachStdin", 1);
    cJSON_AddBoolToObject(c, "AttachStdout", 1);
    cJSON_AddBoolToObject(c, "AttachStderr", 1);
    cJSON_AddBoolToObject(c, "OpenStdin", 1);
    cJSON_AddBoolToObject(c, "StdinOnce", 1);
    cJSON_AddBoolToObject(c, "Tty", 0);
    cJSON_AddBoolToObject(c, "NetworkDisabled", 1);
    cJSON *labels = cJSON_AddObjectToObject(c, "Labels");
    for (const char *const *l = ctx->labels; l && *l; l++) {
        const char *eq = strchr(*l, '=');
        if (!eq)
            continue;
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(eq - *l), *l);
        cJSON_AddStringToObject(labels, key, eq + 1);
    }
    cJSON_AddItemToObject(c, "HostConfig", host_config(ctx, limits));
    char *s = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return s;
}

char *run_create_body(const struct run_context *ctx, const struct run_spec *spec)
{
    return create_body(ctx, spec->image, run_container_limits(spec));
}

/* ---- supervisor input ---- */

static int put_frame(struct buf *out, uint8_t type, const void *data, size_t len)
{
    uint8_t h[PROTO_HEADER_SIZE];
    if (len > PROTO_MAX_PAYLOAD)
        return BG_EINVAL;
    proto_put_header(h, type, (uint32_t)len);
    if (buf_append(out, h, sizeof h) < 0 || buf_append(out, data, len) < 0)
        return BG_ENOMEM;
    return 0;
}

static int put_argv(struct buf *out, uint8_t type, char *const *argv)
{
    struct buf b = BUF_INIT;
    int rc = 0;
    for (; *argv && rc == 0; argv++)
        rc = buf_append(&b, *argv, strlen(*argv) + 1);
    if (rc == 0)
        rc = put_frame(out, type, b.data ? b.data : "", b.len);
    buf_free(&b);
    return rc;
}

int run_encode_input(const struct run_spec *spec, struct buf *out)
{
    const struct run_limits *l = &spec->limits;
    char limits[256];
    int n = snprintf(limits, sizeof limits,
                     "timeout_ms=%ld\ncompile_timeout_ms=%ld\noutput_bytes=%ld\n",
                     l->timeout_ms, l->compile_timeout_ms, l->output_bytes);
    if (l->artifact_bytes > 0)
        n += snprintf(limits + n, sizeof limits - (size_t)n, "artifact_bytes=%ld\n",
                      l->artifact_bytes);
    int rc = put_frame(out, PROTO_LIMITS, limits, (size_t)n);
    for (size_t i = 0; rc == 0 && i < spec->nfiles; i++) {
        struct buf f = BUF_INIT;
        const struct run_file *file = &spec->files[i];
        rc = buf_append(&f, file->name, strlen(file->name) + 1);
        if (rc == 0)
            rc = buf_append(&f, file->data, file->len);
        if (rc == 0)
            rc = put_frame(out, file->exec ? PROTO_FILE_EXEC : PROTO_FILE, f.data, f.len);
        buf_free(&f);
    }
    for (char **e = spec->env; rc == 0 && e && *e; e++)
        rc = put_frame(out, PROTO_ENV, *e, strlen(*e));
    if (rc == 0 && spec->compile)
        rc = put_argv(out, PROTO_COMPILE, spec->compile);
    if (rc == 0)
        rc = put_argv(out, PROTO_RUN, spec->run);
    if (rc == 0 && spec->stdin_len)
        rc = put_frame(out, PROTO_STDIN, spec->stdin_data, spec->stdin_len);
    if (rc == 0)
        rc = put_frame(out, PROTO_END, "", 0);
    return rc;
}

/* ---- supervisor output ---- */

struct run_reader {
    struct proto_decoder dec;
    struct run_result *res;
    struct step_result *step; /* the step output belongs to */
    long cap;                 /* per step, stdout+stderr together */
    long artifact_cap;        /* bytes of artifacts accepted in all */
    int done;
};

/* ARTIFACT: mode ('x' or '-'), name, NUL, content. */
static int add_artifact(struct run_reader *r, const uint8_t *p, uint32_t len)
{
    struct run_result *res = r->res;
    const uint8_t *nul = len > 1 ? memchr(p + 1, '\0', len - 1) : NULL;
    if (!nul || (p[0] != 'x' && p[0] != '-'))
        return -1;
    size_t nlen = (size_t)(nul - p - 1), dlen = len - nlen - 2;
    /* The supervisor bounds them; we bound them again, as the memory is ours. */
    if ((long)(res->artifact_total + dlen) > r->artifact_cap)
        return -1;
    struct run_file *a = realloc(res->artifacts, (res->nartifacts + 1) * sizeof *a);
    if (!a)
        return -1;
    res->artifacts = a;
    a = &a[res->nartifacts];
    a->name = strndup((const char *)p + 1, nlen);
    a->data = malloc(dlen ? dlen : 1);
    if (!a->name || !a->data) {
        free(a->name);
        free(a->data);
        return -1;
    }
    memcpy(a->data, nul + 1, dlen);
    a->len = dlen;
    a->exec = p[0] == 'x';
    res->nartifacts++;
    res->artifact_total += dlen;
    return 0;
}

static void add_output(struct run_reader *r, struct buf *b, const uint8_t *p, uint32_t len)
{
    struct step_result *s = r->step;
    long room = r->cap - (long)(s->out.len + s->err.len);
    /* The supervisor enforces the cap; this is the service's own backstop
     * so a broken supervisor still cannot make a reply unbounded. */
    if (room <= 0) {
        s->output_limit |= len > 0;
        return;
    }
    if ((long)len > room) {
        len = (uint32_t)room;
        s->output_limit = 1;
    }
    buf_append(b, p, len);
}

static void take_result(struct step_result *s, const uint8_t *p, uint32_t len)
{
    int64_t v;
    s->present = 1;
    if (proto_kv_int(p, len, "exit_code", &v) == 0)
        s->exit_code = (int)v;
    if (proto_kv_int(p, len, "signal", &v) == 0)
        s->signal = (int)v;
    if (proto_kv_int(p, len, "timed_out", &v) == 0)
        s->timed_out = v != 0;
    if (proto_kv_int(p, len, "output_limit", &v) == 0)
        s->output_limit |= v != 0;
    if (proto_kv_int(p, len, "oom_killed", &v) == 0)
        s->oom_killed = v != 0;
    if (proto_kv_int(p, len, "wall_ms", &v) == 0)
        s->wall_ms = (long)v;
    if (proto_kv_int(p, len, "cpu_ms", &v) == 0)
        s->cpu_ms = (long)v;
    if (proto_kv_int(p, len, "memory_kb", &v) == 0)
        s->memory_kb = (long)v;
    if (proto_kv_int(p, len, "artifact_limit", &v) == 0)
        s->artifact_limit = v != 0;
}

static int on_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
    struct run_reader *r = arg;
    if (r->done)
        return -1; /* nothing may follow DONE */
    switch (type) {
    case PROTO_STEP:
        r->step = (len == 7 && memcmp(p, "compile", 7) == 0) ? &r->res->compile : &r->res->run;
        r->step->present = 1;
        return 0;
    case PROTO_OUT:
        add_output(r, &r->step->out, p, len);
        return 0;
    case PROTO_ERR:
        add_output(r, &r->step->err, p, len);
        return 0;
    case PROTO_RESULT:
        take_result(r->step, p, len);
        return 0;
    case PROTO_ARTIFACT:
        return add_artifact(r, p, len);
    case PROTO_FAIL:
        snprintf(r->res->message, sizeof r->res->message, "sandbox: %.*s", (int)len, p);
        return 0;
    case PROTO_DONE:
        r->done = 1;
        return 0;
    }
    return -1;
}

struct run_reader *run_reader_new(struct run_result *res, long output_cap, long artifact_cap)
{
    struct run_reader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->res = res;
    r->step = &res->run;
    r->cap = output_cap;
    r->artifact_cap = artifact_cap;
    /* Output frames are small chunks; only an artifact may be large. */
    proto_decoder_init(&r->dec, artifact_cap > 0 ? (uint32_t)artifact_cap + 4096 : 1u << 20,
                       on_frame, r);
    return r;
}

int run_reader_feed(struct run_reader *r, const void *data, size_t len)
{
    return proto_decoder_feed(&r->dec, data, len) < 0 ? BG_EPROTO : 0;
}

int run_reader_done(const struct run_reader *r) { return r->done; }

void run_reader_free(struct run_reader *r)
{
    if (!r)
        return;
    proto_decoder_free(&r->dec);
    free(r);
}

/* ---- one run ---- */

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct pump {
    struct run_reader *reader;
    struct buf diag; /* the supervisor's own stderr, for the log */
    int broken;
    size_t received; /* bytes of the supervisor's stdout */
};

static int on_stream(void *arg, int stream, const uint8_t *data, size_t len)
{
    struct pump *p = arg;
    if (stream == FRAME_STDOUT) {
        p->received += len;
        if (run_reader_feed(p->reader, data, len) < 0)
            p->broken = 1;
        return 0;
    }
    if (p->diag.len < DIAG_CAP)
        buf_append(&p->diag, data, len < DIAG_CAP ? len : DIAG_CAP);
    return 0;
}

/* Read the attach stream until DONE, end of stream or the deadline. */
static int pump_output(struct docker *d, struct dk_stream *s, struct pump *p, long deadline)
{
    struct frame_decoder fd;
    uint8_t chunk[65536];
    frame_decoder_init(&fd, on_stream, p);
    while (!run_reader_done(p->reader)) {
        long left = deadline - now_ms();
        if (left <= 0)
            return BG_ETIMEOUT;
        ssize_t n = d->t->ops->recv(s, chunk, sizeof chunk, (int)left);
        if (n == 0)
            return BG_EPROTO; /* ended without DONE */
        if (n < 0)
            return (int)n;
        if (frame_decoder_feed(&fd, chunk, (size_t)n) < 0 || p->broken)
            return BG_EPROTO;
    }
    return 0;
}

static enum run_status judge(const struct run_result *r, int compile_only)
{
    const struct step_result *c = &r->compile, *s = &r->run;
    if (c->present && (c->exit_code != 0 || c->signal || c->timed_out || c->output_limit ||
                       c->oom_killed || c->artifact_limit))
        return RUN_COMPILE_ERROR;
    if (!s->present)
        return compile_only && c->present ? RUN_OK : RUN_INTERNAL_ERROR;
    if (s->oom_killed)
        return RUN_MEMORY_LIMIT;
    if (s->timed_out)
        return RUN_TIMEOUT;
    if (s->output_limit)
        return RUN_OUTPUT_LIMIT;
    if (s->signal || s->exit_code != 0)
        return RUN_RUNTIME_ERROR;
    return RUN_OK;
}

/* Send the job and read the answer on an attached, started container. */
static int talk(struct docker *d, const struct run_container *c, const struct run_spec *spec,
                struct run_result *res, long started, size_t *received)
{
    struct buf input = BUF_INIT;
    struct pump p = {NULL, BUF_INIT, 0, 0};
    char err[BG_ERRLEN];
    int rc;

    p.reader = run_reader_new(res, spec->limits.output_bytes, spec->limits.artifact_bytes);
    if (!p.reader || run_encode_input(spec, &input) < 0) {
        rc = bg_fail(res->message, BG_ENOMEM, "out of memory preparing the run");
        goto out;
    }
    long deadline = started + spec->limits.timeout_ms + spec->limits.compile_timeout_ms + SLACK_MS;
    rc = d->t->ops->send(c->stream, input.data, input.len, (int)(deadline - now_ms()));
    if (rc < 0) {
        bg_fail(res->message, rc, "sending the program to the sandbox failed: %s",
                bg_strerror(rc));
        goto out;
    }
    rc = pump_output(d, c->stream, &p, deadline);
    log_debug("run %.12s: result at %ld ms", c->id, now_ms() - started);
    if (rc < 0 && !res->message[0]) {
        /* The supervisor died without a word: most likely out of memory. */
        if (docker_oom_killed(d, c->id, err) == 1) {
            res->run.present = 1;
            res->run.oom_killed = 1;
            res->run.signal = 9;
            rc = 0;
        } else {
            bg_fail(res->message, rc, "the sandbox stopped answering (%s)%s%.200s",
                    bg_strerror(rc), p.diag.len ? ": " : "", p.diag.len ? p.diag.data : "");
        }
    }
out:
    if (p.diag.len)
        log_warn("run %.12s: supervisor said: %.400s", c->id, p.diag.data);
    *received = p.received;
    run_reader_free(p.reader);
    buf_free(&input);
    buf_free(&p.diag);
    return rc;
}

int run_container_open(struct docker *d, const struct run_context *ctx, const char *image,
                       const struct run_limits *limits, struct run_container *out,
                       char err[BG_ERRLEN])
{
    char name[128];
    char *body = create_body(ctx, image, limits);
    int rc;
    memset(out, 0, sizeof *out);
    if (!body)
        return bg_fail(err, BG_ENOMEM, "out of memory building the container");
    snprintf(name, sizeof name, "%s-%lu", ctx->name_prefix, atomic_fetch_add(&run_seq, 1) + 1);
    rc = docker_create(d, name, body, out->id, err);
    free(body);
    if (rc == BG_ENOIMAGE)
        return bg_fail(err, rc, "image %s is missing: build it with scripts/build-images", image);
    if (rc < 0)
        return rc;
    atomic_fetch_add(&n_created, 1);
    /* Attach before start: a fast program's output would otherwise be
     * gone before we listen (the original's defect 6). The supervisor then
     * waits for its job on stdin, so a container can be made ready ahead. */
    rc = docker_attach(d, out->id, &out->stream, err);
    if (rc == 0)
        rc = docker_start(d, out->id, err);
    return rc; /* on failure out->id is set: the caller discards it */
}

void run_container_discard(struct docker *d, struct run_container *c)
{
    char err[BG_ERRLEN];
    if (c->stream)
        d->t->ops->close(c->stream);
    c->stream = NULL;
    /* Every path removes the container, started or not (defect 7). */
    if (c->id[0] && docker_remove(d, c->id, err) < 0) {
        atomic_fetch_add(&n_engine_errors, 1);
        log_error("cannot remove container %.12s: %s (the reaper will retry)", c->id, err);
        run_graveyard_add(c->id);
    } else if (c->id[0])
        atomic_fetch_add(&n_removed, 1);
    c->id[0] = '\0';
}

int run_execute(struct docker *d, const struct run_context *ctx, const struct run_spec *spec,
                struct run_result *res, run_done_fn done, void *arg, struct run_container *warm)
{
    struct run_container c = {"", NULL};
    long started = now_ms();
    size_t received = 0;
    int rc = -1;

    run_result_init(res);
    if (warm) {
        c = *warm;
        rc = talk(d, &c, spec, res, started, &received);
        if (rc < 0 && received == 0) {
            /* A ready container that died while it waited (the engine
             * restarted, say): nothing ran, so run it cold instead. */
            log_warn("run %.12s: the ready container was gone (%s); running cold", c.id,
                     res->message);
            run_container_discard(d, &c);
            run_result_init(res);
            warm = NULL;
        }
    }
    if (!warm) {
        rc = run_container_open(d, ctx, spec->image, run_container_limits(spec), &c,
                                res->message);
        if (rc == BG_ENOIMAGE)
            res->image_missing = 1;
        log_debug("run %.12s: started at %ld ms", c.id, now_ms() - started);
        if (rc == 0)
            rc = talk(d, &c, spec, res, started, &received);
    }
    if (rc == BG_EENGINE) {
        res->engine_down = 1;
        atomic_fetch_add(&n_engine_errors, 1);
    }
    res->duration_ms = now_ms() - started;
    res->status = rc < 0 || res->message[0] ? RUN_INTERNAL_ERROR
                                                 : judge(res, spec->limits.artifact_bytes > 0);
    if (res->status == RUN_INTERNAL_ERROR && !res->message[0])
        snprintf(res->message, sizeof res->message, "the sandbox reported no result");
    /* The answer goes out now; spec and res may be gone after this call. */
    if (done)
        done(arg);
    /* Removal is off the request's path, but before this worker takes its
     * next job, so removals keep pace with runs. */
    run_container_discard(d, &c);
    log_debug("run: removed at %ld ms", now_ms() - started);
    return rc;
}
