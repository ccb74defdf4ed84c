#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/log.h"
#include "../core/api.h"
#include "../core/metrics.h"

#define CONNECTION_TIMEOUT_S 30
#define THREADS 2
#define MAX_CONNECTIONS 8192
#define MAX_PER_ADDRESS 256

struct http_server {
    struct MHD_Daemon *daemon;
    struct service *svc;
    size_t max_body;
    atomic_int in_flight;
};

/* One request. Two owners while runs are pending: MHD (until the request
 * completes) and the batch (until on_done), hence the reference count. */
struct conn {
    atomic_int refs;
    struct http_server *srv;
    struct MHD_Connection *mc;
    struct buf body;
    int started;   /* api_handle has been called */
    int too_big; /* 1: 413 queued; 2: over the cap, discarding the rest */
    struct api_response resp;
    int have_resp;
    struct batch *batch;
    pthread_mutex_t lock;
    int done, suspended;
    char request_id[33];
    struct api_request req; /* kept for the answer (plugins see it again) */
    struct buf headers, query; /* arrays of struct plugin_kv */
    char client[64];
};

static void conn_unref(struct conn *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    if (c->batch) {
        /* Tell workers not to start runs nobody will read. */
        atomic_store(&c->batch->cancelled, 1);
        batch_unref(c->batch);
    }
    buf_free(&c->body);
    free(c->resp.body);
    buf_free(&c->resp.headers);
    buf_free(&c->headers);
    buf_free(&c->query);
    pthread_mutex_destroy(&c->lock);
    atomic_fetch_sub(&c->srv->in_flight, 1);
    free(c);
}

static enum MHD_Result send_response(struct conn *c, struct api_response *r)
{
    const char *body = r->body ? r->body : "{}";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type",
                            r->content_type ? r->content_type : "application/json");
    MHD_add_response_header(resp, "X-Request-Id", c->request_id);
    if (r->retry_after) {
        char v[16];
        snprintf(v, sizeof v, "%d", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", v);
    }
    if (r->allow)
        MHD_add_response_header(resp, "Allow", r->allow);
    /* Headers from plugins, "Name: value" lines checked by plugins.c. */
    for (char *line = r->headers.data; line && *line;) {
        char *nl = strchr(line, '\n'), *colon = strstr(line, ": ");
        if (!nl || !colon || colon > nl)
            break;
        *nl = *colon = '\0';
        MHD_add_response_header(resp, line, colon + 2);
        line = nl + 1;
    }
    enum MHD_Result ret = MHD_queue_response(c->mc, (unsigned)r->status, resp);
    metrics_request(c->req.path, r->status);
    MHD_destroy_response(resp);
    log_info("[%s] %d", c->request_id, r->status);
    return ret;
}

static enum MHD_Result send_error(struct conn *c, int status, const char *code, const char *msg)
{
    api_error(&c->resp, status, code, msg, c->request_id);
    return send_response(c, &c->resp);
}

/* Called by a worker thread when the last run of the batch is done. */
static void on_batch_done(struct batch *b, void *arg)
{
    struct conn *c = arg;
    (void)b;
    pthread_mutex_lock(&c->lock);
    c->done = 1;
    if (c->suspended) {
        c->suspended = 0;
        MHD_resume_connection(c->mc);
    }
    pthread_mutex_unlock(&c->lock);
    conn_unref(c);
}

static struct conn *conn_new(struct http_server *srv, struct MHD_Connection *mc)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->srv = srv;
    c->mc = mc;
    pthread_mutex_init(&c->lock, NULL);
    api_request_id(c->request_id);
    atomic_fetch_add(&srv->in_flight, 1);
    return c;
}

static enum MHD_Result collect_kv(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    struct plugin_kv kv = {key, value ? value : ""};
    (void)kind;
    return buf_append(cls, &kv, sizeof kv) < 0 ? MHD_NO : MHD_YES;
}

static void client_address(struct MHD_Connection *mc, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, len, "unknown");
    if (!ci || !ci->client_addr)
        return;
    if (ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, out,
                  (socklen_t)len);
    else if (ci->client_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, out,
                  (socklen_t)len);
}

static enum MHD_Result start_request(struct conn *c, const char *url, const char *method)
{
    struct MHD_Connection *mc = c->mc;
    MHD_get_connection_values(mc, MHD_HEADER_KIND, collect_kv, &c->headers);
    MHD_get_connection_values(mc, MHD_GET_ARGUMENT_KIND, collect_kv, &c->query);
    client_address(mc, c->client, sizeof c->client);
    c->req = (struct api_request){
        .method = method,
        .path = url,
        .content_type = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Type"),
        .query_lang = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "lang"),
        .query_count = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "count"),
        .body = c->body.data ? c->body.data : "",
        .body_len = c->body.len,
        .request_id = c->request_id,
        .client = c->client,
        .headers = (const struct plugin_kv *)c->headers.data,
        .nheaders = c->headers.len / sizeof(struct plugin_kv),
        .query = (const struct plugin_kv *)c->query.data,
        .nquery = c->query.len / sizeof(struct plugin_kv),
    };
    c->started = 1;
    atomic_fetch_add(&c->refs, 1); /* the batch's reference, if one is made */
    int r = api_handle(c->srv->svc, &c->req, &c->resp, &c->batch, on_batch_done, c);
    if (r == API_READY) {
        atomic_fetch_sub(&c->refs, 1);
        return send_response(c, &c->resp);
    }
    pthread_mutex_lock(&c->lock);
    if (!c->done) {
        c->suspended = 1;
        MHD_suspend_connection(mc);
    }
    int done = c->done;
    pthread_mutex_unlock(&c->lock);
    if (!done)
        return MHD_YES;
    api_finish(c->srv->svc, &c->req, c->batch, &c->resp);
    return send_response(c, &c->resp);
}

