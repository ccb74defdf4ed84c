#include "api.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "../common/jsonstr.h"
#include "../common/utf8.h"
#include "metrics.h"
#include "request.h"

void api_request_id(char out[33])
{
    unsigned char raw[16];
    static const char hex[] = "0123456789abcdef";
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        memset(raw, 0, sizeof raw);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[32] = '\0';
}

static char *print(cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

void api_error(struct api_response *resp, int status, const char *code, const char *message,
               const char *request_id)
{
    cJSON *j = cJSON_CreateObject();
    struct buf safe = BUF_INIT;
    /* Messages may quote request text: keep the JSON valid whatever it is. */
    utf8_repair(message, strlen(message), 0, &safe);
    cJSON_AddStringToObject(j, "error", safe.data ? safe.data : "");
    cJSON_AddStringToObject(j, "code", code);
    cJSON_AddStringToObject(j, "request_id", request_id ? request_id : "");
    buf_free(&safe);
    free(resp->body);
    resp->status = status;
    resp->body = print(j);
}

const char *api_signal_name(int sig)
{
    static const struct {
        int n;
        const char *name;
    } names[] = {{SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
                 {SIGILL, "SIGILL"},   {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
                 {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
                 {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
                 {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
                 {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"}};
    if (sig <= 0)
        return NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].n == sig)
            return names[i].name;
    return "SIGNAL";
}

/* Program output, verbatim: valid UTF-8, and a NUL byte kept (as \u0000)
 * rather than ending the text as a C string would. */
static void add_text(cJSON *o, const char *key, const struct buf *b, int cut)
{
    struct buf safe = BUF_INIT, lit = BUF_INIT;
    utf8_repair(b->data ? b->data : "", b->len, cut, &safe);
    if (safe.len && memchr(safe.data, '\0', safe.len) && json_quote(safe.data, safe.len, &lit) == 0)
        cJSON_AddItemToObject(o, key, cJSON_CreateRaw(lit.data));
    else
        cJSON_AddStringToObject(o, key, safe.data ? safe.data : "");
    buf_free(&safe);
    buf_free(&lit);
}

static void add_step(cJSON *o, const struct step_result *s)
{
    int cut = s->output_limit;
    add_text(o, "stdout", &s->out, cut);
    add_text(o, "stderr", &s->err, cut);
    if (s->signal || s->exit_code < 0)
        cJSON_AddNullToObject(o, "exit_code");
    else
        cJSON_AddNumberToObject(o, "exit_code", s->exit_code);
    const char *sig = api_signal_name(s->signal);
    if (sig)
        cJSON_AddStringToObject(o, "signal", sig);
    else
        cJSON_AddNullToObject(o, "signal");
    cJSON_AddBoolToObject(o, "timed_out", s->timed_out);
    cJSON_AddBoolToObject(o, "oom_killed", s->oom_killed);
    cJSON_AddBoolToObject(o, "output_truncated", s->output_limit);
    cJSON_AddNumberToObject(o, "cpu_time_ms", (double)s->cpu_ms);
    cJSON_AddNumberToObject(o, "memory_kb", (double)s->memory_kb);
}

/* compile: the request's one compile (the same record in every result),
 * or NULL for an interpreted language. */
static cJSON *result_object(const struct run_result *r, const struct run_result *compile)
{
    cJSON *o = cJSON_CreateObject();
    add_step(o, &r->run);
    cJSON_AddNumberToObject(o, "duration_ms", (double)r->duration_ms);
    cJSON_AddStringToObject(o, "status", run_status_name(r->status));
    if (r->status == RUN_INTERNAL_ERROR)
        cJSON_AddStringToObject(o, "message", r->message);
    if (compile) {
        cJSON *c = cJSON_AddObjectToObject(o, "compile");
        add_step(c, &compile->compile);
        cJSON_AddNumberToObject(c, "duration_ms", (double)compile->duration_ms);
        cJSON_AddStringToObject(c, "status", run_status_name(compile->status));
    }
    return o;
}

char *api_result_json(const struct run_result *r, const struct run_result *compile)
{
    return print(result_object(r, compile));
}

/* What plugins see of a request; files point into spec (may be NULL). */
struct plugin_view {
    struct plugin_request r;
    struct plugin_file *files;
};

static void view_init(struct plugin_view *v, const struct api_request *req,
                      const struct run_spec *spec, size_t count, const struct config *cfg)
{
    memset(v, 0, sizeof *v);
    struct plugin_request *r = &v->r;
    r->request_id = req->request_id;
    r->method = req->method;
    r->path = req->path;
    r->client = req->client;
    r->headers = req->headers;
    r->nheaders = req->nheaders;
    r->query = req->query;
    r->nquery = req->nquery;
    if (!spec)
        return;
    v->files = calloc(spec->nfiles ? spec->nfiles : 1, sizeof *v->files);
    if (!v->files)
        return; /* plugins then see the request as unparsed: they still gate it */
    for (size_t i = 0; i < spec->nfiles; i++)
        v->files[i] = (struct plugin_file){spec->files[i].name, spec->files[i].data,
                                           spec->files[i].len};
    r->parsed = 1;
    r->lang = spec->language;
    r->files = v->files;
    r->nfiles = spec->nfiles;
    r->stdin_data = spec->stdin_data;
    r->stdin_len = spec->stdin_len;
    r->args = spec->args;
    r->count = (long)count;
    r->max_count = cfg->max_count;
    r->timeout_ms = spec->limits.timeout_ms;
    r->memory_mb = spec->limits.memory_mb;
    r->output_kb = spec->limits.output_bytes / 1024;
}

void api_finish(struct service *s, const struct api_request *req, const struct batch *b,
                struct api_response *resp)
{
    size_t down = 0;
    for (size_t i = 0; i < b->count; i++)
        down += b->results[i].engine_down;
    if (down == b->count) {
        char msg[BG_ERRLEN + 64];
        snprintf(msg, sizeof msg, "the docker engine is unavailable: %s", b->results[0].message);
        api_error(resp, 503, "engine_unavailable", msg, b->request_id);
        resp->retry_after = 5;
        return;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < b->count; i++)
        cJSON_AddItemToArray(arr, result_object(&b->results[i], b->compiled ? &b->compile : NULL));
    struct plugin_host *h = service_plugins(s);
    if (plugins_count(h)) {
        struct plugin_view v;
        view_init(&v, req, &b->spec, b->count, &s->cfg);
        plugins_on_result(h, &v.r, b->plugin_ctx, &arr);
        free(v.files);
    }
    plugins_unref(h);
    resp->status = 200;
    resp->body = print(arr);
    if (!resp->body)
        api_error(resp, 500, "internal_error", "out of memory writing the results", b->request_id);
}

static void send_json(struct api_response *resp, int status, cJSON *j)
{
    resp->status = status;
    resp->body = print(j);
}

/* The shared queue's live workers (a cJSON array), or NULL when there is
 * no shared queue or Redis does not answer. */
static cJSON *cluster_workers(struct service *s)
{
    struct buf b = BUF_INIT;
    char err[BG_ERRLEN];
    cJSON *arr = NULL;
    if (s->cfg.queue && service_cluster_workers(s, &b, err) == 0)
        arr = cJSON_ParseWithLength(b.data, b.len);
    buf_free(&b);
    if (arr && !cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        arr = NULL;
    }
    return arr;
}

/* Whether a live worker's engine has image (the front door's view). */
static int workers_have(const cJSON *workers, const char *image)
{
    const cJSON *w, *i;
    cJSON_ArrayForEach(w, workers)
        cJSON_ArrayForEach(i, cJSON_GetObjectItemCaseSensitive(w, "images"))
            if (cJSON_IsString(i) && strcmp(i->valuestring, image) == 0)
                return 1;
    return 0;
}

/* The shared queue's figures, as seen from any front door or worker. */
static void render_queue(struct service *s, struct buf *b)
{
    char version[32], err[BG_ERRLEN];
    struct rq_stats st = {0};
    if (!s->cfg.queue)
        return;
    int up = service_queue_stats(s, version, &st, err) == 0;
    buf_appendf(b,
                "# HELP bg_redis_up Whether the shared queue (Redis) answers.\n"
                "# TYPE bg_redis_up gauge\nbg_redis_up %d\n", up);
    if (!up)
        return;
    buf_appendf(b,
                "# HELP bg_cluster_queue_length Jobs in the shared queue, waiting or running.\n"
                "# TYPE bg_cluster_queue_length gauge\nbg_cluster_queue_length %ld\n"
                "# HELP bg_cluster_queue_pending Jobs a worker took and has not answered.\n"
                "# TYPE bg_cluster_queue_pending gauge\nbg_cluster_queue_pending %ld\n"
                "# HELP bg_cluster_jobs_claimed_total Jobs taken over from a dead worker.\n"
                "# TYPE bg_cluster_jobs_claimed_total counter\nbg_cluster_jobs_claimed_total %ld\n"
                "# HELP bg_cluster_jobs_dead_total Jobs given up after their workers kept dying.\n"
                "# TYPE bg_cluster_jobs_dead_total counter\nbg_cluster_jobs_dead_total %ld\n",
                st.length, st.pending, st.claimed, st.dead);
    cJSON *workers = cluster_workers(s);
    buf_appendf(b,
                "# HELP bg_cluster_workers Worker processes that announced themselves lately.\n"
                "# TYPE bg_cluster_workers gauge\nbg_cluster_workers %d\n",
                workers ? cJSON_GetArraySize(workers) : 0);
    cJSON_Delete(workers);
}

/* Prometheus text, not JSON: the HTTP side sends it as text/plain. */
static void route_metrics(struct service *s, struct api_response *resp)
{
    struct buf b = BUF_INIT;
    metrics_render(&b, (long)s->queue->ops->depth(s->queue->self), atomic_load(&s->busy),
                   s->cfg.workers, pool_ready(s->pool));
    render_queue(s, &b);
    resp->status = 200;
    resp->body = buf_steal(&b);
    resp->content_type = "text/plain; version=0.0.4";
}

/* Healthy: the engine answers (when this process runs jobs) and Redis
 * answers (with a shared queue). A bare front door needs no engine. */
static void route_healthz(struct service *s, const struct api_request *req,
                          struct api_response *resp)
{
    char version[64] = "", redis[32] = "", err[BG_ERRLEN];
    struct rq_stats st = {0};
    if (service_runs_jobs(s) && service_engine_version(s, version, err) < 0) {
        api_error(resp, 503, "engine_unavailable", err, req->request_id);
        resp->retry_after = 5;
        return;
    }
    if (s->cfg.queue && service_queue_stats(s, redis, &st, err) < 0) {
        api_error(resp, 503, "queue_unavailable", err, req->request_id);
        resp->retry_after = 5;
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", "ok");
    if (version[0])
        cJSON_AddStringToObject(j, "engine", version);
    if (redis[0]) {
        cJSON *workers = cluster_workers(s);
        cJSON_AddStringToObject(j, "redis", redis);
        cJSON_AddNumberToObject(j, "cluster_queue_length", (double)st.length);
        cJSON_AddNumberToObject(j, "cluster_workers", workers ? cJSON_GetArraySize(workers) : 0);
        cJSON_Delete(workers);
    }
    cJSON_AddStringToObject(j, "role", s->cfg.worker_process ? "worker"
                                       : s->cfg.queue        ? "front"
                                                             : "standalone");
    cJSON_AddNumberToObject(j, "queued", (double)s->queue->ops->depth(s->queue->self));
    cJSON_AddNumberToObject(j, "busy_workers", atomic_load(&s->busy));
    send_json(resp, 200, j);
}

/* What a run of the language gets under this server's flags. */
static void add_limits(cJSON *o, const char *key, const struct run_limits *l)
{
    cJSON *j = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(j, "timeout_ms", (double)l->timeout_ms);
    cJSON_AddNumberToObject(j, "memory_mb", (double)l->memory_mb);
    cJSON_AddNumberToObject(j, "output_kb", (double)(l->output_bytes / 1024));
    cJSON_AddNumberToObject(j, "pids", (double)l->pids);
    cJSON_AddNumberToObject(j, "nofile", (double)l->nofile);
    cJSON_AddNumberToObject(j, "tmpfs_mb", (double)l->tmpfs_mb);
}

static void route_languages(struct service *s, struct api_response *resp)
{
    struct profile_set *set = service_profiles(s);
    cJSON *arr = cJSON_CreateArray();
    /* A bare front door answers for its workers' engines. */
    cJSON *workers = service_runs_jobs(s) ? NULL : cluster_workers(s);
    char err[BG_ERRLEN];
    for (size_t i = 0; i < set->n; i++) {
        const struct profile *p = &set->items[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON *aliases = cJSON_AddArrayToObject(o, "aliases");
        for (size_t a = 0; p->aliases && p->aliases[a]; a++)
            cJSON_AddItemToArray(aliases, cJSON_CreateString(p->aliases[a]));
        cJSON_AddStringToObject(o, "image", p->image);
        if (p->version)
            cJSON_AddStringToObject(o, "version", p->version);
        else
            cJSON_AddNullToObject(o, "version");
        cJSON_AddBoolToObject(o, "compiled", p->compile != NULL);
        if (service_runs_jobs(s))
            cJSON_AddBoolToObject(o, "available", service_image_present(s, p->image, err) == 1);
        else if (workers) /* a live worker's engine has it */
            cJSON_AddBoolToObject(o, "available", workers_have(workers, p->image));
        else /* Redis does not answer: unknown */
            cJSON_AddNullToObject(o, "available");
        struct run_limits run, compile;
        request_limits(p, &s->cfg, &run, &compile);
        add_limits(o, "limits", &run);
        if (p->compile)
            add_limits(o, "compile_limits", &compile);
        cJSON_AddItemToArray(arr, o);
    }
    profile_set_unref(set);
    cJSON_Delete(workers);
    send_json(resp, 200, arr);
}

static void refuse(struct api_response *resp, const struct request_error *e, const char *id)
{
    api_error(resp, e->status, e->code, e->message, id);
}

/* Plugins' verdict on a request: 1 when it was answered (refused or
 * failed), 0 to go on. spec may be NULL (not a valid /compile). */
static int gate(struct service *s, const struct api_request *req, struct run_spec *spec,
                size_t *count, struct api_response *resp, struct plugin_verdict *v)
{
    struct plugin_host *h = service_plugins(s);
    struct plugin_view view;
    memset(v, 0, sizeof *v);
    if (!plugins_count(h)) {
        plugins_unref(h);
        return 0;
    }
    view_init(&view, req, spec, *count, &s->cfg);
    plugins_on_request(h, &view.r, v);
    free(view.files);
    plugins_unref(h);
    if (v->headers.len)
        buf_append(&resp->headers, v->headers.data, v->headers.len);
    if (v->failed) {
        /* Fail closed: a broken policy must not let requests through. The
         * details (plugin, line, traceback) are in the log, not here. */
        api_error(resp, 500, "plugin_error",
                  "a policy plugin failed; the server log has the details under this request id",
                  req->request_id);
        return 1;
    }
    if (v->refused) {
        api_error(resp, v->status, "refused", v->message, req->request_id);
        return 1;
    }
    if (spec) { /* only ever lowered: plugins.c checked */
        *count = (size_t)v->count;
        spec->limits.timeout_ms = v->timeout_ms;
        spec->limits.memory_mb = v->memory_mb;
        spec->limits.output_bytes = v->output_kb * 1024;
    }
    return 0;
}

static int route_compile(struct service *s, const struct api_request *req,
                         struct api_response *resp, struct batch **pending, batch_done_fn on_done,
                         void *arg)
{
    struct request_in in = {req->content_type, req->query_lang, req->query_count, req->body,
                            req->body_len};
    struct request_error e = {0};
    struct run_spec spec;
    struct plugin_verdict v;
    const struct profile *p = NULL;
    size_t count = 0;
    char err[BG_ERRLEN], msg[2 * BG_ERRLEN];
    struct profile_set *set = service_profiles(s);
    struct batch *b = NULL;
    int parsed = request_parse(&in, set, &s->cfg, &spec, &count, &p, &e) == 0;
    /* Plugins see every request, valid or not (auth comes before a 400). */
    if (gate(s, req, parsed ? &spec : NULL, &count, resp, &v))
        goto done;
    if (!parsed) {
        refuse(resp, &e, req->request_id);
        goto done;
    }
    /* Refuse at once what cannot run, rather than queue it to fail. A bare
     * front door has no engine: its workers check their own. */
    int present = service_runs_jobs(s) ? service_image_ready(s, spec.image, err) : 1;
    if (present <= 0) {
        if (present == 0)
            snprintf(msg, sizeof msg,
                     "the image %s of language '%s' is missing and could not be pulled: "
                     "build it with scripts/build-images",
                     spec.image, p->name);
        else
            snprintf(msg, sizeof msg, "the docker engine is unavailable: %s", err);
        api_error(resp, 503, present == 0 ? "image_missing" : "engine_unavailable", msg,
                  req->request_id);
        resp->retry_after = present == 0 ? 60 : 5;
        goto done;
    }
    b = batch_new(&spec, count, req->request_id);
    if (!b) {
        api_error(resp, 500, "internal_error", "out of memory", req->request_id);
        goto done;
    }
    b->profiles = set;
    set = NULL;
    b->on_done = on_done;
    b->arg = arg;
    b->plugin_ctx = v.ctx_json;
    v.ctx_json = NULL;
    int rc = service_submit(s, b);
    if (rc < 0) {
        if (rc == BG_EFULL)
            api_error(resp, 503, "queue_full", "the backlog is full: retry later", req->request_id);
        else if (rc == BG_ECLOSED)
            api_error(resp, 503, "shutting_down", "the service is shutting down",
                      req->request_id);
        else if (rc == BG_EQUEUE)
            api_error(resp, 503, "queue_unavailable",
                      "the shared job queue (Redis) is unreachable or refused the jobs: "
                      "retry later", req->request_id);
        else if (rc == BG_ENOMEM)
            api_error(resp, 500, "internal_error", "out of memory", req->request_id);
        else
            api_error(resp, 500, "internal_error", "the shared job queue answered oddly",
                      req->request_id);
        resp->retry_after = 1;
        goto done;
    }
    *pending = b;
    b = NULL;
done:
    batch_unref(b);
    if (parsed)
        run_spec_free(&spec); /* empty when batch_new took it */
    plugin_verdict_free(&v);
    profile_set_unref(set);
    return *pending ? API_PENDING : API_READY;
}

int api_handle(struct service *s, const struct api_request *req, struct api_response *resp,
               struct batch **pending, batch_done_fn on_done, void *arg)
{
    const char *m = req->method, *path = req->path;
    int get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    int probe = strcmp(path, "/") == 0 || strcmp(path, "/healthz") == 0 ||
                strcmp(path, "/metrics") == 0;
    struct plugin_verdict v;
    size_t none = 0;
    char msg[300];
    *pending = NULL;
    resp->retry_after = 0;
    resp->allow = NULL;
    resp->content_type = NULL;
    if (strcmp(path, "/compile") == 0 && strcmp(m, "POST") == 0 && s->cfg.worker_process) {
        api_error(resp, 404, "not_a_front_door",
                  "this process is a worker of the shared queue: send requests to a front door",
                  req->request_id);
        return API_READY;
    }
    if (strcmp(path, "/compile") == 0 && strcmp(m, "POST") == 0)
        return route_compile(s, req, resp, pending, on_done, arg);
    /* Probes stay ungated so health checks keep working; the rest is
     * policy's to allow first. */
    if (!probe && gate(s, req, NULL, &none, resp, &v)) {
        plugin_verdict_free(&v);
        return API_READY;
    }
    if (!probe)
        plugin_verdict_free(&v);
    if (strcmp(path, "/compile") == 0) {
        resp->allow = "POST";
    } else if (probe || strcmp(path, "/languages") == 0) {
        if (get) {
            if (strcmp(path, "/metrics") == 0)
                route_metrics(s, resp);
            else if (strcmp(path, "/healthz") == 0)
                route_healthz(s, req, resp);
            else if (strcmp(path, "/languages") == 0)
                route_languages(s, resp);
            else {
                cJSON *j = cJSON_CreateObject();
                cJSON_AddStringToObject(j, "service", "bg-compiler");
                cJSON_AddStringToObject(j, "status", "ok");
                /* Which instance answered: its containers carry this label. */
                cJSON_AddStringToObject(j, "instance", s->inst.id);
                send_json(resp, 200, j);
            }
            return API_READY;
        }
        resp->allow = "GET, HEAD";
    } else {
        snprintf(msg, sizeof msg, "no route %.200s (see docs/API.md)", path);
        api_error(resp, 404, "not_found", msg, req->request_id);
        return API_READY;
    }
    snprintf(msg, sizeof msg, "method %.16s is not allowed on %.200s (allowed: %s)", m, path,
             resp->allow);
    api_error(resp, 405, "method_not_allowed", msg, req->request_id);
    return API_READY;
}
