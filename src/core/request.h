/*
 * request: turns a POST /compile into a run_spec, or a precise 4xx.
 *
 * Two forms: the raw one (body = the code, ?lang=&count= in the query) and
 * JSON, either ours {"lang","script","count","stdin"} or the original
 * service's {"script","image","count","cmd","extension"}. Everything is
 * validated here, before any job exists; nothing from the request reaches
 * a shell, a path or a command line outside the sandbox.
 */
#ifndef BG_REQUEST_H
#define BG_REQUEST_H

#include <stddef.h>

#include "../common/err.h"
#include "../sandbox/run.h"
#include "config.h"
#include "profile.h"

struct request_in {
    const char *content_type; /* may be NULL */
    const char *query_lang;   /* ?lang=, may be NULL */
    const char *query_count;  /* ?count=, may be NULL */
    const char *body;
    size_t body_len;
};

struct request_error {
    int status;       /* HTTP status */
    const char *code; /* short name, e.g. "bad_request" */
    char message[BG_ERRLEN];
};

/*
 * On success fills spec (caller frees with run_spec_free) and *count, and
 * points *profile at the language used. On failure fills e.
 */
int request_parse(const struct request_in *in, const struct profile_set *set,
                  const struct config *cfg, struct run_spec *spec, size_t *count,
                  const struct profile **profile, struct request_error *e);

/* Whether name is an acceptable file name; *why says what is wrong. */
int request_name_valid(const char *name, size_t len, const char **why);

/* Whether the raw JSON text holds an escaped NUL (\u0000) in a string. */
int request_has_escaped_nul(const char *body, size_t len);

/* The limits a run (and a compile) of profile p gets under cfg: the
 * lowest of the profile's and the server's. */
void request_limits(const struct profile *p, const struct config *cfg, struct run_limits *out,
                    struct run_limits *compile);
/* Lower every container limit of l to ceiling's (one unset or above it
 * takes ceiling's): a job from elsewhere (the shared queue) gets no more
 * than this process would give a request. */
void request_clamp_limits(struct run_limits *l, const struct run_limits *ceiling);

#endif
