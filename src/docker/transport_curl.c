/*
 * transport_curl: the engine over libcurl (unix socket or plain TCP).
 *
 * Requests reuse one easy handle, so the connection stays alive between
 * them. Attach needs the connection itself: libcurl 7.88 has no API for the
 * engine's "Upgrade: tcp" hijack, so we open a CONNECT_ONLY handle, write
 * the HTTP request ourselves and then use the socket as a raw stream.
 */
#include "transport.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../common/err.h"

struct curl_transport {
    struct dk_transport base;
    CURL *easy;
    char *socket_path; /* NULL for TCP */
    char *base_url;    /* "http://docker" or "http://host:port" */
};

struct dk_stream {
    CURL *easy;
    curl_socket_t fd;
    uint8_t *pending; /* bytes read past the response headers */
    size_t pending_len, pending_off;
};

int transport_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : BG_EIO;
}

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    return buf_append(b, ptr, size * n) < 0 ? 0 : size * n;
}

static void setup_target(struct curl_transport *t, CURL *easy)
{
    if (t->socket_path)
        curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH, t->socket_path);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
}

static int t_request(void *self, const char *method, const char *path,
                     const char *content_type, const void *body, size_t len,
                     long timeout_ms, struct dk_response *resp)
{
    struct curl_transport *t = self;
    CURL *e = t->easy;
    struct curl_slist *hdrs = NULL;
    char url[2048];
    char ct[128];
    int rc = 0;

    resp->status = 0;
    buf_reset(&resp->body);
    snprintf(url, sizeof url, "%s%s", t->base_url, path);
    curl_easy_reset(e);
    setup_target(t, e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &resp->body);
    if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "application/json");
        hdrs = curl_slist_append(hdrs, ct);
        /* The engine answers at once; skip curl's 1 s wait for 100-continue. */
        hdrs = curl_slist_append(hdrs, "Expect:");
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    }
    CURLcode cc = curl_easy_perform(e);
    if (cc == CURLE_OPERATION_TIMEDOUT)
        rc = BG_ETIMEOUT;
    else if (cc != CURLE_OK)
        rc = BG_EENGINE;
    else
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_slist_free_all(hdrs);
    return rc;
}

static long ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms < 0 ? 0 : ms;
}

