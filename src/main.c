/*
 * bg-compiler: the command line.
 *
 *   bg-compiler start [FLAGS]   run the service (see --help); with --queue
 *                               redis://..., a front door of a shared queue
 *   bg-compiler worker --queue redis://... [FLAGS]
 *                               run the shared queue's jobs on this host
 *   bg-compiler images [--languages FILE]
 *                               list each image and its Debian packages
 *                               (what scripts/build-images builds)
 *   bg-compiler version
 *
 * Signals: SIGTERM/SIGINT drain and stop; SIGHUP reloads the language
 * profiles (a file that fails to load is rejected and the old set stays).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "core/job.h"
#include "core/request.h"
#include "core/config.h"
#include "core/service.h"
#include "docker/transport.h"
#include "http/http.h"
#include "script/script.h"

#ifndef BG_VERSION
#define BG_VERSION "0.1.0"
#endif

#define DEFAULT_CONFIG "lua/config.lua"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bg-compiler start [FLAGS]      run the service (a front door with --queue)\n"
            "       bg-compiler worker --queue redis://HOST:PORT [FLAGS]\n"
            "                                      run jobs of the shared queue on this host\n"
            "       bg-compiler images [--languages FILE]\n"
            "                                      list language images and their packages\n"
            "       bg-compiler selftest [LANG...] [FLAGS]\n"
            "                                      run each profile's self-test in a container\n"
            "       bg-compiler version\n"
            "       bg-compiler --help\n\n");
}

/* Defaults, then the --config file, then the command line over it. */
static int load_config(struct config *cfg, int argc, char **argv)
{
    char err[BG_ERRLEN];
    int help = 0;
    struct config first;
    config_defaults(&first);
    int rc = config_parse_args(&first, argc, argv, &help, err);
    if (rc == 0 && help) {
        usage(stdout);
        config_print_help();
        config_free(&first);
        exit(0);
    }
    if (rc < 0) {
        fprintf(stderr, "bg-compiler: %s (see bg-compiler --help)\n", err);
        config_free(&first);
        return 2;
    }
    const char *file = first.config_file;
    if (!file && access(DEFAULT_CONFIG, F_OK) == 0)
        file = DEFAULT_CONFIG;
    config_defaults(cfg);
    if (file && script_load_config(file, cfg, err) < 0) {
        fprintf(stderr, "bg-compiler: %s\n", err);
        config_free(&first);
        config_free(cfg);
        return 2;
    }
    config_free(&first);
    if (config_parse_args(cfg, argc, argv, &help, err) < 0) {
        fprintf(stderr, "bg-compiler: %s\n", err);
        config_free(cfg);
        return 2;
    }
    return 0;
}

static int cmd_images(int argc, char **argv)
{
    struct config cfg;
    struct profile_set *set = NULL;
    char err[BG_ERRLEN];
    int rc = load_config(&cfg, argc, argv);
    if (rc)
        return rc;
    if (script_load_languages(cfg.languages, &set, err) < 0) {
        fprintf(stderr, "bg-compiler: %s\n", err);
        config_free(&cfg);
        return 1;
    }
    for (size_t i = 0; i < set->n; i++) {
        const struct profile *p = &set->items[i];
        if (profile_find_image(set, p->image) != p)
            continue; /* each image once */
        printf("%s\t", p->image);
        for (size_t k = 0; p->packages && p->packages[k]; k++)
            printf("%s%s", k ? " " : "", p->packages[k]);
        printf("\n");
    }
    profile_set_unref(set);
    config_free(&cfg);
    return 0;
}

/* ---- selftest: every profile's test through request, queue, workers and
 * a real container ---- */

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t left;
};

