/*
 * store: the shared state of plugins, in C behind one lock.
 *
 * A bounded map from string keys to numbers or strings, each with an
 * optional expiry, shared by every thread and kept across plugin reloads
 * (it belongs to the service, not to a Lua state), so a rate limit holds
 * whichever thread or Lua state serves a request. Plugins reach it only
 * through the functions below (see docs/LUA_API.md).
 */
#ifndef BG_STORE_H
#define BG_STORE_H

#include <stddef.h>

#define STORE_MAX_KEYS 100000
#define STORE_MAX_KEY 256
#define STORE_MAX_VALUE 4096

struct store;

struct store_value {
    int is_number;
    double number;
    char text[STORE_MAX_VALUE]; /* when !is_number */
    size_t len;
};

struct store *store_new(void);
void store_free(struct store *s);

/* 1 found (out filled), 0 absent or expired. */
int store_get(struct store *s, const char *key, struct store_value *out);
/* ttl_s <= 0: no expiry. 0, BG_EINVAL (key/value too long) or BG_EFULL. */
int store_set(struct store *s, const char *key, const struct store_value *v, double ttl_s);
/* Atomically add `by` to a number (absent counts as 0; a string is an
 * error); a new key gets ttl_s. The new value in *out. */
int store_incr(struct store *s, const char *key, double by, double ttl_s, double *out);
int store_delete(struct store *s, const char *key);

/*
 * A token bucket, atomically: `capacity` tokens, refilled evenly over
 * `period_s`. Takes one token when there is one. *remaining gets the
 * tokens left, *retry_s the seconds until the next token (0 when taken).
 * Returns 1 taken, 0 refused, or BG_E*.
 */
int store_take(struct store *s, const char *key, double capacity, double period_s,
               double *remaining, double *retry_s);

/* Live keys (expired ones are swept first). */
size_t store_count(struct store *s);

#endif
