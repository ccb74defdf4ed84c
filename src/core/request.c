#include "request.h"

#include "../common/base64.h"
#include "../common/buf.h"
#include "../common/utf8.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PIDS 64
#define DEFAULT_NOFILE 256
#define DEFAULT_TMPFS_MB 64

static int fail(struct request_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct request_error *e, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return BG_EINVAL;
}

int request_has_escaped_nul(const char *body, size_t len)
{
    for (size_t i = 0; i + 6 <= len; i++) {
        if (body[i] != '\\')
            continue;
        /* "\\u0000" is an escaped backslash then text: count the run. */
        size_t run = 0;
        while (i + run < len && body[i + run] == '\\')
            run++;
        if (run % 2 == 1 && i + run + 5 <= len && body[i + run] == 'u' &&
            strncmp(body + i + run + 1, "0000", 4) == 0)
            return 1;
        i += run - 1;
    }
    return 0;
}

static long lowest(long profile_value, long flag_value)
{
    if (profile_value > 0 && profile_value < flag_value)
        return profile_value;
    return flag_value;
}

static long first_set(long a, long b, long fallback)
{
    return a > 0 ? a : b > 0 ? b : fallback;
}

void request_limits(const struct profile *p, const struct config *cfg, struct run_limits *out,
                    struct run_limits *compile)
{
    const struct limits *l = &p->limits, *c = &p->compile_limits;
    long flag_timeout = cfg->timeout_s * 1000;
    memset(out, 0, sizeof *out);
    out->timeout_ms = lowest(l->timeout_ms, flag_timeout);
    out->compile_timeout_ms = lowest(first_set(c->timeout_ms, l->timeout_ms, 0), flag_timeout);
    out->memory_mb = lowest(l->memory_mb, cfg->memory_mb);
    out->output_bytes = lowest(l->output_kb, cfg->output_kb) * 1024;
    out->pids = first_set(l->pids, 0, DEFAULT_PIDS);
    out->nofile = first_set(l->nofile, 0, DEFAULT_NOFILE);
    out->tmpfs_mb = first_set(l->tmpfs_mb, 0, DEFAULT_TMPFS_MB);
    out->cpu_shares = cfg->cpu_shares;
    /* The compile runs in a container of its own with its own limits;
     * what the profile leaves unset there falls back to the run's. */
    *compile = *out;
    compile->timeout_ms = out->compile_timeout_ms;
    compile->memory_mb = lowest(first_set(c->memory_mb, l->memory_mb, 0), cfg->memory_mb);
    compile->output_bytes = lowest(first_set(c->output_kb, l->output_kb, 0), cfg->output_kb) * 1024;
    compile->pids = first_set(c->pids, l->pids, DEFAULT_PIDS);
    compile->nofile = first_set(c->nofile, l->nofile, DEFAULT_NOFILE);
    compile->tmpfs_mb = first_set(c->tmpfs_mb, l->tmpfs_mb, DEFAULT_TMPFS_MB);
}

static void clamp(long *v, long ceiling)
{
    if (*v <= 0 || *v > ceiling)
        *v = ceiling;
}

void request_clamp_limits(struct run_limits *l, const struct run_limits *ceiling)
{
    clamp(&l->timeout_ms, ceiling->timeout_ms);
    clamp(&l->compile_timeout_ms, ceiling->compile_timeout_ms);
    clamp(&l->memory_mb, ceiling->memory_mb);
    clamp(&l->output_bytes, ceiling->output_bytes);
    clamp(&l->pids, ceiling->pids);
    clamp(&l->nofile, ceiling->nofile);
    clamp(&l->tmpfs_mb, ceiling->tmpfs_mb);
    clamp(&l->cpu_shares, ceiling->cpu_shares);
}

static int parse_count_text(const char *text, const struct config *cfg, size_t *count,
                            struct request_error *e)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!isdigit((unsigned char)text[0]) || errno || *end || v < 1 || v > cfg->max_count)
        return fail(e, 400, "bad_count", "count must be a whole number from 1 to %ld", cfg->max_count);
    *count = (size_t)v;
    return 0;
}