static void on_test_done(struct batch *b, void *arg)
{
    struct waiter *w = arg;
    (void)b;
    pthread_mutex_lock(&w->lock);
    w->left--;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Queue the test of p; NULL (with why) when it cannot be queued. */
static struct batch *queue_test(struct service *s, const struct profile *p, struct waiter *w,
                                const char **why)
{
    struct request_in in = {"text/plain", p->name, NULL, p->test_code, strlen(p->test_code)};
    struct request_error e;
    struct run_spec spec;
    size_t count;
    const struct profile *found;
    char err[BG_ERRLEN];
    if (request_parse(&in, s->profiles, &s->cfg, &spec, &count, &found, &e) < 0) {
        *why = "the test is not a valid request";
        return NULL;
    }
    if (service_image_present(s, spec.image, err) != 1) {
        run_spec_free(&spec);
        *why = "image missing (scripts/build-images)";
        return NULL;
    }
    struct batch *b = batch_new(&spec, 1, "selftest");
    if (!b) {
        run_spec_free(&spec);
        *why = "out of memory";
        return NULL;
    }
    b->on_done = on_test_done;
    b->arg = w;
    pthread_mutex_lock(&w->lock);
    w->left++;
    pthread_mutex_unlock(&w->lock);
    if (service_submit(s, b) < 0) {
        pthread_mutex_lock(&w->lock);
        w->left--;
        pthread_mutex_unlock(&w->lock);
        batch_unref(b);
        *why = "the queue refused it";
        return NULL;
    }
    return b;
}

static const char *text_of(const struct buf *b) { return b->data ? b->data : ""; }

/* One row of the table; 0 when the test passed. */
static int report_test(const struct profile *p, struct batch *b, const char *why)
{
    const struct run_result *r = b ? &b->results[0] : NULL;
    const char *verdict = "FAIL";
    char detail[2 * BG_ERRLEN] = "";
    if (!p->test_code)
        verdict = "NO TEST";
    else if (!r)
        snprintf(detail, sizeof detail, "%s", why);
    else if (r->status == RUN_COMPILE_ERROR)
        snprintf(detail, sizeof detail, "compile_error %.300s", text_of(&b->compile.compile.err));
    else if (r->status != RUN_OK)
        snprintf(detail, sizeof detail, "%s %.300s", run_status_name(r->status), r->message);
    else if (strcmp(text_of(&r->run.out), p->test_stdout) != 0)
        snprintf(detail, sizeof detail, "stdout was \"%.100s\"", text_of(&r->run.out));
    else
        verdict = "ok";
    printf("%-14s %-8s %8ld ms  %s\n", p->name, verdict, r ? r->duration_ms : 0L, detail);
    return strcmp(verdict, "ok") == 0 ? 0 : 1;
}

static int cmd_selftest(int argc, char **argv)
{
    struct config cfg;
    struct service svc;
    struct profile_set *set = NULL;
    char err[BG_ERRLEN];
    char **flags = calloc((size_t)argc + 1, sizeof *flags), **names = calloc((size_t)argc + 1, sizeof *names);
    int nflags = 0, nnames = 0, failures = 0;
    /* Words are language names; flags (and a flag's value) go to config. */
    for (int i = 0; flags && names && i < argc; i++) {
        int is_bool = 1;
        if (strncmp(argv[i], "--", 2) != 0) {
            names[nnames++] = argv[i];
            continue;
        }
        flags[nflags++] = argv[i];
        if (!strchr(argv[i], '=') && config_known(argv[i] + 2, &is_bool) && !is_bool &&
            i + 1 < argc)
            flags[nflags++] = argv[++i];
    }
    int rc = flags && names ? load_config(&cfg, nflags, flags) : 1;
    if (rc)
        goto out_args;
    log_set_level(LOG_WARN);
    free(cfg.queue); /* the self-test runs here, on this host's engine */
    cfg.queue = NULL;
    if (script_load_languages(cfg.languages, &set, err) < 0) {
        fprintf(stderr, "bg-compiler: %s\n", err);
        config_free(&cfg);
        rc = 1;
        goto out_args;
    }
    signal(SIGPIPE, SIG_IGN);
    if (transport_global_init() < 0) {
        fprintf(stderr, "bg-compiler: cannot initialise libcurl\n");
        profile_set_unref(set);
        config_free(&cfg);
        rc = 1;
        goto out_args;
    }
    int init = service_init(&svc, &cfg, set, err);
    if (init < 0 || service_start(&svc, err) < 0) {
        fprintf(stderr, "bg-compiler: %s\n", err);
        if (init == 0)
            service_stop(&svc); /* joins what service_start had started */
        service_free(&svc);
        rc = 1;
        goto out_args;
    }
    struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct batch **batches = calloc(set->n, sizeof *batches);
    const char **whys = calloc(set->n, sizeof *whys);
    size_t wanted = 0;
    for (size_t i = 0; batches && whys && i < set->n; i++) {
        const struct profile *p = &set->items[i];
        int want = nnames == 0;
        for (int k = 0; k < nnames; k++)
            want |= profile_find(set, names[k]) == p;
        if (!want)
            continue;
        wanted++;
        whys[i] = "";
        if (p->test_code)
            batches[i] = queue_test(&svc, p, &w, &whys[i]);
    }
    for (int k = 0; k < nnames; k++)
        if (!profile_find(set, names[k])) {
            printf("%-14s %-8s %8d ms  unknown language\n", names[k], "FAIL", 0);
            failures++;
        }
    pthread_mutex_lock(&w.lock);
    while (w.left > 0)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    for (size_t i = 0; batches && whys && i < set->n; i++) {
        if (!whys[i])
            continue;
        failures += report_test(&set->items[i], batches[i], whys[i]);
        batch_unref(batches[i]);
    }
    printf("%zu language(s), %d failure(s)\n", wanted, failures);
    free(batches);
    free(whys);
    service_stop(&svc);
    service_free(&svc);
    rc = failures || !wanted ? 1 : 0;
out_args:
    free(flags);
    free(names);
    return rc;
}

static void reload(struct service *s)
{
    struct profile_set *set = NULL;
    char err[BG_ERRLEN];
    if (script_load_languages(s->cfg.languages, &set, err) < 0) {
        log_error("reload rejected, keeping the old profiles: %s", err);
        return;
    }
    log_info("reload: %zu language(s) from %s", set->n, s->cfg.languages);
    set->allow_images = strv_dup(s->cfg.allow_images);
    service_set_profiles(s, set);
    if (service_load_plugins(s, err) < 0)
        log_error("plugin reload rejected, keeping the old plugins: %s", err);
    else if (s->cfg.plugins && *s->cfg.plugins)
        log_info("reload: plugins %s", s->cfg.plugins);
}

/* `start` (worker_process 0) and `worker` (1): the same service, but a
 * worker takes its jobs from Redis and answers only probes over HTTP. */
static int cmd_serve(int argc, char **argv, int worker_process)
{
    struct config cfg;
    struct service svc;
    struct profile_set *set = NULL;
    struct http_server *http = NULL;
    char err[BG_ERRLEN];
    sigset_t sigs;
    int rc = load_config(&cfg, argc, argv), sig = 0;
    if (rc)
        return rc;
    cfg.worker_process = worker_process;
    if (worker_process && !cfg.queue) {
        fprintf(stderr, "bg-compiler: worker needs --queue redis://HOST:PORT\n");
        config_free(&cfg);
        return 2;
    }
    enum log_level level;
    if (log_parse_level(cfg.log_level, &level) < 0) {
        fprintf(stderr, "bg-compiler: --log-level must be debug, info, warn or error\n");
        config_free(&cfg);
        return 2;
    }
    log_set_level(level);
    if (script_load_languages(cfg.languages, &set, err) < 0) {
        fprintf(stderr, "bg-compiler: %s\n", err);
        config_free(&cfg);
        return 1;
    }
    set->allow_images = strv_dup(cfg.allow_images);
    /* Signals go to the main thread only: block them before any thread. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (transport_global_init() < 0) {
        fprintf(stderr, "bg-compiler: cannot initialise libcurl\n");
        profile_set_unref(set);
        config_free(&cfg);
        return 1;
    }
    /* From here the service owns cfg and set, even when service_init fails
     * (service_free copes with a half-made service). */
    if (service_init(&svc, &cfg, set, err) < 0) {
        fprintf(stderr, "bg-compiler: %s\n", err);
        service_free(&svc);
        return 1;
    }
    if (service_start(&svc, err) < 0 || !(http = http_start(&svc, err))) {
        fprintf(stderr, "bg-compiler: %s\n", err);
        service_stop(&svc); /* joins what service_start had started */
        service_free(&svc);
        return 1;
    }
    log_info("bg-compiler %s %s listening on %s:%ld (%ld workers, backlog %ld, queue %s, "
             "instance %s)",
             BG_VERSION, worker_process ? "worker" : "service", svc.cfg.host, svc.cfg.port,
             svc.cfg.workers, svc.cfg.backlog, svc.cfg.queue ? svc.redis.host : "in-process",
             svc.inst.id);
    for (;;) {
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload(&svc);
            continue;
        }
        break;
    }
    log_info("signal %d: draining (grace %ld s)", sig, svc.cfg.grace_s);
    http_quiesce(http);
    service_stop(&svc);
    http_stop(http, 5000);
    service_free(&svc);
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "start") == 0)
        return cmd_serve(argc - 2, argv + 2, 0);
    if (strcmp(cmd, "worker") == 0)
        return cmd_serve(argc - 2, argv + 2, 1);
    if (strcmp(cmd, "images") == 0)
        return cmd_images(argc - 2, argv + 2);
    if (strcmp(cmd, "selftest") == 0)
        return cmd_selftest(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("bg-compiler %s\n", BG_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        config_print_help();
        return 0;
    }
    fprintf(stderr, "bg-compiler: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