static int content_length_over(struct MHD_Connection *mc, size_t max)
{
    const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
    return cl && strtoull(cl, NULL, 10) > max;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct http_server *srv = cls;
    struct conn *c = *con_cls;
    char msg[128];
    (void)version;
    if (!c) {
        c = conn_new(srv, mc);
        if (!c)
            return MHD_NO;
        *con_cls = c;
        if (content_length_over(mc, srv->max_body)) {
            c->too_big = 1;
            snprintf(msg, sizeof msg, "the body is larger than the limit of %zu KB",
                     srv->max_body / 1024);
            return send_error(c, 413, "body_too_large", msg);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* A body without Content-Length (chunked) that passes the cap is
         * discarded from here on; libmicrohttpd 0.9.75 takes a response
         * only before the body or after all of it, so the 413 goes out at
         * its end. Memory stays bounded; the connection timeout bounds time. */
        if (!c->too_big && c->body.len + *upload_data_size > srv->max_body) {
            c->too_big = 2;
            buf_free(&c->body);
        }
        if (!c->too_big && buf_append(&c->body, upload_data, *upload_data_size) < 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (c->too_big == 1)
        return MHD_YES; /* the 413 is already queued */
    if (c->too_big) {
        snprintf(msg, sizeof msg, "the body is larger than the limit of %zu KB",
                 srv->max_body / 1024);
        c->too_big = 1;
        return send_error(c, 413, "body_too_large", msg);
    }
    if (!c->started)
        return start_request(c, url, method);
    /* Resumed: the batch is done. */
    api_finish(c->srv->svc, &c->req, c->batch, &c->resp);
    return send_response(c, &c->resp);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)mc;
    struct conn *c = *con_cls;
    if (!c)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        log_info("[%s] connection ended early (code %d)", c->request_id, (int)toe);
    *con_cls = NULL;
    conn_unref(c);
}

/*
 * Percent-decoding that leaves "%00" as it is: a decoded NUL would cut the
 * path or a query value short as a C string ("/compile%00x" would reach
 * /compile, "lang=python%00x" would be python). Left encoded, they are
 * just names that match nothing.
 */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *in = s, *out = s;
    while (*in) {
        int hi, lo;
        if (in[0] == '%' && in[1] && in[2] && (hi = hexval(in[1])) >= 0 &&
            (lo = hexval(in[2])) >= 0 && (hi || lo)) {
            *out++ = (char)(hi << 4 | lo);
            in += 3;
        } else
            *out++ = *in++;
    }
    *out = '\0';
    return (size_t)(out - s);
}

/* Room for many suspended requests: as many descriptors as allowed. */
static void raise_nofile(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

struct http_server *http_start(struct service *s, char err[BG_ERRLEN])
{
    struct http_server *h = calloc(1, sizeof *h);
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    struct sockaddr *addr;
    if (!h) {
        bg_fail(err, BG_ENOMEM, "out of memory");
        return NULL;
    }
    h->svc = s;
    h->max_body = (size_t)s->cfg.max_body_kb * 1024;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (inet_pton(AF_INET, s->cfg.host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)s->cfg.port);
        addr = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, s->cfg.host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)s->cfg.port);
        addr = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        bg_fail(err, BG_EINVAL, "--host must be an IP address, not '%s'", s->cfg.host);
        free(h);
        return NULL;
    }
    raise_nofile();
    /* Slow and idle clients: an idle timeout, and a cap per address so one
     * client cannot hold every connection (a byte a second resets the idle
     * timer; the per-address cap is what bounds it). */
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)THREADS, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)MAX_PER_ADDRESS,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_END);
    if (!h->daemon) {
        bg_fail(err, BG_EIO, "cannot listen on %s:%ld (in use?)", s->cfg.host, s->cfg.port);
        free(h);
        return NULL;
    }
    return h;
}

void http_quiesce(struct http_server *h)
{
    MHD_socket fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

void http_stop(struct http_server *h, long timeout_ms)
{
    if (!h)
        return;
    struct timespec pause = {0, 20 * 1000000};
    for (long waited = 0; atomic_load(&h->in_flight) > 0 && waited < timeout_ms; waited += 20)
        nanosleep(&pause, NULL);
    MHD_stop_daemon(h->daemon);
    free(h);
}
