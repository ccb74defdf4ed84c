/*
 * config: the service's settings, from flags and an optional Lua file.
 *
 * One table describes every long flag (name, type, range, help); the
 * command line and the --config file both go through config_set(), so a
 * setting has one name, one check and one error message wherever it comes
 * from. The command line wins over the file.
 */
#ifndef BG_CONFIG_H
#define BG_CONFIG_H

#include "../common/err.h"

struct config {
    long backlog;
    long memory_mb;
    long cpu_shares;
    long output_kb;
    long timeout_s;
    long workers;
    long port;
    long max_count;
    long max_body_kb;
    long grace_s;
    long pool;
    long claim_after_s;   /* shared queue: a silent worker's job is taken over */
    long result_ttl_s;    /* shared queue: an unread reply list expires */
    long queue_timeout_s; /* shared queue: a job unanswered this long fails */
    int gvisor;
    char *host;
    char *runtime;
    char *languages;
    char *docker_host;
    char *config_file;
    char *log_level;
    char *plugins;         /* "auth,ratelimit": enabled plugins, in order */
    char *plugin_dir;      /* searched before plugins/ */
    char *queue;           /* redis://...: the shared queue; NULL: in-process */
    char **allow_images;   /* from the config file only */
    char *plugin_settings; /* JSON object name -> settings, from the config file */
    int worker_process;    /* `bg-compiler worker`: no HTTP jobs, runs the shared queue's */
};

/* --workers when not given: 4, or none for a front door of a shared queue. */
#define CONFIG_WORKERS_UNSET (-1)

/* Defaults: the original's, plus ours (see the flags table in config.c). */
void config_defaults(struct config *c);
void config_free(struct config *c);

/* Set a flag by its long name from text; BG_EINVAL with a message. */
int config_set(struct config *c, const char *name, const char *value, char err[BG_ERRLEN]);
/* Whether name is a known flag, and whether it takes no value. */
int config_known(const char *name, int *is_bool);

/*
 * Parse the flags of `start` (argv[0] is the first flag). Sets *help when
 * --help was given. BG_EINVAL with a message naming the bad flag.
 */
int config_parse_args(struct config *c, int argc, char **argv, int *help, char err[BG_ERRLEN]);

/* Print the flags table (for --help). */
void config_print_help(void);

/* Worker threads to run: --workers, else 4, else none for a front door
 * (`start` with --queue); a `worker` process always runs some. */
long config_workers(const struct config *c, int worker_process);

/* The runtime to use: --runtime, else "runsc" with --gvisor, else NULL. */
const char *config_runtime(const struct config *c);

#endif