/* The program's environment: ours first, the profile's own win. */
static char **build_env(const struct profile *p)
{
    static const char *const defaults[] = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/work",
        "TMPDIR=/tmp", "LANG=C.UTF-8", NULL};
    size_t n = strv_len(p->env);
    char **env = calloc(n + 5, sizeof *env);
    size_t k = 0;
    if (!env)
        return NULL;
    for (size_t i = 0; defaults[i]; i++) {
        size_t key = (size_t)(strchr(defaults[i], '=') - defaults[i]);
        int overridden = 0;
        for (size_t j = 0; j < n; j++)
            if (strncmp(p->env[j], defaults[i], key + 1) == 0)
                overridden = 1;
        if (!overridden && !(env[k++] = strdup(defaults[i])))
            goto nomem;
    }
    for (size_t j = 0; j < n; j++)
        if (!(env[k++] = strdup(p->env[j])))
            goto nomem;
    return env;
nomem:
    strv_free(env);
    return NULL;
}

#define MAX_FILES 64
#define MAX_ARGS 64
#define MAX_ARG_LEN 4096
#define MAX_SEGMENT 255

/* Names are relative paths inside the workspace: no '..', no '.', no empty
 * segment, nothing absolute, no control bytes. The supervisor checks again
 * and writes without following links; this check gives the client a
 * precise 400 before anything is created (threats.md: paths). */
int request_name_valid(const char *name, size_t len, const char **why)
{
    size_t seg = 0;
    if (len == 0 || strlen(name) != len)
        return *why = "is empty or holds a NUL byte", 0;
    if (name[0] == '/')
        return *why = "is absolute", 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || name[i] == '/') {
            const char *start = name + i - seg;
            if (seg == 0)
                return *why = "has an empty segment", 0;
            if ((seg == 1 && start[0] == '.') || (seg == 2 && start[0] == '.' && start[1] == '.'))
                return *why = "has a '.' or '..' segment", 0;
            if (seg > MAX_SEGMENT)
                return *why = "has a segment over 255 bytes", 0;
            seg = 0;
            continue;
        }
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == '\\')
            return *why = "holds a control character or a backslash", 0;
        seg++;
    }
    return 1;
}

static int add_file(struct run_spec *spec, const char *name, const char *data, size_t len)
{
    struct run_file *files = realloc(spec->files, (spec->nfiles + 1) * sizeof *files);
    if (!files)
        return BG_ENOMEM;
    spec->files = files;
    struct run_file *f = &files[spec->nfiles];
    f->name = strdup(name);
    f->data = malloc(len ? len : 1);
    f->exec = 0;
    if (!f->name || !f->data) {
        free(f->name);
        free(f->data);
        return BG_ENOMEM;
    }
    memcpy(f->data, data, len);
    f->len = len;
    spec->nfiles++;
    return 0;
}

static int ends_with_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n > e + 1 && name[n - e - 1] == '.' && strcmp(name + n - e, ext) == 0;
}

static int push(struct buf *v, const char *s)
{
    char *copy = strdup(s);
    if (!copy || buf_append(v, &copy, sizeof copy) < 0) {
        free(copy);
        return BG_ENOMEM;
    }
    return 0;
}

/*
 * Expand the operator's argv: "{main}" is the main file, "{files}" every
 * file, "{files:EXT}" those ending in .EXT, each as its own argv element
 * (never pasted into a string, so no name can become shell syntax). extra
 * (the request's args) is appended.
 */
static char **expand_argv(char *const *tmpl, const struct run_spec *spec, const char *main_file,
                          char *const *extra)
{
    struct buf v = BUF_INIT; /* an array of char* built in a byte buffer */
    int rc = 0;
    for (size_t i = 0; tmpl[i] && rc == 0; i++) {
        const char *t = tmpl[i];
        if (strcmp(t, "{main}") == 0)
            rc = push(&v, main_file);
        else if (strcmp(t, "{files}") == 0 || strncmp(t, "{files:", 7) == 0) {
            char ext[32] = "";
            if (t[6] == ':')
                snprintf(ext, sizeof ext, "%.*s", (int)(strlen(t) - 8), t + 7);
            for (size_t f = 0; f < spec->nfiles && rc == 0; f++)
                if (!ext[0] || ends_with_ext(spec->files[f].name, ext))
                    rc = push(&v, spec->files[f].name);
        } else
            rc = push(&v, t);
    }
    for (size_t i = 0; extra && extra[i] && rc == 0; i++)
        rc = push(&v, extra[i]);
    char *end = NULL;
    if (rc == 0)
        rc = buf_append(&v, &end, sizeof end);
    if (rc < 0) {
        for (size_t i = 0; i < v.len / sizeof(char *); i++)
            free(((char **)v.data)[i]);
        buf_free(&v);
        return NULL;
    }
    return (char **)buf_steal(&v);
}

