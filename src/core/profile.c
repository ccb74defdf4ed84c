#include "profile.h"

#include <stdlib.h>
#include <string.h>

size_t strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

char **strv_dup(char *const *v)
{
    size_t n = strv_len(v);
    char **out = calloc(n + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(v[i]);
        if (!out[i]) {
            strv_free(out);
            return NULL;
        }
    }
    return out;
}

struct profile_set *profile_set_new(void)
{
    struct profile_set *s = calloc(1, sizeof *s);
    if (s)
        atomic_init(&s->refs, 1);
    return s;
}

void profile_set_ref(struct profile_set *s) { atomic_fetch_add(&s->refs, 1); }

static void profile_clear(struct profile *p)
{
    free(p->name);
    strv_free(p->aliases);
    free(p->version);
    free(p->image);
    strv_free(p->packages);
    free(p->file);
    strv_free(p->compile);
    strv_free(p->run);
    strv_free(p->env);
    free(p->test_code);
    free(p->test_stdout);
    free(p->source);
}

void profile_set_unref(struct profile_set *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->n; i++)
        profile_clear(&s->items[i]);
    free(s->items);
    strv_free(s->allow_images);
    free(s);
}

const struct profile *profile_find(const struct profile_set *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct profile *p = &s->items[i];
        if (strcmp(p->name, name) == 0)
            return p;
        for (size_t a = 0; p->aliases && p->aliases[a]; a++)
            if (strcmp(p->aliases[a], name) == 0)
                return p;
    }
    return NULL;
}

const struct profile *profile_find_image(const struct profile_set *s, const char *image)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->items[i].image, image) == 0)
            return &s->items[i];
    return NULL;
}

int profile_image_allowed(const struct profile_set *s, const char *image)
{
    if (profile_find_image(s, image))
        return 1;
    for (size_t i = 0; s->allow_images && s->allow_images[i]; i++)
        if (strcmp(s->allow_images[i], image) == 0)
            return 1;
    return 0;
}

int profile_name_valid(const char *name)
{
    if (!name[0] || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return strlen(name) <= 64;
}
