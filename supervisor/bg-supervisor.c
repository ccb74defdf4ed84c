/*
 * bg-supervisor: PID 1 of every run container.
 *
 * Theory of operation
 * -------------------
 * The service creates a container whose only capabilities are CAP_SETUID and
 * CAP_SETGID (no CAP_KILL, no CAP_DAC_OVERRIDE), with no-new-privileges, a
 * read-only root, a tmpfs workspace at /work and a tmpfs /tmp, and starts this
 * program as uid 0 attached to the container's stdin and stdout. Everything
 * else happens here, in one thread:
 *
 *   1. Read the job from fd 0 (frames of src/proto/proto.h) until END. The
 *      whole input is bounded; anything malformed ends in FAIL + DONE.
 *   2. Fork a writer that becomes the program's uid and creates the FILE
 *      frames under the workspace. The privileged process never touches a
 *      path inside the sandbox by name: the program's user owns every
 *      directory there and could otherwise plant a link for us to follow.
 *   3. For the compile step (if any) and then the run step: fork a child that
 *      drops to the program's uid, gets its own session, has pipes on 0/1/2
 *      and no other descriptor, and execs argv with the ENV frames as its
 *      whole environment. An exec failure comes back through a CLOEXEC pipe.
 *      The supervisor then multiplexes with poll(): stdin data in, stdout and
 *      stderr out as OUT/ERR frames, SIGCHLD through a self-pipe, the wall
 *      clock deadline and the output cap. When the main child exits, what is
 *      already in the pipes is drained without blocking and the step ends,
 *      whatever survivors still hold the pipes. A RESULT frame closes it.
 *   4. Between steps every process of the program's uid is killed; after the
 *      last step DONE is written and the supervisor exits, which (as PID 1)
 *      makes the kernel kill whatever is left in the container.
 *
 * Output on fd 1 is only ever written by this process, in whole frames, so
 * the program cannot forge a frame: its own output arrives through pipes and
 * is wrapped as OUT/ERR payload.
 *
 * Usage: bg-supervisor [WORKSPACE [UID GID]]  (defaults /work, 65534, 65534;
 * the arguments exist so tests can run it on a host).
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

#ifndef SYS_close_range
#define SYS_close_range 436 /* the same number on every Linux architecture */
#endif

/* Bounds the memory a service bug (or a hostile request) can make us use. */
#define MAX_JOB_INPUT (256u * 1024 * 1024)
#define IO_CHUNK (64 * 1024)
/* A pipe holds at most 1 MiB (pipe-max-size for unprivileged users). */
#define DRAIN_MAX (2 * 1024 * 1024)
/* Timeouts beyond a day are a service bug; they would also overflow poll(). */
#define MAX_TIMEOUT_MS (24LL * 3600 * 1000)
/* What execvp() in musl and glibc searches when PATH is unset. */
#define DEFAULT_PATH "/usr/local/bin:/bin:/usr/bin"

static struct {
    const char *workspace;
    uid_t uid;
    gid_t gid;
    int is_init;       /* we are PID 1 of a container (see kill_program) */
    int sig_r, sig_w;  /* SIGCHLD self-pipe */
    pid_t active;      /* main child of the running step, 0 between steps */
} g = {"/work", 65534, 65534, 0, -1, -1, 0};

/* ---------------------------------------------------------------- output */

static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            poll(&pfd, 1, -1);
            continue;
        }
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One whole frame on fd 1. If the service is gone there is nobody to tell. */
static void emit(uint8_t type, const void *data, size_t len)
{
    uint8_t h[PROTO_HEADER_SIZE];
    proto_put_header(h, type, (uint32_t)len);
    if (write_all(1, h, sizeof(h)) < 0 || write_all(1, data, len) < 0)
        _exit(1);
}

static void kill_program(pid_t pgid);