/* What the JSON asked for, before it is checked against profiles. */
struct fields {
    const char *lang, *script, *stdin_text, *image, *cmd, *extension, *main;
    size_t script_len, stdin_len;
    size_t count;
    const cJSON *files, *args, *limits;
};

static const char *const known_fields[] = {"lang",  "script", "count", "stdin", "image",
                                           "cmd",   "extension", "stdIn", "input", "files",
                                           "main",  "args",   "limits", NULL};

static int get_string(const cJSON *root, const char *key, const char **out, size_t *len,
                      struct request_error *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v))
        return fail(e, 400, "bad_type", "'%s' must be a string", key);
    *out = v->valuestring;
    if (len)
        *len = strlen(v->valuestring);
    return 0;
}

static int get_whole(const cJSON *v, long lo, long hi, long *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    /* Range first: casting a double outside long's range is undefined. */
    if (d < (double)lo || d > (double)hi || d != (double)(long)d)
        return -1;
    *out = (long)d;
    return 0;
}

static const cJSON *get_item(const cJSON *root, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static int read_fields(const cJSON *root, const struct config *cfg, struct fields *f,
                       struct request_error *e)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        int known = 0;
        for (size_t i = 0; known_fields[i]; i++)
            known |= strcmp(item->string, known_fields[i]) == 0;
        if (!known)
            return fail(e, 400, "unknown_field", "unknown field '%.64s'", item->string);
    }
    if (get_string(root, "lang", &f->lang, NULL, e) ||
        get_string(root, "script", &f->script, &f->script_len, e) ||
        get_string(root, "image", &f->image, NULL, e) || get_string(root, "cmd", &f->cmd, NULL, e) ||
        get_string(root, "extension", &f->extension, NULL, e) ||
        get_string(root, "main", &f->main, NULL, e) ||
        get_string(root, "stdin", &f->stdin_text, &f->stdin_len, e) ||
        get_string(root, "stdIn", &f->stdin_text, &f->stdin_len, e) ||
        get_string(root, "input", &f->stdin_text, &f->stdin_len, e))
        return BG_EINVAL;
    const cJSON *count = get_item(root, "count");
    long n = 1;
    if (count && get_whole(count, 1, cfg->max_count, &n) < 0)
        return fail(e, 400, "bad_count", "count must be a whole number from 1 to %ld",
                    cfg->max_count);
    f->count = (size_t)n;
    f->files = get_item(root, "files");
    f->args = get_item(root, "args");
    f->limits = get_item(root, "limits");
    if (f->files && f->script)
        return fail(e, 400, "bad_request", "give either 'script' or 'files', not both");
    if (!f->files && !f->script)
        return fail(e, 400, "missing_field", "'script' (or 'files') is required");
    return 0;
}

static int extension_valid(const char *ext)
{
    if (!*ext || strlen(ext) > 16)
        return 0;
    for (; *ext; ext++)
        if (!isalnum((unsigned char)*ext))
            return 0;
    return 1;
}

