#include "store.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/err.h"

/* Open addressing would be faster; a chained table is simpler to get right
 * and the lock, not the lookup, is what a busy server would feel. */
#define BUCKETS 4096

struct entry {
    struct entry *next;
    char *key;
    struct store_value v;
    double expires; /* monotonic seconds, 0 = never */
    double tokens, stamp; /* token buckets */
    int bucket;
};

struct store {
    pthread_mutex_t lock;
    struct entry *table[BUCKETS];
    size_t count;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned hash(const char *k)
{
    uint32_t h = 2166136261u;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 16777619u;
    return h % BUCKETS;
}

struct store *store_new(void)
{
    struct store *s = calloc(1, sizeof *s);
    if (s)
        pthread_mutex_init(&s->lock, NULL);
    return s;
}

static void entry_free(struct entry *e)
{
    free(e->key);
    free(e);
}

void store_free(struct store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < BUCKETS; i++)
        for (struct entry *e = s->table[i], *n; e; e = n) {
            n = e->next;
            entry_free(e);
        }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int expired(const struct entry *e, double t) { return e->expires > 0 && e->expires <= t; }

/* Remove expired entries everywhere (lock held). */
static void sweep(struct store *s, double t)
{
    for (size_t i = 0; i < BUCKETS; i++) {
        struct entry **p = &s->table[i];
        while (*p) {
            if (expired(*p, t)) {
                struct entry *dead = *p;
                *p = dead->next;
                entry_free(dead);
                s->count--;
            } else
                p = &(*p)->next;
        }
    }
}

/* The live entry for key (lock held); expired ones are dropped on sight. */
static struct entry *find(struct store *s, const char *key, double t)
{
    struct entry **p = &s->table[hash(key)];
    while (*p) {
        if (strcmp((*p)->key, key) == 0) {
            if (!expired(*p, t))
                return *p;
            struct entry *dead = *p;
            *p = dead->next;
            entry_free(dead);
            s->count--;
            return NULL;
        }
        p = &(*p)->next;
    }
    return NULL;
}

static struct entry *create(struct store *s, const char *key, double t, int *rc)
{
    if (s->count >= STORE_MAX_KEYS)
        sweep(s, t);
    if (s->count >= STORE_MAX_KEYS) {
        *rc = BG_EFULL;
        return NULL;
    }
    struct entry *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key))) {
        free(e);
        *rc = BG_ENOMEM;
        return NULL;
    }
    unsigned h = hash(key);
    e->next = s->table[h];
    s->table[h] = e;
    s->count++;
    return e;
}

static int key_ok(const char *key) { return key && *key && strlen(key) < STORE_MAX_KEY; }

int store_get(struct store *s, const char *key, struct store_value *out)
{
    pthread_mutex_lock(&s->lock);
    struct entry *e = key_ok(key) ? find(s, key, now()) : NULL;
    if (e && !e->bucket)
        *out = e->v;
    pthread_mutex_unlock(&s->lock);
    return e && !e->bucket;
}

int store_set(struct store *s, const char *key, const struct store_value *v, double ttl_s)
{
    int rc = 0;
    if (!key_ok(key) || (!v->is_number && v->len >= STORE_MAX_VALUE))
        return BG_EINVAL;
    pthread_mutex_lock(&s->lock);
    double t = now();
    struct entry *e = find(s, key, t);
    if (!e)
        e = create(s, key, t, &rc);
    if (e) {
        e->v = *v;
        e->bucket = 0;
        e->expires = ttl_s > 0 ? t + ttl_s : 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int store_incr(struct store *s, const char *key, double by, double ttl_s, double *out)
{
    int rc = 0;
    if (!key_ok(key))
        return BG_EINVAL;
    pthread_mutex_lock(&s->lock);
    double t = now();
    struct entry *e = find(s, key, t);
    if (e && (!e->v.is_number || e->bucket))
        rc = BG_EINVAL;
    else if (!e && (e = create(s, key, t, &rc)) != NULL) {
        e->v.is_number = 1;
        e->expires = ttl_s > 0 ? t + ttl_s : 0;
    }
    if (rc == 0 && e) {
        e->v.number += by;
        *out = e->v.number;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int store_delete(struct store *s, const char *key)
{
    pthread_mutex_lock(&s->lock);
    struct entry *e = key_ok(key) ? find(s, key, now()) : NULL;
    if (e)
        e->expires = 1e-9; /* in the past: the next lookup drops it */
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int store_take(struct store *s, const char *key, double capacity, double period_s,
               double *remaining, double *retry_s)
{
    int rc = 0;
    if (!key_ok(key) || capacity < 1 || period_s <= 0)
        return BG_EINVAL;
    double rate = capacity / period_s; /* tokens per second */
    pthread_mutex_lock(&s->lock);
    double t = now();
    struct entry *e = find(s, key, t);
    if (e && !e->bucket)
        rc = BG_EINVAL;
    else if (!e && (e = create(s, key, t, &rc)) != NULL) {
        e->bucket = 1;
        e->tokens = capacity; /* a new client starts with a full burst */
        e->stamp = t;
    }
    if (rc == 0 && e) {
        e->tokens += (t - e->stamp) * rate;
        if (e->tokens > capacity)
            e->tokens = capacity;
        e->stamp = t;
        /* A full bucket is the same as no bucket: let it expire then. */
        e->expires = t + (capacity - e->tokens + 1) / rate;
        rc = e->tokens >= 1;
        if (rc)
            e->tokens -= 1;
        *remaining = e->tokens;
        *retry_s = rc ? 0 : (1 - e->tokens) / rate;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

size_t store_count(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    sweep(s, now());
    size_t n = s->count;
    pthread_mutex_unlock(&s->lock);
    return n;
}
