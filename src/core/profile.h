/*
 * profile: language profiles as plain C data.
 *
 * Built by the script module from lua/languages.lua, validated there, and
 * read-only afterwards, so workers use them without touching Lua. A set is
 * reference-counted: a reload swaps in a new set while requests in flight
 * keep the one they began with.
 */
#ifndef BG_PROFILE_H
#define BG_PROFILE_H

#include <stdatomic.h>
#include <stddef.h>

/* Limits; 0 means "not set" (the server's value applies). */
struct limits {
    long timeout_ms;
    long memory_mb;
    long output_kb;
    long pids;
    long nofile;
    long tmpfs_mb;
};

struct profile {
    char *name;
    char **aliases;  /* NULL-terminated */
    char *version;   /* may be NULL */
    char *image;
    char **packages; /* NULL-terminated, may be empty */
    char *file;      /* the main file's name */
    char **compile;  /* NULL when interpreted */
    char **run;      /* NULL-terminated argv */
    char **env;      /* "KEY=VALUE", NULL-terminated */
    struct limits limits;
    struct limits compile_limits;
    char *test_code;
    char *test_stdout;
    char *source; /* "file:line" where the profile was declared */
};

struct profile_set {
    struct profile *items;
    size_t n;
    char **allow_images; /* extra images the original's form may name */
    atomic_int refs;
};

struct profile_set *profile_set_new(void);
void profile_set_ref(struct profile_set *s);
/* Drops a reference; frees the set with the last one. NULL is fine. */
void profile_set_unref(struct profile_set *s);
/* By name or alias; NULL when unknown. */
const struct profile *profile_find(const struct profile_set *s, const char *name);
/* The first profile using image; NULL when none. */
const struct profile *profile_find_image(const struct profile_set *s, const char *image);
/* Whether the original's form may name this image. */
int profile_image_allowed(const struct profile_set *s, const char *image);
/* Check a language name against [a-z0-9][a-z0-9+._-]*. */
int profile_name_valid(const char *name);

/* Helpers for NULL-terminated string vectors. */
size_t strv_len(char *const *v);
void strv_free(char **v);
char **strv_dup(char *const *v);

#endif