/* One entry of "files": {"name", "content", "encoding"}. */
static int read_file(const cJSON *o, size_t index, struct run_spec *spec, struct request_error *e)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(o, "content");
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(o, "encoding");
    const cJSON *item;
    const char *why;
    if (!cJSON_IsObject(o))
        return fail(e, 400, "bad_type", "files[%zu] must be an object", index);
    cJSON_ArrayForEach(item, o)
    {
        if (strcmp(item->string, "name") && strcmp(item->string, "content") &&
            strcmp(item->string, "encoding"))
            return fail(e, 400, "unknown_field", "unknown field 'files[%zu].%.64s'", index,
                        item->string);
    }
    if (!cJSON_IsString(name) || !cJSON_IsString(content))
        return fail(e, 400, "bad_type", "files[%zu] needs a string 'name' and 'content'", index);
    if (!request_name_valid(name->valuestring, strlen(name->valuestring), &why))
        return fail(e, 400, "bad_file_name", "file name '%.100s' %s", name->valuestring, why);
    for (size_t i = 0; i < spec->nfiles; i++)
        if (strcmp(spec->files[i].name, name->valuestring) == 0)
            return fail(e, 400, "bad_file_name", "file name '%.100s' is given twice",
                        name->valuestring);
    const char *encoding = cJSON_IsString(enc) ? enc->valuestring : enc ? NULL : "utf8";
    if (!encoding || (strcmp(encoding, "utf8") && strcmp(encoding, "base64")))
        return fail(e, 400, "bad_encoding", "files[%zu].encoding must be \"utf8\" or \"base64\"",
                    index);
    struct buf data = BUF_INIT;
    int rc = 0;
    if (strcmp(encoding, "base64") == 0)
        rc = base64_decode(content->valuestring, strlen(content->valuestring), &data);
    else
        rc = buf_append(&data, content->valuestring, strlen(content->valuestring));
    if (rc == BG_EINVAL)
        rc = fail(e, 400, "bad_encoding", "files[%zu] ('%.100s') is not valid base64", index,
                  name->valuestring);
    else if (rc == 0 && add_file(spec, name->valuestring, data.data ? data.data : "", data.len) < 0)
        rc = fail(e, 500, "internal_error", "out of memory");
    buf_free(&data);
    return rc;
}

static int read_files(const cJSON *files, struct run_spec *spec, struct request_error *e)
{
    if (!cJSON_IsArray(files) || cJSON_GetArraySize(files) == 0)
        return fail(e, 400, "bad_type", "'files' must be a non-empty array");
    if (cJSON_GetArraySize(files) > MAX_FILES)
        return fail(e, 400, "too_many_files", "at most %d files", MAX_FILES);
    size_t i = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, files)
    {
        int rc = read_file(o, i++, spec, e);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int read_args(const cJSON *args, char ***out, struct request_error *e)
{
    if (!cJSON_IsArray(args))
        return fail(e, 400, "bad_type", "'args' must be an array of strings");
    int n = cJSON_GetArraySize(args);
    if (n > MAX_ARGS)
        return fail(e, 400, "bad_args", "at most %d args", MAX_ARGS);
    char **v = calloc((size_t)n + 1, sizeof *v);
    if (!v)
        return fail(e, 500, "internal_error", "out of memory");
    int i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, args)
    {
        if (!cJSON_IsString(a) || strlen(a->valuestring) > MAX_ARG_LEN) {
            strv_free(v);
            return fail(e, 400, "bad_args", "args[%d] must be a string of at most %d bytes", i,
                        MAX_ARG_LEN);
        }
        if (!(v[i++] = strdup(a->valuestring))) {
            strv_free(v);
            return fail(e, 500, "internal_error", "out of memory");
        }
    }
    *out = v;
    return 0;
}

/* "limits" may only lower what the profile and the server allow. */
static int read_limits(const cJSON *limits, struct run_limits *l, struct request_error *e)
{
    /* The engine refuses a memory limit under 6 MB; runtimes need more. */
    struct {
        const char *key;
        long *field;
        long scale, min;
    } keys[] = {{"timeout_ms", &l->timeout_ms, 1, 1},
                {"memory_mb", &l->memory_mb, 1, 16},
                {"output_kb", &l->output_bytes, 1024, 1}};
    const cJSON *item;
    if (!cJSON_IsObject(limits))
        return fail(e, 400, "bad_type", "'limits' must be an object");
    cJSON_ArrayForEach(item, limits)
    {
        size_t k = 0;
        while (k < 3 && strcmp(keys[k].key, item->string) != 0)
            k++;
        if (k == 3)
            return fail(e, 400, "unknown_field",
                        "unknown limit '%.64s' (timeout_ms, memory_mb, output_kb)", item->string);
        long max = *keys[k].field / keys[k].scale, v;
        if (get_whole(item, keys[k].min, max, &v) < 0)
            return fail(e, 400, "bad_limit", "limits.%s must be a whole number from %ld to %ld",
                        keys[k].key, keys[k].min, max);
        if (keys[k].field == &l->memory_mb && v != *keys[k].field)
            l->custom_memory = 1; /* a container of its own kind: no warm one */
        *keys[k].field = v * keys[k].scale;
    }
    return 0;
}