static int wait_fd(curl_socket_t fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n;
    do
        n = poll(&p, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return BG_EIO;
    return n == 0 ? BG_ETIMEOUT : 0;
}

static int s_send(struct dk_stream *s, const void *buf, size_t len, int timeout_ms)
{
    const char *p = buf;
    while (len) {
        size_t sent = 0;
        CURLcode cc = curl_easy_send(s->easy, p, len, &sent);
        if (cc == CURLE_AGAIN) {
            int rc = wait_fd(s->fd, POLLOUT, timeout_ms);
            if (rc < 0)
                return rc;
            continue;
        }
        if (cc != CURLE_OK)
            return BG_EENGINE;
        p += sent;
        len -= sent;
    }
    return 0;
}

static ssize_t s_recv(struct dk_stream *s, void *buf, size_t len, int timeout_ms)
{
    if (s->pending_off < s->pending_len) {
        size_t n = s->pending_len - s->pending_off;
        if (n > len)
            n = len;
        memcpy(buf, s->pending + s->pending_off, n);
        s->pending_off += n;
        return (ssize_t)n;
    }
    for (;;) {
        size_t got = 0;
        CURLcode cc = curl_easy_recv(s->easy, buf, len, &got);
        if (cc == CURLE_OK)
            return (ssize_t)got; /* 0: the engine closed the stream */
        if (cc != CURLE_AGAIN)
            return BG_EENGINE;
        int rc = wait_fd(s->fd, POLLIN, timeout_ms);
        if (rc < 0)
            return rc;
    }
}

static void s_shutdown_write(struct dk_stream *s) { shutdown(s->fd, SHUT_WR); }

static void s_close(struct dk_stream *s)
{
    if (!s)
        return;
    curl_easy_cleanup(s->easy);
    free(s->pending);
    free(s);
}

/* Read the response head of the upgrade; keep what follows it. */
static int read_upgrade_head(struct dk_stream *s, long timeout_ms)
{
    struct buf head = BUF_INIT;
    struct timespec deadline;
    char chunk[4096];
    int rc = BG_EENGINE;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    for (;;) {
        ssize_t n = s_recv(s, chunk, sizeof chunk, (int)ms_left(&deadline));
        if (n <= 0) {
            rc = n == 0 ? BG_EENGINE : (int)n;
            goto out;
        }
        if (buf_append(&head, chunk, (size_t)n) < 0 || head.len > 65536)
            goto out;
        char *end = strstr(head.data, "\r\n\r\n");
        if (!end)
            continue;
        /* 101 Switching Protocols; older engines answer 200 and hijack too. */
        if (strncmp(head.data, "HTTP/1.1 101", 12) != 0 && strncmp(head.data, "HTTP/1.1 200", 12) != 0)
            goto out;
        size_t used = (size_t)(end + 4 - head.data);
        s->pending_len = head.len - used;
        if (s->pending_len) {
            s->pending = malloc(s->pending_len);
            if (!s->pending) {
                rc = BG_ENOMEM;
                goto out;
            }
            memcpy(s->pending, head.data + used, s->pending_len);
        }
        rc = 0;
        goto out;
    }
out:
    buf_free(&head);
    return rc;
}

static int t_hijack(void *self, const char *path, long timeout_ms, struct dk_stream **out)
{
    struct curl_transport *t = self;
    struct dk_stream *s = calloc(1, sizeof *s);
    char req[2048];
    int rc = BG_EENGINE;
    curl_socket_t sock = CURL_SOCKET_BAD;

    if (!s)
        return BG_ENOMEM;
    s->easy = curl_easy_init();
    if (!s->easy) {
        rc = BG_ENOMEM;
        goto fail;
    }
    setup_target(t, s->easy);
    curl_easy_setopt(s->easy, CURLOPT_URL, t->base_url);
    curl_easy_setopt(s->easy, CURLOPT_CONNECT_ONLY, 1L);
    if (curl_easy_perform(s->easy) != CURLE_OK)
        goto fail;
    /* ACTIVESOCKET writes a curl_socket_t, not a long. */
    if (curl_easy_getinfo(s->easy, CURLINFO_ACTIVESOCKET, &sock) != CURLE_OK ||
        sock == CURL_SOCKET_BAD)
        goto fail;
    s->fd = sock;
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: docker\r\nContent-Type: text/plain\r\n"
                     "Content-Length: 0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
                     path);
    if (n <= 0 || (size_t)n >= sizeof req)
        goto fail;
    rc = s_send(s, req, (size_t)n, (int)timeout_ms);
    if (rc < 0)
        goto fail;
    rc = read_upgrade_head(s, timeout_ms);
    if (rc < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    s_close(s);
    return rc < 0 ? rc : BG_EENGINE;
}

static void t_free(void *self)
{
    struct curl_transport *t = self;
    curl_easy_cleanup(t->easy);
    free(t->socket_path);
    free(t->base_url);
    free(t);
}

static const struct dk_transport_ops curl_ops = {
    .request = t_request,
    .hijack = t_hijack,
    .send = s_send,
    .recv = s_recv,
    .shutdown_write = s_shutdown_write,
    .close = s_close,
    .free = t_free,
};

struct dk_transport *transport_curl_new(const char *host)
{
    struct curl_transport *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->base.ops = &curl_ops;
    t->base.self = t;
    t->easy = curl_easy_init();
    if (!host || !*host)
        host = "unix:///var/run/docker.sock";
    if (strncmp(host, "tcp://", 6) == 0) {
        size_t n = strlen(host + 6) + 8;
        t->base_url = malloc(n);
        if (t->base_url)
            snprintf(t->base_url, n, "http://%s", host + 6);
        /* A trailing slash would double up with our paths. */
        if (t->base_url && t->base_url[strlen(t->base_url) - 1] == '/')
            t->base_url[strlen(t->base_url) - 1] = '\0';
    } else {
        t->socket_path = strdup(strncmp(host, "unix://", 7) == 0 ? host + 7 : host);
        t->base_url = strdup("http://docker");
    }
    if (!t->easy || !t->base_url || (!t->socket_path && strncmp(host, "tcp://", 6) != 0)) {
        t_free(t);
        return NULL;
    }
    return &t->base;
}

void transport_free(struct dk_transport *t)
{
    if (t)
        t->ops->free(t->self);
}