/* The supervisor itself failed: FAIL with a message, DONE, exit 1. */
static void fail_exit(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail_exit(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pid_t active = g.active;
    g.active = 0; /* kill_program may fail_exit in turn: do not loop */
    if (active > 0)
        kill_program(active);
    emit(PROTO_FAIL, msg, strlen(msg));
    emit(PROTO_DONE, NULL, 0);
    exit(1);
}

/* ----------------------------------------------------------------- input */

struct file_item {
    char *name;      /* NUL-terminated; the same allocation holds the data */
    uint8_t *data;
    size_t len;
    int exec;
};

struct job {
    int have_limits;
    int64_t timeout_ms, compile_timeout_ms, output_bytes, artifact_bytes;
    int has_timeout, has_compile_timeout, has_output, has_artifacts;
    struct file_item *files;
    size_t nfiles, files_cap;
    char **env;      /* always NULL-terminated */
    size_t nenv, env_cap;
    char **compile_argv, **run_argv;
    uint8_t *stdin_data;
    size_t stdin_len, stdin_cap;
    int ended;
    char err[256];
};

static int job_error(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int job_error(struct job *j, const char *fmt, ...)
{
    if (j->err[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->err, sizeof(j->err), fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Grow an array of `size`-byte elements so it holds `need`; 0 or -1. */
static int grow(void *arrp, size_t *cap, size_t need, size_t size)
{
    void **arr = arrp;
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * size);
    if (!p)
        return -1;
    *arr = p;
    *cap = n;
    return 0;
}

/* Store one "key=value" LIMITS line; `line` is not NUL-terminated. */
static int take_limit_line(struct job *j, const uint8_t *p, uint32_t len,
                           const uint8_t *line, size_t llen)
{
    static const char *const keys[] = {"timeout_ms", "compile_timeout_ms", "output_bytes",
                                       "artifact_bytes"};
    int64_t *vals[] = {&j->timeout_ms, &j->compile_timeout_ms, &j->output_bytes,
                       &j->artifact_bytes};
    int *seen[] = {&j->has_timeout, &j->has_compile_timeout, &j->has_output, &j->has_artifacts};
    const uint8_t *eq = memchr(line, '=', llen);
    size_t klen = eq ? (size_t)(eq - line) : llen;
    for (size_t i = 0; i < 4; i++) {
        if (klen != strlen(keys[i]) || memcmp(line, keys[i], klen) != 0)
            continue;
        /* Duplicates are refused so proto_kv_int's first match is this line. */
        if (*seen[i])
            return job_error(j, "LIMITS: duplicate key '%s'", keys[i]);
        if (proto_kv_int(p, len, keys[i], vals[i]) < 0)
            return job_error(j, "LIMITS: '%s' is not an integer", keys[i]);
        *seen[i] = 1;
        return 0;
    }
    /* A limit we do not know would be a limit we silently do not enforce. */
    return job_error(j, "LIMITS: unknown line '%.*s'", (int)(llen > 64 ? 64 : llen), line);
}

static int take_limits(struct job *j, const uint8_t *p, uint32_t len)
{
    if (j->have_limits)
        return job_error(j, "LIMITS sent twice");
    j->have_limits = 1;
    size_t pos = 0;
    while (pos < len) {
        const uint8_t *nl = memchr(p + pos, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - (p + pos)) : len - pos;
        if (take_limit_line(j, p, len, p + pos, llen) < 0)
            return -1;
        pos += llen + 1;
    }
    return 0;
}

/*
 * Defence in depth: the service validates names too, but the supervisor is
 * the last code before the filesystem. A relative path of plain segments
 * cannot leave the workspace when walked one segment at a time without
 * following links (see write_one).
 */
static const char *bad_name(const char *name, size_t len)
{
    if (len == 0)
        return "empty name";
    if (len >= PATH_MAX)
        return "name too long";
    if (name[0] == '/')
        return "absolute name";
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '/')
            continue;
        size_t seg = i - start;
        if (seg == 0)
            return "empty path segment";
        if (seg > NAME_MAX)
            return "path segment over 255 bytes";
        if ((seg == 1 && name[start] == '.') ||
            (seg == 2 && name[start] == '.' && name[start + 1] == '.'))
            return "'.' or '..' segment";
        start = i + 1;
    }
    return NULL;
}

static int take_file(struct job *j, const uint8_t *p, uint32_t len, int exec)
{
    const uint8_t *nul = memchr(p, '\0', len);
    if (!nul)
        return job_error(j, "FILE without a NUL after its name");
    size_t nlen = (size_t)(nul - p);
    const char *why = bad_name((const char *)p, nlen);
    if (why)
        return job_error(j, "bad file name '%.*s': %s", (int)(nlen > 100 ? 100 : nlen), p, why);
    if (grow(&j->files, &j->files_cap, j->nfiles + 1, sizeof(*j->files)) < 0)
        return job_error(j, "out of memory");
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return job_error(j, "out of memory");
    memcpy(copy, p, len);
    struct file_item *f = &j->files[j->nfiles++];
    f->name = copy; /* owns the allocation */
    f->data = (uint8_t *)copy + nlen + 1;
    f->len = len - nlen - 1;
    f->exec = exec;
    return 0;
}

static int take_env(struct job *j, const uint8_t *p, uint32_t len)
{
    if (len == 0 || p[0] == '=' || !memchr(p, '=', len) || memchr(p, '\0', len))
        return job_error(j, "ENV must be KEY=VALUE without NUL");
    if (grow(&j->env, &j->env_cap, j->nenv + 2, sizeof(*j->env)) < 0)
        return job_error(j, "out of memory");
    char *s = malloc((size_t)len + 1);
    if (!s)
        return job_error(j, "out of memory");
    memcpy(s, p, len);
    s[len] = '\0';
    j->env[j->nenv++] = s;
    j->env[j->nenv] = NULL;
    return 0;
}

/* argv: elements each NUL-terminated; at least one, the first non-empty. */
static int take_argv(struct job *j, char ***out, const char *what, const uint8_t *p, uint32_t len)
{
    if (*out)
        return job_error(j, "%s sent twice", what);
    if (len == 0 || p[len - 1] != '\0' || p[0] == '\0')
        return job_error(j, "%s: malformed argv", what);
    size_t argc = 0;
    for (uint32_t i = 0; i < len; i++)
        argc += p[i] == '\0';
    char *copy = malloc(len);
    char **argv = calloc(argc + 1, sizeof(*argv));
    if (!copy || !argv) {
        free(copy);
        free(argv);
        return job_error(j, "out of memory");
    }
    memcpy(copy, p, len);
    for (size_t i = 0, off = 0; i < argc; i++) {
        argv[i] = copy + off;
        off += strlen(copy + off) + 1;
    }
    *out = argv;
    return 0;
}

static int take_stdin(struct job *j, const uint8_t *p, uint32_t len)
{
    if (grow(&j->stdin_data, &j->stdin_cap, j->stdin_len + len, 1) < 0)
        return job_error(j, "out of memory");
    if (len)
        memcpy(j->stdin_data + j->stdin_len, p, len);
    j->stdin_len += len;
    return 0;
}

static int on_frame(void *arg, uint8_t type, const uint8_t *p, uint32_t len)
{
    struct job *j = arg;
    if (j->ended)
        return 0; /* nothing after END is read; ignore the rest of this chunk */
    switch (type) {
    case PROTO_LIMITS:
        return take_limits(j, p, len);
    case PROTO_FILE:
        return take_file(j, p, len, 0);
    case PROTO_FILE_EXEC:
        return take_file(j, p, len, 1);
    case PROTO_ENV:
        return take_env(j, p, len);
    case PROTO_COMPILE:
        return take_argv(j, &j->compile_argv, "COMPILE", p, len);
    case PROTO_RUN:
        return take_argv(j, &j->run_argv, "RUN", p, len);
    case PROTO_STDIN:
        return take_stdin(j, p, len);
    case PROTO_END:
        j->ended = 1;
        return 0;
    default:
        return job_error(j, "unexpected frame type '%c' from the service", type);
    }
}

/* The complete job must carry every limit it needs: none has a default. */
static const char *job_incomplete(const struct job *j)
{
    if (!j->has_timeout || j->timeout_ms < 1 || j->timeout_ms > MAX_TIMEOUT_MS)
        return "LIMITS: timeout_ms missing or out of range";
    if (!j->has_output || j->output_bytes < 0)
        return "LIMITS: output_bytes missing or negative";
    if (j->has_compile_timeout &&
        (j->compile_timeout_ms < 1 || j->compile_timeout_ms > MAX_TIMEOUT_MS))
        return "LIMITS: compile_timeout_ms out of range";
    if (j->compile_argv && !j->has_compile_timeout)
        return "LIMITS: compile_timeout_ms missing for a COMPILE step";
    if (j->has_artifacts && (!j->compile_argv || j->artifact_bytes < 0))
        return "LIMITS: artifact_bytes needs a COMPILE step and a size";
    if (!j->run_argv && !j->has_artifacts)
        return "no RUN frame";
    return NULL;
}

static void read_job(struct job *j)
{
    static uint8_t buf[IO_CHUNK];
    struct proto_decoder d;
    size_t total = 0;
    proto_decoder_init(&d, PROTO_MAX_PAYLOAD, on_frame, j);
    while (!j->ended) {
        ssize_t n = read(0, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail_exit("reading the job: %s", strerror(errno));
        if (n == 0)
            fail_exit("input ended before END");
        total += (size_t)n;
        if (total > MAX_JOB_INPUT)
            fail_exit("input over %u bytes", MAX_JOB_INPUT);
        if (proto_decoder_feed(&d, buf, (size_t)n) < 0)
            fail_exit("bad input: %s",
                      j->err[0] ? j->err : "malformed frame (unknown type or payload too large)");
    }
    proto_decoder_free(&d);
    const char *why = job_incomplete(j);
    if (why)
        fail_exit("bad input: %s", why);
}

/* ------------------------------------------------------- the program's uid */

/*
 * Become the program's user for good. Every call is checked and the result
 * verified, including that uid 0 cannot be regained: a half-dropped child
 * would run untrusted code with our capabilities.
 */
static int drop_privileges(void)
{
    if (setgroups(0, NULL) != 0 || setgid(g.gid) != 0 || setuid(g.uid) != 0)
        return -1;
    if (getuid() != g.uid || geteuid() != g.uid || getgid() != g.gid ||
        getegid() != g.gid || getuid() == 0 || setuid(0) == 0) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

/*
 * The supervisor has no CAP_KILL, so as euid 0 it may not signal another
 * uid. Switching only the effective uid to the program's lets the kernel's
 * same-uid rule allow the kill; the real and saved uid stay 0, so
 * seteuid(0) needs no capability, and the program cannot signal us in the
 * meantime (the kernel compares its ids with our real and saved uid).
 *
 * In a container (we are PID 1) kill(-1) reaches every process of that uid,
 * including those that left the session (setsid, double fork). On a host
 * (tests) kill(-1) as uid 65534 would hit every "nobody" process of the
 * machine, so there only the step's session is killed; its leader is the
 * main child, whose pid cannot be reused while the group still has members.
 */
static void kill_program(pid_t pgid)
{
    int switched = seteuid(g.uid) == 0;
    if (!switched && g.is_init)
        fail_exit("cannot become uid %u to kill the program: %s", (unsigned)g.uid, strerror(errno));
    if (g.is_init)
        kill(-1, SIGKILL);
    else if (pgid > 0)
        kill(-pgid, SIGKILL);
    if (switched && seteuid(0) != 0)
        fail_exit("cannot return to euid 0: %s", strerror(errno));
}

struct step;
static void reap_children(struct step *s);

/*
 * Between steps, in a container: kill until nothing of the program's uid is
 * left (zombies count until reaped), so no survivor of the compile step can
 * touch the run step. Bounded: a process stuck in the kernel will not hold
 * us forever; it stays killed-pending and dies with the container.
 */
static void settle_between_steps(void)
{
    if (!g.is_init)
        return;
    for (int i = 0; i < 1000; i++) {
        if (seteuid(g.uid) != 0)
            fail_exit("cannot become uid %u: %s", (unsigned)g.uid, strerror(errno));
        int r = kill(-1, SIGKILL);
        int err = errno;
        if (seteuid(0) != 0)
            fail_exit("cannot return to euid 0: %s", strerror(errno));
        if (r < 0 && err == ESRCH)
            return;
        reap_children(NULL);
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
}

/* ----------------------------------------------------------------- files */

/* Create (or reuse) directory `seg` under `dir` and open it; fd or -1. */
static int enter_dir(int dir, const char *seg)
{
    if (mkdirat(dir, seg, 0755) != 0 && errno != EEXIST)
        return -1;
    return openat(dir, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/*
 * Walk the name one segment at a time from the workspace descriptor, never
 * following a link and never reusing an existing file: a fresh tmpfs holds
 * no links, but refusing them keeps a name from ever resolving elsewhere
 * should the workspace one day not be fresh.
 */
static int write_one(int root, const struct file_item *f, char *msg, size_t msglen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s", f->name);
    int dir = dup(root);
    char *seg = path, *slash;
    while (dir >= 0 && (slash = strchr(seg, '/')) != NULL) {
        *slash = '\0';
        int next = enter_dir(dir, seg);
        int err = errno; /* for the message, past close() */
        close(dir);
        errno = err;
        dir = next;
        seg = slash + 1;
    }
    int fd = dir < 0 ? -1
                     : openat(dir, seg, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                            f->exec ? 0755 : 0644);
    int ok = fd >= 0 && write_all(fd, f->data, f->len) == 0;
    int err = errno;
    if (fd >= 0 && close(fd) != 0 && ok) {
        ok = 0;
        err = errno;
    }
    if (dir >= 0)
        close(dir);
    if (!ok)
        snprintf(msg, msglen, "cannot write '%.100s': %s", f->name, strerror(err));
    return ok ? 0 : -1;
}

/* Runs in the writer child, as the program's user. Never returns. */
static void write_files_child(const struct job *j, int report)
{
    char msg[256] = "";
    if (drop_privileges() != 0) {
        snprintf(msg, sizeof(msg), "cannot drop privileges: %s", strerror(errno));
    } else {
        umask(022);
        int root = open(g.workspace, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
            snprintf(msg, sizeof(msg), "cannot open the workspace: %s", strerror(errno));
        for (size_t i = 0; root >= 0 && i < j->nfiles && !msg[0]; i++)
            write_one(root, &j->files[i], msg, sizeof(msg));
    }
    if (msg[0]) {
        write_all(report, msg, strlen(msg));
        _exit(1);
    }
    _exit(0);
}

static void write_files(const struct job *j)
{
    if (j->nfiles == 0)
        return;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        fail_exit("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        fail_exit("fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        write_files_child(j, p[1]);
    }
    close(p[1]);
    char msg[256];
    size_t have = 0;
    ssize_t n;
    while (have < sizeof(msg) - 1 &&
           ((n = read(p[0], msg + have, sizeof(msg) - 1 - have)) > 0 || (n < 0 && errno == EINTR)))
        have += n > 0 ? (size_t)n : 0;
    msg[have] = '\0';
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_exit("%s", have ? msg : "the file writer failed");
}

/* ------------------------------------------------------------- artifacts */

struct collect {
    int64_t left;   /* bytes the artifacts may still take */
    int files;      /* how many may still come */
};

static void collect_dir(int dir, const char *prefix, struct collect *c);

/* One entry of a directory: a regular file becomes an ARTIFACT frame. */
static void collect_entry(int dir, const char *prefix, const char *name, struct collect *c)
{
    char path[PATH_MAX];
    struct stat st;
    /* Scratch (".cache", ".gotmp", ...) stays behind; so does anything that
     * is not a plain file or directory: links are never followed. */
    if (name[0] == '.')
        return;
    int n = snprintf(path, sizeof(path), "%s%s", prefix, name);
    if (n < 0 || (size_t)n >= sizeof(path) - 2)
        _exit(3);
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        path[n] = '/';
        path[n + 1] = '\0';
        collect_dir(fd, path, c);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return;
    }
    if (--c->files < 0)
        _exit(4);
    if ((c->left -= st.st_size) < 0)
        _exit(2);
    size_t hlen = (size_t)n + 2, len = hlen + (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        _exit(3);
    buf[0] = (st.st_mode & 0111) ? 'x' : '-';
    memcpy(buf + 1, path, (size_t)n + 1);
    size_t have = hlen;
    ssize_t r;
    while (have < len && ((r = read(fd, buf + have, len - have)) > 0 || (r < 0 && errno == EINTR)))
        have += r > 0 ? (size_t)r : 0;
    close(fd);
    emit(PROTO_ARTIFACT, buf, have);
    free(buf);
}

static void collect_dir(int dir, const char *prefix, struct collect *c)
{
    DIR *d = fdopendir(dir);
    struct dirent *e;
    if (!d)
        _exit(3);
    while ((e = readdir(d)) != NULL)
        collect_entry(dirfd(d), prefix, e->d_name, c);
    closedir(d);
}

/*
 * After a compile for other containers: send the workspace's files back.
 * A child that is already the program's user reads them, so a link or a
 * special file the compiler (or a hostile program) left cannot make the
 * privileged side read anything the program could not.
 */
static void send_artifacts(const struct job *j)
{
    pid_t pid = fork();
    if (pid < 0)
        fail_exit("fork: %s", strerror(errno));
    if (pid == 0) {
        struct collect c = {j->artifact_bytes, 4096};
        int root;
        if (drop_privileges() != 0 ||
            (root = open(g.workspace, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
            _exit(3);
        collect_dir(root, "", &c);
        _exit(0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    /* Too much output of the compile is the program's doing, not ours: it
     * is reported as a failed compile (with a line on its stderr), not as a
     * FAIL of the supervisor. */
    if (WIFEXITED(st) && (WEXITSTATUS(st) == 2 || WEXITSTATUS(st) == 4)) {
        char msg[160];
        int n = WEXITSTATUS(st) == 2
                    ? snprintf(msg, sizeof msg, "\nbg-compiler: the compiled files are over "
                                                "%lld bytes\n", (long long)j->artifact_bytes)
                    : snprintf(msg, sizeof msg, "\nbg-compiler: the compile left over 4096 "
                                                "files\n");
        emit(PROTO_ERR, msg, (size_t)n);
        static const char over[] = "step=compile\nartifact_limit=1\n";
        emit(PROTO_RESULT, over, sizeof over - 1);
        return;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_exit("cannot collect the compiled files");
}

/* ------------------------------------------------------------ exec child */

enum start_stage { STAGE_PRIV, STAGE_SESSION, STAGE_FDS, STAGE_CHDIR, STAGE_EXEC };

struct start_error {
    int stage;
    int err;
};

static void child_report(int fd, int stage, int err)
{
    struct start_error e = {stage, err};
    write_all(fd, &e, sizeof(e));
    _exit(127);
}

/* Close every descriptor but 0, 1, 2 and `keep` (which is >= 3). */
static int close_others(int keep)
{
    if ((keep == 3 || syscall(SYS_close_range, 3u, (unsigned)keep - 1, 0u) == 0) &&
        syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u) == 0)
        return 0;
    /* Kernels before 5.9: close them one by one. */
    struct rlimit rl;
    long max = 1L << 20;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)max)
        max = (long)rl.rlim_cur;
    for (long fd = 3; fd < max; fd++)
        if (fd != keep)
            close((int)fd);
    return 0;
}

static const char *env_get(char *const env[], const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; env[i]; i++)
        if (strncmp(env[i], key, klen) == 0 && env[i][klen] == '=')
            return env[i] + klen + 1;
    return NULL;
}

/*
 * execvp() against the program's PATH, not ours (our environment must not
 * leak into the program, and lookups must agree with what the program
 * sees). Returns the errno that explains the failure.
 */
static int exec_search(char *const argv[], char *const env[])
{
    const char *file = argv[0];
    if (strchr(file, '/')) {
        execve(file, argv, env);
        return errno;
    }
    const char *path = env_get(env, "PATH");
    if (!path)
        path = DEFAULT_PATH;
    int err = ENOENT;
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        char full[PATH_MAX];
        /* An empty PATH element means the current directory (POSIX). */
        int n = snprintf(full, sizeof(full), "%.*s%s%s", (int)(end - p), p,
                         end == p ? "" : "/", file);
        if (n > 0 && (size_t)n < sizeof(full)) {
            execve(full, argv, env);
            if (errno == EACCES)
                err = EACCES;
            else if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG && errno != ELOOP)
                return errno;
        }
        if (*end == '\0')
            return err;
        p = end;
    }
}

/* Child side of a step. `fds`: stdin read, stdout write, stderr write, status. */
static void exec_child(char *const argv[], char *const env[], const int fds[4])
{
    /* An ignored signal stays ignored across execve; the program must get
     * the usual SIGPIPE on a closed pipe. */
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (drop_privileges() != 0)
        child_report(fds[3], STAGE_PRIV, errno);
    /* Defence in depth if the container forgot no-new-privileges (or on a
     * host): a setuid binary would take the program out of reach of the
     * uid-based kill. No core files: they would fill the workspace. */
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
    /* Own session and group: on a host the step is killed by group. */
    if (setsid() < 0)
        child_report(fds[3], STAGE_SESSION, errno);
    if (dup2(fds[0], 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[2], 2) < 0 ||
        close_others(fds[3]) != 0)
        child_report(fds[3], STAGE_FDS, errno);
    if (chdir(g.workspace) != 0)
        child_report(fds[3], STAGE_CHDIR, errno);
    child_report(fds[3], STAGE_EXEC, exec_search(argv, env));
}

/* ------------------------------------------------------------ measuring */

struct usage {
    int cpu_ok, peak_ok, oom_ok, reset;
    int64_t cpu_ns, peak_bytes, oom_kills;
};

static int read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

/* A number file ("123\n"), or with `key` a "key 123" line in a stat file. */
static int read_num(const char *path, const char *key, int64_t *out)
{
    char buf[4096];
    if (read_small(path, buf, sizeof(buf)) < 0)
        return -1;
    const char *p = buf;
    if (key) {
        size_t klen = strlen(key);
        for (p = buf; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
            if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
                break;
        if (!p)
            return -1;
        p += klen + 1;
    }
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (end == p || errno)
        return -1;
    *out = v;
    return 0;
}

/*
 * Only as PID 1 are the cgroup files our container's own; on a host they
 * describe the whole machine (or another group), so there the step falls
 * back to the rusage of the main child. cgroup v1 first, then v2.
 */
static void sample_usage(struct usage *u, int reset_peak)
{
    memset(u, 0, sizeof(*u));
    if (!g.is_init)
        return;
    u->cpu_ok = read_num("/sys/fs/cgroup/cpuacct/cpuacct.usage", NULL, &u->cpu_ns) == 0;
    if (!u->cpu_ok && read_num("/sys/fs/cgroup/cpu.stat", "usage_usec", &u->cpu_ns) == 0) {
        u->cpu_ok = 1;
        u->cpu_ns *= 1000;
    }
    const char *v1peak = "/sys/fs/cgroup/memory/memory.max_usage_in_bytes";
    if (reset_peak) {
        /* Writable only where /sys/fs/cgroup is mounted read-write. */
        int fd = open(v1peak, O_WRONLY | O_CLOEXEC);
        u->reset = fd >= 0 && write(fd, "0", 1) == 1;
        if (fd >= 0)
            close(fd);
    }
    u->peak_ok = read_num(v1peak, NULL, &u->peak_bytes) == 0 ||
                 read_num("/sys/fs/cgroup/memory.peak", NULL, &u->peak_bytes) == 0;
    u->oom_ok = read_num("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill", &u->oom_kills) == 0 ||
                read_num("/sys/fs/cgroup/memory.events", "oom_kill", &u->oom_kills) == 0;
}

/* ------------------------------------------------------------------ steps */

struct step {
    const char *name;
    char **argv;
    const uint8_t *in;
    size_t in_len, in_off;
    int64_t timeout_ms;
    uint64_t cap, used;
    pid_t pid;
    int fd_in, fd_out, fd_err; /* our ends, -1 once closed */
    int64_t start_ns, end_ns;
    int exited, status;
    struct rusage ru;
    int timed_out, output_limit;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Reap every exited child (as PID 1, orphans too); note the main one. */
static void reap_children(struct step *s)
{
    int st;
    struct rusage ru;
    pid_t pid;
    while ((pid = wait4(-1, &st, WNOHANG, &ru)) > 0 || (pid < 0 && errno == EINTR)) {
        if (s && pid == s->pid && !s->exited) {
            s->exited = 1;
            s->status = st;
            s->ru = ru;
            s->end_ns = now_ns();
        }
    }
}

static void on_sigchld(int sig)
{
    (void)sig;
    int saved = errno;
    ssize_t r = write(g.sig_w, "c", 1); /* full pipe: a wakeup is pending anyway */
    (void)r;
    errno = saved;
}

static void explain_start_failure(const struct step *s, struct start_error e)
{
    static const char *const what[] = {"drop privileges", "start a session",
                                       "set up descriptors", "enter the workspace"};
    if (e.stage == STAGE_EXEC)
        fail_exit("cannot run '%.200s': %s", s->argv[0], strerror(e.err));
    if (e.stage < 0 || e.stage > STAGE_CHDIR)
        fail_exit("cannot start '%.200s'", s->argv[0]);
    fail_exit("cannot start '%.200s': %s: %s", s->argv[0], what[e.stage], strerror(e.err));
}

/* Wait for the child's exec: the status pipe closes on success (CLOEXEC). */
static void await_exec(struct step *s, int status_fd)
{
    struct start_error e;
    size_t have = 0;
    ssize_t n;
    while (have < sizeof(e) &&
           ((n = read(status_fd, (char *)&e + have, sizeof(e) - have)) > 0 ||
            (n < 0 && errno == EINTR)))
        have += n > 0 ? (size_t)n : 0;
    close(status_fd);
    if (have == 0)
        return;
    int st;
    while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR)
        ;
    g.active = 0;
    if (have < sizeof(e))
        e = (struct start_error){-1, 0};
    explain_start_failure(s, e);
}

static void start_step(struct step *s, char *const env[])
{
    int in[2], out[2], err[2], status[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) ||
        pipe2(status, O_CLOEXEC))
        fail_exit("pipe: %s", strerror(errno));
    s->start_ns = now_ns();
    s->pid = fork();
    if (s->pid < 0)
        fail_exit("fork: %s", strerror(errno));
    if (s->pid == 0)
        exec_child(s->argv, env, (int[4]){in[0], out[1], err[1], status[1]});
    g.active = s->pid;
    close(in[0]);
    close(out[1]);
    close(err[1]);
    close(status[1]);
    s->fd_in = in[1];
    s->fd_out = out[0];
    s->fd_err = err[0];
    await_exec(s, status[0]);
    fcntl(s->fd_in, F_SETFL, O_NONBLOCK);
    fcntl(s->fd_out, F_SETFL, O_NONBLOCK);
    fcntl(s->fd_err, F_SETFL, O_NONBLOCK);
    if (s->in_len == 0)
        close_fd(&s->fd_in); /* the program sees EOF at once */
}

/* Forward program output, cut exactly at the step's cap. */
static void forward(struct step *s, uint8_t type, const uint8_t *buf, size_t n)
{
    uint64_t room = s->cap - s->used;
    if (n > room) {
        if (room > 0)
            emit(type, buf, (size_t)room);
        s->used = s->cap;
        s->output_limit = 1;
        return;
    }
    emit(type, buf, n);
    s->used += n;
}

/* One read from an output pipe; bytes read, 0 on EOF or nothing ready. */
static ssize_t pump_output(struct step *s, int *fd, uint8_t type)
{
    static uint8_t buf[IO_CHUNK];
    ssize_t n = read(*fd, buf, sizeof(buf));
    if (n > 0) {
        forward(s, type, buf, (size_t)n);
        return n;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR))
        close_fd(fd);
    return 0;
}

static void pump_stdin(struct step *s)
{
    size_t left = s->in_len - s->in_off;
    ssize_t n = write(s->fd_in, s->in + s->in_off, left > IO_CHUNK ? IO_CHUNK : left);
    if (n > 0)
        s->in_off += (size_t)n;
    /* EPIPE (SIGPIPE is ignored) means the program closed its stdin: fine. */
    if ((n < 0 && errno != EAGAIN && errno != EINTR) || s->in_off == s->in_len)
        close_fd(&s->fd_in);
}

/* What is already in the pipes once the main child is gone; never blocks. */
static void drain(struct step *s)
{
    int *fds[] = {&s->fd_out, &s->fd_err};
    uint8_t types[] = {PROTO_OUT, PROTO_ERR};
    for (int i = 0; i < 2; i++) {
        size_t total = 0;
        ssize_t n;
        while (*fds[i] >= 0 && !s->output_limit && total < DRAIN_MAX &&
               (n = pump_output(s, fds[i], types[i])) > 0)
            total += (size_t)n;
    }
}

static void drain_sigpipe(void)
{
    char buf[64];
    while (read(g.sig_r, buf, sizeof(buf)) > 0)
        ;
}

/* One poll round; the caller checks exit, cap and deadline. */
static void poll_once(struct step *s, int64_t deadline)
{
    struct pollfd p[4] = {{g.sig_r, POLLIN, 0}, {s->fd_out, POLLIN, 0},
                          {s->fd_err, POLLIN, 0}, {s->fd_in, POLLOUT, 0}};
    int64_t left = deadline - now_ns();
    /* Negative fds are skipped by poll(); round up so we wake after the deadline. */
    if (poll(p, 4, (int)((left + 999999) / 1000000)) < 0) {
        if (errno == EINTR)
            return;
        fail_exit("poll: %s", strerror(errno));
    }
    short any = POLLIN | POLLHUP | POLLERR;
    if (p[1].revents & any)
        pump_output(s, &s->fd_out, PROTO_OUT);
    if (p[2].revents & any && !s->output_limit)
        pump_output(s, &s->fd_err, PROTO_ERR);
    if (p[3].revents & (POLLOUT | POLLHUP | POLLERR))
        pump_stdin(s);
    if (p[0].revents & POLLIN) {
        drain_sigpipe();
        reap_children(s);
    }
}

static void supervise(struct step *s)
{
    int64_t deadline = s->start_ns + s->timeout_ms * 1000000;
    while (!s->exited && !s->output_limit) {
        if (now_ns() >= deadline) {
            s->timed_out = 1;
            break;
        }
        poll_once(s, deadline);
    }
    if (s->exited && !s->output_limit)
        drain(s);
    if (!s->exited)
        s->end_ns = now_ns(); /* the kill below ends the step's wall time */
    /* The main child on a limit, survivors in any case (they must not write
     * into the next step or hold the container). */
    kill_program(s->pid);
    while (!s->exited && wait4(s->pid, &s->status, 0, &s->ru) < 0 && errno == EINTR)
        ;
    s->exited = 1;
    g.active = 0;
    close_fd(&s->fd_in);
    close_fd(&s->fd_out);
    close_fd(&s->fd_err);
}

static int64_t tv_ms(struct timeval tv)
{
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/*
 * Peak memory: after a reset the cgroup peak is the step's own. Without a
 * reset, a peak that grew during the step was reached in it; one that did
 * not grow belongs to an earlier step, so the main child's rusage (its
 * largest process) is the best we know.
 */
static int64_t step_memory_kb(const struct step *s, const struct usage *a, const struct usage *b)
{
    if (b->peak_ok && (a->reset || (a->peak_ok && b->peak_bytes > a->peak_bytes)))
        return b->peak_bytes / 1024;
    return s->ru.ru_maxrss; /* kilobytes on Linux */
}

static void emit_result(const struct step *s, const struct usage *a, const struct usage *b)
{
    int64_t cpu_ms = a->cpu_ok && b->cpu_ok ? (b->cpu_ns - a->cpu_ns) / 1000000
                                            : tv_ms(s->ru.ru_utime) + tv_ms(s->ru.ru_stime);
    int oom = a->oom_ok && b->oom_ok && b->oom_kills > a->oom_kills;
    char text[512];
    int n = snprintf(text, sizeof(text),
                     "step=%s\nexit_code=%d\nsignal=%d\ntimed_out=%d\noutput_limit=%d\n"
                     "oom_killed=%d\nwall_ms=%lld\ncpu_ms=%lld\nmemory_kb=%lld\n",
                     s->name, WIFEXITED(s->status) ? WEXITSTATUS(s->status) : -1,
                     WIFSIGNALED(s->status) ? WTERMSIG(s->status) : 0, s->timed_out,
                     s->output_limit, oom, (long long)((s->end_ns - s->start_ns) / 1000000),
                     (long long)cpu_ms, (long long)step_memory_kb(s, a, b));
    emit(PROTO_RESULT, text, (size_t)n);
}

/* Run one step to its RESULT frame; 1 when it succeeded. */
static int run_step(struct step *s, char *const env[])
{
    struct usage before, after;
    s->fd_in = s->fd_out = s->fd_err = -1;
    sample_usage(&before, 1);
    start_step(s, env);
    emit(PROTO_STEP, s->name, strlen(s->name));
    supervise(s);
    sample_usage(&after, 0);
    emit_result(s, &before, &after);
    return WIFEXITED(s->status) && WEXITSTATUS(s->status) == 0 && !s->timed_out &&
           !s->output_limit;
}

/* ------------------------------------------------------------------- main */

/* Ids come from our own argv (tests); refuse anything that is not a plain
 * non-zero number: running the program as root would void the sandbox. */
static unsigned parse_id(const char *s)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v == 0 || v >= 0xffffffffUL)
        fail_exit("bad uid/gid argument '%.32s'", s);
    return (unsigned)v;
}

static void setup_process(int argc, char **argv)
{
    /* Descriptors 0-2 must exist, or a pipe could land on them and be
     * clobbered by the child's dup2. */
    int fd;
    while ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0 && fd < 3)
        fcntl(fd, F_SETFD, 0);
    if (fd >= 3)
        close(fd);
    signal(SIGPIPE, SIG_IGN); /* a closed pipe is an errno, not our death */
    g.is_init = getpid() == 1;
    if (argc > 1)
        g.workspace = argv[1];
    if (argc > 3) {
        g.uid = parse_id(argv[2]);
        g.gid = parse_id(argv[3]);
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
        fail_exit("pipe: %s", strerror(errno));
    g.sig_r = p[0];
    g.sig_w = p[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGCHLD, &sa, NULL) != 0)
        fail_exit("sigaction: %s", strerror(errno));
}

int main(int argc, char **argv)
{
    static struct job job;
    static char *no_env[] = {NULL};
    setup_process(argc, argv);
    read_job(&job);
    write_files(&job);
    char **env = job.env ? job.env : no_env;
    if (job.compile_argv) {
        struct step c = {.name = "compile", .argv = job.compile_argv,
                         .timeout_ms = job.compile_timeout_ms, .cap = (uint64_t)job.output_bytes};
        if (!run_step(&c, env)) {
            emit(PROTO_DONE, NULL, 0);
            return 0;
        }
        settle_between_steps();
        if (job.has_artifacts) {
            send_artifacts(&job);
            emit(PROTO_DONE, NULL, 0);
            return 0;
        }
    }
    struct step r = {.name = "run", .argv = job.run_argv, .in = job.stdin_data,
                     .in_len = job.stdin_len, .timeout_ms = job.timeout_ms,
                     .cap = (uint64_t)job.output_bytes};
    run_step(&r, env);
    emit(PROTO_DONE, NULL, 0);
    return 0;
}