/* Argv, environment and limits for profile p, once the files are known. */
static int fill_spec(struct run_spec *spec, const struct profile *p, const struct config *cfg,
                     const char *main_file, const char *cmd, char *const *args)
{
    spec->language = strdup(p->name);
    spec->image = strdup(p->image);
    spec->env = build_env(p);
    if (cmd) {
        /* The original ran `sh -c "<cmd> <file>"`; we keep that for its
         * users, but only inside the sandbox, where the client already
         * controls everything. */
        char *const shell[] = {"/bin/sh", "-c", NULL, NULL};
        size_t n = strlen(cmd) + strlen(main_file) + 2;
        char *line = malloc(n);
        if (line) {
            snprintf(line, n, "%s %s", cmd, main_file);
            char *argv[] = {shell[0], shell[1], line, NULL};
            spec->run = expand_argv(argv, spec, main_file, args);
        }
        free(line);
    } else {
        spec->run = expand_argv(p->run, spec, main_file, args);
        if (p->compile && !(spec->compile = expand_argv(p->compile, spec, main_file, NULL)))
            return BG_ENOMEM;
    }
    request_limits(p, cfg, &spec->limits, &spec->compile_limits);
    if (!spec->language || !spec->image || !spec->env || !spec->run)
        return BG_ENOMEM;
    if (!spec->run[0] || (spec->compile && !spec->compile[0]))
        return BG_EINVAL;
    return 0;
}

static const struct profile *find_profile(const struct fields *f, const struct profile_set *set,
                                          struct request_error *e)
{
    const struct profile *p;
    if (f->lang) {
        if (!(p = profile_find(set, f->lang)))
            fail(e, 404, "unknown_language", "unknown language '%.64s' (see GET /languages)",
                 f->lang);
        return p;
    }
    if (!f->image) {
        fail(e, 400, "missing_field", "'lang' is required (or the original's 'image')");
        return NULL;
    }
    if (!profile_image_allowed(set, f->image)) {
        fail(e, 403, "image_not_allowed", "image '%.100s' is not one of the service's languages",
             f->image);
        return NULL;
    }
    if (!(p = profile_find_image(set, f->image)))
        fail(e, 403, "image_not_allowed",
             "image '%.100s' is allowed but no language profile describes it", f->image);
    return p;
}

/* The sources: "files", or "script" as the main file. Sets *main_file. */
static int gather_files(const struct fields *f, const struct profile *p, struct run_spec *spec,
                        const char **main_file, char name[64], struct request_error *e)
{
    if (f->cmd && strlen(f->cmd) > MAX_ARG_LEN)
        return fail(e, 400, "bad_cmd", "'cmd' is longer than %d bytes", MAX_ARG_LEN);
    if (f->extension && !extension_valid(f->extension))
        return fail(e, 400, "bad_extension", "'extension' must be 1 to 16 letters or digits");
    if (!f->files) {
        snprintf(name, 64, "main.%s", f->extension ? f->extension : "");
        *main_file = f->extension ? name : p->file;
        if (f->script_len == 0)
            return fail(e, 400, "empty_script", "the main file is empty");
        if (add_file(spec, *main_file, f->script, f->script_len) < 0)
            return fail(e, 500, "internal_error", "out of memory");
        return 0;
    }
    int rc = read_files(f->files, spec, e);
    if (rc < 0)
        return rc;
    size_t m = 0;
    if (f->main) {
        while (m < spec->nfiles && strcmp(spec->files[m].name, f->main) != 0)
            m++;
        if (m == spec->nfiles)
            return fail(e, 400, "bad_main", "'main' names '%.100s', which is not among the files",
                        f->main);
    }
    if (spec->files[m].len == 0)
        return fail(e, 400, "empty_script", "the main file '%.100s' is empty", spec->files[m].name);
    *main_file = spec->files[m].name;
    return 0;
}

/* A key given twice: which one counts is up to each parser, so refuse. */
static int check_duplicates(const cJSON *o, struct request_error *e)
{
    for (const cJSON *a = o->child; a; a = a->next) {
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0)
                return fail(e, 400, "bad_json", "the key '%.64s' is given twice", a->string);
        if ((cJSON_IsObject(a) || cJSON_IsArray(a)) && check_duplicates(a, e) < 0)
            return BG_EINVAL;
    }
    return 0;
}

static int from_json(const struct request_in *in, const struct profile_set *set,
                     const struct config *cfg, struct run_spec *spec, size_t *count,
                     const struct profile **prof, struct request_error *e)
{
    struct fields f = {0};
    const struct profile *p = NULL;
    const char *main_file = NULL;
    char name[64];
    char **args = NULL;
    int rc;
    /* JSON never holds a raw NUL; cJSON would end the string there and
     * silently run a shorter script than the one sent. */
    if (in->body_len && memchr(in->body, '\0', in->body_len))
        return fail(e, 400, "bad_json", "the body holds a NUL byte (send binary as base64)");
    if (request_has_escaped_nul(in->body, in->body_len))
        return fail(e, 400, "bad_json", "strings may not contain \\u0000 (send binary as base64)");
    if (utf8_valid_prefix(in->body, in->body_len) != in->body_len)
        return fail(e, 400, "bad_json", "the body is not valid UTF-8 (near byte %zu)",
                    utf8_valid_prefix(in->body, in->body_len));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(in->body, in->body_len, &end, 0);
    if (!root)
        return fail(e, 400, "bad_json", "the body is not valid JSON (near byte %ld)",
                    (long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - in->body : 0));
    /* One document and nothing after it: a second one would be ignored. */
    while (end && end < in->body + in->body_len && strchr(" \t\r\n", *end) && *end)
        end++;
    if (end && end < in->body + in->body_len) {
        cJSON_Delete(root);
        return fail(e, 400, "bad_json", "trailing bytes after the JSON value (near byte %ld)",
                    (long)(end - in->body));
    }
    if (!cJSON_IsObject(root)) {
        rc = fail(e, 400, "bad_json", "the body must be a JSON object");
        goto out;
    }
    if ((rc = check_duplicates(root, e)) < 0)
        goto out;
    if ((rc = read_fields(root, cfg, &f, e)) < 0 || !(p = find_profile(&f, set, e)) ||
        (rc = gather_files(&f, p, spec, &main_file, name, e)) < 0 ||
        (f.args && (rc = read_args(f.args, &args, e)) < 0)) {
        rc = BG_EINVAL;
        goto out;
    }
    if ((rc = fill_spec(spec, p, cfg, main_file, f.cmd, args)) < 0) {
        rc = fail(e, 500, "internal_error", rc == BG_EINVAL ? "the language's command expands "
                  "to nothing for these files (a profile error)" : "out of memory");
        goto out;
    }
    if (f.limits && (rc = read_limits(f.limits, &spec->limits, e)) < 0)
        goto out;
    if (f.stdin_text && f.stdin_len) {
        if (!(spec->stdin_data = strdup(f.stdin_text))) {
            rc = fail(e, 500, "internal_error", "out of memory");
            goto out;
        }
        spec->stdin_len = f.stdin_len;
    }
    *count = f.count;
    *prof = p;
    spec->args = args;
    args = NULL;
    rc = 0;
out:
    strv_free(args);
    cJSON_Delete(root);
    return rc;
}

static int from_raw(const struct request_in *in, const struct profile_set *set,
                    const struct config *cfg, struct run_spec *spec, size_t *count,
                    const struct profile **prof, struct request_error *e)
{
    if (!in->query_lang || !*in->query_lang)
        return fail(e, 400, "missing_field",
                    "the language is required: POST /compile?lang=NAME (or send JSON)");
    const struct profile *p = profile_find(set, in->query_lang);
    if (!p)
        return fail(e, 404, "unknown_language", "unknown language '%.64s' (see GET /languages)",
                    in->query_lang);
    *count = 1;
    if (in->query_count && parse_count_text(in->query_count, cfg, count, e) < 0)
        return BG_EINVAL;
    if (in->body_len == 0)
        return fail(e, 400, "empty_script", "the main file is empty");
    if (add_file(spec, p->file, in->body, in->body_len) < 0 ||
        fill_spec(spec, p, cfg, p->file, NULL, NULL) < 0)
        return fail(e, 500, "internal_error", "out of memory");
    *prof = p;
    return 0;
}

static int is_json(const char *ct)
{
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, "application/json", 16) == 0;
}

int request_parse(const struct request_in *in, const struct profile_set *set,
                  const struct config *cfg, struct run_spec *spec, size_t *count,
                  const struct profile **profile, struct request_error *e)
{
    memset(spec, 0, sizeof *spec);
    int rc = is_json(in->content_type) ? from_json(in, set, cfg, spec, count, profile, e)
                                        : from_raw(in, set, cfg, spec, count, profile, e);
    if (rc < 0)
        run_spec_free(spec);
    return rc;
}
